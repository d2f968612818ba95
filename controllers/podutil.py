"""What controllers read from a Pod: phase, readiness, availability, restarts (pure).

Mirrors k8s.io/kubernetes/pkg/api/v1/pod (IsPodReady, IsPodAvailable) and the
controller helpers that build a pod from a template (GetPodFromTemplate). Availability
is readiness held for longer than minReadySeconds, measured from the Ready condition's
lastTransitionTime and compared with `now` strictly, as Kubernetes does.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from controllers import meta

Obj = dict[str, Any]

PENDING = "Pending"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
UNKNOWN = "Unknown"


def phase(pod: Mapping[str, Any]) -> str:
    return str(meta.status(pod).get("phase") or "")


def node_name(pod: Mapping[str, Any]) -> str:
    return str(meta.spec(pod).get("nodeName") or "")


def is_terminal(pod: Mapping[str, Any]) -> bool:
    return phase(pod) in (SUCCEEDED, FAILED)


def ready_condition(pod: Mapping[str, Any]) -> Obj | None:
    return meta.get_condition(meta.status(pod).get("conditions"), "Ready")


def is_ready(pod: Mapping[str, Any]) -> bool:
    cond = ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def ready_since(pod: Mapping[str, Any]) -> datetime | None:
    """When a ready pod became ready (None when not ready or not recorded)."""
    cond = ready_condition(pod)
    if cond is None or cond.get("status") != "True":
        return None
    return meta.parse_time(cond.get("lastTransitionTime"))


def becomes_available_at(pod: Mapping[str, Any], min_ready_seconds: int,
                         now: datetime) -> datetime | None:
    """For a pod that is ready but not yet available at `now`: when it will be. Else None."""
    since = ready_since(pod)
    if min_ready_seconds <= 0 or since is None:
        return None
    when = since + timedelta(seconds=min_ready_seconds)
    return when if when >= now else None


def is_available(pod: Mapping[str, Any], min_ready_seconds: int, now: datetime) -> bool:
    """IsPodAvailable: ready, and ready for longer than minReadySeconds at `now`."""
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    return since is not None and since + timedelta(seconds=min_ready_seconds) < now


def container_statuses(pod: Mapping[str, Any], init: bool = False) -> list[Obj]:
    key = "initContainerStatuses" if init else "containerStatuses"
    return [c for c in meta.status(pod).get(key) or [] if isinstance(c, dict)]


def max_restarts(pod: Mapping[str, Any]) -> int:
    return max((meta.as_int(c.get("restartCount")) for c in container_statuses(pod)), default=0)


def total_restarts(pod: Mapping[str, Any]) -> int:
    """Restarts of every init and app container (the Job's OnFailure back-off count)."""
    statuses = container_statuses(pod, init=True) + container_statuses(pod)
    return sum(meta.as_int(c.get("restartCount")) for c in statuses)


def finish_time(pod: Mapping[str, Any]) -> datetime | None:
    """When a terminal pod finished: its last container's finishedAt, else best effort."""
    finished = [
        meta.parse_time(((c.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        for c in container_statuses(pod)
    ]
    times = [t for t in finished if t is not None]
    if times:
        return max(times)
    cond = ready_condition(pod)
    when = meta.parse_time(cond.get("lastTransitionTime")) if cond else None
    return when or meta.creation_time(pod)


def ip(pod: Mapping[str, Any]) -> str:
    st = meta.status(pod)
    if st.get("podIP"):
        return str(st["podIP"])
    for entry in st.get("podIPs") or []:
        if isinstance(entry, dict) and entry.get("ip"):
            return str(entry["ip"])
    return ""


def from_template(template: Mapping[str, Any], namespace: str, generate_name: str,
                  name: str, owner_ref: Obj) -> Obj:
    """GetPodFromTemplate: labels, annotations, finalizers and spec copied, owner set."""
    tmeta = template.get("metadata") or {}
    pod_meta: Obj = {"generateName": generate_name, "namespace": namespace}
    if name:
        pod_meta["name"] = name
    for key in ("labels", "annotations"):
        if tmeta.get(key):
            pod_meta[key] = dict(tmeta[key])
    if tmeta.get("finalizers"):
        pod_meta["finalizers"] = list(tmeta["finalizers"])
    pod_meta["ownerReferences"] = [dict(owner_ref)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def pod_name_prefix(controller_name: str) -> str:
    """getPodsPrefix: pods are named `<controller>-<suffix>`."""
    return f"{controller_name}-"
