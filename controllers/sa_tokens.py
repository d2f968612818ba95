"""ServiceAccount tokens, the legacy way: a token Secret per account, referenced by it.

Kubernetes' tokens controller (pkg/controller/serviceaccount/tokens_controller.go,
before bound tokens replaced it) as a function of one ServiceAccount (None when it is
gone) and the Secrets of its namespace. For an account it makes sure that:

- a Secret of type `kubernetes.io/service-account-token` exists for it, annotated with
  `kubernetes.io/service-account.name` and `.uid`, holding `data.token` (a JWT the
  apiserver accepts: `mint(namespace, name, uid)`, signed with the service-account key),
  `data.ca.crt` and `data.namespace`; it is named `<account>-token-<suffix>`;
- the account lists it in `secrets` (a PUT at the account's resourceVersion, after the
  Secret's create, so a failed create leaves no dangling reference);
- a token Secret of this account without a token (made by a user, as Kubernetes lets
  one do) gets its data filled in; one whose token is close to expiry gets a new token
  (kubelite's tokens carry an `exp`; Kubernetes' legacy ones never expired);
- references to token Secrets that no longer exist are dropped.

Token Secrets of an account that is gone, or that was re-created under the same name
(another uid), are deleted with a uid precondition. The clock (`now`, epoch seconds),
the suffix and the minting are arguments, so the function stays pure.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from apiserver.auth import jws
from controllers import actions, meta

Obj = dict[str, Any]
Minter = Callable[[str, str, str], str]  # (namespace, account, uid) -> signed token

TOKEN_TYPE = "kubernetes.io/service-account-token"
NAME_ANNOTATION = "kubernetes.io/service-account.name"
UID_ANNOTATION = "kubernetes.io/service-account.uid"
RENEW_BEFORE = 30 * 24 * 3600.0  # re-mint a token this close to its exp


def reconcile(namespace: str, name: str, account: Obj | None, secrets: Iterable[Obj],
              ca_crt: bytes, mint: Minter, now: float,
              name_suffix: Callable[[], str]) -> list[actions.Action]:
    """The writes that give account `namespace/name` exactly one live token Secret."""
    tokens = [s for s in meta.same_namespace(secrets, namespace)
              if s.get("type") == TOKEN_TYPE and meta.annotations(s).get(NAME_ANNOTATION) == name
              and not meta.is_deleting(s)]
    uid = meta.uid(account) if account is not None else ""
    stale = [s for s in tokens if account is None or _secret_uid(s) not in ("", uid)]
    out: list[actions.Action] = [_delete(s) for s in stale]
    if account is None or meta.is_deleting(account):
        return out
    mine = [s for s in tokens if s not in stale]
    for secret in mine:
        if _needs_token(secret, now):
            out.append(actions.Update("secrets", "v1", namespace,
                                      _filled(secret, namespace, name, uid, ca_crt, mint)))
    if not mine:
        secret = token_secret(namespace, name, uid, f"{name}-token-{name_suffix()}", ca_crt, mint)
        out.append(actions.Create("secrets", "v1", namespace, secret))
        mine = [secret]
    existing = {meta.name(s) for s in meta.same_namespace(secrets, namespace)}
    wanted = _references(account, {meta.name(s) for s in mine}, existing)
    if wanted != (account.get("secrets") or []):
        updated = copy.deepcopy(account)
        updated["secrets"] = wanted
        out.append(actions.Update("serviceaccounts", "v1", namespace, updated))
    return out


def token_secret(namespace: str, name: str, uid: str, secret_name: str, ca_crt: bytes,
                 mint: Minter) -> Obj:
    """A complete token Secret for account `name` (uid `uid`)."""
    secret: Obj = {
        "apiVersion": "v1", "kind": "Secret", "type": TOKEN_TYPE,
        "metadata": {"name": secret_name, "namespace": namespace,
                     "annotations": {NAME_ANNOTATION: name, UID_ANNOTATION: uid}},
    }
    return _filled(secret, namespace, name, uid, ca_crt, mint)


def token_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT, unchecked (None: no readable exp)."""
    parsed = jws.parse(token)
    if parsed is None:
        return None
    exp = parsed[1].get("exp")
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def _filled(secret: Obj, namespace: str, name: str, uid: str, ca_crt: bytes,
            mint: Minter) -> Obj:
    out = copy.deepcopy(secret)
    out.setdefault("metadata", {}).setdefault("annotations", {})[UID_ANNOTATION] = uid
    data = dict(out.get("data") or {})
    data.update({"token": _b64(mint(namespace, name, uid).encode()),
                 "ca.crt": _b64(ca_crt), "namespace": _b64(namespace.encode())})
    out["data"] = data
    return out


def _needs_token(secret: Mapping[str, Any], now: float) -> bool:
    raw = (secret.get("data") or {}).get("token")
    if not raw:
        return True
    try:
        token = base64.b64decode(raw).decode()
    except (ValueError, UnicodeDecodeError):
        return True
    exp = token_expiry(token)
    return exp is not None and exp - now < RENEW_BEFORE


def _references(account: Mapping[str, Any], mine: set[str], existing: set[str]) -> list[Obj]:
    """The account's `secrets`: its other entries kept, dead token references dropped,
    its token Secrets added (sorted, so that the result is stable)."""
    prefix = f"{meta.name(account)}-token-"
    kept = [dict(r) for r in account.get("secrets") or []
            if isinstance(r, dict) and not (str(r.get("name", "")).startswith(prefix)
                                            and r.get("name") not in existing | mine)]
    names = {r.get("name") for r in kept}
    return kept + [{"name": n} for n in sorted(mine) if n not in names]


def _secret_uid(secret: Mapping[str, Any]) -> str:
    return meta.annotations(secret).get(UID_ANNOTATION, "")


def _delete(secret: Obj) -> actions.Delete:
    return actions.Delete("secrets", "v1", meta.namespace(secret), meta.name(secret),
                          uid_precondition=meta.uid(secret) or None)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
