"""The pod row of `kubectl get pods`: READY, STATUS, RESTARTS as Kubernetes computes them.

STATUS is the printer's summary, not `status.phase`: a waiting or terminated container's
reason wins (`ContainerCreating`, `CrashLoopBackOff`, `Completed`, `Error`,
`ExitCode:3`), init containers show `Init:1/2` or `Init:<reason>`, a pod being deleted
shows `Terminating` (`Unknown` if its node is lost), a gated pod `SchedulingGated`.
Sidecars (init containers with restartPolicy Always) count in READY once started.
RESTARTS adds `(5m ago)` when a container has a last termination time. Follows
printPod in kubernetes/pkg/printers/internalversion/printers.go.
"""

from __future__ import annotations

from datetime import datetime

from apiserver.durations import human_duration, parse_time
from apiserver.table_printers import Cells, Obj, age, get

SUCCEEDED = [
    {
        "type": "Completed",
        "status": "True",
        "reason": "Succeeded",
        "message": "The pod has completed successfully.",
    }
]
FAILED = [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]


def pod_conditions(pod: Obj) -> list[Obj] | None:
    """TableRow conditions Kubernetes sets for finished pods."""
    phase = get(pod, "status", "phase")
    return SUCCEEDED if phase == "Succeeded" else FAILED if phase == "Failed" else None


def _condition_true(pod: Obj, type_: str) -> bool:
    for condition in get(pod, "status", "conditions") or []:
        if condition.get("type") == type_:
            return condition.get("status") == "True"
    return False


def _restartable(container: Obj | None) -> bool:
    return container is not None and container.get("restartPolicy") == "Always"


def _last_termination(status: Obj) -> datetime | None:
    return parse_time(get(status, "lastState", "terminated", "finishedAt"))


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a


def _init_reason(index: int, total: int, status: Obj, restartable: bool) -> tuple[str | None, bool]:
    """The STATUS an init container imposes, and whether it counts as ready."""
    state = status.get("state") or {}
    terminated, waiting = state.get("terminated"), state.get("waiting")
    if terminated is not None and terminated.get("exitCode", 0) == 0:
        return None, False
    if restartable and status.get("started"):
        return None, bool(status.get("ready"))
    if terminated is not None:
        if terminated.get("reason"):
            return "Init:" + terminated["reason"], False
        if terminated.get("signal"):
            return f"Init:Signal:{terminated['signal']}", False
        return f"Init:ExitCode:{terminated.get('exitCode', 0)}", False
    if waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
        return "Init:" + waiting["reason"], False
    return f"Init:{index}/{total}", False


def pod_cells(pod: Obj, now: datetime) -> Cells:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    init_list = spec.get("initContainers") or []
    init_specs = {c.get("name"): c for c in init_list}
    total = len(spec.get("containers") or []) + sum(_restartable(c) for c in init_list)
    reason = status.get("reason") or status.get("phase") or ""
    if any(
        c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated"
        for c in status.get("conditions") or []
    ):
        reason = "SchedulingGated"
    ready = restarts = sidecar_restarts = 0
    last_restart = sidecar_last = None
    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        restarts += cs.get("restartCount", 0)
        last_restart = _latest(last_restart, _last_termination(cs))
        restartable = _restartable(init_specs.get(cs.get("name")))
        if restartable:
            sidecar_restarts += cs.get("restartCount", 0)
            sidecar_last = _latest(sidecar_last, _last_termination(cs))
        init_reason, counts = _init_reason(i, len(init_list), cs, restartable)
        ready += counts
        if init_reason is None:
            continue
        reason, initializing = init_reason, True
        break
    if not initializing or _condition_true(pod, "Initialized"):
        restarts, last_restart = sidecar_restarts, sidecar_last
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += cs.get("restartCount", 0)
            last_restart = _latest(last_restart, _last_termination(cs))
            state = cs.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                signal = terminated.get("signal")
                reason = (
                    f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode', 0)}"
                )
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(pod, "Ready") else "NotReady"
    deleting = get(pod, "metadata", "deletionTimestamp") is not None
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and status.get("phase") not in ("Succeeded", "Failed"):
        reason = "Terminating"
    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({human_duration(now - last_restart)} ago)"
    ips = status.get("podIPs") or []
    ip = (ips[0].get("ip") if ips else status.get("podIP")) or "<none>"
    gates = spec.get("readinessGates") or []
    gates_text = "<none>"
    if gates:
        passed = sum(_condition_true(pod, g.get("conditionType", "")) for g in gates)
        gates_text = f"{passed}/{len(gates)}"
    return [
        get(pod, "metadata", "name") or "",
        f"{ready}/{total}",
        reason,
        restarts_text,
        age(pod, now),
        ip,
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gates_text,
    ]
