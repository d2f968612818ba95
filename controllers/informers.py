"""The controller-manager's shared informers: one list+watch per resource, started once.

Every controller reads the same caches (Kubernetes' SharedInformerFactory), so a pod
is fetched and decoded once however many controllers care about it. They are started
when the process starts, leader or not, so that a standby that takes over has warm
caches and acts within moments instead of listing the cluster first.

Indexes: every namespaced cache by namespace (a reconcile reads one namespace); pods
by node (node lifecycle) and by controller uid; ReplicaSets by controller uid.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from apiserver.informer import Informer, ListWatcher
from controllers import meta, ownership

Obj = dict[str, Any]

NAMESPACE = "namespace"
NODE = "node"
OWNER = "owner"
NODE_LEASE_NAMESPACE = "kube-node-lease"


def _namespace(obj: Obj) -> str | None:
    return meta.namespace(obj) or None


def _node(obj: Obj) -> str | None:
    return str(meta.spec(obj).get("nodeName") or "") or None


def _owner(obj: Obj) -> str | None:
    ref = ownership.controller_of(obj)
    return str(ref.get("uid") or "") or None if ref else None


class Informers:
    """The caches every controller reads; `start()` once, `wait_synced()` before use."""

    def __init__(self, api: ListWatcher) -> None:
        by_ns = {NAMESPACE: _namespace}
        self.pods = Informer(api, "pods", indexers={NAMESPACE: _namespace, NODE: _node,
                                                    OWNER: _owner})
        self.replicasets = Informer(api, "replicasets.apps",
                                    indexers={NAMESPACE: _namespace, OWNER: _owner})
        self.deployments = Informer(api, "deployments.apps", indexers=by_ns)
        self.jobs = Informer(api, "jobs.batch", indexers=by_ns)
        self.services = Informer(api, "services", indexers=by_ns)
        self.endpoints = Informer(api, "endpoints", indexers=by_ns)
        self.nodes = Informer(api, "nodes")
        self.leases = Informer(api, "leases.coordination.k8s.io",
                               namespace=NODE_LEASE_NAMESPACE)
        self.namespaces = Informer(api, "namespaces")
        self.serviceaccounts = Informer(api, "serviceaccounts", indexers=by_ns)
        self.secrets = Informer(api, "secrets", indexers=by_ns)

    def all(self) -> dict[str, Informer]:
        return {name: value for name, value in vars(self).items()
                if isinstance(value, Informer)}

    def collected(self) -> dict[str, Informer]:
        """The caches the garbage collector sweeps (objects that may have owners)."""
        return {k: v for k, v in self.all().items()
                if k not in ("leases", "namespaces", "nodes")}

    async def start(self) -> None:
        for informer in self.all().values():
            await informer.start()

    async def wait_synced(self, timeout: float) -> None:
        await asyncio.gather(*(i.wait_synced(timeout) for i in self.all().values()))

    async def stop(self) -> None:
        for informer in self.all().values():
            await informer.stop()

    @staticmethod
    def in_namespace(informer: Informer, namespace: str) -> list[Obj]:
        return informer.by_index(NAMESPACE, namespace)

    @staticmethod
    def get(informer: Informer, key: str) -> Obj | None:
        """The cached object of a "namespace/name" (or "name") key."""
        namespace, _, name = key.rpartition("/")
        return informer.get(name, namespace or None)


def key_of(obj: Mapping[str, Any]) -> str:
    """client-go's MetaNamespaceKeyFunc."""
    ns, name = meta.namespace(obj), meta.name(obj)
    return f"{ns}/{name}" if ns else name


def split_key(key: str) -> tuple[str, str]:
    namespace, _, name = key.rpartition("/")
    return namespace, name
