"""Join tokens: format, join strings in both spellings, CA pinning, time to live, and
records that never hold the secret."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from hypothesis import given
from hypothesis import strategies as st

from apiserver.auth import pki, tokens
from provisioning import join_token as jt

NOW = dt.datetime(2030, 1, 1, 12, 0, 0, 250_000, tzinfo=dt.UTC)
TOKEN_RE = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")


@pytest.fixture(scope="module")
def ca() -> tuple:
    return pki.create_ca(now=NOW)


def test_new_tokens_are_well_formed_random_and_accepted_by_the_apiserver_format() -> None:
    made = {str(jt.JoinToken.new()) for _ in range(50)}
    assert len(made) == 50
    for text in made:
        assert TOKEN_RE.match(text)
        assert tokens.parse_bootstrap_token(text) is not None   # the apiserver's own parser


def test_parse_round_trips_and_hides_the_secret_in_repr() -> None:
    token = jt.JoinToken.parse(" abcdef.0123456789abcdef \n")
    assert (token.id, token.secret) == ("abcdef", "0123456789abcdef")
    assert str(token) == "abcdef.0123456789abcdef"
    assert "0123456789abcdef" not in repr(token)


@pytest.mark.parametrize(("text", "message"), [
    ("abcdef0123456789abcdef", "has no '.'"),
    ("abcde.0123456789abcdef", "token id must be 6 characters"),
    ("abcdef.0123456789abcde", "token secret must be 16 characters"),
    ("ABCDEF.0123456789abcdef", "only lowercase letters"),
    ("abcdef.0123456789abcd-f", "only lowercase letters"),
    ("", "has no '.'"),
])
def test_parse_rejects_bad_tokens_saying_why(text: str, message: str) -> None:
    with pytest.raises(jt.TokenError, match=re.escape(message)):
        jt.JoinToken.parse(text)


def test_errors_do_not_echo_a_whole_secret() -> None:
    with pytest.raises(jt.TokenError) as info:
        jt.JoinToken.parse("qwerty9876543210zyxwvu")
    assert "9876543210" not in str(info.value)


@pytest.mark.parametrize("style", ["k10", "kubeadm"])
def test_join_string_round_trips_in_both_styles(ca, style: str) -> None:
    token = jt.JoinToken.new()
    ca_hash = pki.ca_hash(ca[0])
    text = jt.render_join_string(token, ca_hash, style)
    assert jt.parse_join_string(text) == (ca_hash, token)
    assert jt.verify_ca(text, pki.cert_pem(ca[0])) == token


def test_join_string_shapes(ca) -> None:
    token = jt.JoinToken.parse("abcdef.0123456789abcdef")
    digest = pki.ca_hash(ca[0]).removeprefix("sha256:")
    assert jt.render_join_string(token, pki.ca_hash(ca[0])) == \
        f"K10{digest}::abcdef.0123456789abcdef"
    assert jt.render_join_string(token, digest, "kubeadm") == (
        f"--token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:{digest}")
    # kubeadm's flags in another order, with `=`, inside a longer command line
    line = (f"kubeadm join 10.0.0.1:6443 --discovery-token-ca-cert-hash=sha256:{digest} "
            "--token=abcdef.0123456789abcdef")
    assert jt.parse_join_string(line) == (f"sha256:{digest}", token)


def test_pinning_rejects_another_ca_and_accepts_a_reissued_one(ca) -> None:
    cert, key = ca
    text = jt.render_join_string(jt.JoinToken.new(), pki.ca_hash(cert))
    other, _ = pki.create_ca(now=NOW)
    with pytest.raises(jt.CaMismatch, match="refusing to join"):
        jt.verify_ca(text, pki.cert_pem(other))
    # The pin is the public key: a CA certificate re-issued for the same key still passes.
    reissued = (x509.CertificateBuilder().subject_name(cert.subject)
                .issuer_name(cert.issuer).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(cert.not_valid_before_utc)
                .not_valid_after(cert.not_valid_after_utc + dt.timedelta(days=365))
                .sign(key, hashes.SHA256()))
    assert reissued.fingerprint(hashes.SHA256()) != cert.fingerprint(hashes.SHA256())
    jt.verify_ca(text, reissued)


@pytest.mark.parametrize("text", [
    "K10abc::abcdef.0123456789abcdef",
    "K10" + "0" * 64 + "abcdef.0123456789abcdef",
    "--token abcdef.0123456789abcdef",
    "--token abcdef.0123456789abcdef --discovery-token-ca-cert-hash md5:" + "0" * 64,
    "hello",
])
def test_malformed_join_strings_are_refused(text: str) -> None:
    with pytest.raises(jt.TokenError):
        jt.parse_join_string(text)


def test_ttl_and_validity() -> None:
    token, record = jt.issue(NOW, dt.timedelta(hours=2))
    assert record.id == token.id
    assert record.expires_at == dt.datetime(2030, 1, 1, 14, 0, 0, tzinfo=dt.UTC)
    assert jt.valid(record, NOW)
    assert jt.valid(record, record.expires_at - dt.timedelta(seconds=1))
    assert not jt.valid(record, record.expires_at)
    _, forever = jt.issue(NOW, None)
    assert forever.expires_at is None and jt.valid(forever, NOW + dt.timedelta(days=9999))
    with pytest.raises(ValueError):
        jt.issue(NOW, dt.timedelta(seconds=-1))
    with pytest.raises(ValueError, match="unknown token usages"):
        jt.issue(NOW, usages=("authentication", "root"))


def test_check_admits_only_the_right_secret_in_time_for_its_usage() -> None:
    token, record = jt.issue(NOW, dt.timedelta(hours=1), usages=("authentication",))
    other, other_record = jt.issue(NOW)
    records = [other_record, record]
    assert jt.check(records, token, NOW) == record
    with pytest.raises(jt.TokenError, match="wrong secret"):
        jt.check(records, jt.JoinToken(token.id, other.secret), NOW)
    with pytest.raises(jt.TokenError, match="expired"):
        jt.check(records, token, NOW + dt.timedelta(hours=2))
    with pytest.raises(jt.TokenError, match="may not be used for signing"):
        jt.check(records, token, NOW, usage="signing")
    with pytest.raises(jt.TokenError, match="no token with id"):
        jt.check([other_record], token, NOW)


def test_records_round_trip_as_json_without_the_secret() -> None:
    issued = [jt.issue(NOW, dt.timedelta(hours=h), description=f"t{h}") for h in (1, 48)]
    text = jt.dumps(r for _, r in issued)
    for token, _ in issued:
        assert token.secret not in text
    doc = json.loads(text)
    assert set(doc["tokens"][0]) == {"id", "secret_hash", "expires_at", "usages", "groups",
                                     "description"}
    assert doc["tokens"][0]["expires_at"] == "2030-01-01T13:00:00Z"
    loaded = jt.loads(text)
    assert loaded == [r for _, r in issued]
    assert jt.prune(loaded, NOW + dt.timedelta(hours=2)) == [issued[1][1]]
    assert jt.loads("") == []
    with pytest.raises(jt.TokenError):
        jt.loads("{\"tokens\": [{\"id\": \"abcdef\"}]}")
    with pytest.raises(jt.TokenError):
        jt.loads("[1, 2]")


def test_bootstrap_secret_has_kubernetes_shape() -> None:
    token, record = jt.issue(NOW, dt.timedelta(hours=1), description="join w1")
    secret = jt.bootstrap_secret(token, record)
    assert secret["metadata"] == {"name": tokens.bootstrap_token_secret_name(token.id),
                                  "namespace": "kube-system"}
    assert secret["type"] == "bootstrap.kubernetes.io/token"
    assert secret["stringData"] == {
        "token-id": token.id, "token-secret": token.secret,
        "auth-extra-groups": "system:bootstrappers:kubelite:default-node-token",
        "description": "join w1", "expiration": "2030-01-01T13:00:00Z",
        "usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true"}


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=6, max_size=6),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=16, max_size=16),
       st.binary(min_size=32, max_size=32))
def test_any_valid_token_and_hash_round_trip(token_id: str, secret: str, digest: bytes) -> None:
    token = jt.JoinToken(token_id, secret)
    ca_hash = "sha256:" + digest.hex()
    for style in ("k10", "kubeadm"):
        assert jt.parse_join_string(jt.render_join_string(token, ca_hash, style)) == \
            (ca_hash, token)
