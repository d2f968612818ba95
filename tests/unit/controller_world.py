"""An in-memory stand-in for the apiserver that executes controller actions, for unit tests.

It follows the runner's contract (controllers/actions.py): groups in order, stop at the
first failing group. Writes behave as the apiserver's do where the controllers depend
on it: resourceVersion preconditions on PUT, uid preconditions on DELETE, patches
through apiserver.patches (the real strategic-merge code), at most one controller
ownerReference, generation bumped on spec changes, status kept apart from spec.
Builders for the objects the tests start from live here too.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from apiserver import patches
from controllers import actions, meta

Obj = dict[str, Any]
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


class Conflict(Exception):
    """What a 409/422 from the apiserver would be."""


class World:
    """Objects by (resource, namespace, name); `now` advances only when a test says so."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.events: list[Obj] = []
        self._rv = itertools.count(1)
        self._uid = itertools.count(1)

    # --- reading ----------------------------------------------------------------------

    def list(self, resource: str, namespace: str | None = None) -> list[Obj]:
        """Copies, as an informer's would be: a controller that edits its input fails tests."""
        return [_copy(o) for (r, ns, _), o in sorted(self.objects.items())
                if r == resource and (namespace is None or ns == namespace)]

    def get(self, resource: str, namespace: str, name: str) -> Obj:
        return _copy(self.objects[(resource, namespace, name)])

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    # --- writing ----------------------------------------------------------------------

    def add(self, resource: str, obj: Obj) -> Obj:
        """Store `obj` as a client's create would."""
        return self._create(resource, meta.namespace(obj), obj)

    def apply(self, todo: Iterable[actions.Action]) -> str | None:
        """Run `todo` as the runner does; the error text of the failed group, or None."""
        for group in actions.batches(todo):
            failed = None
            for action in group:
                try:
                    self._apply(action)
                except Conflict as err:
                    failed = failed or str(err)
            if failed:
                return failed
        return None

    def _apply(self, action: actions.Action) -> None:
        if isinstance(action, actions.Create):
            self._create(action.resource, action.namespace or "", action.obj)
        elif isinstance(action, actions.Update | actions.UpdateStatus):
            self._update(action)
        elif isinstance(action, actions.Patch):
            self._patch(action)
        elif isinstance(action, actions.Delete):
            key = (action.resource, action.namespace or "", action.name)
            current = self.objects.get(key)
            if current is None:
                raise Conflict(f"{action.name} not found")
            if action.uid_precondition and meta.uid(current) != action.uid_precondition:
                raise Conflict(f"uid precondition failed for {action.name}")
            del self.objects[key]
        elif isinstance(action, actions.Emit):
            self.events.append(action.event)

    def _create(self, resource: str, namespace: str, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        if not md.get("name"):
            md["name"] = md.get("generateName", "x-") + f"g{next(self._uid)}"
        key = (resource, namespace, md["name"])
        if key in self.objects:
            raise Conflict(f"{md['name']} already exists")
        md["namespace"] = namespace
        md.setdefault("uid", f"uid-{next(self._uid):04d}")
        md.setdefault("creationTimestamp", meta.format_time(self.now))
        md["resourceVersion"] = str(next(self._rv))
        md.setdefault("generation", 1)
        self._check(obj)
        self.objects[key] = obj
        return copy.deepcopy(obj)

    def _update(self, action: actions.Update | actions.UpdateStatus) -> None:
        key = (action.resource, action.namespace or "", meta.name(action.obj))
        current = self.objects.get(key)
        if current is None:
            raise Conflict("not found")
        if meta.metadata(action.obj).get("resourceVersion") != meta.metadata(current).get("resourceVersion"):
            raise Conflict(f"{meta.name(current)}: the object has been modified")
        new = copy.deepcopy(current)
        if isinstance(action, actions.UpdateStatus):
            new["status"] = copy.deepcopy(action.obj.get("status") or {})
        else:
            new["spec"] = copy.deepcopy(action.obj.get("spec"))
            for k in ("labels", "annotations", "ownerReferences", "finalizers"):
                new["metadata"].pop(k, None)
                if meta.metadata(action.obj).get(k) is not None:
                    new["metadata"][k] = copy.deepcopy(meta.metadata(action.obj)[k])
            if new.get("spec") != current.get("spec"):
                new["metadata"]["generation"] = meta.generation(current) + 1
        self._store(key, new)

    def _patch(self, action: actions.Patch) -> None:
        key = (action.resource, action.namespace or "", action.name)
        current = self.objects.get(key)
        if current is None:
            raise Conflict(f"{action.name} not found")
        try:
            new = patches.apply_patch(action.patch_type, copy.deepcopy(current),
                                      json.dumps(action.patch).encode(), current.get("kind", ""))
        except patches.PatchError as err:
            raise Conflict(err.message) from None
        new["metadata"]["uid"] = meta.uid(current)
        if not action.subresource and new.get("spec") != current.get("spec"):
            new["metadata"]["generation"] = meta.generation(current) + 1
        self._store(key, new)

    def _store(self, key: tuple[str, str, str], obj: Obj) -> None:
        self._check(obj)
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        if meta.is_deleting(obj) and not obj["metadata"].get("finalizers"):
            del self.objects[key]
            return
        self.objects[key] = obj

    @staticmethod
    def _check(obj: Obj) -> None:
        refs = meta.metadata(obj).get("ownerReferences") or []
        if sum(1 for r in refs if r.get("controller")) > 1:
            raise Conflict("Only one reference can have Controller set to true")


def _copy(obj: Obj) -> Obj:
    """A deep copy (through JSON: much faster than copy.deepcopy for these trees)."""
    copied: Obj = orjson.loads(orjson.dumps(obj))
    return copied


# --- builders -------------------------------------------------------------------------


def pod_template(labels: dict[str, str], image: str = "nginx:1") -> Obj:
    return {"metadata": {"labels": dict(labels)},
            "spec": {"containers": [{"name": "main", "image": image}],
                     "restartPolicy": "Always"}}


def make_pod(name: str, labels: dict[str, str] | None = None, *, namespace: str = "ns",
             uid: str | None = None, node: str = "", phase: str = "Pending",
             ready_since: datetime | None = None, created: datetime = T0,
             owner: Obj | None = None, owner_kind: str = "ReplicaSet", restarts: int = 0,
             ip: str = "") -> Obj:
    pod: Obj = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": uid or f"uid-{name}",
                     "labels": dict(labels or {}), "creationTimestamp": meta.format_time(created),
                     "resourceVersion": "1"},
        "spec": {"containers": [{"name": "main", "image": "nginx:1"}]},
        "status": {"phase": phase},
    }
    if node:
        pod["spec"]["nodeName"] = node
    if owner is not None:
        pod["metadata"]["ownerReferences"] = [{
            "apiVersion": owner.get("apiVersion", "apps/v1"), "kind": owner_kind,
            "name": meta.name(owner), "uid": meta.uid(owner), "controller": True,
            "blockOwnerDeletion": True}]
    if ready_since is not None:
        set_ready(pod, ready_since)
    if restarts:
        pod["status"]["containerStatuses"] = [{"name": "main", "restartCount": restarts}]
    if ip:
        pod["status"]["podIP"] = ip
    return pod


def set_ready(pod: Obj, since: datetime, ready: bool = True) -> Obj:
    """Mark `pod` Running and Ready (or not ready) since `since`, in place."""
    st = pod.setdefault("status", {})
    st["phase"] = "Running"
    st["conditions"] = [{"type": "Ready", "status": "True" if ready else "False",
                         "lastTransitionTime": meta.format_time(since)}]
    return pod


def make_rs(name: str, replicas: int, labels: dict[str, str], *, namespace: str = "ns",
            uid: str | None = None, min_ready: int = 0) -> Obj:
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": namespace, "uid": uid or f"uid-{name}",
                     "generation": 1, "resourceVersion": "1", "labels": dict(labels),
                     "creationTimestamp": meta.format_time(T0)},
        "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                 "selector": {"matchLabels": dict(labels)}, "template": pod_template(labels)},
        "status": {},
    }


def make_deployment(name: str = "web", replicas: int = 3, *, surge: object = "25%",
                    unavailable: object = "25%", strategy: str = "RollingUpdate",
                    image: str = "nginx:1", min_ready: int = 0, history: int = 10,
                    deadline: int | None = 600, namespace: str = "ns") -> Obj:
    labels = {"app": name}
    spec: Obj = {
        "replicas": replicas, "selector": {"matchLabels": dict(labels)},
        "template": pod_template(labels, image), "minReadySeconds": min_ready,
        "revisionHistoryLimit": history, "strategy": {"type": strategy},
    }
    if deadline is not None:
        spec["progressDeadlineSeconds"] = deadline
    if strategy == "RollingUpdate":
        spec["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                         "generation": 1, "resourceVersion": "1",
                         "creationTimestamp": meta.format_time(T0)},
            "spec": spec, "status": {}}


def suffixes(prefix: str = "p") -> Any:
    """A name_suffix callable: p1, p2, ... (deterministic where Kubernetes is random)."""
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter)}"


# --- driving controllers --------------------------------------------------------------


def sync_deployment(world: World, name: str = "web") -> list[actions.Action]:
    """One deployment reconcile against `world`, applied (it must not fail)."""
    from controllers import deployment

    todo, _ = deployment.reconcile(world.get("deployments", "ns", name),
                                   world.list("replicasets", "ns"), world.list("pods", "ns"),
                                   world.now)
    error = world.apply(todo)
    assert error is None, error
    return todo


def sync_replicasets(world: World, names: Any) -> None:
    """One reconcile of every ReplicaSet, applied."""
    from controllers import replicaset

    for rs in world.list("replicasets", "ns"):
        todo, _ = replicaset.reconcile(rs, world.list("pods", "ns"), world.now, names)
        error = world.apply(todo)
        assert error is None, error


def make_all_ready(world: World, node: str = "n1") -> None:
    """Bind every pod and mark it Running and Ready as of now."""
    for key, pod in world.objects.items():
        if key[0] == "pods" and pod.get("status", {}).get("phase") != "Running":
            pod.setdefault("spec", {})["nodeName"] = node
            set_ready(pod, world.now)


def edit(world: World, resource: str, name: str, change: Any) -> Obj:
    """Apply `change(obj)` as a client's spec update would (generation bumped)."""
    obj = world.objects[(resource, "ns", name)]
    before = copy.deepcopy(obj.get("spec"))
    change(obj)
    if obj.get("spec") != before:
        obj["metadata"]["generation"] = meta.generation(obj) + 1
    obj["metadata"]["resourceVersion"] = str(next(world._rv))
    return obj
