"""ReplicaSet reconcile: exactly spec.replicas active pods, and a status that says so.

Kubernetes' ReplicaSetController.syncReplicaSet as a function. From the RS and the pods
of its namespace it decides:

- which pods it controls (ownership.claim: adopt matching orphans, release strays);
- too few: create the difference (at most 500 per pass, Kubernetes' burstReplicas),
  named `<rs>-<suffix>` with generateName `<rs>-` as a fallback for the server, labels
  and spec from the template, and our controller reference. The creates are numbered in
  slow-start batches of 1, 2, 4, ... (SlowStartInitialBatchSize = 1): the runner runs a
  batch concurrently and stops after the first batch with a failure (actions.py), so a
  quota or admission error costs one request, not 500. The names come from
  `name_suffix` so that events can name the pods and the runner can track its
  expectations (the pods it has yet to see in its informer) by name;
- too many: delete the lowest-ranked (ownership.rank_for_deletion), with uid
  preconditions;
- status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas (with
  minReadySeconds at `now`), observedGeneration, and the ReplicaFailure condition while
  the last pass's writes failed (`manage_error`, the runner's error text).

The runner must not run this again for an RS whose previous creates and deletes its
informer has not observed yet (Kubernetes' ControllerExpectations); otherwise a stale
pod list makes it create twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from apiserver import selectors
from controllers import actions, meta, ownership, podutil

Obj = dict[str, Any]

KIND = "ReplicaSet"
API_VERSION = "apps/v1"
RESOURCE = "replicasets"
COMPONENT = "replicaset-controller"
BURST_REPLICAS = 500
REPLICA_FAILURE = "ReplicaFailure"
_OMIT_EMPTY = ("fullyLabeledReplicas", "readyReplicas", "availableReplicas",
               "observedGeneration", "conditions")


def reconcile(rs: Obj, pods: Iterable[Obj], now: datetime, name_suffix: Callable[[], str],
              *, manage_error: str | None = None) -> tuple[list[actions.Action], Obj]:
    """The writes that bring `rs` to spec.replicas pods, and its new status."""
    try:
        selector = selectors.label_selector_from_dict(meta.spec(rs).get("selector"))
    except ValueError as err:
        warning = actions.event(rs, "InvalidSelector", f"invalid selector: {err}", now=now,
                                component=COMPONENT, type=actions.WARNING)
        return [warning], meta.status(rs)
    active = ownership.filter_active_pods(meta.same_namespace(pods, meta.namespace(rs)))
    claimed, writes = ownership.claim(rs, KIND, API_VERSION, selector, active, "pods", "v1")
    if not meta.is_deleting(rs):
        writes += manage_replicas(rs, claimed, now, name_suffix)
    new_status = calculate_status(rs, claimed, now, manage_error)
    if manage_error:
        reason = "FailedCreate" if len(claimed) < replicas(rs) else "FailedDelete"
        verb = "creating" if reason == "FailedCreate" else "deleting"
        writes.append(actions.event(rs, reason, f"Error {verb}: {manage_error}", now=now,
                                    component=COMPONENT, type=actions.WARNING))
    if new_status != _omit_empty(meta.status(rs)):
        writes.append(actions.UpdateStatus(RESOURCE, API_VERSION, meta.namespace(rs),
                                           meta.with_status(rs, new_status)))
    delay = _availability_requeue(rs, claimed, now)
    if delay is not None:
        writes.append(actions.RequeueAfter(delay))
    return writes, new_status


def replicas(rs: Mapping[str, Any]) -> int:
    value = meta.spec(rs).get("replicas")
    return 1 if value is None else meta.as_int(value)


def min_ready_seconds(obj: Mapping[str, Any]) -> int:
    return meta.as_int(meta.spec(obj).get("minReadySeconds"))


def manage_replicas(rs: Obj, claimed: list[Obj], now: datetime,
                    name_suffix: Callable[[], str]) -> list[actions.Action]:
    """Creates (slow-start batched) or deletes (lowest rank first) to reach spec.replicas."""
    diff = len(claimed) - replicas(rs)
    if diff < 0:
        return _creates(rs, min(-diff, BURST_REPLICAS), now, name_suffix)
    if diff > 0:
        ranked = ownership.rank_for_deletion(claimed, now, min_ready_seconds=min_ready_seconds(rs))
        return delete_pods(rs, ranked[:min(diff, BURST_REPLICAS)], now, COMPONENT)
    return []


def create_pods(owner: Obj, kind: str, api_version: str, template: Mapping[str, Any],
                count: int, now: datetime, name_suffix: Callable[[], str],
                component: str, extra_labels: Mapping[str, str] | None = None
                ) -> list[actions.Action]:
    """`count` pods from `template` in slow-start batches, each batch followed by its events.

    Shared by the Job controller, whose pods are made the same way.
    """
    prefix = podutil.pod_name_prefix(meta.name(owner))
    ref = ownership.controller_ref(owner, kind, api_version)
    out: list[actions.Action] = []
    for number, size in enumerate(actions.slow_start_sizes(count)):
        batch: list[Obj] = []
        for _ in range(size):
            pod = podutil.from_template(template, meta.namespace(owner), prefix,
                                        prefix + name_suffix(), ref)
            if extra_labels:
                pod["metadata"]["labels"] = {**pod["metadata"].get("labels", {}), **extra_labels}
            batch.append(pod)
        out += [actions.Create("pods", "v1", meta.namespace(owner), pod, batch=number)
                for pod in batch]
        out += [actions.event(owner, "SuccessfulCreate", f"Created pod: {meta.name(pod)}",
                              now=now, component=component) for pod in batch]
    return out


def delete_pods(owner: Obj, victims: Iterable[Obj], now: datetime,
                component: str) -> list[actions.Action]:
    """Deletes with uid preconditions, each followed by Kubernetes' SuccessfulDelete event."""
    out: list[actions.Action] = []
    for pod in victims:
        out.append(actions.Delete("pods", "v1", meta.namespace(pod), meta.name(pod),
                                  uid_precondition=meta.uid(pod) or None))
        out.append(actions.event(owner, "SuccessfulDelete", f"Deleted pod: {meta.name(pod)}",
                                 now=now, component=component))
    return out


def _creates(rs: Obj, count: int, now: datetime,
             name_suffix: Callable[[], str]) -> list[actions.Action]:
    template = meta.spec(rs).get("template") or {}
    return create_pods(rs, KIND, API_VERSION, template, count, now, name_suffix, COMPONENT)


def calculate_status(rs: Obj, claimed: list[Obj], now: datetime,
                     manage_error: str | None = None) -> Obj:
    """calculateStatus: counts over the pods the RS controls, and ReplicaFailure."""
    template_labels = ((meta.spec(rs).get("template") or {}).get("metadata") or {}).get("labels")
    fully = selectors.selector_from_set(template_labels or {})
    min_ready = min_ready_seconds(rs)
    conditions = list(meta.status(rs).get("conditions") or [])
    failure = meta.get_condition(conditions, REPLICA_FAILURE)
    if manage_error and failure is None:
        reason = "FailedCreate" if len(claimed) < replicas(rs) else "FailedDelete"
        conditions = meta.set_condition(conditions, {
            "type": REPLICA_FAILURE, "status": "True", "lastTransitionTime": meta.format_time(now),
            "reason": reason, "message": manage_error,
        })
    elif not manage_error and failure is not None:
        conditions = meta.remove_condition(conditions, REPLICA_FAILURE)
    status: Obj = dict(meta.status(rs))
    status.update({
        "replicas": len(claimed),
        "fullyLabeledReplicas": sum(1 for p in claimed if fully.matches(meta.labels(p))),
        "readyReplicas": sum(1 for p in claimed if podutil.is_ready(p)),
        "availableReplicas": sum(1 for p in claimed if podutil.is_available(p, min_ready, now)),
        "observedGeneration": meta.generation(rs),
        "conditions": conditions,
    })
    return _omit_empty(status)


def _omit_empty(status: Mapping[str, Any]) -> Obj:
    """The status as Go marshals it: zero counts and empty lists left out."""
    out = dict(status)
    for key in _OMIT_EMPTY:
        if not out.get(key):
            out.pop(key, None)
    out.setdefault("replicas", 0)
    return out


def _availability_requeue(rs: Obj, claimed: list[Obj], now: datetime) -> float | None:
    """Seconds until the next ready pod becomes available (no watch event will say so)."""
    min_ready = min_ready_seconds(rs)
    times = [podutil.becomes_available_at(p, min_ready, now) for p in claimed]
    pending = [t for t in times if t is not None]
    if not pending:
        return None
    return max(1.0, (min(pending) - now).total_seconds() + 1.0)
