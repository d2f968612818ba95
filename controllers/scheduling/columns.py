"""Columns: one pod class's verdict and score inputs on every node, kept current.

Pods with the same `PodInfo.class_key` (same template, requests and controller) get the
same filter verdict and the same raw scores on a node, and placing one pod changes one
node. So instead of filtering and scoring a thousand nodes for every pod, a Columns
object keeps, per node position, the rejection (or None), the resource score (least
allocated + balanced, or NEG when rejected), the preferred-affinity and soft-taint raw
scores and the count of the class's controller's pods; before each decision it
refreshes only the nodes whose generation moved since it last looked.

Deciding is then a few passes over those lists in C (max, compress, map, count, index):
the normalizers are maxima over feasible nodes, the spread score is a lookup table
indexed by count, and the total is the element-wise sum. The result is the one
`scores.total_scores` gives; tests/unit/test_scheduling_schedule.py checks that against
a plain filter-and-score reference on random clusters.
"""

from __future__ import annotations

from collections import OrderedDict
from itertools import compress
from operator import add, attrgetter

from controllers.scheduling import affinity, filters, scores, taints
from controllers.scheduling.filters import Rejection
from controllers.scheduling.nodeinfo import STATIC_CACHE_LIMIT, NodeInfo, current_generation
from controllers.scheduling.podinfo import PodInfo

NEG = -(10**9)  # the score of a node the pod does not fit: never the maximum
COLUMNS_LIMIT = 128  # pod classes remembered per Snapshot (about 50 KB each per 1,000 nodes)
_PREFILTERED = Rejection((filters.PREFILTER_AFFINITY,), True)
_generation = attrgetter("generation")

StaticVerdict = tuple[Rejection | None, int, int]  # (rejection, preferred weight, soft taints)


def static_verdict(pod: PodInfo, node: NodeInfo) -> StaticVerdict:
    """The part that reads only the pod's spec and the node object, cached on the node."""
    verdict = node.static_cache.get(pod.static_key)
    if verdict is None:
        if len(node.static_cache) >= STATIC_CACHE_LIMIT:
            node.static_cache.clear()
        rejection = filters.static_check(pod, node)
        if rejection is not None:
            verdict = (rejection, 0, 0)
        else:
            preferred = affinity.preferred_score(pod.preferred, node.labels, node.name) if pod.preferred else 0
            soft = taints.count_untolerated(node.taints, pod.tolerations, taints.PREFER_NO_SCHEDULE) if node.taints else 0
            verdict = (None, preferred, soft)
        node.static_cache[pod.static_key] = verdict
    return verdict


def entry(pod: PodInfo, node: NodeInfo) -> tuple[Rejection | None, int, int, int]:
    """(rejection, resource score, preferred weight, soft taints) of `pod` on `node`."""
    if pod.prefilter_names is not None and node.name not in pod.prefilter_names:
        return _PREFILTERED, NEG, 0, 0
    rejection, preferred, soft = static_verdict(pod, node)
    if rejection is None and not (  # the common fit, in three integer comparisons
        not pod.scalars and not pod.host_ports and node.free_pods > 0
        and pod.cpu <= node.free_cpu and pod.memory <= node.free_memory
    ):
        rejection = filters.dynamic_check(pod, node)
    if rejection is not None:
        return rejection, NEG, 0, 0
    return None, scores.resource_score(pod, node), preferred, soft


class Columns:
    """The per-node lists for one pod class over a fixed list of nodes."""

    __slots__ = ("pod", "nodes", "seen", "rejections", "base", "feasible", "preferred", "soft",
                 "counts", "feasible_count", "stat", "stat_key")

    def __init__(self, pod: PodInfo, nodes: list[NodeInfo]) -> None:
        self.pod = pod
        self.nodes = nodes
        self.seen = current_generation()
        self.rejections: dict[str, Rejection] = {}
        self.base: list[int] = []
        self.preferred: list[int] = []
        self.soft: list[int] = []
        for node in nodes:
            rejection, base, preferred, soft = entry(pod, node)
            if rejection is not None:
                self.rejections[node.name] = rejection
            self.base.append(base)
            self.preferred.append(preferred)
            self.soft.append(soft)
        self.feasible = [b != NEG for b in self.base]
        self.feasible_count = sum(self.feasible)
        owner = pod.owner_uid
        self.counts = [n.owner_counts.get(owner, 0) for n in nodes] if owner else [0] * len(nodes)
        self.stat: list[int] | None = None  # 2 * affinity + 3 * taint score, for stat_key's maxima
        self.stat_key: tuple[int, int] | None = None

    def sync(self) -> None:
        """Re-read the nodes that changed since the last look."""
        seen = self.seen
        self.seen = current_generation()
        # The positions whose generation exceeds `seen`, found without a Python-level loop.
        changed = list(compress(range(len(self.nodes)), map(seen.__lt__, map(_generation, self.nodes))))
        for i in changed:
            self._refresh(i)

    def best(self, tie_breaker: int) -> int | None:
        """The position of the chosen node, None when the pod fits nowhere."""
        if self.feasible_count <= 1:
            return self.feasible.index(True) if self.feasible_count else None
        totals = self.base
        if self.pod.owner_uid:
            top = max(compress(self.counts, self.feasible))
            table = [scores.SPREAD_WEIGHT * scores.spread_score(c, top) for c in range(max(self.counts) + 1)]
            totals = list(map(add, totals, map(table.__getitem__, self.counts)))
        top_preferred = max(compress(self.preferred, self.feasible)) if self.pod.preferred else 0
        top_soft = max(compress(self.soft, self.feasible))
        if top_preferred or top_soft:  # otherwise the same for every node
            if self.stat is None or self.stat_key != (top_preferred, top_soft):
                self.stat_key = (top_preferred, top_soft)
                # Raw scores are small integers, so the scaled ones come from lookup tables.
                by_preferred = [scores.NODE_AFFINITY_WEIGHT * scores.scaled(r, top_preferred)
                                for r in range(max(self.preferred) + 1)]
                by_soft = [scores.TAINT_TOLERATION_WEIGHT * scores.scaled(r, top_soft, reverse=True)
                           for r in range(max(self.soft) + 1)]
                self.stat = list(map(add, map(by_preferred.__getitem__, self.preferred), map(by_soft.__getitem__, self.soft)))
            totals = list(map(add, totals, self.stat))
        top = max(totals)
        index = -1
        for _ in range(tie_breaker % totals.count(top) + 1):
            index = totals.index(top, index + 1)
        return index

    def _refresh(self, i: int) -> None:
        node = self.nodes[i]
        rejection, base, preferred, soft = entry(self.pod, node)
        if rejection is not None:
            self.rejections[node.name] = rejection
        else:
            self.rejections.pop(node.name, None)
        feasible = rejection is None
        self.feasible_count += feasible - self.feasible[i]
        self.base[i], self.feasible[i], self.preferred[i], self.soft[i] = base, feasible, preferred, soft
        self.counts[i] = node.owner_counts.get(self.pod.owner_uid, 0) if self.pod.owner_uid else 0
        if self.stat is not None:
            self.stat[i] = self._stat(preferred, soft)

    def _stat(self, preferred: int, soft: int) -> int:
        top_preferred, top_soft = self.stat_key or (0, 0)
        return (
            scores.NODE_AFFINITY_WEIGHT * scores.scaled(preferred, top_preferred)
            + scores.TAINT_TOLERATION_WEIGHT * scores.scaled(soft, top_soft, reverse=True)
        )


def for_pod(pod: PodInfo, nodes: list[NodeInfo], registry: OrderedDict[str, Columns]) -> Columns:
    """The Columns of `pod`'s class over `nodes`, reused from `registry` (an LRU) if there."""
    columns = registry.get(pod.class_key)
    if columns is None:
        columns = registry[pod.class_key] = Columns(pod, nodes)
        while len(registry) > COLUMNS_LIMIT:
            registry.popitem(last=False)
    else:
        registry.move_to_end(pod.class_key)
        columns.sync()
    return columns
