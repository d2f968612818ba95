"""Controller ownerReferences: who controls what, adoption, release, and deletion order.

A ReplicaSet (or Job, or Deployment over ReplicaSets) owns exactly the objects whose
one `controller: true` ownerReference names its uid, not merely those its selector
matches; selectors only decide what it may adopt or must let go. This is Kubernetes'
ControllerRefManager.ClaimObject:

- controlled by someone else: not ours, whatever the labels say;
- controlled by us and matching: ours;
- controlled by us and no longer matching: release it (a Patch dropping our reference),
  unless we are being deleted ourselves;
- controlled by nobody, matching, neither side being deleted: adopt it (a Patch adding
  our controller reference) and count it as ours.

Two controllers whose selectors both match an orphan each emit an adoption Patch. The
apiserver refuses a second controller reference, so the first Patch to land wins and the
loser's runner stops before its later writes (actions.py, rule 2): claim Patches always
come first in a reconcile's list, so the loser never acts on a pod it did not get.

Deletion order on scale-down is Kubernetes' ActivePodsWithRanks (controller_utils.go):
unassigned before assigned; Pending before Unknown before Running; not ready before
ready; lower pod-deletion-cost first; more pods of the same owner on the node first;
ready more recently first; more restarts first; created more recently first. The two
time comparisons use Kubernetes' logarithmic buckets (LogarithmicScaleDown, GA), with the
uid deciding ties. kubelite adds one rule after readiness: not yet available
(minReadySeconds) before available, closing the TODO in Kubernetes' ranking, so that a
scale-down during a rollout never takes an available pod while a merely ready one stays.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from apiserver.selectors import LabelSelector
from controllers import actions, meta, podutil

Obj = dict[str, Any]

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDINAL = {podutil.PENDING: 0, podutil.UNKNOWN: 1, podutil.RUNNING: 2}


def controller_of(obj: Mapping[str, Any]) -> Obj | None:
    """The ownerReference with controller=true, if any (GetControllerOf)."""
    for ref in meta.metadata(obj).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def is_controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    ref = controller_of(obj)
    return ref is not None and bool(ref.get("uid")) and ref.get("uid") == meta.uid(owner)


def controller_ref(owner: Mapping[str, Any], kind: str, api_version: str) -> Obj:
    """metav1.NewControllerRef: the reference a controller stamps on what it creates."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": meta.name(owner),
        "uid": meta.uid(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def adopt(obj: Mapping[str, Any], ref: Obj, resource: str, api_version: str) -> actions.Patch:
    """The strategic-merge Patch Kubernetes sends to adopt: ownerReferences merge by uid."""
    patch = {"metadata": {"ownerReferences": [ref], "uid": meta.uid(obj)}}
    return actions.Patch(resource, api_version, meta.namespace(obj) or None, meta.name(obj),
                         actions.STRATEGIC_MERGE_PATCH, patch)


def release(obj: Mapping[str, Any], owner_uid: str, resource: str,
            api_version: str) -> actions.Patch:
    """The strategic-merge Patch that deletes the reference to `owner_uid`."""
    patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
                          "uid": meta.uid(obj)}}
    return actions.Patch(resource, api_version, meta.namespace(obj) or None, meta.name(obj),
                         actions.STRATEGIC_MERGE_PATCH, patch)


def claim(owner: Mapping[str, Any], owner_kind: str, owner_api_version: str,
          selector: LabelSelector, candidates: Iterable[Obj], resource: str,
          api_version: str) -> tuple[list[Obj], list[actions.Action]]:
    """ClaimObject over `candidates`: what `owner` controls now, and the Patches to get there.

    Adopted objects are returned as if the adoption had happened (with our reference), so
    that the caller counts them; the Patch that makes it true comes first in its list.
    """
    ns = meta.namespace(owner)
    owner_deleting = meta.is_deleting(owner)
    claimed: list[Obj] = []
    writes: list[actions.Action] = []
    for obj in candidates:
        if ns and meta.namespace(obj) != ns:
            continue
        ref = controller_of(obj)
        matches = selector.matches(meta.labels(obj))
        if ref is not None:
            if ref.get("uid") != meta.uid(owner):
                continue
            if matches:
                claimed.append(obj)
            elif not owner_deleting:
                writes.append(release(obj, meta.uid(owner), resource, api_version))
            continue
        if not matches or owner_deleting or meta.is_deleting(obj):
            continue
        new_ref = controller_ref(owner, owner_kind, owner_api_version)
        writes.append(adopt(obj, new_ref, resource, api_version))
        adopted = dict(obj)
        adopted["metadata"] = dict(meta.metadata(obj))
        adopted["metadata"]["ownerReferences"] = [
            *(meta.metadata(obj).get("ownerReferences") or []), new_ref]
        claimed.append(adopted)
    return claimed, writes


# --- active pods and the order of deletion --------------------------------------------


def is_pod_active(pod: Mapping[str, Any]) -> bool:
    """IsPodActive: not Succeeded or Failed, and not being deleted."""
    return not podutil.is_terminal(pod) and not meta.is_deleting(pod)


def filter_active_pods(pods: Iterable[Obj]) -> list[Obj]:
    return [p for p in pods if is_pod_active(p)]


def rank_for_deletion(pods: Sequence[Obj], now: datetime, related: Iterable[Obj] | None = None,
                      min_ready_seconds: int = 0) -> list[Obj]:
    """`pods` sorted so that the first ones are the best to delete (see the module doc).

    `related` (default: `pods`) are the pods counted when ranking how doubled-up a node is.
    """
    on_node = Counter(podutil.node_name(p) for p in (pods if related is None else related)
                      if is_pod_active(p))

    def compare(a: Obj, b: Obj) -> int:
        return _compare(a, b, on_node, now, min_ready_seconds)

    return sorted(pods, key=functools.cmp_to_key(compare))


def _compare(a: Obj, b: Obj, on_node: Counter[str], now: datetime, min_ready: int) -> int:
    """-1 when `a` should be deleted before `b` (ActivePodsWithRanks.Less, both ways)."""
    node_a, node_b = podutil.node_name(a), podutil.node_name(b)
    if node_a != node_b and (not node_a or not node_b):
        return -1 if not node_a else 1
    phase_a = _PHASE_ORDINAL.get(podutil.phase(a), 0)
    phase_b = _PHASE_ORDINAL.get(podutil.phase(b), 0)
    if phase_a != phase_b:
        return -1 if phase_a < phase_b else 1
    ready_a, ready_b = podutil.is_ready(a), podutil.is_ready(b)
    if ready_a != ready_b:
        return -1 if not ready_a else 1
    avail_a = podutil.is_available(a, min_ready, now)
    avail_b = podutil.is_available(b, min_ready, now)
    if avail_a != avail_b:
        return -1 if not avail_a else 1
    cost_a, cost_b = _deletion_cost(a), _deletion_cost(b)
    if cost_a != cost_b:
        return -1 if cost_a < cost_b else 1
    rank_a, rank_b = on_node[node_a], on_node[node_b]
    if rank_a != rank_b:
        return -1 if rank_a > rank_b else 1
    if ready_a and ready_b:
        order = _newer_first(podutil.ready_since(a), podutil.ready_since(b), a, b, now)
        if order:
            return order
    restarts_a, restarts_b = podutil.max_restarts(a), podutil.max_restarts(b)
    if restarts_a != restarts_b:
        return -1 if restarts_a > restarts_b else 1
    return _newer_first(meta.creation_time(a), meta.creation_time(b), a, b, now)


def _newer_first(t1: datetime | None, t2: datetime | None, a: Obj, b: Obj,
                 now: datetime) -> int:
    """Missing < newer < older, compared in log2 buckets of age; uid breaks bucket ties."""
    if t1 == t2:
        return 0
    if t1 is None or t2 is None:
        return -1 if t1 is None else 1
    diff = _log_bucket(now, t1) - _log_bucket(now, t2)
    if diff == 0:
        uid_a, uid_b = meta.uid(a), meta.uid(b)
        return 0 if uid_a == uid_b else (-1 if uid_a < uid_b else 1)
    return -1 if diff < 0 else 1


def _log_bucket(now: datetime, when: datetime) -> int:
    nanos = int((now - when).total_seconds() * 1e9)
    return int(math.log2(nanos)) if nanos > 0 else -1


def _deletion_cost(pod: Mapping[str, Any]) -> int:
    raw = meta.annotations(pod).get(DELETION_COST)
    try:
        value = int(str(raw))
    except ValueError:
        return 0
    return value if -(2**31) <= value < 2**31 else 0
