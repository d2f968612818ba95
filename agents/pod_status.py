"""A pod's status as the kubelet reports it, from what the runtime saw (pure).

The pod worker knows, per container, the latest instance and the one before it (as
the runtime reports them), the restart count, and what the probes concluded; it passes
that as a `ContainerView`. From views and the pod this module derives everything the
kubelet would post, following pkg/kubelet/kubelet_pods.go (getPhase,
convertToAPIContainerStatuses), pkg/kubelet/status/generate.go and the status manager,
as of Kubernetes 1.32:

- a container's `state` is its latest instance (running / terminated), or waiting: with
  the view's reason (CrashLoopBackOff during back-off, the last instance moving to
  `lastState`), or with ContainerCreating / PodInitializing when nothing ran yet.
  `lastState` is the instance before. `ready` needs a running, started container;
  a regular init container is ready once it exited 0;
- the phase is getPhase's: Pending while a regular init container has not succeeded
  or a container waits; Running while any runs or will restart; Succeeded / Failed when
  all stopped and the restart policy will not restart them (an init container failing
  under restartPolicy Never fails the pod). Sidecars (init containers with
  restartPolicy Always) count as in 1.32. A terminal phase never changes again;
- conditions in the kubelet's order: PodReadyToStartContainers, Initialized, Ready,
  ContainersReady, PodScheduled, after any condition the kubelet does not own (kept as
  they are). A condition keeps its lastTransitionTime until its status flips;
- qosClass from requests and limits (Guaranteed / Burstable / BestEffort).

Times are unix seconds in, RFC 3339 UTC whole seconds out, as metav1.Time prints them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from apiserver.quantities import Quantity, quantity_from_json

Obj = dict[str, Any]

PENDING = "Pending"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
TERMINAL = frozenset({SUCCEEDED, FAILED})

CONTAINER_CREATING = "ContainerCreating"
POD_INITIALIZING = "PodInitializing"
CONTAINER_ID_SCHEME = "process://"
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                      "PodScheduled")
_KUBELET_OWNED = frozenset(KUBELET_CONDITIONS) | {"PodResizePending", "PodResizeInProgress"}


class RuntimeContainer(Protocol):
    """What the runtime reports about one container instance (agents.runtime.ContainerStatus)."""

    id: str
    name: str
    attempt: int
    state: str                  # "running" | "exited" | "unknown"
    started_at: float | None
    finished_at: float | None
    exit_code: int | None
    reason: str | None
    message: str | None
    image: str


@dataclass
class ContainerView:
    """One container of a pod as the pod worker sees it."""

    name: str
    image: str
    current: RuntimeContainer | None = None     # the latest instance
    previous: RuntimeContainer | None = None    # the one before it, for lastState
    restart_count: int = 0
    ready: bool = False                         # readiness probe passed (or none)
    started: bool | None = None                 # startup probe passed; None: no startup probe
    waiting_reason: str | None = None           # e.g. CrashLoopBackOff while backing off
    waiting_message: str | None = None


def rfc3339(ts: float | None) -> str | None:
    """Unix seconds as metav1.Time prints them; None (JSON null) for a missing time."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(ts)))


def restart_decision(restart_policy: str | None, exit_code: int | None) -> bool:
    """Whether a container that exited with `exit_code` is started again."""
    policy = restart_policy or "Always"
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def is_sidecar(container: Mapping[str, Any]) -> bool:
    """An init container with restartPolicy Always keeps running beside the others."""
    return container.get("restartPolicy") == "Always"


# --- container statuses -----------------------------------------------------------

def container_status(view: ContainerView, *, default_reason: str = CONTAINER_CREATING,
                     role: str = "container", old: Mapping[str, Any] | None = None,
                     volume_mounts: Sequence[Mapping[str, Any]] = ()) -> Obj:
    """One containerStatuses entry.

    `role` is "container", "init" (a regular init container: ready once it exited 0)
    or "sidecar". `old` is this container's entry from the previously posted status: a
    container the runtime lost while it was running shows as terminated, as the kubelet
    shows it.
    """
    cur = view.current
    state: Obj
    last: Obj = {}
    restarts = view.restart_count
    if view.previous is not None and view.previous.state == "exited":
        last = {"terminated": _terminated(view.previous)}
    if cur is None:
        state = _waiting(view.waiting_reason or default_reason, view.waiting_message)
    elif cur.state == "running":
        state = {"running": {"startedAt": rfc3339(cur.started_at)}}
    elif cur.state == "exited":
        if view.waiting_reason:
            state = _waiting(view.waiting_reason, view.waiting_message)
            last = {"terminated": _terminated(cur)}
        else:
            state = {"terminated": _terminated(cur)}
    elif old is not None and "running" in (old.get("state") or {}):
        state = {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown",
                                "message": "The container could not be located when the pod "
                                           "was terminated",
                                "startedAt": None, "finishedAt": None}}
        restarts = int(old.get("restartCount") or 0) + 1
    else:
        state = _waiting(view.waiting_reason, view.waiting_message)
    running = cur is not None and cur.state == "running"
    started = running and (view.started is None or view.started)
    if role == "init":
        ready = cur is not None and cur.state == "exited" and cur.exit_code == 0 \
            and not view.waiting_reason
    else:
        ready = running and started and view.ready
    status: Obj = {"name": view.name, "state": state, "lastState": last, "ready": ready,
                   "restartCount": restarts, "image": view.image,
                   "imageID": (cur.image or view.image) if cur is not None else ""}
    if cur is not None:
        status["containerID"] = CONTAINER_ID_SCHEME + cur.id
    status["started"] = started
    if volume_mounts:
        status["volumeMounts"] = [_mount_status(m) for m in volume_mounts]
    return status


def _waiting(reason: str | None, message: str | None) -> Obj:
    waiting: Obj = {}
    if reason:
        waiting["reason"] = reason
    if message:
        waiting["message"] = message
    return {"waiting": waiting}


def _terminated(c: RuntimeContainer) -> Obj:
    code = c.exit_code if c.exit_code is not None else 0
    term: Obj = {"exitCode": code, "reason": c.reason or ("Completed" if code == 0 else "Error")}
    if c.message:
        term["message"] = c.message
    term["startedAt"] = rfc3339(c.started_at)
    term["finishedAt"] = rfc3339(c.finished_at)
    term["containerID"] = CONTAINER_ID_SCHEME + c.id
    return term


def _mount_status(mount: Mapping[str, Any]) -> Obj:
    entry: Obj = {"name": mount.get("name"), "mountPath": mount.get("mountPath")}
    if mount.get("readOnly"):
        entry["readOnly"] = True
        entry["recursiveReadOnly"] = "Disabled"
    return entry


def _by_name(views: Iterable[ContainerView]) -> dict[str, ContainerView]:
    return {v.name: v for v in views}


def _statuses(spec: Mapping[str, Any], init_views: Iterable[ContainerView],
              views: Iterable[ContainerView], old: Mapping[str, Any] | None = None
              ) -> tuple[list[Obj], list[Obj]]:
    """(initContainerStatuses in spec order, containerStatuses sorted by name)."""
    inits = spec.get("initContainers") or []
    default = POD_INITIALIZING if inits else CONTAINER_CREATING
    old = old or {}
    old_init = {s.get("name"): s for s in old.get("initContainerStatuses") or []}
    old_main = {s.get("name"): s for s in old.get("containerStatuses") or []}

    def build(container: Mapping[str, Any], seen: dict[str, ContainerView], role: str,
              olds: Mapping[Any, Any]) -> Obj:
        name = str(container.get("name", ""))
        view = seen.get(name) or ContainerView(name=name, image=str(container.get("image", "")))
        return container_status(view, default_reason=default, role=role, old=olds.get(name),
                                volume_mounts=container.get("volumeMounts") or ())

    init_seen = _by_name(init_views)
    main_seen = _by_name(views)
    init_statuses = [build(c, init_seen, "sidecar" if is_sidecar(c) else "init", old_init)
                     for c in inits]
    main_statuses = sorted((build(c, main_seen, "container", old_main)
                            for c in spec.get("containers") or []), key=lambda s: s["name"])
    return init_statuses, main_statuses


# --- phase ----------------------------------------------------------------------

def pod_phase(spec: Mapping[str, Any], init_views: Iterable[ContainerView],
              views: Iterable[ContainerView], *, terminal: bool = False) -> str:
    """The kubelet's getPhase; `terminal` once the pod worker has stopped the pod for good."""
    init_statuses, statuses = _statuses(spec, init_views, views)
    return _phase(spec, init_statuses + statuses, terminal)


def _phase(spec: Mapping[str, Any], statuses: list[Obj], terminal: bool) -> str:
    by_name = {s["name"]: s for s in statuses}
    policy = spec.get("restartPolicy") or "Always"
    pending_inits = pending_sidecars = failed_init = 0
    unknown = running = waiting = stopped = succeeded = 0
    for container in spec.get("initContainers") or []:
        status = by_name.get(container.get("name"))
        sidecar = is_sidecar(container)
        if status is None:
            if sidecar:
                unknown += 1
            else:
                pending_inits += 1
            continue
        state, last = status["state"], status["lastState"]
        if sidecar:
            if "running" in state:
                running += 1
                if not status.get("started"):
                    pending_sidecars += 1
            elif "waiting" in state and "terminated" not in last:
                pending_sidecars += 1
                waiting += 1
            elif "terminated" not in state and "waiting" not in state:
                pending_sidecars += 1
                unknown += 1
        elif "terminated" in state:
            failed_init += state["terminated"]["exitCode"] != 0
        elif "waiting" in state and "terminated" in last:
            failed_init += last["terminated"]["exitCode"] != 0
        else:
            pending_inits += 1
    for container in spec.get("containers") or []:
        status = by_name.get(container.get("name"))
        if status is None:
            unknown += 1
            continue
        state, last = status["state"], status["lastState"]
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"]["exitCode"] == 0
        elif "waiting" in state:
            if "terminated" in last:
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    if failed_init and policy == "Never":
        return FAILED
    if pending_inits or (pending_sidecars and not _any_regular_started(spec, by_name)) or waiting:
        return PENDING
    if running and not unknown:
        return RUNNING
    if not running and stopped and not unknown:
        if terminal:
            return SUCCEEDED if stopped == succeeded else FAILED
        if policy == "Always":
            return RUNNING
        if stopped == succeeded:
            return SUCCEEDED
        if policy == "Never":
            return FAILED
        return RUNNING
    return PENDING


def _any_regular_started(spec: Mapping[str, Any], by_name: Mapping[str, Obj]) -> bool:
    for container in spec.get("containers") or []:
        state = (by_name.get(container.get("name")) or {}).get("state") or {}
        if "running" in state or "terminated" in state:
            return True
    return False


def init_progress(spec: Mapping[str, Any], init_views: Iterable[ContainerView]
                  ) -> tuple[int | None, bool]:
    """Which init container to start now, and whether initialization failed for good.

    Returns (index, False) to start (or restart) init container `index`; (None, False)
    while one is running or once all are done (see `initialized`); (None, True) when a
    regular init container failed and restartPolicy is Never. Sidecars count as done
    once started; one that stopped is started again.
    """
    seen = _by_name(init_views)
    policy = spec.get("restartPolicy") or "Always"
    for index, container in enumerate(spec.get("initContainers") or []):
        view = seen.get(container.get("name"))
        cur = view.current if view is not None else None
        if is_sidecar(container):
            if cur is None or cur.state != "running":
                return index, False
            if view is not None and view.started is False:
                return None, False
            continue
        if cur is None or cur.state == "unknown":
            return index, False
        if cur.state == "running":
            return None, False
        if cur.exit_code == 0:
            continue
        # A failed init container runs again under Always as under OnFailure.
        return (None, True) if policy == "Never" else (index, False)
    return None, False


def initialized(spec: Mapping[str, Any], init_views: Iterable[ContainerView]) -> bool:
    """Every regular init container succeeded and every sidecar has started."""
    seen = _by_name(init_views)
    return all(_init_done(c, seen.get(c.get("name"))) for c in spec.get("initContainers") or [])


def _init_done(container: Mapping[str, Any], view: ContainerView | None) -> bool:
    cur = view.current if view is not None else None
    if cur is None:
        return False
    if is_sidecar(container):
        return cur.state == "running" and view is not None and view.started is not False
    return cur.state == "exited" and cur.exit_code == 0


# --- conditions -----------------------------------------------------------------

def pod_conditions(pod: Mapping[str, Any], init_statuses: Sequence[Obj], statuses: Sequence[Obj],
                   phase: str, *, previous_status: Mapping[str, Any] | None, now: float,
                   sandbox_ready: bool) -> list[Obj]:
    """The pod's conditions: those the kubelet does not own, then the kubelet's five."""
    spec = pod.get("spec") or {}
    api_status = pod.get("status") or {}
    kept = [dict(c) for c in api_status.get("conditions") or []
            if c.get("type") not in _KUBELET_OWNED]
    everything = {s["name"]: s for s in [*init_statuses, *statuses]}
    containers_ready = _containers_ready(spec, everything, phase)
    ready = dict(containers_ready, type="Ready")
    if containers_ready["status"] == "True":
        ready = _readiness_gates(spec, kept)
    generated = [
        {"type": "PodReadyToStartContainers", "status": "True" if sandbox_ready else "False"},
        _initialized(spec, everything, phase),
        ready,
        containers_ready,
        {"type": "PodScheduled", "status": "True"},
    ]
    old = previous_status if previous_status is not None else api_status
    old_by_type = {c.get("type"): c for c in old.get("conditions") or []}
    stamp = rfc3339(now)
    result = kept
    for cond in generated:
        prior = old_by_type.get(cond["type"])
        since = prior.get("lastTransitionTime") if prior and prior.get("status") == cond["status"] \
            else stamp
        entry: Obj = {"type": cond["type"], "status": cond["status"], "lastProbeTime": None,
                      "lastTransitionTime": since or stamp}
        for key in ("reason", "message"):
            if cond.get(key):
                entry[key] = cond[key]
        result.append(entry)
    return result


def _go_list(names: Sequence[str]) -> str:
    return "[" + " ".join(names) + "]"


def _containers_ready(spec: Mapping[str, Any], statuses: Mapping[str, Obj], phase: str) -> Obj:
    unknown: list[str] = []
    unready: list[str] = []
    members = [c for c in spec.get("initContainers") or [] if is_sidecar(c)]
    for container in [*members, *(spec.get("containers") or [])]:
        status = statuses.get(container.get("name"))
        if status is None:
            unknown.append(container.get("name"))
        elif not status.get("ready"):
            unready.append(container.get("name"))
    if phase == SUCCEEDED and not unknown:
        return {"type": "ContainersReady", "status": "False", "reason": "PodCompleted"}
    if phase == FAILED:
        return {"type": "ContainersReady", "status": "False", "reason": "PodFailed"}
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: {_go_list(unknown)}")
    if unready:
        messages.append(f"containers with unready status: {_go_list(unready)}")
    if messages:
        return {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady",
                "message": ", ".join(messages)}
    return {"type": "ContainersReady", "status": "True"}


def _readiness_gates(spec: Mapping[str, Any], conditions: Sequence[Obj]) -> Obj:
    by_type = {c.get("type"): c for c in conditions}
    messages = []
    for gate in spec.get("readinessGates") or []:
        kind = gate.get("conditionType")
        cond = by_type.get(kind)
        if cond is None:
            messages.append(f'corresponding condition of pod readiness gate "{kind}" does not exist.')
        elif cond.get("status") != "True":
            messages.append(f'the status of pod readiness gate "{kind}" is not "True", '
                            f"but {cond.get('status')}")
    if messages:
        return {"type": "Ready", "status": "False", "reason": "ReadinessGatesNotReady",
                "message": ", ".join(messages)}
    return {"type": "Ready", "status": "True"}


def _initialized(spec: Mapping[str, Any], statuses: Mapping[str, Obj], phase: str) -> Obj:
    unknown: list[str] = []
    incomplete: list[str] = []
    for container in spec.get("initContainers") or []:
        status = statuses.get(container.get("name"))
        if status is None:
            unknown.append(container.get("name"))
        elif not (status.get("started") if is_sidecar(container) else status.get("ready")):
            incomplete.append(container.get("name"))
    if phase == SUCCEEDED and not unknown:
        return {"type": "Initialized", "status": "True", "reason": "PodCompleted"}
    if _any_regular_started(spec, statuses):
        return {"type": "Initialized", "status": "True"}
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: {_go_list(unknown)}")
    if incomplete:
        messages.append(f"containers with incomplete status: {_go_list(incomplete)}")
    if messages:
        return {"type": "Initialized", "status": "False", "reason": "ContainersNotInitialized",
                "message": ", ".join(messages)}
    return {"type": "Initialized", "status": "True"}


# --- QoS ------------------------------------------------------------------------

def qos_class(pod: Mapping[str, Any]) -> str:
    """Guaranteed, Burstable or BestEffort, computed as Kubernetes' ComputePodQOS.

    Only cpu and memory count, only values above zero, summed over init and regular
    containers. Guaranteed needs every container to limit both, and the summed requests
    to equal the summed limits for every resource.
    """
    spec = pod.get("spec") or {}
    requests: dict[str, Quantity] = {}
    limits: dict[str, Quantity] = {}
    guaranteed = True
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        resources = container.get("resources") or {}
        for name, raw in (resources.get("requests") or {}).items():
            _add_positive(requests, name, raw)
        limited = set()
        for name, raw in (resources.get("limits") or {}).items():
            if _add_positive(limits, name, raw):
                limited.add(name)
        if not {"cpu", "memory"} <= limited:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(name in limits and limits[name] == req for name, req in requests.items()) \
            and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def _add_positive(total: dict[str, Quantity], name: str, raw: object) -> bool:
    if name not in ("cpu", "memory"):
        return False
    try:
        quantity = quantity_from_json(raw)
    except (ValueError, TypeError):
        return False
    if quantity.value <= 0:
        return False
    total[name] = total[name] + quantity if name in total else quantity
    return True


# --- the whole status -------------------------------------------------------------

def pod_status(pod: Mapping[str, Any], init_views: Iterable[ContainerView],
               views: Iterable[ContainerView], *, pod_ip: str | None, host_ip: str | None,
               start_time: float | str | None, previous_status: Mapping[str, Any] | None, now: float,
               reason: str | None = None, message: str | None = None,
               terminal: bool = False, sandbox_ready: bool | None = None) -> Obj:
    """The status the kubelet would post for `pod`.

    `previous_status` is the status last posted (None: take the pod's own). `reason`
    and `message` fail the whole pod (an eviction, a rejected admission). `terminal`
    says the pod worker stopped the pod for good, so its containers will not restart.
    `sandbox_ready` (default: the pod has an IP or uses the host network) drives
    PodReadyToStartContainers.
    """
    spec = pod.get("spec") or {}
    api_status = pod.get("status") or {}
    old = previous_status if previous_status is not None else api_status
    init_statuses, statuses = _statuses(spec, init_views, views, old)
    phase = _phase(spec, init_statuses + statuses, terminal)
    if phase not in TERMINAL:
        if old.get("phase") in TERMINAL:
            phase = old["phase"]
        elif api_status.get("phase") in TERMINAL:
            phase = api_status["phase"]
    if reason or message:
        phase = FAILED
    elif phase == old.get("phase"):
        reason = old.get("reason") or api_status.get("reason")
        message = old.get("message") or api_status.get("message")
    if spec.get("hostNetwork") and not pod_ip:
        pod_ip = host_ip
    pod_ip = pod_ip or old.get("podIP")
    host_ip = host_ip or old.get("hostIP")
    if sandbox_ready is None:
        sandbox_ready = bool(pod_ip)
    status: Obj = {"phase": phase,
                   "conditions": pod_conditions(pod, init_statuses, statuses, phase,
                                                previous_status=old, now=now,
                                                sandbox_ready=sandbox_ready)}
    if message:
        status["message"] = message
    if reason:
        status["reason"] = reason
    if host_ip:
        status["hostIP"] = host_ip
        status["hostIPs"] = [{"ip": host_ip}]
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    if isinstance(start_time, str):
        started: str | None = start_time
    else:
        started = rfc3339(start_time) if start_time is not None else old.get("startTime")
    if started:
        status["startTime"] = started
    if spec.get("initContainers"):
        status["initContainerStatuses"] = init_statuses
    status["containerStatuses"] = statuses
    status["qosClass"] = qos_class(pod)
    return status

