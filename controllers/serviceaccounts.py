"""ServiceAccounts reconcile: every active namespace has a `default` ServiceAccount.

Kubernetes' serviceaccounts controller ensures a list of accounts (just `default`) in
each namespace whose phase is Active, and leaves Terminating namespaces alone, since a
create there is refused and the namespace controller is emptying it anyway. A deleted
`default` account comes back on the next reconcile, as in Kubernetes. Signed tokens for
the accounts are another controller's business.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from controllers import actions, meta

Obj = dict[str, Any]

ENSURED = ("default",)


def reconcile(namespaces: Iterable[Obj], service_accounts: Iterable[Obj]) -> list[actions.Action]:
    """Creates for the ensured accounts missing from active namespaces."""
    present = {(meta.namespace(sa), meta.name(sa)) for sa in service_accounts}
    out: list[actions.Action] = []
    for ns in sorted(namespaces, key=meta.name):
        if not is_active(ns):
            continue
        for name in ENSURED:
            if (meta.name(ns), name) not in present:
                out.append(actions.Create("serviceaccounts", "v1", meta.name(ns), {
                    "apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": meta.name(ns)},
                }))
    return out


def is_active(namespace: Mapping[str, Any]) -> bool:
    """Active (or not yet given a phase), and not being deleted."""
    phase = meta.status(namespace).get("phase") or "Active"
    return phase == "Active" and not meta.is_deleting(namespace)
