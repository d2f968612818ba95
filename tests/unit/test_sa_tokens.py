"""Legacy ServiceAccount token Secrets: one per account, referenced, accepted by the apiserver."""

from __future__ import annotations

import base64
import time
from typing import Any

from apiserver.auth import pki, tokens
from controllers import actions, sa_tokens
from tests.unit.controller_world import suffixes

Obj = dict[str, Any]
KEY = pki.new_private_key()
NOW = time.time()


def mint(namespace: str, name: str, uid: str) -> str:
    return tokens.mint_service_account_token(KEY, namespace, name, uid, ttl=365 * 86400, now=NOW)


def account(name: str = "default", uid: str = "sa-1", secrets: list[Obj] | None = None) -> Obj:
    obj: Obj = {"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": "ns", "uid": uid,
                             "resourceVersion": "5"}}
    if secrets is not None:
        obj["secrets"] = secrets
    return obj


def token_secret(name: str, sa: str = "default", uid: str = "sa-1", **extra: Any) -> Obj:
    secret = sa_tokens.token_secret("ns", sa, uid, name, b"CA", mint)
    secret["metadata"].update(uid=f"uid-{name}", resourceVersion="3")
    secret.update(extra)
    return secret


def _reconcile(sa: Obj | None, secrets: list[Obj], now: float = NOW) -> list[actions.Action]:
    return sa_tokens.reconcile("ns", "default", sa, secrets, b"CA", mint, now, suffixes("x"))


def test_a_new_account_gets_a_token_secret_then_a_reference() -> None:
    todo = _reconcile(account(), [])
    assert [type(a).__name__ for a in todo] == ["Create", "Update"]
    create, update = todo
    assert isinstance(create, actions.Create) and isinstance(update, actions.Update)
    secret = create.obj
    assert secret["metadata"]["name"] == "default-token-x1"
    assert secret["type"] == sa_tokens.TOKEN_TYPE
    assert secret["metadata"]["annotations"] == {sa_tokens.NAME_ANNOTATION: "default",
                                                 sa_tokens.UID_ANNOTATION: "sa-1"}
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert data["ca.crt"] == b"CA" and data["namespace"] == b"ns"
    user = tokens.verify(data["token"].decode(), [KEY.public_key()],
                         tokens.DEFAULT_AUDIENCES, NOW)
    assert user is not None and user.name == "system:serviceaccount:ns:default"
    assert update.obj["secrets"] == [{"name": "default-token-x1"}]


def test_a_referenced_token_needs_nothing() -> None:
    assert _reconcile(account(secrets=[{"name": "default-token-a"}]),
                      [token_secret("default-token-a")]) == []


def test_an_unreferenced_token_is_referenced_not_duplicated() -> None:
    todo = _reconcile(account(secrets=[{"name": "pull-secret"}]), [token_secret("default-token-a")])
    assert len(todo) == 1 and isinstance(todo[0], actions.Update)
    assert todo[0].obj["secrets"] == [{"name": "pull-secret"}, {"name": "default-token-a"}]


def test_a_dead_reference_is_dropped_and_replaced() -> None:
    todo = _reconcile(account(secrets=[{"name": "default-token-gone"}]), [])
    assert isinstance(todo[-1], actions.Update)
    assert todo[-1].obj["secrets"] == [{"name": "default-token-x1"}]


def test_tokens_of_a_gone_or_recreated_account_are_deleted() -> None:
    old = token_secret("default-token-a", uid="sa-old")
    todo = _reconcile(None, [old])
    assert todo == [actions.Delete("secrets", "v1", "ns", "default-token-a",
                                   uid_precondition="uid-default-token-a")]
    todo = _reconcile(account(), [old])
    assert isinstance(todo[0], actions.Delete) and isinstance(todo[1], actions.Create)


def test_a_token_secret_without_data_is_filled_and_an_old_one_renewed() -> None:
    empty = token_secret("default-token-a")
    del empty["data"]
    empty["metadata"]["annotations"].pop(sa_tokens.UID_ANNOTATION)
    sa = account(secrets=[{"name": "default-token-a"}])
    todo = _reconcile(sa, [empty])
    assert len(todo) == 1 and isinstance(todo[0], actions.Update)
    assert todo[0].obj["data"]["token"]
    assert todo[0].obj["metadata"]["annotations"][sa_tokens.UID_ANNOTATION] == "sa-1"
    late = NOW + 360 * 86400  # within RENEW_BEFORE of the token's exp
    todo = _reconcile(sa, [token_secret("default-token-a")], now=late)
    assert len(todo) == 1 and isinstance(todo[0], actions.Update)


def test_token_expiry_reads_exp() -> None:
    assert sa_tokens.token_expiry(mint("ns", "a", "u")) == int(NOW) + 365 * 86400
    assert sa_tokens.token_expiry("not-a-token") is None
