"""Snapshot: every node's NodeInfo plus the pods assumed onto them (the scheduler cache).

Binding is asynchronous: between choosing a node and seeing the bound pod come back from
the informer, the scheduler must already count the pod there, or the next decision
over-commits the node. So a decision is followed by `assume(pod, node)`; the informer's
later add of the bound pod confirms it (`add_pod`), and a failed binding undoes it
(`forget`). Informer events for nodes and bound pods go through `set_node`,
`remove_node`, `add_pod`, `update_pod` and `remove_pod`; a pod bound to a node not seen
yet waits in `_orphans` until the node arrives, as kube-scheduler keeps a NodeInfo
without a node.

`node_infos` is in name order, which makes the tie-break of `schedule` deterministic.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from controllers.scheduling.nodeinfo import NodeInfo
from controllers.scheduling.podinfo import PodInfo, pod_info


class Snapshot:
    """The nodes a scheduling cycle sees, kept current by informer events and assumptions."""

    def __init__(self, nodes: Iterable[Mapping[str, Any]] = (), pods: Iterable[Mapping[str, Any]] = ()) -> None:
        self._by_name: dict[str, NodeInfo] = {}
        self.node_infos: list[NodeInfo] = []
        self._assumed: dict[str, str] = {}  # pod key -> node name
        self._bound: dict[str, str] = {}  # pod key -> node name, for pods seen bound
        self._orphans: dict[str, dict[str, PodInfo]] = {}
        # Per-template views of node_infos kept by controllers.scheduling.columns (LRU);
        # they index nodes by position, so adding or removing a node drops them.
        self.columns: OrderedDict[str, Any] = OrderedDict()
        for node in nodes:
            self.set_node(node)
        for pod in pods:
            self.add_pod(pod)

    @classmethod
    def of(cls, node_infos: Iterable[NodeInfo]) -> Snapshot:
        """Wrap existing NodeInfos (not copied) in the order given."""
        snapshot = cls()
        for info in node_infos:
            snapshot._by_name[info.name] = info
            snapshot.node_infos.append(info)
        return snapshot

    def __iter__(self) -> Iterator[NodeInfo]:
        return iter(self.node_infos)

    def __len__(self) -> int:
        return len(self.node_infos)

    def get(self, name: str) -> NodeInfo | None:
        return self._by_name.get(name)

    def set_node(self, node: Mapping[str, Any]) -> NodeInfo:
        """Add a node, or replace the object of a known one (its pods stay)."""
        name = str((node.get("metadata") or {}).get("name") or "")
        info = self._by_name.get(name)
        if info is not None:
            info.set_node(node)
            return info
        info = NodeInfo(node, self._orphans.pop(name, {}).values())
        self._by_name[name] = info
        self.columns.clear()
        names = [n.name for n in self.node_infos]
        self.node_infos.insert(bisect.bisect(names, name), info)
        return info

    def remove_node(self, name: str) -> None:
        """Drop a node; its pods wait as orphans in case it comes back."""
        info = self._by_name.pop(name, None)
        if info is not None:
            self.node_infos.remove(info)
            self.columns.clear()
            if info.pods:
                self._orphans[name] = dict(info.pods)

    def assume(self, pod: Mapping[str, Any] | PodInfo, node_name: str) -> PodInfo:
        """Count a pod on `node_name` before its binding is observed."""
        info = pod_info(pod)
        self._remove_everywhere(info.key)
        self._place(info, node_name)
        self._assumed[info.key] = node_name
        return info

    def forget(self, pod: Mapping[str, Any] | PodInfo | str) -> None:
        """Undo `assume` (the binding failed); a pod already seen bound stays."""
        key = pod if isinstance(pod, str) else pod_info(pod).key
        node_name = self._assumed.pop(key, None)
        if node_name is not None:
            self._unplace(key, node_name)

    def is_assumed(self, pod: Mapping[str, Any] | PodInfo | str) -> bool:
        return (pod if isinstance(pod, str) else pod_info(pod).key) in self._assumed

    def add_pod(self, pod: Mapping[str, Any] | PodInfo) -> None:
        """An informer add or update of a pod: count it where it is bound, if anywhere."""
        info = pod_info(pod)
        self._remove_everywhere(info.key)
        if info.node_name and not info.terminal:
            self._place(info, info.node_name)
            self._bound[info.key] = info.node_name

    update_pod = add_pod

    def remove_pod(self, pod: Mapping[str, Any] | PodInfo | str) -> None:
        """An informer delete: the pod no longer holds anything anywhere."""
        self._remove_everywhere(pod if isinstance(pod, str) else pod_info(pod).key)

    def _remove_everywhere(self, key: str) -> None:
        for table in (self._assumed, self._bound):
            node_name = table.pop(key, None)
            if node_name is not None:
                self._unplace(key, node_name)

    def _place(self, info: PodInfo, node_name: str) -> None:
        node = self._by_name.get(node_name)
        if node is not None:
            node.add_pod(info)
        else:
            self._orphans.setdefault(node_name, {})[info.key] = info

    def _unplace(self, key: str, node_name: str) -> None:
        node = self._by_name.get(node_name)
        if node is not None:
            node.remove_pod(key)
        else:
            orphans = self._orphans.get(node_name, {})
            orphans.pop(key, None)
            if not orphans:
                self._orphans.pop(node_name, None)
