"""Job reconcile: run pods until enough succeed, or fail the Job when it must give up.

Kubernetes' job controller (pkg/controller/job, NonIndexed completion mode) as a
function of the Job, the pods of its namespace and `now`:

- pods are the Job's when they carry its controller reference (ownership.claim over the
  Job's selector, which the apiserver generates as `batch.kubernetes.io/controller-uid`;
  new pods also get `controller-uid`, `job-name` and their `batch.kubernetes.io/` forms
  unless the selector is manual);
- active pods = min(parallelism, completions - succeeded); with no completions,
  parallelism until one pod succeeds, then just the ones still running. Extra active
  pods are deleted (lowest ranked first); missing ones created in slow-start batches,
  after the pod-failure back-off (10 s doubling per failure since the last success,
  at most 10 min) has passed since the last failure;
- failures: restartPolicy Never counts Failed pods; OnFailure also counts container
  restarts in pending and running pods (pastBackoffLimitOnFailure). More failures than
  backoffLimit fails the Job (BackoffLimitExceeded); running longer than
  activeDeadlineSeconds since startTime fails it too (DeadlineExceeded). A failed Job's
  active pods are deleted;
- done when succeeded >= completions (or, without completions, one success) and nothing
  is active: condition Complete=True and completionTime, what `kubectl wait
  --for=condition=complete` waits on. A finished Job is never touched again.

Counts come from the pods present (Kubernetes before finalizer tracking); they never go
below what status already says, so a garbage-collected pod does not un-count itself.
Kubernetes 1.31+ first sets FailureTarget / SuccessCriteriaMet and waits for pods to
terminate; kubelite writes the final condition at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from apiserver import selectors
from controllers import actions, meta, ownership, podutil, replicaset

Obj = dict[str, Any]

KIND = "Job"
API_VERSION = "batch/v1"
RESOURCE = "jobs"
COMPONENT = "job-controller"
BURST = 500
POD_FAILURE_BACKOFF = timedelta(seconds=10)
MAX_POD_FAILURE_BACKOFF = timedelta(minutes=10)


def reconcile(job: Obj, pods: Iterable[Obj], now: datetime,
              name_suffix: Callable[[], str]) -> tuple[list[actions.Action], Obj]:
    """The writes that move `job` toward completion (or failure), and its new status."""
    status = dict(meta.status(job))
    if is_finished(job):
        return [], status
    try:
        selector = selectors.label_selector_from_dict(meta.spec(job).get("selector"))
    except ValueError as err:
        return [actions.event(job, "InvalidSelector", f"invalid selector: {err}", now=now,
                              component=COMPONENT, type=actions.WARNING)], status
    claimed, writes = ownership.claim(job, KIND, API_VERSION, selector,
                                      meta.same_namespace(pods, meta.namespace(job)), "pods", "v1")
    active = ownership.filter_active_pods(claimed)
    succeeded = max(meta.as_int(status.get("succeeded")),
                    sum(1 for p in claimed if podutil.phase(p) == podutil.SUCCEEDED))
    failed = max(meta.as_int(status.get("failed")),
                 sum(1 for p in claimed if podutil.phase(p) == podutil.FAILED))
    suspended = bool(meta.spec(job).get("suspend"))
    if not status.get("startTime") and not suspended:
        status["startTime"] = meta.format_time(now)
    failure = _failure(job, status, claimed, failed, now)
    requeue: float | None = None
    if failure is not None:
        reason, message = failure
        writes += replicaset.delete_pods(job, active, now, COMPONENT)
        active_count = 0
        status["conditions"] = meta.set_condition(status.get("conditions"),
                                                  _condition("Failed", reason, message, now))
        writes.append(actions.event(job, reason, message, now=now, component=COMPONENT,
                                    type=actions.WARNING))
    else:
        managed, active_count, requeue = _manage(job, claimed, active, succeeded, now, name_suffix)
        writes += managed
        if _complete(job, succeeded, active_count):
            status["conditions"] = meta.set_condition(status.get("conditions"), _condition(
                "Complete", "CompletionsReached", "Reached expected number of succeeded pods", now))
            status["completionTime"] = meta.format_time(now)
            writes.append(actions.event(job, "Completed", "Job completed", now=now,
                                        component=COMPONENT))
        else:
            requeue = _earliest(requeue, _deadline_requeue(job, status, now))
    status.update({"active": active_count, "succeeded": succeeded, "failed": failed,
                   "ready": sum(1 for p in active if podutil.is_ready(p))})
    status = _omit_empty(status)
    if status != _omit_empty(meta.status(job)):
        writes.append(actions.UpdateStatus(RESOURCE, API_VERSION, meta.namespace(job),
                                           meta.with_status(job, status)))
    if requeue is not None:
        writes.append(actions.RequeueAfter(requeue))
    return writes, status


def is_finished(job: Mapping[str, Any]) -> bool:
    """IsJobFinished: a Complete or Failed condition with status True."""
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in meta.status(job).get("conditions") or [])


def _failure(job: Obj, status: Obj, claimed: list[Obj], failed: int,
             now: datetime) -> tuple[str, str] | None:
    limit = meta.spec(job).get("backoffLimit")
    limit = 6 if limit is None else meta.as_int(limit)
    if failed > limit or _past_backoff_on_failure(job, claimed, limit):
        return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
    if _past_deadline(job, status, now):
        return "DeadlineExceeded", "Job was active longer than specified deadline"
    return None


def _past_backoff_on_failure(job: Obj, pods: list[Obj], limit: int) -> bool:
    """OnFailure pods restart in place: their restarts count as failures."""
    template_spec = (meta.spec(job).get("template") or {}).get("spec") or {}
    if template_spec.get("restartPolicy") != "OnFailure":
        return False
    restarts = sum(podutil.total_restarts(p) for p in pods
                   if podutil.phase(p) in (podutil.RUNNING, podutil.PENDING))
    return restarts > 0 if limit == 0 else restarts >= limit


def _past_deadline(job: Obj, status: Obj, now: datetime) -> bool:
    remaining = _deadline_left(job, status, now)
    return remaining is not None and remaining <= 0


def _deadline_left(job: Obj, status: Obj, now: datetime) -> float | None:
    deadline = meta.spec(job).get("activeDeadlineSeconds")
    start = meta.parse_time(status.get("startTime"))
    if deadline is None or start is None or meta.spec(job).get("suspend"):
        return None
    return start.timestamp() + meta.as_int(deadline) - now.timestamp()


def _deadline_requeue(job: Obj, status: Obj, now: datetime) -> float | None:
    remaining = _deadline_left(job, status, now)
    return None if remaining is None else max(remaining, 1.0)


def _manage(job: Obj, claimed: list[Obj], active: list[Obj], succeeded: int, now: datetime,
            name_suffix: Callable[[], str]) -> tuple[list[actions.Action], int, float | None]:
    """manageJob: delete extra active pods or create missing ones; the new active count."""
    if meta.spec(job).get("suspend"):
        return replicaset.delete_pods(job, active, now, COMPONENT), 0, None
    spec = meta.spec(job)
    parallelism = meta.as_int(spec.get("parallelism"), 1)
    completions = spec.get("completions")
    if completions is None:
        want = len(active) if succeeded > 0 else parallelism
    else:
        want = max(0, min(meta.as_int(completions) - succeeded, parallelism))
    if len(active) > want:
        victims = ownership.rank_for_deletion(active, now, related=[])[:len(active) - want]
        return replicaset.delete_pods(job, victims, now, COMPONENT), want, None
    if len(active) == want:
        return [], want, None
    wait = _backoff_left(claimed, now)
    if wait is not None:
        return [], len(active), wait
    count = min(want - len(active), BURST)
    template = spec.get("template") or {}
    creates = replicaset.create_pods(job, KIND, API_VERSION, template, count, now, name_suffix,
                                     COMPONENT, extra_labels=_job_labels(job))
    return creates, len(active) + count, None


def _job_labels(job: Obj) -> dict[str, str]:
    if meta.spec(job).get("manualSelector") is True:
        return {}
    uid, name = meta.uid(job), meta.name(job)
    return {"controller-uid": uid, "batch.kubernetes.io/controller-uid": uid,
            "job-name": name, "batch.kubernetes.io/job-name": name}


def _backoff_left(pods: list[Obj], now: datetime) -> float | None:
    """Seconds before the next pod may start, after failures since the last success."""
    last_success = max((podutil.finish_time(p) for p in pods
                        if podutil.phase(p) == podutil.SUCCEEDED and podutil.finish_time(p)),
                       default=None)
    failures = [t for t in (podutil.finish_time(p) for p in pods
                            if podutil.phase(p) == podutil.FAILED)
                if t is not None and (last_success is None or t > last_success)]
    if not failures:
        return None
    delay = min(POD_FAILURE_BACKOFF * 2 ** (len(failures) - 1), MAX_POD_FAILURE_BACKOFF)
    left = (max(failures) + delay - now).total_seconds()
    return left if left > 0 else None


def _complete(job: Obj, succeeded: int, active_count: int) -> bool:
    completions = meta.spec(job).get("completions")
    if completions is None:
        return succeeded > 0 and active_count == 0
    return succeeded >= meta.as_int(completions) and active_count == 0


def _condition(kind: str, reason: str, message: str, now: datetime) -> Obj:
    stamp = meta.format_time(now)
    return {"type": kind, "status": "True", "lastProbeTime": stamp,
            "lastTransitionTime": stamp, "reason": reason, "message": message}


def _earliest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _omit_empty(status: Mapping[str, Any]) -> Obj:
    """JobStatus as Go marshals it: zero counts left out, `ready` always present."""
    out = {k: v for k, v in status.items() if v not in (0, None, [], "")}
    out["ready"] = meta.as_int(status.get("ready"))
    return out
