"""The failure message, word for word as kube-scheduler writes it (framework.FitError).

    0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated taint
    {node-role.kubernetes.io/control-plane: }. preemption: 0/5 nodes are available:
    2 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod.

Every reason of every rejected node is counted (a node short of cpu and memory adds one
to each), each entry is printed "<count> <reason>" and the entries are sorted as strings,
so "10 Insufficient cpu" comes before "2 Insufficient memory". When a PreFilter rejects
the pod outright its message stands alone instead of the histogram.

The second sentence is DefaultPreemption's PostFilter verdict, built the same way: nodes
rejected for reasons eviction cannot fix (taints, affinity, a request larger than the
whole node) are "Preemption is not helpful for scheduling"; the others would be searched
for lower-priority victims. kubelite never preempts, so it reports what kube-scheduler
reports when that search finds nothing, as it does in a cluster where every pod has the
same priority: "No preemption victims found for incoming pod". A pod with
preemptionPolicy Never is "not eligible due to preemptionPolicy=Never.".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from controllers.scheduling.filters import Rejection

NO_NODES_AVAILABLE = "no nodes available to schedule pods"  # ErrNoNodesAvailable
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
PREEMPTION_NEVER = "not eligible due to preemptionPolicy=Never."
MAX_EVENT_MESSAGE = 1024  # validation.NoteLengthLimit


def histogram(reasons: Iterable[str]) -> str:
    """sortReasonsHistogram: "<count> <reason>" entries, string-sorted, comma-joined."""
    return ", ".join(sorted(f"{count} {reason}" for reason, count in Counter(reasons).items()))


def filter_message(num_nodes: int, rejections: Mapping[str, Rejection], prefilter_message: str = "") -> str:
    """FitError.Error() without the PostFilter part."""
    if prefilter_message:
        return f"0/{num_nodes} nodes are available: {prefilter_message}."
    reasons = [reason for rejection in rejections.values() for reason in rejection.reasons]
    text = histogram(reasons)
    return f"0/{num_nodes} nodes are available:" + (f" {text}." if text else "")


def preemption_message(num_nodes: int, rejections: Mapping[str, Rejection], preemption_never: bool = False) -> str:
    """DefaultPreemption.PostFilter's message when it finds no candidate node."""
    if preemption_never:
        return f"preemption: {PREEMPTION_NEVER}"
    verdicts = [PREEMPTION_NOT_HELPFUL if r.unresolvable else NO_VICTIMS for r in rejections.values()]
    # Nodes that never reached the filters (absent from the map) are not helped either.
    verdicts += [PREEMPTION_NOT_HELPFUL] * (num_nodes - len(verdicts))
    return f"preemption: 0/{num_nodes} nodes are available: {histogram(verdicts)}."


def fit_error_message(
    num_nodes: int,
    rejections: Mapping[str, Rejection],
    *,
    prefilter_message: str = "",
    preemption_never: bool = False,
) -> str:
    """The whole message a pod that fits nowhere gets, in its condition and event."""
    if num_nodes == 0:
        return NO_NODES_AVAILABLE
    if prefilter_message:
        rejections = {}  # every node inherits the PreFilter verdict, which is unresolvable
    return (
        filter_message(num_nodes, rejections, prefilter_message)
        + " "
        + preemption_message(num_nodes, rejections, preemption_never)
    )


def truncate(message: str, limit: int = MAX_EVENT_MESSAGE) -> str:
    """schedule_one.truncateMessage: events carry at most 1024 bytes."""
    if len(message.encode()) <= limit:
        return message
    suffix = " ..."
    return message.encode()[: limit - len(suffix)].decode(errors="ignore") + suffix
