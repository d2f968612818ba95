"""A pod parsed once for scheduling (kube-scheduler's PodInfo).

Filtering a pod against a thousand nodes must not re-read its JSON a thousand times, so
everything the filters and scores need is pulled out here as integers, tuples and parsed
selectors. `static_key` names everything a node's *static* verdict depends on (node name,
selector, affinity, tolerations): pods stamped from one template share it, which lets a
NodeInfo remember that verdict across pods (see nodeinfo.NodeInfo.static_cache).
`class_key` adds requests, host ports and controller: two pods with the same one get the
same verdict and score on every node, which columns.Columns exploits.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from apiserver import selectors
from controllers.scheduling import affinity, resources, taints
from controllers.scheduling.resources import CPU, MEMORY, HostPort

TERMINAL_PHASES = ("Succeeded", "Failed")


class PodInfo:
    """The scheduling-relevant view of one pod; `pod` keeps the object itself."""

    __slots__ = (
        "pod", "key", "namespace", "name", "uid", "node_name", "requests", "cpu", "memory",
        "scalars", "nonzero_cpu", "nonzero_memory", "host_ports", "tolerations",
        "node_selector", "required", "preferred", "prefilter_names", "owner_uid", "deleting",
        "terminal", "priority", "preemption_never", "static_key", "class_key",
    )

    def __init__(self, pod: Mapping[str, Any]) -> None:
        meta = _mapping(pod.get("metadata"))
        spec = _mapping(pod.get("spec"))
        self.pod = pod
        self.namespace = str(meta.get("namespace") or "")
        self.name = str(meta.get("name") or "")
        self.uid = str(meta.get("uid") or "")
        # kube-scheduler keys pods by UID; fall back to namespace/name for hand-built pods.
        self.key = self.uid or f"{self.namespace}/{self.name}"
        self.node_name = str(spec.get("nodeName") or "")
        self.requests = resources.pod_requests(pod)
        self.cpu = self.requests.get(CPU, 0)
        self.memory = self.requests.get(MEMORY, 0)
        # Everything else NodeResourcesFit compares (ephemeral-storage, extended resources).
        self.scalars = {
            name: value for name, value in self.requests.items()
            if (name == resources.EPHEMERAL_STORAGE or resources.is_scalar(name)) and value
        }
        self.nonzero_cpu, self.nonzero_memory = resources.nonzero_requests(pod)
        self.host_ports: tuple[HostPort, ...] = resources.host_ports(pod)
        self.tolerations = taints.parse_tolerations(spec.get("tolerations"))
        node_selector = _mapping(spec.get("nodeSelector"))
        self.node_selector = selectors.selector_from_set({str(k): str(v) for k, v in node_selector.items()}) if node_selector else None
        self.required = affinity.required_terms(spec)
        self.preferred = affinity.preferred_terms(spec)
        self.prefilter_names = affinity.prefilter_node_names(spec)
        self.owner_uid = _controller_uid(meta)
        self.deleting = bool(meta.get("deletionTimestamp"))
        self.terminal = _mapping(pod.get("status")).get("phase") in TERMINAL_PHASES
        priority = spec.get("priority")
        self.priority = priority if isinstance(priority, int) else 0
        self.preemption_never = spec.get("preemptionPolicy") == "Never"
        self.static_key = sys.intern(repr((
            self.node_name, sorted((str(k), str(v)) for k, v in node_selector.items()), self.required, self.preferred,
            self.tolerations, self.prefilter_names and sorted(self.prefilter_names),
        )))
        fit = (self.cpu, self.memory, self.nonzero_cpu, self.nonzero_memory, sorted(self.scalars.items()), self.host_ports)
        self.class_key = sys.intern(f"{self.static_key}|{fit!r}|{self.owner_uid}")

    def __repr__(self) -> str:
        return f"PodInfo({self.namespace}/{self.name})"

    @property
    def best_effort(self) -> bool:
        """No cpu or memory requested at all: BalancedAllocation skips such pods."""
        return self.cpu == 0 and self.memory == 0


def pod_info(pod: Mapping[str, Any] | PodInfo) -> PodInfo:
    """Parse a pod, or pass an already parsed one through."""
    return pod if isinstance(pod, PodInfo) else PodInfo(pod)


def _controller_uid(meta: Mapping[str, Any]) -> str:
    """The uid of the controller ownerReference: pods that share it are spread apart."""
    refs = meta.get("ownerReferences")
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return str(ref.get("uid") or "")
    return ""


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
