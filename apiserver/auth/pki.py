"""The cluster's TLS material: one CA, the apiservers' serving certificate, client certs.

Keys are EC P-256: generated in milliseconds (RSA 2048 takes ~100 ms), accepted by every
Go TLS stack kubectl ships with, and the same curve signs service-account tokens
(ES256). Certificates are shaped so that Go's strict verifier accepts them:

- the serving certificate carries IP and DNS SANs (Go ignores the CN since 1.15, and
  kubectl then fails with "x509: certificate relies on legacy Common Name field"),
  the serverAuth extended key usage, and the CA's key identifier;
- client certificates say who the user is the way Kubernetes reads them: CN is the
  user name, each O is a group; extended key usage clientAuth.

Validity starts `BACKDATE` in the past so a freshly issued certificate also works on a
host whose clock lags a little. The file layout follows kubeadm (ca.crt, ca.key,
apiserver.crt, apiserver.key, sa.key, sa.pub); private keys are written 0600.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

CA_VALIDITY = dt.timedelta(days=3650)
CERT_VALIDITY = dt.timedelta(days=365)
BACKDATE = dt.timedelta(minutes=5)
RENEW_BEFORE = dt.timedelta(days=30)  # ensure_pki reissues a serving cert this close to expiry

# Names every serving certificate answers to besides the hosts it is asked for: the
# loopback (kubectl on a control-plane machine) and the in-cluster service names.
DEFAULT_SANS = (
    "127.0.0.1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)

_PEM_BLOCK = re.compile(rb"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----\s*", re.DOTALL)


class PkiError(Exception):
    """The PKI directory is in a state ensure_pki must not paper over."""


def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else dt.datetime.now(dt.UTC)


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _key_usage(ca: bool) -> x509.KeyUsage:
    # digitalSignature is all an EC key does in TLS; only the CA signs certs and CRLs.
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def create_ca(
    common_name: str = "kubelite-ca", now: dt.datetime | None = None
) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed CA valid for ten years, allowed to sign end-entity certs only."""
    key = new_private_key()
    start = _now(now) - BACKDATE
    name = _name(common_name)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def host_names(hosts: list[str]) -> list[x509.GeneralName]:
    """SAN entries for hosts: an IP address where one parses, else a DNS name."""
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):  # keep order, drop duplicates
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _issue(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
    now: dt.datetime | None,
    validity: dt.timedelta,
) -> tuple[x509.Certificate, PrivateKey]:
    key = new_private_key()
    start = _now(now) - BACKDATE
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(min(start + validity, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def issue_serving_cert(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    hosts: list[str],
    common_name: str = "kubelite-apiserver",
    now: dt.datetime | None = None,
    validity: dt.timedelta = CERT_VALIDITY,
) -> tuple[x509.Certificate, PrivateKey]:
    """A serverAuth certificate for `hosts` (IPs and DNS names), valid one year."""
    if not hosts:
        raise ValueError("a serving certificate needs at least one host")
    return _issue(
        ca_cert,
        ca_key,
        _name(common_name),
        ExtendedKeyUsageOID.SERVER_AUTH,
        host_names(hosts),
        now,
        validity,
    )


def issue_client_cert(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    user: str,
    groups: tuple[str, ...] | list[str] = (),
    now: dt.datetime | None = None,
    validity: dt.timedelta = CERT_VALIDITY,
) -> tuple[x509.Certificate, PrivateKey]:
    """A clientAuth certificate authenticating as `user` (CN) in `groups` (one O each)."""
    return _issue(
        ca_cert,
        ca_key,
        _name(user, tuple(groups)),
        ExtendedKeyUsageOID.CLIENT_AUTH,
        [],
        now,
        validity,
    )


# --- PEM in and out -------------------------------------------------------------------


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_pem(path: str | Path, data: bytes, private: bool = False) -> None:
    """Write atomically (temp file + rename); keys 0600 from the first byte, certs 0644."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _pem_bytes(source: str | bytes | Path) -> bytes:
    """PEM text given directly (bytes, or str starting with -----BEGIN) or read from a path."""
    if isinstance(source, bytes):
        return source
    if isinstance(source, str) and source.lstrip().startswith("-----BEGIN"):
        return source.encode()
    return Path(source).read_bytes()


def load_cert(source: str | bytes | Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(_pem_bytes(source))


def load_private_key(source: str | bytes | Path) -> PrivateKey:
    key = serialization.load_pem_private_key(_pem_bytes(source), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError(f"unsupported private key type {type(key).__name__}")
    return key


def load_public_keys(source: str | bytes | Path) -> list[PublicKey]:
    """Every public key in a PEM bundle: several during a signing-key rotation."""
    keys: list[PublicKey] = []
    for block in _PEM_BLOCK.findall(_pem_bytes(source)):
        key: PublicKeyTypes
        if b"CERTIFICATE" in block.split(b"\n", 1)[0]:
            key = x509.load_pem_x509_certificate(block).public_key()
        else:
            key = serialization.load_pem_public_key(block)
        if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise PkiError(f"unsupported public key type {type(key).__name__}")
        keys.append(key)
    return keys


# --- facts about certificates ---------------------------------------------------------


def ca_hash(ca: str | bytes | Path | x509.Certificate) -> str:
    """`sha256:<hex>` of the CA's SubjectPublicKeyInfo, as kubeadm's join pins it.

    Hashing the public key rather than the certificate keeps the pin valid when the CA
    certificate is re-issued for the same key.
    """
    cert = ca if isinstance(ca, x509.Certificate) else load_cert(ca)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def expires_in(cert: x509.Certificate, now: dt.datetime | None = None) -> dt.timedelta:
    """Time left until the certificate's notAfter (negative once expired)."""
    return cert.not_valid_after_utc - _now(now)


def signed_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def covers(cert: x509.Certificate, hosts: list[str]) -> bool:
    """True if every host is among the certificate's SANs (IPs compared as addresses)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    present = set(san)
    return all(name in present for name in host_names(hosts))


# --- the PKI directory ----------------------------------------------------------------


@dataclass(frozen=True)
class PkiPaths:
    """Where ensure_pki keeps each file (kubeadm's names, under one directory)."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    sa_key: Path  # service-account token signing key
    sa_pub: Path  # its public half, the verifying key for every apiserver

    @classmethod
    def under(cls, directory: str | Path) -> PkiPaths:
        d = Path(directory).resolve()
        return cls(
            d,
            d / "ca.crt",
            d / "ca.key",
            d / "apiserver.crt",
            d / "apiserver.key",
            d / "sa.key",
            d / "sa.pub",
        )


def ensure_pki(
    directory: str | Path,
    hosts: list[str],
    now: dt.datetime | None = None,
    renew_before: dt.timedelta = RENEW_BEFORE,
) -> PkiPaths:
    """Create what is missing under `directory`, reuse what exists; safe to run again.

    - CA: created only if neither ca.crt nor ca.key exists. A control-plane machine
      joining an existing cluster gets the cluster's CA copied in first and reuses it.
      ca.crt without ca.key (an externally held CA) is accepted as long as nothing
      needs signing; ca.key without ca.crt is an error.
    - Serving certificate: reissued when missing, not signed by the current CA, not
      covering every requested host (plus DEFAULT_SANS), or expiring within
      `renew_before`; otherwise left untouched, so a second run changes nothing.
    - Service-account key pair: created if sa.key is missing; sa.pub rewritten from it.
    """
    paths = PkiPaths.under(directory)
    paths.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    have_cert, have_key = paths.ca_cert.exists(), paths.ca_key.exists()
    if have_key and not have_cert:
        raise PkiError(f"{paths.ca_key} exists without {paths.ca_cert}")
    if not have_cert:
        ca_cert, ca_key = create_ca(now=now)
        write_pem(paths.ca_key, key_pem(ca_key), private=True)
        write_pem(paths.ca_cert, cert_pem(ca_cert))
        ca_key_or_none: PrivateKey | None = ca_key
    else:
        ca_cert = load_cert(paths.ca_cert)
        ca_key_or_none = load_private_key(paths.ca_key) if have_key else None

    wanted = [*hosts, *DEFAULT_SANS]
    if _serving_needs_issue(paths, ca_cert, wanted, now, renew_before):
        if ca_key_or_none is None:
            raise PkiError(
                f"{paths.serving_cert} must be (re)issued but the CA key {paths.ca_key} is absent"
            )
        cert, key = issue_serving_cert(ca_cert, ca_key_or_none, wanted, now=now)
        write_pem(paths.serving_key, key_pem(key), private=True)
        write_pem(paths.serving_cert, cert_pem(cert))

    if not paths.sa_key.exists():
        write_pem(paths.sa_key, key_pem(new_private_key()), private=True)
    sa_pub = public_key_pem(load_private_key(paths.sa_key).public_key())
    if not paths.sa_pub.exists() or paths.sa_pub.read_bytes() != sa_pub:
        write_pem(paths.sa_pub, sa_pub)
    return paths


def _serving_needs_issue(
    paths: PkiPaths,
    ca_cert: x509.Certificate,
    hosts: list[str],
    now: dt.datetime | None,
    renew_before: dt.timedelta,
) -> bool:
    if not (paths.serving_cert.exists() and paths.serving_key.exists()):
        return True
    cert = load_cert(paths.serving_cert)
    key = load_private_key(paths.serving_key)
    return (
        not signed_by(cert, ca_cert)
        or public_key_pem(cert.public_key()) != public_key_pem(key.public_key())
        or not covers(cert, hosts)
        or expires_in(cert, now) < renew_before
    )
