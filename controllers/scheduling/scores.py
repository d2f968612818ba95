"""Scores: which feasible node is best? kube-scheduler's default score plugins, 0-100 each.

    plugin                         weight  formula (integer arithmetic as in Go)
    NodeResourcesFit LeastAllocated   1    per resource (alloc - req) * 100 // alloc, averaged
    NodeResourcesBalancedAllocation   1    (1 - |cpu fraction - memory fraction| / 2) * 100
    spreading by controller owner     2    100 * (max - count) / max over feasible nodes
    NodeAffinity preferred terms      2    sum of matching weights, scaled so the best is 100
    TaintToleration                   3    100 - untolerated PreferNoSchedule count, scaled

LeastAllocated counts requests with the non-zero defaults (100m / 200Mi per container
that asks for nothing), BalancedAllocation the real requests, and skips best-effort
pods entirely (upstream issue 129138). Spreading is SelectorSpread's formula on the pods
that share this pod's controller ownerReference, live ones only, at PodTopologySpread's
weight (the plugin that replaced it). A node's total is the weighted sum.
"""

from __future__ import annotations

from collections.abc import Sequence

from controllers.scheduling import affinity, taints
from controllers.scheduling.nodeinfo import NodeInfo
from controllers.scheduling.podinfo import PodInfo

MAX_NODE_SCORE = 100
LEAST_ALLOCATED_WEIGHT = 1
BALANCED_ALLOCATION_WEIGHT = 1
SPREAD_WEIGHT = 2
NODE_AFFINITY_WEIGHT = 2
TAINT_TOLERATION_WEIGHT = 3


def least_requested(requested: int, capacity: int) -> int:
    """leastRequestedScore: the free share of one resource, 0 when over capacity."""
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def least_allocated(pod: PodInfo, node: NodeInfo) -> int:
    """cpu and memory at equal weights; a resource the node has none of is left out."""
    total = weights = 0
    if node.allocatable_cpu:
        total += least_requested(node.nonzero_cpu + pod.nonzero_cpu, node.allocatable_cpu)
        weights += 1
    if node.allocatable_memory:
        total += least_requested(node.nonzero_memory + pod.nonzero_memory, node.allocatable_memory)
        weights += 1
    return total // weights if weights else 0


def balanced_allocation(pod: PodInfo, node: NodeInfo) -> int:
    """How evenly cpu and memory would be used: the standard deviation of the two fractions."""
    if pod.best_effort:
        return 0
    fractions = []
    if node.allocatable_cpu:
        fractions.append(min(1.0, (node.requested_cpu + pod.cpu) / node.allocatable_cpu))
    if node.allocatable_memory:
        fractions.append(min(1.0, (node.requested_memory + pod.memory) / node.allocatable_memory))
    std = abs(fractions[0] - fractions[1]) / 2 if len(fractions) == 2 else 0.0
    return int((1 - std) * MAX_NODE_SCORE)


def resource_score(pod: PodInfo, node: NodeInfo) -> int:
    """Both resource scores, weighted: the same as the two functions above, in one pass.

    The hot path of every decision, hence written out for the usual node with both cpu
    and memory; tests check it against least_allocated and balanced_allocation.
    """
    cpu, memory = node.allocatable_cpu, node.allocatable_memory
    if not (cpu and memory):
        return (LEAST_ALLOCATED_WEIGHT * least_allocated(pod, node)
                + BALANCED_ALLOCATION_WEIGHT * balanced_allocation(pod, node))
    used_cpu = node.nonzero_cpu + pod.nonzero_cpu
    used_memory = node.nonzero_memory + pod.nonzero_memory
    least = (
        ((cpu - used_cpu) * MAX_NODE_SCORE // cpu if used_cpu <= cpu else 0)
        + ((memory - used_memory) * MAX_NODE_SCORE // memory if used_memory <= memory else 0)
    ) // 2
    if pod.cpu == 0 and pod.memory == 0:
        return LEAST_ALLOCATED_WEIGHT * least
    cpu_fraction = (node.requested_cpu + pod.cpu) / cpu
    memory_fraction = (node.requested_memory + pod.memory) / memory
    if cpu_fraction > 1.0:
        cpu_fraction = 1.0
    if memory_fraction > 1.0:
        memory_fraction = 1.0
    std = abs(cpu_fraction - memory_fraction) / 2
    return LEAST_ALLOCATED_WEIGHT * least + BALANCED_ALLOCATION_WEIGHT * int((1 - std) * MAX_NODE_SCORE)


def spread_count(pod: PodInfo, node: NodeInfo) -> int:
    """Live pods on the node with the same controller (0 for a pod without one)."""
    return node.owner_counts.get(pod.owner_uid, 0) if pod.owner_uid else 0


def node_affinity_raw(pod: PodInfo, node: NodeInfo) -> int:
    return affinity.preferred_score(pod.preferred, node.labels, node.name) if pod.preferred else 0


def taint_toleration_raw(pod: PodInfo, node: NodeInfo) -> int:
    """Untolerated PreferNoSchedule taints: fewer is better."""
    return taints.count_untolerated(node.taints, pod.tolerations, taints.PREFER_NO_SCHEDULE)


def scaled(raw: int, top: int, reverse: bool = False) -> int:
    """One node's share of helper.DefaultNormalizeScore, given the highest raw score."""
    if top == 0:
        return MAX_NODE_SCORE if reverse else 0
    score = MAX_NODE_SCORE * raw // top
    return MAX_NODE_SCORE - score if reverse else score


def normalize(raw: Sequence[int], reverse: bool = False) -> list[int]:
    """helper.DefaultNormalizeScore: scale so the highest is 100 (reversed: lowest is 100)."""
    top = max(raw, default=0)
    return [scaled(r, top, reverse) for r in raw]


def spread_score(count: int, top: int) -> int:
    """SelectorSpread.NormalizeScore for one node: fewer pods of the same owner is better."""
    if top == 0:
        return MAX_NODE_SCORE
    return int(MAX_NODE_SCORE * ((top - count) / top))


def normalize_spread(counts: Sequence[int]) -> list[int]:
    top = max(counts, default=0)
    return [spread_score(c, top) for c in counts]


def total_scores(pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
    """The weighted sum of every score for each feasible node, in the order given.

    Normalization runs over exactly these nodes, so pass the feasible ones only.
    """
    spread = normalize_spread([spread_count(pod, n) for n in nodes]) if pod.owner_uid else [0] * len(nodes)
    preferred = normalize([node_affinity_raw(pod, n) for n in nodes]) if pod.preferred else [0] * len(nodes)
    tainted = normalize([taint_toleration_raw(pod, n) for n in nodes], reverse=True)
    return [
        LEAST_ALLOCATED_WEIGHT * least_allocated(pod, n)
        + BALANCED_ALLOCATION_WEIGHT * balanced_allocation(pod, n)
        + SPREAD_WEIGHT * spread[i]
        + NODE_AFFINITY_WEIGHT * preferred[i]
        + TAINT_TOLERATION_WEIGHT * tainted[i]
        for i, n in enumerate(nodes)
    ]
