"""Cluster PKI: chains verify (cryptography's RFC 5280 verifier and a real TLS
handshake), SANs and usages are what Go's kubectl demands, files and idempotence."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from apiserver.auth import pki
from apiserver.auth.tokens import user_from_cert_subject

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ca() -> tuple[x509.Certificate, pki.PrivateKey]:
    return pki.create_ca(now=NOW)


def _store(ca_cert: x509.Certificate, when: dt.datetime = NOW) -> PolicyBuilder:
    return PolicyBuilder().store(Store([ca_cert])).time(when)


def test_ca_is_a_ten_year_signing_ca(ca) -> None:
    cert, key = ca
    assert cert.subject == cert.issuer
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert dt.timedelta(days=3649) < pki.expires_in(cert, NOW) <= pki.CA_VALIDITY
    assert pki.signed_by(cert, cert)
    assert isinstance(key.public_key(), type(cert.public_key()))


def test_serving_cert_has_sans_and_server_auth_and_verifies(ca) -> None:
    ca_cert, ca_key = ca
    cert, _ = pki.issue_serving_cert(ca_cert, ca_key, ["127.0.0.1", "localhost", "::1"], now=NOW)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert dt.timedelta(days=364) < pki.expires_in(cert, NOW) <= pki.CERT_VALIDITY
    for name in (x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))):
        chain = _store(ca_cert).build_server_verifier(name).verify(cert, [])
        assert chain[-1] == ca_cert
    with pytest.raises(VerificationError):
        _store(ca_cert).build_server_verifier(x509.DNSName("example.com")).verify(cert, [])
    with pytest.raises(VerificationError):  # expired a year and a bit later
        later = NOW + dt.timedelta(days=370)
        _store(ca_cert, later).build_server_verifier(x509.DNSName("localhost")).verify(cert, [])


def test_serving_cert_from_another_ca_does_not_verify(ca) -> None:
    other_cert, other_key = pki.create_ca(now=NOW)
    cert, _ = pki.issue_serving_cert(other_cert, other_key, ["localhost"], now=NOW)
    assert not pki.signed_by(cert, ca[0])
    with pytest.raises(VerificationError):
        _store(ca[0]).build_server_verifier(x509.DNSName("localhost")).verify(cert, [])


def test_client_cert_names_user_and_groups_and_verifies(ca) -> None:
    ca_cert, ca_key = ca
    cert, _ = pki.issue_client_cert(ca_cert, ca_key, "system:node:w1", ["system:nodes"], now=NOW)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:w1"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    # Kubernetes client certs carry no SAN; the web-PKI default policy requires one.
    ee = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
    )
    builder = _store(ca_cert).extension_policies(
        ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee
    )
    assert builder.build_client_verifier().verify(cert, []).chain[-1] == ca_cert
    user = user_from_cert_subject(cert.subject)
    assert user is not None and user.name == "system:node:w1"
    assert user.groups == ("system:nodes", "system:authenticated")


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> dict:
    """A real TLS handshake through memory buffers; returns the server's view of the peer."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    s = server.wrap_bio(s_in, s_out, server_side=True)
    c = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    done = {"s": False, "c": False}
    for _ in range(20):
        for name, end in (("c", c), ("s", s)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return s.getpeercert() or {}
    raise AssertionError("handshake did not finish")


def test_openssl_handshake_with_client_cert(tmp_path: Path) -> None:
    ca_cert, ca_key = pki.create_ca()  # valid now: OpenSSL checks against the real clock
    srv_cert, srv_key = pki.issue_serving_cert(ca_cert, ca_key, ["127.0.0.1", "localhost"])
    cli_cert, cli_key = pki.issue_client_cert(ca_cert, ca_key, "alice", ["devs", "ops"])
    for name, data, private in (
        ("srv.crt", pki.cert_pem(srv_cert), False),
        ("srv.key", pki.key_pem(srv_key), True),
        ("cli.crt", pki.cert_pem(cli_cert), False),
        ("cli.key", pki.key_pem(cli_key), True),
    ):
        pki.write_pem(tmp_path / name, data, private=private)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "srv.crt", tmp_path / "srv.key")
    server.load_verify_locations(cadata=pki.cert_pem(ca_cert).decode())
    server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.create_default_context(cadata=pki.cert_pem(ca_cert).decode())
    client.load_cert_chain(tmp_path / "cli.crt", tmp_path / "cli.key")
    peer = _handshake(server, client, "localhost")
    user = user_from_cert_subject(peer["subject"])
    assert user is not None and user.name == "alice"
    assert user.groups == ("devs", "ops", "system:authenticated")
    _handshake(server, client, "127.0.0.1")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server, client, "kubernetes.example")


def test_ca_hash_is_sha256_of_spki(ca) -> None:
    cert = ca[0]
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = "sha256:" + hashlib.sha256(spki).hexdigest()
    assert pki.ca_hash(pki.cert_pem(cert)) == expected == pki.ca_hash(cert)
    assert pki.ca_hash(pki.cert_pem(cert).decode()) == expected
    assert len(expected) == len("sha256:") + 64


def test_write_pem_modes_and_load(tmp_path: Path, ca) -> None:
    cert, key = ca
    pki.write_pem(tmp_path / "ca.key", pki.key_pem(key), private=True)
    pki.write_pem(tmp_path / "ca.crt", pki.cert_pem(cert))
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca.crt").stat().st_mode) == 0o644
    assert pki.load_cert(tmp_path / "ca.crt") == cert
    loaded = pki.load_private_key(tmp_path / "ca.key")
    assert pki.public_key_pem(loaded.public_key()) == pki.public_key_pem(key.public_key())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_load_public_keys_reads_a_bundle(tmp_path: Path) -> None:
    k1, k2 = pki.new_private_key(), pki.new_private_key()
    bundle = pki.public_key_pem(k1.public_key()) + pki.public_key_pem(k2.public_key())
    (tmp_path / "sa.pub").write_bytes(bundle)
    keys = pki.load_public_keys(tmp_path / "sa.pub")
    assert [pki.public_key_pem(k) for k in keys] == [
        pki.public_key_pem(k1.public_key()),
        pki.public_key_pem(k2.public_key()),
    ]


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_ensure_pki_creates_then_reuses(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    paths = pki.ensure_pki(d, ["10.0.0.5", "cp1.example"], now=NOW)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert {p.name for p in d.iterdir()} == {
        "ca.crt",
        "ca.key",
        "apiserver.crt",
        "apiserver.key",
        "sa.key",
        "sa.pub",
    }
    for key in (paths.ca_key, paths.serving_key, paths.sa_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    serving = pki.load_cert(paths.serving_cert)
    assert pki.covers(serving, ["10.0.0.5", "cp1.example", "127.0.0.1", "localhost"])
    assert pki.signed_by(serving, pki.load_cert(paths.ca_cert))
    before = _snapshot(d)
    assert pki.ensure_pki(d, ["10.0.0.5", "cp1.example"], now=NOW) == paths
    assert _snapshot(d) == before  # idempotent: nothing rewritten


def test_ensure_pki_reissues_serving_cert_only_when_needed(tmp_path: Path) -> None:
    paths = pki.ensure_pki(tmp_path, ["10.0.0.5"], now=NOW)
    ca_before = paths.ca_cert.read_bytes()
    sa_before = paths.sa_key.read_bytes()
    first = paths.serving_cert.read_bytes()
    pki.ensure_pki(tmp_path, ["10.0.0.5", "10.0.0.6"], now=NOW)  # a new host
    second = paths.serving_cert.read_bytes()
    assert second != first and pki.covers(pki.load_cert(second), ["10.0.0.5", "10.0.0.6"])
    pki.ensure_pki(tmp_path, ["10.0.0.5"], now=NOW + dt.timedelta(days=350))  # near expiry
    third = paths.serving_cert.read_bytes()
    assert third != second
    assert paths.ca_cert.read_bytes() == ca_before and paths.sa_key.read_bytes() == sa_before


def test_ensure_pki_with_external_ca(tmp_path: Path, ca) -> None:
    pki.write_pem(tmp_path / "ca.crt", pki.cert_pem(ca[0]))
    with pytest.raises(pki.PkiError, match="CA key"):
        pki.ensure_pki(tmp_path, ["localhost"], now=NOW)  # nothing can sign the serving cert
    cert, key = pki.issue_serving_cert(ca[0], ca[1], ["localhost", *pki.DEFAULT_SANS], now=NOW)
    pki.write_pem(tmp_path / "apiserver.crt", pki.cert_pem(cert))
    pki.write_pem(tmp_path / "apiserver.key", pki.key_pem(key), private=True)
    pki.ensure_pki(tmp_path, ["localhost"], now=NOW)  # a valid one exists: fine
    (tmp_path / "ca.crt").unlink()
    pki.write_pem(tmp_path / "ca.key", pki.key_pem(ca[1]), private=True)
    with pytest.raises(pki.PkiError, match="without"):
        pki.ensure_pki(tmp_path, ["localhost"], now=NOW)
