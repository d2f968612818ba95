"""The container runtime interface: what the agent's pod workers need to run containers.

Pod workers decide what should run; a runtime only does it: start one attempt of one
container, stop it, run a command inside it, and report every state change. The
interface is a `typing.Protocol` so that a containerd-backed runtime can take the place
of the process runtime (`agents.process_runtime.ProcessRuntime`) without the pod workers
changing.

A container here is one *attempt*: restarting a container starts a new attempt (a new
id, a new log file `<attempt>.log`), as the kubelet creates a new container on every
restart. Runtimes keep their state on disk so that containers outlive the agent and are
re-adopted by `recover()` when it comes back.

Exit reasons follow what Kubernetes shows in `state.terminated.reason`: "Completed"
(exit 0), "Error" (any other code), "OOMKilled" and "Unknown" (the process ended while
nobody was watching and its exit code was not recorded). A command that cannot be run
makes start() raise StartError with nothing left behind; the pod worker shows that
attempt as terminated with reason "StartError" and exit code 128, as containerd does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

RUNNING = "running"
EXITED = "exited"
UNKNOWN = "unknown"

COMPLETED = "Completed"
ERROR = "Error"
OOM_KILLED = "OOMKilled"
START_ERROR = "StartError"
UNKNOWN_REASON = "Unknown"

START_ERROR_EXIT_CODE = 128  # what containerd reports for a command that failed to run
UNKNOWN_EXIT_CODE = 137  # what the kubelet reports for a container whose end was not seen


@dataclass(frozen=True)
class ContainerConfig:
    pod_uid: str
    namespace: str
    pod_name: str
    name: str  # container name
    attempt: int  # restart count of this container (0, 1, 2, ...)
    argv: list[str]  # command + args, already $(VAR)-expanded; must be non-empty
    env: dict[str, str]  # the full environment; the runtime only adds PATH when absent
    working_dir: str | None
    netns_path: str | None  # e.g. /run/netns/kl-abc; None = host network
    cpu_limit_millicores: int | None
    memory_limit_bytes: int | None
    log_dir: Path  # this container's logs: <attempt>.log (+ rotated <attempt>.log.1 ...)
    image: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerStatus:
    id: str  # runtime-unique and stable across agent restarts
    pod_uid: str
    name: str
    attempt: int
    state: str  # RUNNING | EXITED | UNKNOWN
    pid: int | None
    started_at: float | None  # unix time
    finished_at: float | None
    exit_code: int | None
    reason: str | None  # COMPLETED, ERROR, OOM_KILLED, START_ERROR, UNKNOWN_REASON
    message: str | None
    image: str = ""


class StartError(Exception):
    """The container could not be started; nothing of it is left running.

    The message reads like containerd's, e.g.
    'exec: "nope": executable file not found in $PATH'.
    """


class ContainerNotFound(LookupError):
    """No container with this id is known to the runtime."""


class ContainerNotRunning(RuntimeError):
    """The operation needs a running container (exec)."""


class ContainerNotExited(RuntimeError):
    """The operation needs an exited container (remove): stop it first."""


def exit_reason(exit_code: int, oom_killed: bool) -> str:
    """Kubernetes' terminated reason for an exit code.

    An OOM kill only names the reason when the container failed: a container whose
    child was OOM-killed but which still exited 0 completed.
    """
    if exit_code == 0:
        return COMPLETED
    return OOM_KILLED if oom_killed else ERROR


class ContainerRuntime(Protocol):
    name: str  # "process"
    version: str
    limits: str  # "cgroup v2" | "cgroup v1" | "none: <why>" (reported on the Node)

    async def recover(self) -> list[ContainerStatus]:
        """Read the state left by an earlier agent, re-adopt live containers, and mark
        the ones that vanished meanwhile as exited."""
        ...

    async def start(self, config: ContainerConfig) -> ContainerStatus:
        """Start one attempt; raises StartError with nothing left running."""
        ...

    async def stop(self, container_id: str, grace_seconds: float) -> ContainerStatus:
        """SIGTERM, up to `grace_seconds` to exit, then SIGKILL; the final status.
        Idempotent on exited containers."""
        ...

    def status(self, container_id: str) -> ContainerStatus | None: ...

    def list(self, pod_uid: str | None = None) -> list[ContainerStatus]: ...

    async def remove(self, container_id: str) -> None:
        """Forget an exited container (state, cgroup); its log files stay."""
        ...

    async def exec(self, container_id: str, argv: list[str],
                   timeout: float) -> tuple[int, bytes]:
        """Run argv inside the container (netns, cgroup, env, working dir): its exit
        code and combined output (capped); TimeoutError after killing it on timeout."""
        ...

    def subscribe(self) -> asyncio.Queue[ContainerStatus]:
        """A queue that receives every state change (started, exited)."""
        ...

    async def close(self) -> None:
        """Stop watching; containers keep running (they outlive the agent)."""
        ...
