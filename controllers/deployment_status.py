"""What a Deployment's status says: counts, Available and Progressing (pure).

Kubernetes' progress.go and the status half of sync.go. `kubectl rollout status`
finishes when observedGeneration >= generation, updatedReplicas == replicas ==
status.replicas and availableReplicas >= updatedReplicas; everything here serves that
and `kubectl describe`:

- Available is True (MinimumReplicasAvailable) while at least replicas - maxUnavailable
  pods are available, else False (MinimumReplicasUnavailable);
- Progressing records the rollout: NewReplicaSetCreated / FoundNewReplicaSet when the
  new RS appears, ReplicaSetUpdated (lastUpdateTime moves, lastTransitionTime stays)
  whenever a sync sees progress, NewReplicaSetAvailable once complete, and
  ProgressDeadlineExceeded (status False) when lastUpdateTime + progressDeadlineSeconds
  passes with none. Paused Deployments get Unknown (DeploymentPaused, then
  DeploymentResumed) so that a pause never reads as a stall;
- a ReplicaSet's ReplicaFailure condition (failed pod creates) is copied up.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from controllers import deployment_util as du
from controllers import meta

Obj = dict[str, Any]

NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"
PROGRESSING = "Progressing"
AVAILABLE = "Available"
REPLICA_FAILURE = "ReplicaFailure"


def condition(kind: str, status: str, reason: str, message: str, now: datetime) -> Obj:
    """NewDeploymentCondition, with Kubernetes' field order."""
    stamp = meta.format_time(now)
    return {"type": kind, "status": status, "lastUpdateTime": stamp,
            "lastTransitionTime": stamp, "reason": reason, "message": message}


def set_condition(status: Obj, kind: str, value: str, reason: str, message: str,
                  now: datetime) -> None:
    """SetDeploymentCondition on `status`, in place."""
    cond = condition(kind, value, reason, message, now)
    status["conditions"] = meta.set_condition(status.get("conditions"), cond)


def has_progress_deadline(d: Mapping[str, Any]) -> bool:
    deadline = meta.spec(d).get("progressDeadlineSeconds")
    return deadline is not None and meta.as_int(deadline) != 2**31 - 1


def complete(d: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """DeploymentComplete: everything updated and available, and the spec observed."""
    want = du.desired(d)
    return (meta.as_int(status.get("updatedReplicas")) == want
            and meta.as_int(status.get("replicas")) == want
            and meta.as_int(status.get("availableReplicas")) == want
            and meta.as_int(status.get("observedGeneration")) >= meta.generation(d))


def progressing(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """DeploymentProgressing: more updated, fewer old, more ready or more available."""
    def count(status: Mapping[str, Any], key: str) -> int:
        return meta.as_int(status.get(key))

    old_old = count(old, "replicas") - count(old, "updatedReplicas")
    new_old = count(new, "replicas") - count(new, "updatedReplicas")
    return (count(new, "updatedReplicas") > count(old, "updatedReplicas") or new_old < old_old
            or count(new, "readyReplicas") > count(old, "readyReplicas")
            or count(new, "availableReplicas") > count(old, "availableReplicas"))


def timed_out(d: Mapping[str, Any], status: Mapping[str, Any], now: datetime) -> bool:
    """DeploymentTimedOut: no progress since lastUpdateTime + progressDeadlineSeconds."""
    if not has_progress_deadline(d):
        return False
    cond = meta.get_condition(status.get("conditions"), PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = meta.parse_time(cond.get("lastUpdateTime"))
    deadline = meta.as_int(meta.spec(d).get("progressDeadlineSeconds"))
    return since is not None and since.timestamp() + deadline < now.timestamp()


def omit_empty(status: Mapping[str, Any]) -> Obj:
    """DeploymentStatus as Go marshals it: every field is omitempty."""
    return {k: v for k, v in status.items() if v not in (0, None, [], {})}


def calculate(d: Mapping[str, Any], status: Mapping[str, Any], new: du.RSInfo | None,
              old: Sequence[du.RSInfo], now: datetime) -> Obj:
    """calculateStatus: the counts over every RS, and the Available condition."""
    rss = [r for r in [*old, new] if r is not None]
    available = sum(r.available for r in rss)
    out = copy.deepcopy(dict(status))
    out.update({
        "observedGeneration": meta.generation(d),
        "replicas": sum(r.replicas for r in rss),
        "updatedReplicas": new.replicas if new is not None else 0,
        "readyReplicas": sum(r.ready for r in rss),
        "availableReplicas": available,
        "unavailableReplicas": max(0, du.spec_total(rss) - available),
    })
    if available >= du.desired(d) - du.max_unavailable(d):
        set_condition(out, AVAILABLE, "True", MIN_AVAILABLE,
                      "Deployment has minimum availability.", now)
    else:
        set_condition(out, AVAILABLE, "False", MIN_UNAVAILABLE,
                      "Deployment does not have minimum availability.", now)
    return out


def rollout(d: Mapping[str, Any], status: Mapping[str, Any], new: du.RSInfo | None,
            old: Sequence[du.RSInfo], now: datetime) -> Obj:
    """syncRolloutStatus: the counts plus what the Progressing condition now says."""
    out = calculate(d, status, new, old, now)
    conditions = out.get("conditions") or []
    deadline = has_progress_deadline(d)
    if not deadline:
        conditions = meta.remove_condition(conditions, PROGRESSING)
    current = meta.get_condition(status.get("conditions"), PROGRESSING)
    finished = (out["replicas"] == out["updatedReplicas"] and current is not None
                and current.get("reason") == NEW_RS_AVAILABLE)
    subject = f'ReplicaSet "{new.name}"' if new else f'Deployment "{meta.name(d)}"'
    if deadline and not finished:
        if complete(d, out):
            conditions = meta.set_condition(conditions, condition(
                PROGRESSING, "True", NEW_RS_AVAILABLE, f"{subject} has successfully progressed.",
                now))
        elif progressing(status, out):
            cond = condition(PROGRESSING, "True", RS_UPDATED, f"{subject} is progressing.", now)
            if current is not None and current.get("status") == "True":
                cond["lastTransitionTime"] = current.get("lastTransitionTime")
            conditions = meta.remove_condition(conditions, PROGRESSING) + [cond]
        elif timed_out(d, {**out, "conditions": conditions}, now):
            conditions = meta.set_condition(conditions, condition(
                PROGRESSING, "False", TIMED_OUT, f"{subject} has timed out progressing.", now))
    failure = replica_failure(new, old)
    if failure is not None:
        conditions = meta.set_condition(conditions, failure)
    else:
        conditions = meta.remove_condition(conditions, REPLICA_FAILURE)
    out["conditions"] = conditions
    return out


def replica_failure(new: du.RSInfo | None, old: Sequence[du.RSInfo]) -> Obj | None:
    """getReplicaFailures: the new RS's ReplicaFailure first, else any old one's."""
    for rs in [new, *old] if new is not None else old:
        cond = meta.get_condition(meta.status(rs.obj).get("conditions"), REPLICA_FAILURE)
        if cond is not None:
            when = cond.get("lastTransitionTime")
            return {"type": REPLICA_FAILURE, "status": cond.get("status"),
                    "lastUpdateTime": when, "lastTransitionTime": when,
                    "reason": cond.get("reason"), "message": cond.get("message")}
    return None


def paused_conditions(d: Mapping[str, Any], status: Obj, now: datetime) -> None:
    """checkPausedConditions, in place: Unknown while paused, and once on resume."""
    if not has_progress_deadline(d):
        return
    cond = meta.get_condition(status.get("conditions"), PROGRESSING)
    if cond is not None and cond.get("reason") == TIMED_OUT:
        return
    recorded = cond is not None and cond.get("reason") == PAUSED
    paused = bool(meta.spec(d).get("paused"))
    if paused and not recorded:
        set_condition(status, PROGRESSING, "Unknown", PAUSED, "Deployment is paused", now)
    elif not paused and recorded:
        set_condition(status, PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", now)


def deadline_requeue(d: Mapping[str, Any], status: Mapping[str, Any],
                     now: datetime) -> float | None:
    """requeueStuckDeployment: seconds until the progress deadline would pass."""
    cond = meta.get_condition(status.get("conditions"), PROGRESSING)
    if (not has_progress_deadline(d) or cond is None or complete(d, status)
            or cond.get("reason") in (TIMED_OUT, NEW_RS_AVAILABLE)):
        return None
    since = meta.parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    deadline = meta.as_int(meta.spec(d).get("progressDeadlineSeconds"))
    return since.timestamp() + deadline - now.timestamp() + 1.0
