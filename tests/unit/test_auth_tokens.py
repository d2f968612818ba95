"""Authentication: JWS round trips and tampering, service-account token checks, the
token file format, and the request authenticator's anonymous/401 distinction."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from apiserver.auth import jws, pki, tokens
from apiserver.auth.tokens import ANONYMOUS, UserInfo

NOW = 2_000_000_000.0
AUD = tokens.DEFAULT_AUDIENCES


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return pki.new_private_key()


def _mint(key, **kw) -> str:
    args: dict[str, Any] = {
        "namespace": "prod",
        "name": "builder",
        "uid": "u-1",
        "ttl": 600.0,
        "now": NOW,
    }
    args.update(kw)
    return tokens.mint_service_account_token(key, **args)


def _verify(token: str, key, **kw) -> UserInfo | None:
    args: dict[str, Any] = {"audiences": AUD, "now": NOW + 1}
    args.update(kw)
    return tokens.verify(token, [key.public_key()], **args)


def _reencode(token: str, part: int, change) -> str:
    parts = token.split(".")
    obj = json.loads(jws.b64url_decode(parts[part]))
    change(obj)
    parts[part] = jws.b64url_encode(json.dumps(obj).encode())
    return ".".join(parts)


# --- JWS ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make", [pki.new_private_key, lambda: rsa.generate_private_key(65537, 2048)]
)
def test_jws_round_trip_es256_and_rs256(make) -> None:
    k = make()
    token = jws.sign({"a": 1, "b": ["x"]}, k)
    header = json.loads(jws.b64url_decode(token.split(".")[0]))
    assert header == {"alg": jws.algorithm(k), "kid": jws.key_id(k.public_key()), "typ": "JWT"}
    assert "=" not in token and re.fullmatch(r"[A-Za-z0-9_.-]+", token)
    assert jws.verify(token, [k.public_key()]) == {"a": 1, "b": ["x"]}


def test_jws_es256_signature_is_raw_r_s(key) -> None:
    sig = jws.b64url_decode(jws.sign({}, key).split(".")[2])
    assert len(sig) == 64  # RFC 7518: r || s, not DER


def test_jws_rejects_tampering_and_wrong_keys(key) -> None:
    token = jws.sign({"sub": "a"}, key)
    head, payload, sig = token.split(".")
    forged = jws.b64url_encode(b'{"sub":"b"}')
    assert jws.verify(f"{head}.{forged}.{sig}", [key.public_key()]) is None
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    assert jws.verify(f"{head}.{payload}.{flipped}", [key.public_key()]) is None
    assert jws.verify(token, [pki.new_private_key().public_key()]) is None
    assert jws.verify(token, []) is None
    # the right key among others, with a kid that matches none of them, still works
    others = [pki.new_private_key().public_key() for _ in range(2)]
    assert jws.verify(token, [*others, key.public_key()]) == {"sub": "a"}


def test_jws_refuses_alg_none_and_confusion(key) -> None:
    token = jws.sign({"sub": "a"}, key)
    none_token = _reencode(token, 0, lambda h: h.update(alg="none"))
    assert jws.verify(none_token.rsplit(".", 1)[0] + ".", [key.public_key()]) is None
    rs = _reencode(token, 0, lambda h: h.update(alg="RS256"))
    assert jws.verify(rs, [key.public_key()]) is None
    crit = _reencode(token, 0, lambda h: h.update(crit=["exp"]))
    assert jws.verify(crit, [key.public_key()]) is None


B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
SIGNED = {"sub": "a", "n": 1}


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_jws_any_single_character_change_is_rejected(data, key) -> None:
    token = jws.sign(SIGNED, key)
    i = data.draw(st.integers(0, len(token) - 1), label="position")
    if token[i] == ".":
        return
    c = data.draw(st.sampled_from(B64URL_ALPHABET.replace(token[i], "")), label="character")
    assert jws.verify(token[:i] + c + token[i + 1 :], [key.public_key()]) is None


@given(st.binary(max_size=100))
def test_b64url_round_trip_is_canonical(raw: bytes) -> None:
    text = jws.b64url_encode(raw)
    assert jws.b64url_decode(text) == raw
    if text and len(text) % 4 != 0:  # a last character with unused low bits
        last = B64URL_ALPHABET.index(text[-1])
        with pytest.raises(ValueError):
            jws.b64url_decode(text[:-1] + B64URL_ALPHABET[last | 1])
        assert last & 1 == 0


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c.d", "!!!.e30.AA", "e30.e30.A", "W10.e30.AA", "x" * 20000],
)
def test_jws_malformed_tokens_are_none(token: str, key) -> None:
    assert jws.verify(token, [key.public_key()]) is None


def test_jws_duplicate_json_keys_refused() -> None:
    head = jws.b64url_encode(b'{"alg":"ES256","alg":"none"}')
    assert jws.parse(f"{head}.e30.AA") is None


# --- service-account tokens ------------------------------------------------------------


def test_service_account_token_claims_and_user(key) -> None:
    token = _mint(key)
    claims = jws.verify(token, [key.public_key()])
    assert claims is not None
    assert claims["iss"] == tokens.DEFAULT_ISSUER and claims["aud"] == list(AUD)
    assert claims["sub"] == "system:serviceaccount:prod:builder"
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (NOW, NOW, NOW + 600)
    assert claims["kubernetes.io"] == {
        "namespace": "prod",
        "serviceaccount": {"name": "builder", "uid": "u-1"},
    }
    assert _verify(token, key) == UserInfo(
        "system:serviceaccount:prod:builder",
        "u-1",
        ("system:serviceaccounts", "system:serviceaccounts:prod", "system:authenticated"),
    )


def test_expiry_and_not_before_with_leeway(key) -> None:
    token = _mint(key)
    assert _verify(token, key, now=NOW + 600 + tokens.LEEWAY) is not None
    assert _verify(token, key, now=NOW + 600 + tokens.LEEWAY + 1) is None
    assert _verify(token, key, now=NOW - tokens.LEEWAY) is not None
    assert _verify(token, key, now=NOW - tokens.LEEWAY - 1) is None  # not yet valid
    assert _verify(token, key, now=NOW + 601, leeway=0) is None


def test_audience_and_issuer(key) -> None:
    token = _mint(key, audience="vault")
    assert _verify(token, key) is None
    assert _verify(token, key, audiences=["vault", "other"]) is not None
    assert _verify(_mint(key, issuer="https://evil"), key) is None
    other_issuer = _mint(key, issuer="https://kubelite.test")
    assert _verify(other_issuer, key, issuers=["https://kubelite.test"]) is not None


def test_re_signed_claims_must_agree(key) -> None:
    claims = jws.verify(_mint(key), [key.public_key()])
    assert claims is not None
    claims["sub"] = "system:serviceaccount:kube-system:admin"  # sub disagrees with kubernetes.io
    assert _verify(jws.sign(claims, key), key) is None
    del claims["exp"]
    claims["sub"] = "system:serviceaccount:prod:builder"
    assert _verify(jws.sign(claims, key), key) is None  # exp is required
    claims["exp"] = True
    assert _verify(jws.sign(claims, key), key) is None  # and numeric
    claims["exp"], claims["iss"] = NOW + 600, [tokens.DEFAULT_ISSUER]
    assert _verify(jws.sign(claims, key), key) is None  # iss is a string, not a list
    claims["iss"] = tokens.DEFAULT_ISSUER
    assert _verify(jws.sign(claims, key), key) is not None


def test_verifier_binds_configuration(key) -> None:
    verifier = tokens.ServiceAccountVerifier([key.public_key()], clock=lambda: NOW)
    assert verifier(_mint(key)) is not None
    assert verifier(_mint(key, now=NOW - 4000)) is None


def test_mint_refuses_bad_names(key) -> None:
    with pytest.raises(ValueError):
        _mint(key, name="a:b")
    with pytest.raises(ValueError):
        _mint(key, namespace="")
    with pytest.raises(ValueError):
        _mint(key, ttl=0)


# --- token file ------------------------------------------------------------------------

TOKEN_FILE = """\
s3cret,admin,uid-1,"system:masters,ops"
t0ken,bob,uid-2
,ghost,uid-3

node-tok,system:node:w1,uid-4,system:nodes
t0ken,bobby,uid-5,devs
"""


def test_token_file_format() -> None:
    users = tokens.parse_token_file(TOKEN_FILE)
    assert users == {
        "s3cret": UserInfo("admin", "uid-1", ("system:masters", "ops", "system:authenticated")),
        "t0ken": UserInfo("bobby", "uid-5", ("devs", "system:authenticated")),  # later wins
        "node-tok": UserInfo("system:node:w1", "uid-4", ("system:nodes", "system:authenticated")),
    }


def test_token_file_needs_three_columns(tmp_path) -> None:
    (tmp_path / "t.csv").write_text("tok,user\n")
    with pytest.raises(tokens.TokenFileError, match="line 1.*at least 3 columns"):
        tokens.load_token_file(tmp_path / "t.csv")


# --- the request authenticator ----------------------------------------------------------


def test_authenticate(key) -> None:
    users = tokens.parse_token_file(TOKEN_FILE)
    verifier = tokens.ServiceAccountVerifier([key.public_key()], clock=lambda: NOW)
    auth = tokens.authenticate
    assert auth("Bearer s3cret", users, verifier) == users["s3cret"]
    assert auth("bearer s3cret", users, verifier) == users["s3cret"]  # scheme case-insensitive
    sa = auth(f"Bearer {_mint(key)}", users, verifier)
    assert sa is not None and sa.name == "system:serviceaccount:prod:builder"
    assert auth("Bearer nope", users, verifier) is None  # 401, not anonymous
    assert auth("Bearer nope", users, None) is None
    assert auth(None, users, verifier) == ANONYMOUS
    assert auth("Basic YTpi", users, verifier) == ANONYMOUS  # not a bearer header
    assert auth("Bearer ", users, verifier) == ANONYMOUS  # empty token
    assert auth(None, users, verifier, anonymous=False) is None


def test_authenticate_client_cert_first() -> None:
    subject = ((("organizationName", "system:masters"),), (("commonName", "root"),))
    user = tokens.authenticate("Bearer nope", {}, None, client_cert_subject=subject)
    assert user == UserInfo("root", "", ("system:masters", "system:authenticated"))
    no_cn = ((("organizationName", "x"),),)
    assert tokens.authenticate(None, {}, None, client_cert_subject=no_cn) == ANONYMOUS


def test_bootstrap_tokens() -> None:
    token = tokens.new_bootstrap_token()
    assert re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", token)
    assert tokens.new_bootstrap_token() != token
    parsed = tokens.parse_bootstrap_token(token)
    assert parsed is not None
    token_id, secret = parsed
    assert token == f"{token_id}.{secret}"
    assert tokens.parse_bootstrap_token("ABCDEF.0123456789abcdef") is None
    assert tokens.parse_bootstrap_token("abcdef.0123456789abcde") is None
    assert tokens.bootstrap_token_secret_name("abcdef") == "bootstrap-token-abcdef"
    assert tokens.bootstrap_user("abcdef") == UserInfo(
        "system:bootstrap:abcdef", "", ("system:bootstrappers", "system:authenticated")
    )


def test_the_apiserver_accepts_what_mint_makes_by_default() -> None:
    from apiserver import main

    args = main.parser().parse_args(["--store-endpoints", "http://127.0.0.1:2379"])
    assert args.service_account_issuer == tokens.DEFAULT_ISSUER
    assert tuple(args.api_audiences.split(",")) == tokens.DEFAULT_AUDIENCES
