"""Join tokens: how a new machine proves it may join, and how it knows the cluster is real.

A join is safe in both directions, as with kubeadm's discovery and k3s's K10 tokens:

- the machine proves itself with a bootstrap token `<id>.<secret>` (6 and 16 of
  [a-z0-9]); the id is public (it names the token), the secret is not, and the token
  stops working when its time to live runs out;
- the machine checks the cluster before trusting it: the join string carries the
  sha256 of the cluster CA's public key (SubjectPublicKeyInfo, exactly kubeadm's
  `--discovery-token-ca-cert-hash`), so a man in the middle who serves another CA is
  refused (`verify_ca`).

Two spellings of one join string, parsed alike:

    K10<hex sha256 of the CA's SPKI>::<id>.<secret>
    --token <id>.<secret> --discovery-token-ca-cert-hash sha256:<hex>

(k3s hashes the CA bundle's bytes instead; hashing the key, as kubeadm does, keeps the
pin valid when the CA certificate is re-issued for the same key.)

The operator's side keeps a `TokenRecord` per token as JSON: id, a hash of the secret
(never the secret), expiry and usages, so a leaked token list grants nothing. The
apiserver's side is the Secret `kube-system/bootstrap-token-<id>` (`bootstrap_secret`),
which Kubernetes defines to hold the secret itself.

Everything here is pure: time is an argument, randomness comes from `secrets`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography import x509

from apiserver.auth import pki

ID_LENGTH = 6
SECRET_LENGTH = 16
DEFAULT_TTL = dt.timedelta(hours=24)  # kubeadm's default
USAGES = ("authentication", "signing")
DEFAULT_GROUPS = ("system:bootstrappers:kubelite:default-node-token",)
K10_PREFIX = "K10"
HASH_PREFIX = "sha256:"
_ALPHABET = string.ascii_lowercase + string.digits
_PART = re.compile(r"^[a-z0-9]+$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_KUBEADM_RE = re.compile(r"--(token|discovery-token-ca-cert-hash)[ =](\S+)")


class TokenError(ValueError):
    """A token or join string is malformed, unknown, expired or wrong; says which."""


class CaMismatch(TokenError):
    """The cluster presented a CA other than the one the join string pins."""


@dataclass(frozen=True)
class JoinToken:
    id: str
    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        _check_part("token id", self.id, ID_LENGTH)
        _check_part("token secret", self.secret, SECRET_LENGTH)

    def __str__(self) -> str:
        return f"{self.id}.{self.secret}"

    @classmethod
    def new(cls) -> JoinToken:
        pick = secrets.choice
        return cls("".join(pick(_ALPHABET) for _ in range(ID_LENGTH)),
                   "".join(pick(_ALPHABET) for _ in range(SECRET_LENGTH)))

    @classmethod
    def parse(cls, text: str) -> JoinToken:
        """`abcdef.0123456789abcdef` -> JoinToken, or TokenError saying what is wrong."""
        text = text.strip()
        token_id, dot, secret = text.partition(".")
        if not dot:
            raise TokenError(f"a join token looks like abcdef.0123456789abcdef "
                             f"(<6 chars>.<16 chars>); {_redact(text)!r} has no '.'")
        return cls(token_id, secret)


def _check_part(what: str, value: str, length: int) -> None:
    if len(value) != length:
        raise TokenError(f"{what} must be {length} characters of a-z and 0-9, "
                         f"got {len(value)}")
    if not _PART.match(value):
        raise TokenError(f"{what} may hold only lowercase letters a-z and digits 0-9")


def _redact(text: str) -> str:
    """Enough of a would-be token to recognise it in an error, without its secret."""
    return text if len(text) <= 8 else text[:6] + "…"


# --- join strings -----------------------------------------------------------------------


def _hex_of(ca_hash: str) -> str:
    digest = ca_hash.removeprefix(HASH_PREFIX).lower()
    if not _HEX64.match(digest):
        raise TokenError(f"a CA hash is sha256:<64 hex digits>, got {ca_hash!r}")
    return digest


def render_join_string(token: JoinToken, ca_hash: str, style: str = "k10") -> str:
    """The one string an operator hands to a joining machine (`ca_hash` as pki.ca_hash)."""
    digest = _hex_of(ca_hash)
    if style == "k10":
        return f"{K10_PREFIX}{digest}::{token}"
    if style == "kubeadm":
        return f"--token {token} --discovery-token-ca-cert-hash {HASH_PREFIX}{digest}"
    raise ValueError(f"unknown join string style {style!r} (k10 or kubeadm)")


def parse_join_string(text: str) -> tuple[str, JoinToken]:
    """(`sha256:<hex>`, token) from either spelling; TokenError when it is neither."""
    text = text.strip()
    if text.startswith(K10_PREFIX):
        digest, sep, token = text[len(K10_PREFIX):].partition("::")
        if not sep:
            raise TokenError("a K10 join string is K10<sha256 hex>::<id>.<secret>; "
                             "the '::' is missing")
        return HASH_PREFIX + _hex_of(digest), JoinToken.parse(token)
    found = dict(m.groups() for m in _KUBEADM_RE.finditer(text))
    if "token" in found and "discovery-token-ca-cert-hash" in found:
        ca_hash = found["discovery-token-ca-cert-hash"]
        if not ca_hash.startswith(HASH_PREFIX):
            raise TokenError("--discovery-token-ca-cert-hash must start with sha256:")
        return HASH_PREFIX + _hex_of(ca_hash), JoinToken.parse(found["token"])
    raise TokenError("not a join string: expected K10<hash>::<id>.<secret> or "
                     "--token <id>.<secret> --discovery-token-ca-cert-hash sha256:<hex>")


def verify_ca(join_string: str, ca: bytes | str | x509.Certificate) -> JoinToken:
    """The token, if the CA the cluster presents is the one the join string pins.

    Raises CaMismatch otherwise: the joining machine must then stop, since whoever
    answered is not the cluster the operator meant.
    """
    pinned, token = parse_join_string(join_string)
    cert = ca if isinstance(ca, x509.Certificate) else pki.load_cert(
        ca.encode() if isinstance(ca, str) else ca)
    actual = pki.ca_hash(cert)
    if not hmac.compare_digest(pinned, actual):
        raise CaMismatch(f"the cluster's CA has hash {actual}, but the join string pins "
                         f"{pinned}: refusing to join (wrong address, or someone in between)")
    return token


# --- the operator's records -------------------------------------------------------------


def secret_hash(secret: str) -> str:
    return HASH_PREFIX + hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class TokenRecord:
    """What the operator keeps of a token: never the secret itself."""

    id: str
    secret_hash: str
    expires_at: dt.datetime | None          # None: never expires (discouraged)
    usages: tuple[str, ...] = USAGES
    groups: tuple[str, ...] = DEFAULT_GROUPS
    description: str = ""

    def to_json(self) -> dict:
        return {"id": self.id, "secret_hash": self.secret_hash,
                "expires_at": None if self.expires_at is None else _rfc3339(self.expires_at),
                "usages": list(self.usages), "groups": list(self.groups),
                "description": self.description}

    @classmethod
    def from_json(cls, doc: dict) -> TokenRecord:
        try:
            expires = doc.get("expires_at")
            return cls(str(doc["id"]), str(doc["secret_hash"]),
                       None if expires is None else _parse_time(str(expires)),
                       tuple(doc.get("usages", USAGES)), tuple(doc.get("groups", DEFAULT_GROUPS)),
                       str(doc.get("description", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise TokenError(f"damaged token record {doc!r}: {exc}") from exc


def expires_at(now: dt.datetime, ttl: dt.timedelta | None = DEFAULT_TTL) -> dt.datetime | None:
    """When a token made at `now` stops working; a ttl of None or 0 means never."""
    if ttl is None or ttl == dt.timedelta(0):
        return None
    if ttl < dt.timedelta(0):
        raise ValueError("a token's time to live cannot be negative")
    return (now + ttl).replace(microsecond=0)  # what the JSON record keeps


def issue(now: dt.datetime, ttl: dt.timedelta | None = DEFAULT_TTL,
          usages: Sequence[str] = USAGES, description: str = "") -> tuple[JoinToken, TokenRecord]:
    """A fresh token and the record to keep of it."""
    unknown = set(usages) - set(USAGES)
    if unknown:
        raise ValueError(f"unknown token usages {sorted(unknown)} (known: {', '.join(USAGES)})")
    token = JoinToken.new()
    return token, TokenRecord(token.id, secret_hash(token.secret), expires_at(now, ttl),
                              tuple(usages), DEFAULT_GROUPS, description)


def valid(record: TokenRecord, now: dt.datetime) -> bool:
    """Still within its time to live."""
    return record.expires_at is None or now < record.expires_at


def check(records: Iterable[TokenRecord], token: JoinToken, now: dt.datetime,
          usage: str = "authentication") -> TokenRecord:
    """The record that admits `token` for `usage` at `now`; TokenError says why not."""
    for record in records:
        if record.id != token.id:
            continue
        if not hmac.compare_digest(record.secret_hash, secret_hash(token.secret)):
            raise TokenError(f"token {token.id}: wrong secret")
        if not valid(record, now):
            assert record.expires_at is not None
            raise TokenError(f"token {token.id} expired at {_rfc3339(record.expires_at)}; "
                             "create a new one (kubelite token create)")
        if usage not in record.usages:
            raise TokenError(f"token {token.id} may not be used for {usage}")
        return record
    raise TokenError(f"no token with id {token.id} (deleted, or made for another cluster)")


def prune(records: Iterable[TokenRecord], now: dt.datetime) -> list[TokenRecord]:
    """The records still valid at `now`."""
    return [r for r in records if valid(r, now)]


def dumps(records: Iterable[TokenRecord]) -> str:
    return json.dumps({"tokens": [r.to_json() for r in records]}, indent=2) + "\n"


def loads(text: str) -> list[TokenRecord]:
    try:
        doc = json.loads(text) if text.strip() else {"tokens": []}
    except ValueError as exc:
        raise TokenError(f"token file is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("tokens"), list):
        raise TokenError("token file must be {\"tokens\": [...]}")
    return [TokenRecord.from_json(d) for d in doc["tokens"]]


def bootstrap_secret(token: JoinToken, record: TokenRecord) -> dict:
    """The Secret through which the apiserver knows the token (Kubernetes' bootstrap
    token format: kube-system/bootstrap-token-<id>, type bootstrap.kubernetes.io/token)."""
    data = {"token-id": token.id, "token-secret": token.secret,
            "auth-extra-groups": ",".join(record.groups)}
    if record.description:
        data["description"] = record.description
    if record.expires_at is not None:
        data["expiration"] = _rfc3339(record.expires_at)
    for usage in record.usages:
        data[f"usage-bootstrap-{usage}"] = "true"
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": f"bootstrap-token-{token.id}", "namespace": "kube-system"},
            "type": "bootstrap.kubernetes.io/token", "stringData": data}


def _rfc3339(when: dt.datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("times must carry a time zone (use datetime.UTC)")
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone")
    return when
