"""Informer event handlers: which controller keys a change to an object wakes up.

Handlers only queue keys (the workers read the objects back from the caches). The
routing is Kubernetes':

- a pod wakes its controller (the ReplicaSet or Job its controller reference names,
  and the Deployment above that ReplicaSet); an orphan pod wakes every ReplicaSet and
  Job of its namespace whose selector matches it (they may adopt it); and it wakes the
  Endpoints of every Service whose selector matches its old or new labels;
- a ReplicaSet wakes itself and its Deployment (or, orphaned, the Deployments whose
  selector matches it); Deployments, Jobs and Services wake their own key;
- nodes wake node lifecycle and, while they have no podCIDR, IPAM; node Leases wake
  their node (so that recovery is noticed at the renewal, not the next period);
- namespaces wake the ServiceAccount controller, accounts and token Secrets the token
  controller;
- deletions anywhere, and owners marked for foreground or orphan deletion, wake the
  garbage collector's sweep.

A controller that is not running (this instance does not lead) drops the keys; it
queues every key of its cache when it starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from apiserver import selectors
from apiserver.informer import Informer
from controllers import garbage, meta, ownership, sa_tokens
from controllers.harness import Controller
from controllers.informers import Informers, key_of
from controllers.sync_cluster import IPAM_KEY
from controllers.sync_garbage import GC_KEY

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class Router:
    """Registers the handlers on `informers` (before they start) and routes to `controllers`."""

    def __init__(self, informers: Informers, controllers: Mapping[str, Controller]) -> None:
        self.inf = informers
        self.controllers = controllers

    def enqueue(self, controller: str, key: str) -> None:
        target = self.controllers.get(controller)
        if target is not None:
            target.enqueue(key)

    def wire(self) -> None:
        inf = self.inf
        self._on(inf.pods, self.pod)
        self._on(inf.replicasets, self.replicaset)
        self._on(inf.deployments, lambda o: self.enqueue("deployment", key_of(o)))
        self._on(inf.jobs, lambda o: self.enqueue("job", key_of(o)))
        self._on(inf.services, lambda o: self.enqueue("endpoints", key_of(o)))
        self._on(inf.endpoints, lambda o: self.enqueue("endpoints", key_of(o)))
        self._on(inf.nodes, self.node)
        self._on(inf.leases, lambda o: self.enqueue("nodelifecycle", meta.name(o)))
        self._on(inf.namespaces, lambda o: self.enqueue("serviceaccount", meta.name(o)))
        self._on(inf.serviceaccounts, self.serviceaccount)
        self._on(inf.secrets, self.secret)
        for informer in inf.collected().values():
            informer.add_handlers(on_update=self._gc_update, on_delete=self._gc_delete)

    @staticmethod
    def _on(informer: Informer, route: Callable[[Obj], None]) -> None:
        """The same routing for add, update (old and new) and delete."""
        def on_update(old: Obj, new: Obj) -> None:
            route(old)
            route(new)

        informer.add_handlers(on_add=route, on_update=on_update, on_delete=route)

    # --- routes -----------------------------------------------------------------------

    def pod(self, pod: Obj) -> None:
        ns = meta.namespace(pod)
        ref = ownership.controller_of(pod)
        if ref is not None:
            if ref.get("kind") == "ReplicaSet":
                self.enqueue("replicaset", f"{ns}/{ref.get('name')}")
                rs = self.inf.replicasets.get(str(ref.get("name")), ns)
                self._deployment_of(rs)
            elif ref.get("kind") == "Job":
                self.enqueue("job", f"{ns}/{ref.get('name')}")
        elif not meta.is_deleting(pod):
            labels = meta.labels(pod)
            for rs in _selecting(Informers.in_namespace(self.inf.replicasets, ns), labels):
                self.enqueue("replicaset", key_of(rs))
            for job in _selecting(Informers.in_namespace(self.inf.jobs, ns), labels):
                self.enqueue("job", key_of(job))
        for service in Informers.in_namespace(self.inf.services, ns):
            selector = meta.spec(service).get("selector")
            if selector and selectors.selector_from_set(selector).matches(meta.labels(pod)):
                self.enqueue("endpoints", key_of(service))

    def replicaset(self, rs: Obj) -> None:
        self.enqueue("replicaset", key_of(rs))
        if ownership.controller_of(rs) is not None:
            self._deployment_of(rs)
        elif not meta.is_deleting(rs):
            ns = meta.namespace(rs)
            for d in _selecting(Informers.in_namespace(self.inf.deployments, ns),
                                meta.labels(rs)):
                self.enqueue("deployment", key_of(d))

    def _deployment_of(self, rs: Obj | None) -> None:
        ref = ownership.controller_of(rs) if rs is not None else None
        if rs is not None and ref is not None and ref.get("kind") == "Deployment":
            self.enqueue("deployment", f"{meta.namespace(rs)}/{ref.get('name')}")

    def node(self, node: Obj) -> None:
        self.enqueue("nodelifecycle", meta.name(node))
        if not meta.spec(node).get("podCIDR"):
            self.enqueue("nodeipam", IPAM_KEY)

    def serviceaccount(self, account: Obj) -> None:
        self.enqueue("serviceaccount-token", key_of(account))
        self.enqueue("serviceaccount", meta.namespace(account))

    def secret(self, secret: Obj) -> None:
        name = meta.annotations(secret).get(sa_tokens.NAME_ANNOTATION)
        if secret.get("type") == sa_tokens.TOKEN_TYPE and name:
            self.enqueue("serviceaccount-token", f"{meta.namespace(secret)}/{name}")

    def _gc_update(self, old: Obj, new: Obj) -> None:
        finalizers = meta.metadata(new).get("finalizers") or []
        deleting = meta.is_deleting(new) and (garbage.FOREGROUND_FINALIZER in finalizers
                                              or garbage.ORPHAN_FINALIZER in finalizers)
        refs_changed = garbage.owner_refs(old) != garbage.owner_refs(new)
        if deleting or refs_changed:
            self.enqueue("garbagecollector", GC_KEY)

    def _gc_delete(self, obj: Obj) -> None:
        self.enqueue("garbagecollector", GC_KEY)


def _selecting(owners: Iterable[Obj], labels: Mapping[str, str]) -> list[Obj]:
    """The owners whose spec.selector matches `labels` (a bad selector matches nothing)."""
    out = []
    for owner in owners:
        try:
            selector = selectors.label_selector_from_dict(meta.spec(owner).get("selector"))
        except ValueError:
            continue
        if not selector.empty() and selector.matches(labels):
            out.append(owner)
    return out
