"""Resource usage in the shape of the kubelet's Summary API, `/stats/summary` (pure).

The agent samples usage (agents/measure.py) into `Usage` for the machine and
`PodUsage` for each pod, and `stats_summary` lays them out as the kubelet does, so the
consumers written for the kubelet (metrics-server, `kubectl top` behind it) read ours:

    {"node": {"nodeName": "n1",
              "cpu": {"time": ..., "usageNanoCores": 250000000,
                      "usageCoreNanoSeconds": 123456789000},
              "memory": {"time": ..., "availableBytes": ..., "usageBytes": ...,
                         "workingSetBytes": ...}},
     "pods": [{"podRef": {"name": "web-1", "namespace": "default", "uid": "..."},
               "cpu": {...}, "memory": {"time": ..., "workingSetBytes": ...,
                                        "rssBytes": ...}}]}

A rate (usageNanoCores) needs two readings; until the second one it is left out, as
the kubelet leaves out what cAdvisor has not measured yet. `node_usage` reads the two
numbers `kubelite top` prints back out of such a summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from apiserver.objects import timestamp

Obj = dict[str, Any]


@dataclass(frozen=True)
class Usage:
    """The machine's usage at `timestamp`.

    cpu_nanocores: the rate since the previous reading (None on the first);
    cpu_usage_core_nanoseconds: cpu time spent since boot, all cores, not idle;
    memory_working_set_bytes: memory in use that cannot be reclaimed at once
    (total - available); memory_usage: total - free (page cache included).
    """

    cpu_nanocores: int | None
    cpu_usage_core_nanoseconds: int
    memory_working_set_bytes: int
    memory_available: int
    memory_usage: int
    timestamp: datetime


@dataclass(frozen=True)
class PodUsage:
    """One pod's usage: the sum over its processes."""

    name: str
    namespace: str
    uid: str
    cpu_nanocores: int | None
    memory_working_set_bytes: int
    timestamp: datetime | None = None  # None: sampled with the node's usage
    cpu_usage_core_nanoseconds: int | None = None
    rss_bytes: int | None = None


def stats_summary(node_name: str, usage: Usage, pods: Sequence[PodUsage]) -> Obj:
    """The Summary API document for the node and its pods."""
    stamp = timestamp(usage.timestamp)
    node = {
        "nodeName": node_name,
        "cpu": _cpu(stamp, usage.cpu_nanocores, usage.cpu_usage_core_nanoseconds),
        "memory": {"time": stamp, "availableBytes": usage.memory_available,
                   "usageBytes": usage.memory_usage,
                   "workingSetBytes": usage.memory_working_set_bytes},
    }
    return {"node": node, "pods": [_pod(p, stamp) for p in pods]}


def _pod(pod: PodUsage, node_stamp: str) -> Obj:
    stamp = timestamp(pod.timestamp) if pod.timestamp is not None else node_stamp
    memory: Obj = {"time": stamp, "workingSetBytes": pod.memory_working_set_bytes}
    if pod.rss_bytes is not None:
        memory["rssBytes"] = pod.rss_bytes
    return {"podRef": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
            "cpu": _cpu(stamp, pod.cpu_nanocores, pod.cpu_usage_core_nanoseconds),
            "memory": memory}


def _cpu(stamp: str, nanocores: int | None, core_nanoseconds: int | None) -> Obj:
    cpu: Obj = {"time": stamp}
    if nanocores is not None:
        cpu["usageNanoCores"] = nanocores
    if core_nanoseconds is not None:
        cpu["usageCoreNanoSeconds"] = core_nanoseconds
    return cpu


class NodeUsage(NamedTuple):
    cpu_nanocores: int
    memory_working_set_bytes: int


def node_usage(summary: Mapping[str, Any]) -> NodeUsage | None:
    """The node's cpu rate and working set, as metrics-server takes them from a
    summary; None when either is missing (nothing measured yet) or malformed."""
    node = summary.get("node")
    if not isinstance(node, Mapping):
        return None
    cpu, memory = node.get("cpu"), node.get("memory")
    if not isinstance(cpu, Mapping) or not isinstance(memory, Mapping):
        return None
    nanocores, working_set = cpu.get("usageNanoCores"), memory.get("workingSetBytes")
    if not _count(nanocores) or not _count(working_set):
        return None
    return NodeUsage(int(nanocores), int(working_set))


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
