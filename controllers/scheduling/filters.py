"""Filters: can this pod run on this node? kube-scheduler's default filter plugins.

Each filter returns None when the pod passes, else a `Rejection`: the reasons in
Kubernetes' words (NodeResourcesFit may give several, one per short resource, and each
counts in the failure message) and whether preemption could ever help. They run in the
default plugin order and the first rejection wins, as in the framework:

    NodeUnschedulable, NodeName, TaintToleration, (node Ready), NodeAffinity,
    NodePorts, NodeResourcesFit

Kubernetes has no Ready filter any more: the node lifecycle controller taints a node
that is not Ready (`not-ready`/`unreachable`) and TaintToleration rejects it. Until that
taint lands, `node_ready` applies the same rule to the condition itself.

The first five only read the pod's spec and the node object, so `static_check` runs them
together and NodeInfo caches the verdict per pod template until the node object
changes; the last two depend on the pods already on the node (`dynamic_check`).
"""

from __future__ import annotations

from typing import NamedTuple

from controllers.scheduling import affinity, taints
from controllers.scheduling.nodeinfo import NodeInfo
from controllers.scheduling.podinfo import PodInfo
from controllers.scheduling.resources import DEFAULT_HOST_IP

UNSCHEDULABLE = "node(s) were unschedulable"
NODE_NAME = "node(s) didn't match the requested node name"
NOT_READY = "node(s) were not ready"
AFFINITY = "node(s) didn't match Pod's node affinity/selector"
PORTS = "node(s) didn't have free ports for the requested pod ports"
TOO_MANY_PODS = "Too many pods"
PREFILTER_AFFINITY = "node(s) didn't satisfy plugin(s) [NodeAffinity]"
AFFINITY_CONFLICT = "pod affinity terms conflict"

_FILTERED_EFFECTS = (taints.NO_SCHEDULE, taints.NO_EXECUTE)
_UNSCHEDULABLE_TAINT = taints.Taint(taints.UNSCHEDULABLE_KEY, "", taints.NO_SCHEDULE)


class Rejection(NamedTuple):
    """Why a node was filtered out; `unresolvable` means evicting pods would not help."""

    reasons: tuple[str, ...]
    unresolvable: bool


def untolerated_taint_reason(taint: taints.Taint) -> str:
    """TaintToleration's reason, naming the first untolerated taint (Kubernetes 1.25-1.33).

    Kubernetes 1.34+ prints "node(s) had untolerated taint(s)" instead, to keep taint
    values out of pod events.
    """
    return f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}"


def node_unschedulable(pod: PodInfo, node: NodeInfo) -> Rejection | None:
    """A cordoned node takes only pods that tolerate the unschedulable:NoSchedule taint."""
    if node.unschedulable and not taints.tolerated(pod.tolerations, _UNSCHEDULABLE_TAINT):
        return Rejection((UNSCHEDULABLE,), True)
    return None


def node_name(pod: PodInfo, node: NodeInfo) -> Rejection | None:
    if pod.node_name and pod.node_name != node.name:
        return Rejection((NODE_NAME,), True)
    return None


def taint_toleration(pod: PodInfo, node: NodeInfo) -> Rejection | None:
    """NoSchedule and NoExecute taints must be tolerated; PreferNoSchedule only scores."""
    taint = taints.first_untolerated(node.taints, pod.tolerations, _FILTERED_EFFECTS)
    if taint is not None:
        return Rejection((untolerated_taint_reason(taint),), True)
    return None


def node_ready(pod: PodInfo, node: NodeInfo) -> Rejection | None:
    """A node whose Ready condition is not True, unless the pod tolerates what it implies.

    Ready=Unknown implies the unreachable:NoSchedule taint, anything else (False or no
    condition yet) not-ready:NoSchedule, which is what the controller would add.
    """
    if node.ready == "True":
        return None
    key = taints.UNREACHABLE_KEY if node.ready == "Unknown" else taints.NOT_READY_KEY
    if taints.tolerated(pod.tolerations, taints.Taint(key, "", taints.NO_SCHEDULE)):
        return None
    return Rejection((NOT_READY,), True)


def node_affinity(pod: PodInfo, node: NodeInfo) -> Rejection | None:
    if pod.node_selector is None and pod.required is None:
        return None
    if affinity.matches_required(pod.node_selector, pod.required, node.labels, node.name):
        return None
    return Rejection((AFFINITY,), True)


def node_ports(pod: PodInfo, node: NodeInfo) -> Rejection | None:
    """HostPortInfo.CheckConflict: 0.0.0.0 clashes with every address, per protocol."""
    for port in pod.host_ports:
        by_ip = node.used_ports.get((port.protocol, port.port))
        if by_ip and (port.ip == DEFAULT_HOST_IP or DEFAULT_HOST_IP in by_ip or port.ip in by_ip):
            return Rejection((PORTS,), False)
    return None


def node_resources_fit(pod: PodInfo, node: NodeInfo) -> Rejection | None:
    """Requests against allocatable minus what the node's pods already request.

    A resource the pod requests none of never fails (even on an over-committed node);
    the shortage is unresolvable when the pod asks for more than the whole node has.
    """
    reasons: list[str] = []
    unresolvable = False
    if node.free_pods < 1:
        reasons.append(TOO_MANY_PODS)
    if pod.cpu > 0 and pod.cpu > node.free_cpu:
        reasons.append("Insufficient cpu")
        unresolvable |= pod.cpu > node.allocatable_cpu
    if pod.memory > 0 and pod.memory > node.free_memory:
        reasons.append("Insufficient memory")
        unresolvable |= pod.memory > node.allocatable_memory
    for name, amount in pod.scalars.items():
        allocatable = node.allocatable_scalars.get(name, 0)
        if amount > allocatable - node.requested_scalars.get(name, 0):
            reasons.append(f"Insufficient {name}")
            unresolvable |= amount > allocatable
    return Rejection(tuple(reasons), unresolvable) if reasons else None


STATIC_FILTERS = (node_unschedulable, node_name, taint_toleration, node_ready, node_affinity)
DYNAMIC_FILTERS = (node_ports, node_resources_fit)


def static_check(pod: PodInfo, node: NodeInfo) -> Rejection | None:
    """The filters that depend only on the pod's spec and the node object, in order."""
    if (node.ready == "True" and not node.taints and not node.unschedulable and not pod.node_name
            and pod.node_selector is None and pod.required is None):
        return None  # an untainted, ready node and a pod that pins nothing: all pass
    for check in STATIC_FILTERS:
        rejection = check(pod, node)
        if rejection is not None:
            return rejection
    return None


def dynamic_check(pod: PodInfo, node: NodeInfo) -> Rejection | None:
    """The filters that depend on the pods already on the node."""
    return node_ports(pod, node) or node_resources_fit(pod, node)


def run_filters(pod: PodInfo, node: NodeInfo) -> Rejection | None:
    """Every filter in order; the first rejection wins."""
    return static_check(pod, node) or dynamic_check(pod, node)
