"""NodeInfo: a node plus running totals of the pods on it (kube-scheduler's NodeInfo).

Filters compare a pod against these totals with integer arithmetic instead of walking
the node's pods: requested cpu/memory/extended resources (what fit checks), the same with
the 100m/200Mi non-zero defaults (what LeastAllocated scores), pods count, host ports in
use, and how many live pods each controller owns here (what spreading scores).

Which pods count: every pod bound to the node (spec.nodeName) that has not finished
(phase Succeeded/Failed pods are invisible, as kube-scheduler's informer filters them).
A pod with a deletionTimestamp still holds its resources and ports until it is gone, but
no longer counts for spreading. Pods the scheduler assumed onto the node before the
binding was observed are added and removed with the same `add_pod`/`remove_pod`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from controllers.scheduling import resources, taints
from controllers.scheduling.podinfo import PodInfo, pod_info
from controllers.scheduling.resources import CPU, MEMORY, PODS, HostPort

STATIC_CACHE_LIMIT = 1024
# One counter for all NodeInfos (kube-scheduler's nextGeneration): a reader that saw every
# generation up to G knows exactly the nodes with a higher one changed since.
_GENERATIONS = itertools.count(1)


def current_generation() -> int:
    """A generation every later change will exceed (and no earlier one did)."""
    return next(_GENERATIONS)


class NodeInfo:
    """One node and the aggregates of its pods; mutate only through the methods."""

    __slots__ = (
        "node", "name", "labels", "taints", "unschedulable", "ready", "allocatable_cpu",
        "allocatable_memory", "allowed_pods", "allocatable_scalars", "requested_cpu",
        "requested_memory", "requested_scalars", "nonzero_cpu", "nonzero_memory", "pods",
        "used_ports", "owner_counts", "free_cpu", "free_memory", "free_pods", "static_cache",
        "generation",
    )

    def __init__(self, node: Mapping[str, Any], pods: Iterable[Mapping[str, Any] | PodInfo] = ()) -> None:
        self.pods: dict[str, PodInfo] = {}
        self.requested_cpu = self.requested_memory = 0
        self.nonzero_cpu = self.nonzero_memory = 0
        self.requested_scalars: dict[str, int] = {}
        # (protocol, port) -> {hostIP: pods using it}; see filters.node_ports for the rule.
        self.used_ports: dict[tuple[str, int], dict[str, int]] = {}
        self.owner_counts: dict[str, int] = {}
        self.set_node(node)
        for pod in pods:
            self.add_pod(pod)

    def __repr__(self) -> str:
        return f"NodeInfo({self.name}, pods={len(self.pods)})"

    def set_node(self, node: Mapping[str, Any]) -> None:
        """Take a new version of the node object; its pods stay."""
        meta = _mapping(node.get("metadata"))
        spec = _mapping(node.get("spec"))
        status = _mapping(node.get("status"))
        self.node = node
        self.name = str(meta.get("name") or "")
        labels = _mapping(meta.get("labels"))
        self.labels = {str(k): str(v) for k, v in labels.items()}
        self.taints = taints.parse_taints(spec.get("taints"))
        self.unschedulable = spec.get("unschedulable") is True
        self.ready = _ready_status(status.get("conditions"))
        allocatable = resources.resource_list(_mapping(status.get("allocatable")))
        self.allocatable_cpu = allocatable.get(CPU, 0)
        self.allocatable_memory = allocatable.get(MEMORY, 0)
        self.allowed_pods = allocatable.get(PODS, 0)
        self.allocatable_scalars = {
            k: v for k, v in allocatable.items() if k == resources.EPHEMERAL_STORAGE or resources.is_scalar(k)
        }
        # Verdicts of the static filters per pod template (PodInfo.static_key); they read only
        # the node object, so they hold until the next set_node.
        self.static_cache: dict[str, Any] = {}
        self._refresh_free()

    def add_pod(self, pod: Mapping[str, Any] | PodInfo) -> PodInfo | None:
        """Count a pod bound (or assumed) here; a finished pod or a repeated key is ignored."""
        info = pod_info(pod)
        if info.terminal or info.key in self.pods:
            return None
        self.pods[info.key] = info
        self._update(info, 1)
        return info

    def remove_pod(self, pod: Mapping[str, Any] | PodInfo | str) -> PodInfo | None:
        """Stop counting a pod (by object or key); returns what was removed, if anything."""
        key = pod if isinstance(pod, str) else pod_info(pod).key
        info = self.pods.pop(key, None)
        if info is not None:
            self._update(info, -1)
        return info

    @property
    def pod_count(self) -> int:
        return len(self.pods)

    def _update(self, info: PodInfo, sign: int) -> None:
        self.requested_cpu += sign * info.cpu
        self.requested_memory += sign * info.memory
        for name, value in info.scalars.items():
            self.requested_scalars[name] = self.requested_scalars.get(name, 0) + sign * value
        self.nonzero_cpu += sign * info.nonzero_cpu
        self.nonzero_memory += sign * info.nonzero_memory
        for port in info.host_ports:
            self._update_port(port, sign)
        if info.owner_uid and not info.deleting:
            count = self.owner_counts.get(info.owner_uid, 0) + sign
            if count:
                self.owner_counts[info.owner_uid] = count
            else:
                self.owner_counts.pop(info.owner_uid, None)
        self._refresh_free()

    def _update_port(self, port: HostPort, sign: int) -> None:
        by_ip = self.used_ports.setdefault((port.protocol, port.port), {})
        count = by_ip.get(port.ip, 0) + sign
        if count > 0:
            by_ip[port.ip] = count
        else:
            by_ip.pop(port.ip, None)
            if not by_ip:
                del self.used_ports[(port.protocol, port.port)]

    def _refresh_free(self) -> None:
        self.generation = next(_GENERATIONS)
        # What is left, precomputed so the common fit check is three integer comparisons.
        self.free_cpu = self.allocatable_cpu - self.requested_cpu
        self.free_memory = self.allocatable_memory - self.requested_memory
        self.free_pods = self.allowed_pods - len(self.pods)


def _ready_status(conditions: Any) -> str | None:
    """The status of the Ready condition ("True", "False", "Unknown"), None when absent."""
    for condition in conditions if isinstance(conditions, list) else []:
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return str(condition.get("status"))
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
