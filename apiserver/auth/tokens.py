"""Authentication: who sent a request, from its bearer token or verified client cert.

Three credentials, tried in Kubernetes' order (client certificate, then bearer token):

- a client certificate the TLS layer verified against the cluster CA: CN is the user,
  each O a group (pki.issue_client_cert makes them);
- a static token from the token file, Kubernetes' `--token-auth-file` CSV format:
  `token,user,uid,"group1,group2"` (the groups column is optional);
- a service-account token: a JWT signed with the cluster's service-account key
  (jws.py), bound to an audience and a lifetime, shaped like Kubernetes' bound tokens
  so that `sub` and the `kubernetes.io` claim read the same.

The outcome follows Kubernetes' request authenticator: no credentials, or an
Authorization header that is not `Bearer <token>`, is the anonymous user; a bearer
token that nothing accepts is a failure (None: answer 401), never anonymous, so a
mistyped token is reported instead of silently losing its rights.

Bootstrap tokens (`[a-z0-9]{6}.[a-z0-9]{16}`, the join tokens) only have helpers here;
checking one needs its Secret from the store, which is the handler's job.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import string
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from apiserver.auth import jws
from apiserver.auth.user import (
    ANONYMOUS,
    BOOTSTRAPPERS,
    UserInfo,
    service_account_groups,
    service_account_username,
    with_authenticated,
)

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# Kubernetes defaults --api-audiences to the issuer; a token minted for another
# audience (a workload's own) is then refused by the apiserver.
DEFAULT_AUDIENCES: tuple[str, ...] = (DEFAULT_ISSUER,)
LEEWAY = 60.0  # seconds of clock skew tolerated on exp/nbf/iat, go-jose's default

SaVerifier = Callable[[str], UserInfo | None]


class TokenFileError(ValueError):
    pass


# --- static token file ------------------------------------------------------------------


def parse_token_file(text: str, source: str = "token file") -> dict[str, UserInfo]:
    """token -> user, as Kubernetes reads --token-auth-file.

    CSV with at least three columns; a fourth holds comma-separated groups (quote it).
    Blank lines are skipped, a record with an empty token is skipped, a later duplicate
    token wins. Users get `system:authenticated` added like every authenticated user.
    """
    users: dict[str, UserInfo] = {}
    for lineno, record in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not record:
            continue
        if len(record) < 3:
            raise TokenFileError(
                f"{source} line {lineno}: must have at least 3 columns "
                f"(token, user name, user uid), found {len(record)}"
            )
        token, name, uid = record[0], record[1], record[2]
        if not token:
            continue
        groups = tuple(record[3].split(",")) if len(record) >= 4 and record[3] else ()
        users[token] = with_authenticated(UserInfo(name, uid, groups))
    return users


def load_token_file(path: str | Path) -> dict[str, UserInfo]:
    return parse_token_file(Path(path).read_text(), str(path))


# --- service-account tokens -------------------------------------------------------------


def mint_service_account_token(
    key: jws.PrivateKey,
    namespace: str,
    name: str,
    uid: str,
    audience: str | Sequence[str] = DEFAULT_AUDIENCES,
    ttl: float = 3600.0,
    now: float | None = None,
    issuer: str = DEFAULT_ISSUER,
) -> str:
    """A bound service-account token: valid from `now` for `ttl` seconds, for `audience`."""
    if not namespace or not name or ":" in namespace or ":" in name:
        raise ValueError(f"bad service account {namespace!r}/{name!r}")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    issued = int(time.time() if now is None else now)
    audiences = [audience] if isinstance(audience, str) else list(audience)
    claims = {
        "iss": issuer,
        "sub": service_account_username(namespace, name),
        "aud": audiences,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(ttl),
        "jti": str(uuid.uuid4()),
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
    }
    return jws.sign(claims, key)


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _times_ok(claims: Mapping[str, Any], now: float, leeway: float) -> bool:
    exp = _number(claims, "exp")
    if exp is None or now > exp + leeway:
        return False
    for claim in ("nbf", "iat"):
        if claim in claims:
            t = _number(claims, claim)
            if t is None or now < t - leeway:
                return False
    return True


def verify(
    token: str,
    public_keys: Sequence[jws.PublicKey],
    audiences: Iterable[str],
    now: float,
    issuers: str | Iterable[str] = DEFAULT_ISSUER,
    leeway: float = LEEWAY,
) -> UserInfo | None:
    """The service account a token stands for, or None if any check fails.

    Checks, in order: signature by one of `public_keys`; `iss` among `issuers`; `exp`,
    `nbf`, `iat` against `now` (seconds since the epoch) within `leeway`; `aud`
    sharing an entry with `audiences`; and `sub` naming the same account as the
    `kubernetes.io` claim. Whether that ServiceAccount still exists (with that uid) is
    for the caller to check against the store when it cares.
    """
    claims = jws.verify(token, public_keys)
    if claims is None:
        return None
    wanted_issuers = {issuers} if isinstance(issuers, str) else set(issuers)
    iss = claims.get("iss")
    if not isinstance(iss, str) or iss not in wanted_issuers or not _times_ok(claims, now, leeway):
        return None
    aud = claims.get("aud")
    token_audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(token_audiences, list) or not set(audiences) & {
        a for a in token_audiences if isinstance(a, str)
    }:
        return None
    k8s = claims.get("kubernetes.io")
    if not isinstance(k8s, dict) or not isinstance(k8s.get("serviceaccount"), dict):
        return None
    namespace, sa = k8s.get("namespace"), k8s["serviceaccount"]
    name, uid = sa.get("name"), sa.get("uid", "")
    if not all(isinstance(v, str) for v in (namespace, name, uid)) or not namespace or not name:
        return None
    if claims.get("sub") != service_account_username(namespace, name):
        return None
    return UserInfo(
        service_account_username(namespace, name), uid, service_account_groups(namespace)
    )


@dataclass
class ServiceAccountVerifier:
    """`verify` with its configuration bound: the `sa_verifier` authenticate() takes."""

    public_keys: Sequence[jws.PublicKey]
    audiences: tuple[str, ...] = DEFAULT_AUDIENCES
    issuers: tuple[str, ...] = (DEFAULT_ISSUER,)
    clock: Callable[[], float] = field(default=time.time)

    def __call__(self, token: str) -> UserInfo | None:
        return verify(token, self.public_keys, self.audiences, self.clock(), self.issuers)


# --- client certificates ----------------------------------------------------------------

# What ssl.SSLSocket.getpeercert() reports as "subject": a tuple of RDNs, each a tuple of
# (attribute name, value) pairs, e.g. ((("organizationName", "g"),), (("commonName", "u"),)).
PeerCertSubject = Sequence[Sequence[tuple[str, str]]]


def user_from_cert_subject(subject: x509.Name | PeerCertSubject) -> UserInfo | None:
    """CN as the user name, every O as a group; None without a CN (Kubernetes' rule)."""
    if isinstance(subject, x509.Name):
        cns = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        orgs = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    else:
        pairs = [pair for rdn in subject for pair in rdn]
        cns = [v for k, v in pairs if k == "commonName"]
        orgs = [v for k, v in pairs if k == "organizationName"]
    if not cns or not cns[0]:
        return None
    return with_authenticated(UserInfo(cns[0], "", tuple(orgs)))


# --- the request authenticator ----------------------------------------------------------


def bearer_token(authorization_header: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>`; None for any other header or none."""
    parts = (authorization_header or "").strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


def authenticate(
    authorization_header: str | None,
    token_file_users: Mapping[str, UserInfo],
    sa_verifier: SaVerifier | None,
    client_cert_subject: x509.Name | PeerCertSubject | None = None,
    anonymous: bool = True,
) -> UserInfo | None:
    """The request's user; ANONYMOUS without credentials; None means answer 401.

    `client_cert_subject` must come only from a certificate the TLS layer verified
    against the cluster CA (getpeercert() is empty otherwise). A verified certificate
    wins over any token, as in Kubernetes where the x509 authenticator runs first.
    With `anonymous=False`, a request without credentials gets None too.
    """
    if client_cert_subject:
        user = user_from_cert_subject(client_cert_subject)
        if user is not None:
            return user
    token = bearer_token(authorization_header)
    if token is None:
        return ANONYMOUS if anonymous else None
    user = token_file_users.get(token)
    if user is not None:
        return with_authenticated(user)
    if sa_verifier is not None:
        return sa_verifier(token)
    return None


# --- bootstrap tokens -------------------------------------------------------------------

BOOTSTRAP_TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
BOOTSTRAP_USER_PREFIX = "system:bootstrap:"
_TOKEN_ALPHABET = string.ascii_lowercase + string.digits


def new_bootstrap_token() -> str:
    """`<id>.<secret>`: the id is public (it names the Secret), the secret is not."""
    pick = secrets.choice
    return (
        "".join(pick(_TOKEN_ALPHABET) for _ in range(6))
        + "."
        + "".join(pick(_TOKEN_ALPHABET) for _ in range(16))
    )


def parse_bootstrap_token(token: str) -> tuple[str, str] | None:
    """(token id, secret) of a well-formed bootstrap token, else None."""
    match = BOOTSTRAP_TOKEN_RE.match(token)
    return (match.group(1), match.group(2)) if match else None


def bootstrap_token_secret_name(token_id: str) -> str:
    return f"bootstrap-token-{token_id}"  # in kube-system, as kubeadm stores them


def bootstrap_user(token_id: str) -> UserInfo:
    return with_authenticated(UserInfo(f"{BOOTSTRAP_USER_PREFIX}{token_id}", "", (BOOTSTRAPPERS,)))
