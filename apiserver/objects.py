"""Object life-cycle rules the apiserver applies itself (pure; time and IDs are inputs).

Create fills the server-owned metadata; update keeps what clients may not change and
bumps `generation` when the spec changes; status and scale subresources touch only
their part. Kubernetes does the same in its registry strategies.
"""

from __future__ import annotations

import copy
import secrets
from datetime import UTC, datetime

from apiserver.registry import Resource

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' generateName alphabet

# Kinds whose spec changes bump metadata.generation (everything with a spec/status split).
_GENERATION_KINDS = {"Deployment", "ReplicaSet", "Job", "Pod", "Service", "Node", "Namespace"}


def timestamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generated_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))


def prepare_create(
    resource: Resource, obj: dict, namespace: str | None, now: datetime, uid: str
) -> dict:
    """The object as it will be stored: kind, apiVersion and server-set metadata."""
    obj = copy.deepcopy(obj)
    obj["apiVersion"] = resource.api_version
    obj["kind"] = resource.kind
    meta = obj.setdefault("metadata", {}) or {}
    obj["metadata"] = meta
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = generated_name(meta["generateName"])
    if resource.namespaced:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    meta["uid"] = uid
    meta["creationTimestamp"] = timestamp(now)
    meta.pop("resourceVersion", None)
    meta.pop("deletionTimestamp", None)
    meta.pop("deletionGracePeriodSeconds", None)
    meta.pop("selfLink", None)
    meta.pop("managedFields", None)
    if resource.kind in _GENERATION_KINDS:
        meta["generation"] = 1
    for key in ("labels", "annotations"):
        if meta.get(key) is None:
            meta.pop(key, None)
    # Nodes keep the status they are created with (the kubelet registers its capacity
    # that way); every other kind with a status subresource starts without one.
    if resource.kind in ("Deployment", "ReplicaSet", "Job") or (
            "status" in resource.subresources and resource.kind != "Node"):
        obj["status"] = {} if resource.kind != "Namespace" else obj.get("status", {})
    if resource.kind == "Pod":
        obj["status"] = {"phase": "Pending"}  # the pod strategy's PrepareForCreate
    return obj


def prepare_update(resource: Resource, new: dict, old: dict, subresource: str = "") -> dict:
    """The object to store on update: server-owned metadata comes from `old`."""
    new = copy.deepcopy(new)
    new["apiVersion"] = resource.api_version
    new["kind"] = resource.kind
    meta = new.setdefault("metadata", {}) or {}
    new["metadata"] = meta
    old_meta = old.get("metadata", {})
    for key in (
        "uid",
        "creationTimestamp",
        "namespace",
        "name",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ):
        if key in old_meta:
            meta[key] = old_meta[key]
        else:
            meta.pop(key, None)
    meta.pop("managedFields", None)
    if subresource == "status":
        result = copy.deepcopy(old)
        result["status"] = new.get("status", {})
        return result
    if "status" in resource.subresources:
        new["status"] = copy.deepcopy(old.get("status", {}))
    if resource.kind == "Namespace":
        new.setdefault("spec", {})["finalizers"] = copy.deepcopy(
            old.get("spec", {}).get("finalizers", []))
    if resource.kind == "Service":
        old_spec, new_spec = old.get("spec", {}), new.setdefault("spec", {})
        for key in ("clusterIP", "clusterIPs"):
            if key in old_spec and not new_spec.get(key):
                new_spec[key] = copy.deepcopy(old_spec[key])
    if resource.kind in _GENERATION_KINDS and new.get("spec") != old.get("spec"):
        meta["generation"] = int(old_meta.get("generation", 1)) + 1
    return new


def to_scale(obj: dict, selector: str) -> dict:
    """The autoscaling/v1 Scale view of a Deployment or ReplicaSet."""
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
        "status": {"replicas": obj.get("status", {}).get("replicas", 0), "selector": selector},
    }


def apply_scale(obj: dict, scale: dict) -> dict:
    obj = copy.deepcopy(obj)
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    obj.setdefault("spec", {})["replicas"] = replicas
    meta = obj["metadata"]
    meta["generation"] = int(meta.get("generation", 1)) + 1
    return obj


def set_pod_scheduled(pod: dict, now: datetime) -> None:
    """PodScheduled=True on a pod being bound (podutil.UpdatePodCondition: the transition
    time moves only if the status changes)."""
    conditions = pod.setdefault("status", {}).setdefault("conditions", [])
    scheduled = {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": timestamp(now)}
    for i, condition in enumerate(conditions):
        if condition.get("type") == "PodScheduled":
            if condition.get("status") == "True" and condition.get("lastTransitionTime"):
                scheduled["lastTransitionTime"] = condition["lastTransitionTime"]
            conditions[i] = scheduled
            return
    conditions.append(scheduled)


def mark_deleting(obj: dict, now: datetime, grace_seconds: int) -> dict:
    """Graceful deletion: the object stays, with a deletionTimestamp, until finalized."""
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    if "deletionTimestamp" not in meta:
        meta["deletionTimestamp"] = timestamp(now)
        meta["deletionGracePeriodSeconds"] = grace_seconds
    if obj.get("kind") == "Namespace":
        obj.setdefault("status", {})["phase"] = "Terminating"
    return obj
