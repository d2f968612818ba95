"""Hand-built Node and Pod objects for the scheduler's unit tests, as the apiserver stores them."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def node(
    name: str,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    *,
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
    ready: str | None = "True",
    unschedulable: bool = False,
    extra: dict[str, str] | None = None,
) -> Obj:
    spec: Obj = {"taints": taints} if taints else {}
    if unschedulable:
        spec["unschedulable"] = True
    conditions = [{"type": "Ready", "status": ready}] if ready is not None else []
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}, "conditions": conditions},
    }


def container(name: str = "c", cpu: str | None = None, memory: str | None = None, **more: Any) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    requests.update(more.pop("requests", {}))
    c: Obj = {"name": name, "image": "busybox", "resources": {"requests": requests} if requests else {}}
    c.update(more)
    return c


def pod(
    name: str,
    cpu: str | None = None,
    memory: str | None = None,
    *,
    namespace: str = "default",
    containers: list[Obj] | None = None,
    init: list[Obj] | None = None,
    owner: str | None = None,
    node_name: str | None = None,
    tolerations: list[Obj] | None = None,
    node_selector: dict[str, str] | None = None,
    affinity: Obj | None = None,
    deleting: bool = False,
    phase: str | None = None,
    **spec_extra: Any,
) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                    "uid": f"uid-{owner}", "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    spec: Obj = {"containers": containers if containers is not None else [container(cpu=cpu, memory=memory)]}
    if init:
        spec["initContainers"] = init
    if node_name:
        spec["nodeName"] = node_name
    if tolerations is not None:
        spec["tolerations"] = tolerations
    if node_selector is not None:
        spec["nodeSelector"] = node_selector
    if affinity is not None:
        spec["affinity"] = affinity
    spec.update(spec_extra)
    obj: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def taint(key: str, value: str = "", effect: str = "NoSchedule") -> Obj:
    t: Obj = {"key": key, "effect": effect}
    if value:
        t["value"] = value
    return t


def required_affinity(*terms: Obj) -> Obj:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


def preferred_affinity(*weighted: tuple[int, Obj]) -> Obj:
    return {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": w, "preference": term} for w, term in weighted]}}


def expr(key: str, operator: str, *values: str) -> Obj:
    e: Obj = {"key": key, "operator": operator}
    if values:
        e["values"] = list(values)
    return e
