"""Node lifecycle reconcile: notice a node that stopped heartbeating, taint it, evict its pods.

Kubernetes' node lifecycle controller plus its taint-eviction manager, for one node, as
a function of the Node, its Lease in kube-node-lease, the pods bound to it and `now`:

- the node's last heartbeat is the latest of its Lease's renewTime, its Ready
  condition's lastHeartbeatTime and its creation; it is unhealthy once that is older
  than `grace_period` (--node-monitor-grace-period);
- unhealthy: every condition the agent reports becomes Unknown ("Kubelet stopped
  posting node status.", NodeStatusUnknown; NodeStatusNeverUpdated when it never
  did), its Ready pods are marked not ready (so Endpoints drop them at once), and it
  gets the `node.kubernetes.io/unreachable` taints, NoSchedule and NoExecute, stamped
  with timeAdded. A node that heartbeats but reports Ready=False gets the
  `node.kubernetes.io/not-ready` taints instead;
- a pod on a node with NoExecute taints is evicted (deleted, uid precondition) when
  its tolerations run out: at timeAdded + the smallest tolerationSeconds among the
  tolerations it uses; never, if they have no tolerationSeconds; and, for a taint it
  does not tolerate at all, at timeAdded + `eviction_timeout` (--pod-eviction-timeout;
  Kubernetes' taint manager would evict at once, but kubelite's admission gives every
  pod 300 s tolerations for these taints, so the timeout only covers pods without them).
  The eviction clock is the taint's timeAdded, which survives a controller restart,
  where Kubernetes keeps it in memory;
- recovery: once the Lease is renewed after the taint was added, the taints come off
  (the agent writes Ready itself). Flapping: a taint stays for at least `probe_period`
  (--node-monitor-period) before it may be removed, and is only added after a full
  grace period without heartbeats, so a node that misses one renewal causes no
  add/remove churn.

Writes: the Node's UpdateStatus (resourceVersion as read) first, then a merge Patch of
spec.taints (carrying the whole list; taints have no merge key in a merge patch), then
pod status updates and evictions, then events, then a RequeueAfter for the next moment
something will change with no watch event to say so.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from controllers import actions, meta, ownership, podutil

Obj = dict[str, Any]

COMPONENT = "node-controller"
EVICTION_COMPONENT = "taint-eviction-controller"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
NODE_MONITOR_GRACE_PERIOD = timedelta(seconds=50)  # Kubernetes 1.32 (40 s before)
POD_EVICTION_TIMEOUT = timedelta(minutes=5)
NODE_MONITOR_PERIOD = timedelta(seconds=5)
_CONDITION_TYPES = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


def reconcile(node: Obj, lease: Obj | None, pods: Iterable[Obj], now: datetime,
              grace_period: timedelta = NODE_MONITOR_GRACE_PERIOD,
              eviction_timeout: timedelta = POD_EVICTION_TIMEOUT, *,
              probe_period: timedelta = NODE_MONITOR_PERIOD) -> list[actions.Action]:
    """The writes that make `node`'s conditions, taints and pods reflect its health."""
    heartbeat = last_heartbeat(node, lease)
    healthy = heartbeat is not None and now - heartbeat <= grace_period
    ready = meta.get_condition(meta.status(node).get("conditions"), "Ready")
    writes: list[actions.Action] = []
    events: list[actions.Action] = []
    new_status = meta.status(node) if healthy else _unknown_status(node, now)
    if new_status != meta.status(node):
        writes.append(actions.UpdateStatus("nodes", "v1", None, meta.with_status(node, new_status)))
        events.append(actions.event(_node_ref(node), "NodeNotReady",
                                    f"Node {meta.name(node)} status is now: NodeNotReady",
                                    now=now, component=COMPONENT))
    if not healthy:
        wanted_key: str | None = UNREACHABLE
    elif ready is not None and ready.get("status") == "False":
        wanted_key = NOT_READY
    else:
        wanted_key = None
    taints = _next_taints(node, wanted_key, heartbeat, now, probe_period)
    if taints != _taints(node):
        writes.append(actions.Patch("nodes", "v1", None, meta.name(node), actions.MERGE_PATCH,
                                    {"spec": {"taints": taints or None}}))
    mine = [p for p in pods if podutil.node_name(p) == meta.name(node)
            and ownership.is_pod_active(p)]
    if not healthy:
        writes += _mark_pods_not_ready(mine, now)
    evictions, next_eviction = _evictions(mine, taints, now, eviction_timeout)
    writes += evictions
    for pod in (a for a in evictions if isinstance(a, actions.Delete)):
        events.append(actions.event(
            {"kind": "Pod", "apiVersion": "v1", "namespace": pod.namespace, "name": pod.name,
             "uid": pod.uid_precondition or ""},
            "TaintManagerEviction", f"Marking for deletion Pod {pod.namespace}/{pod.name}",
            now=now, component=EVICTION_COMPONENT))
    out = writes + events
    delay = _next_check(healthy, heartbeat, taints, next_eviction, now, grace_period, probe_period)
    if delay is not None:
        out.append(actions.RequeueAfter(delay))
    return out


def last_heartbeat(node: Mapping[str, Any], lease: Mapping[str, Any] | None) -> datetime | None:
    """The latest sign of life: Lease renewal, Ready heartbeat, or the node's creation."""
    times = [meta.creation_time(node)]
    if lease is not None:
        times.append(meta.parse_time(meta.spec(lease).get("renewTime")))
    ready = meta.get_condition(meta.status(node).get("conditions"), "Ready")
    if ready is not None:
        times.append(meta.parse_time(ready.get("lastHeartbeatTime")))
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _unknown_status(node: Obj, now: datetime) -> Obj:
    """tryUpdateNodeHealth: the agent's conditions as Unknown, heartbeats left as they were.

    A missing Ready condition is added with the node's creation as its heartbeat (not
    `now`, which would read as a fresh sign of life); other missing conditions are not
    invented, so a node agent that reports only Ready is not left with stale extras.
    """
    status = copy.deepcopy(meta.status(node))
    conditions = [dict(c) for c in status.get("conditions") or []]
    stamp = meta.format_time(now)
    if meta.get_condition(conditions, "Ready") is None:
        created = meta.metadata(node).get("creationTimestamp") or stamp
        conditions.append({"type": "Ready", "status": "Unknown", "lastHeartbeatTime": created,
                           "lastTransitionTime": stamp, "reason": "NodeStatusNeverUpdated",
                           "message": "Kubelet never posted node status."})
    for cond in conditions:
        if cond.get("type") in _CONDITION_TYPES and cond.get("status") != "Unknown":
            cond.update({"status": "Unknown", "reason": "NodeStatusUnknown",
                         "message": "Kubelet stopped posting node status.",
                         "lastTransitionTime": stamp})
    status["conditions"] = conditions
    return status


def _taints(node: Mapping[str, Any]) -> list[Obj]:
    return [dict(t) for t in meta.spec(node).get("taints") or []]


def _next_taints(node: Obj, wanted_key: str | None, heartbeat: datetime | None, now: datetime,
                 probe_period: timedelta) -> list[Obj]:
    """The taint list with the controller's health taints as `wanted_key` says, damped."""
    current = _taints(node)
    ours = [t for t in current if t.get("key") in (UNREACHABLE, NOT_READY)]
    others = [t for t in current if t.get("key") not in (UNREACHABLE, NOT_READY)]
    keep: list[Obj] = []
    for taint in ours:
        if taint.get("key") == wanted_key:
            keep.append(taint)
            continue
        added = meta.parse_time(taint.get("timeAdded"))
        recovered = heartbeat is not None and (added is None or heartbeat > added)
        young = added is not None and now - added < probe_period
        if wanted_key is None and (young or not recovered):
            keep.append(taint)  # too soon to trust the recovery: no churn
    stamp = meta.format_time(now)
    if wanted_key is not None:
        for effect in ("NoSchedule", "NoExecute"):
            if not any(t.get("key") == wanted_key and t.get("effect") == effect for t in keep):
                keep.append({"key": wanted_key, "effect": effect, "timeAdded": stamp})
    return others + keep


def _mark_pods_not_ready(pods: list[Obj], now: datetime) -> list[actions.Action]:
    """MarkPodsNotReady: a Ready pod on an unreachable node is no longer ready."""
    out: list[actions.Action] = []
    for pod in pods:
        if not podutil.is_ready(pod):
            continue
        updated = copy.deepcopy(pod)
        conditions = updated.setdefault("status", {}).setdefault("conditions", [])
        for cond in conditions:
            if cond.get("type") == "Ready":
                cond.update({"status": "False", "lastTransitionTime": meta.format_time(now)})
        out.append(actions.UpdateStatus("pods", "v1", meta.namespace(pod), updated))
    return out


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """ToleratesTaint: effect (empty matches all), then key and value by operator."""
    if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
        return False
    if toleration.get("key") and toleration.get("key") != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def eviction_time(pod: Mapping[str, Any], taints: Iterable[Mapping[str, Any]],
                  eviction_timeout: timedelta) -> datetime | None:
    """When the pod must go because of `taints`' NoExecute ones (None: it may stay)."""
    tolerations = [t for t in meta.spec(pod).get("tolerations") or [] if isinstance(t, dict)]
    deadline: datetime | None = None
    for taint in taints:
        if taint.get("effect") != "NoExecute":
            continue
        added = meta.parse_time(taint.get("timeAdded"))
        if added is None:
            continue
        used = [t for t in tolerations if tolerates(t, taint)]
        if not used:
            when = added + eviction_timeout
        else:
            limits = [meta.as_int(t["tolerationSeconds"]) for t in used
                      if t.get("tolerationSeconds") is not None]
            if not limits:
                continue
            when = added + timedelta(seconds=max(0, min(limits)))
        deadline = when if deadline is None else min(deadline, when)
    return deadline


def _evictions(pods: list[Obj], taints: list[Obj], now: datetime,
               eviction_timeout: timedelta) -> tuple[list[actions.Action], datetime | None]:
    out: list[actions.Action] = []
    pending: datetime | None = None
    for pod in pods:
        when = eviction_time(pod, taints, eviction_timeout)
        if when is None:
            continue
        if when <= now:
            out.append(actions.Delete("pods", "v1", meta.namespace(pod), meta.name(pod),
                                      uid_precondition=meta.uid(pod) or None))
        else:
            pending = when if pending is None else min(pending, when)
    return out, pending


def _next_check(healthy: bool, heartbeat: datetime | None, taints: list[Obj],
                next_eviction: datetime | None, now: datetime, grace: timedelta,
                probe_period: timedelta) -> float | None:
    moments = [next_eviction]
    if healthy and heartbeat is not None:
        moments.append(heartbeat + grace + timedelta(seconds=1))
    if healthy and any(t.get("key") in (UNREACHABLE, NOT_READY) for t in taints):
        moments.append(now + probe_period)
    future = [m for m in moments if m is not None]
    if not future:
        return None
    return max(1.0, (min(future) - now).total_seconds())


def _node_ref(node: Mapping[str, Any]) -> Obj:
    """Kubernetes' node events use the node's name as its uid."""
    return {"kind": "Node", "apiVersion": "v1", "name": meta.name(node), "uid": meta.name(node)}
