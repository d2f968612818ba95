"""ServiceAccounts: a `default` account in every active namespace."""

from __future__ import annotations

from controllers import actions, serviceaccounts


def _ns(name: str, phase: str | None = "Active", deleting: bool = False) -> dict:
    ns: dict = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    if phase:
        ns["status"] = {"phase": phase}
    if deleting:
        ns["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return ns


def _sa(namespace: str, name: str = "default") -> dict:
    return {"metadata": {"name": name, "namespace": namespace}}


def test_creates_default_where_missing_in_active_namespaces() -> None:
    namespaces = [_ns("b"), _ns("a", phase=None), _ns("gone", phase="Terminating"),
                  _ns("going", deleting=True), _ns("has")]
    todo = serviceaccounts.reconcile(namespaces, [_sa("has"), _sa("b", "builder")])
    assert [(a.namespace, a.obj["metadata"]) for a in todo] == [
        ("a", {"name": "default", "namespace": "a"}),
        ("b", {"name": "default", "namespace": "b"})]
    assert all(isinstance(a, actions.Create) and a.resource == "serviceaccounts" for a in todo)


def test_nothing_to_do_when_every_namespace_has_one() -> None:
    assert serviceaccounts.reconcile([_ns("a")], [_sa("a")]) == []
