"""What the scheduler writes besides the binding: the PodScheduled condition and events.

Built as plain dicts from a Decision and the time, so the scheduler process only has to
send them. The shapes are kube-scheduler's, seen through core/v1: a pod that fits
nowhere gets PodScheduled=False with reason Unschedulable and the FitError message, and
a Warning event FailedScheduling (message cut to 1024 bytes as events allow); a bound
pod gets a Normal event Scheduled, "Successfully assigned ns/name to node".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from apiserver.objects import timestamp
from controllers.scheduling.fit_error import truncate
from controllers.scheduling.schedule import Decision

SCHEDULER_NAME = "default-scheduler"
REASON_UNSCHEDULABLE = "Unschedulable"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def pod_scheduled_condition(
    decision: Decision, now: datetime, previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The PodScheduled condition to set after a decision.

    lastTransitionTime moves only when the status changes (podutil.UpdatePodCondition):
    pass the pod's current PodScheduled condition as `previous` to keep it.
    """
    status = "True" if decision.scheduled else "False"
    since = timestamp(now)
    if previous is not None and previous.get("status") == status and previous.get("lastTransitionTime"):
        since = str(previous["lastTransitionTime"])
    condition: dict[str, Any] = {
        "type": "PodScheduled", "status": status, "lastProbeTime": None, "lastTransitionTime": since,
    }
    if not decision.scheduled:
        condition["reason"] = REASON_UNSCHEDULABLE
        condition["message"] = decision.message
    return condition


def failed_scheduling_event(pod: Mapping[str, Any], message: str, now: datetime, *, instance: str = "") -> dict[str, Any]:
    """The Warning event a pod gets each time it fits nowhere."""
    return _event(pod, "FailedScheduling", "Warning", truncate(message), "Scheduling", now, instance)


def scheduled_event(pod: Mapping[str, Any], node: str, now: datetime, *, instance: str = "") -> dict[str, Any]:
    """The Normal event a pod gets when it is bound."""
    meta = _mapping(pod.get("metadata"))
    message = f"Successfully assigned {meta.get('namespace', '')}/{meta.get('name', '')} to {node}"
    return _event(pod, "Scheduled", "Normal", message, "Binding", now, instance)


def event_name(pod_name: str, now: datetime) -> str:
    """client-go's "<object name>.<unix nanoseconds in hex>"."""
    nanos = (now - _EPOCH) // timedelta(microseconds=1) * 1000
    return f"{pod_name}.{nanos:x}"


def _event(
    pod: Mapping[str, Any], reason: str, kind: str, message: str, action: str, now: datetime, instance: str,
) -> dict[str, Any]:
    meta = _mapping(pod.get("metadata"))
    namespace = str(meta.get("namespace") or "default")
    stamp = timestamp(now)
    involved = {
        "apiVersion": str(pod.get("apiVersion") or "v1"), "kind": "Pod", "namespace": namespace,
        "name": str(meta.get("name") or ""), "uid": str(meta.get("uid") or ""),
    }
    if meta.get("resourceVersion"):
        involved["resourceVersion"] = str(meta["resourceVersion"])
    source = {"component": SCHEDULER_NAME}
    if instance:
        source["host"] = instance
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(involved["name"], now), "namespace": namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": kind,
        "source": source,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "action": action,
        "reportingComponent": SCHEDULER_NAME,
        "reportingInstance": instance,
    }


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
