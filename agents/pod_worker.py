"""One worker per pod: drives the pod's containers toward its spec and reports its status.

As the kubelet's pod workers do, each pod bound to this node has one coroutine that
owns it; updates to the pod (from the informer) and container exits (from the runtime)
only wake it, so one pod is never synced by two tasks at once and bursts of updates
coalesce into one sync. A sync:

1. a pod that is being deleted (or is gone from the API) is terminated: SIGTERM, the
   grace period, SIGKILL, its network and containers removed, then the final delete;
2. otherwise its sandbox (network namespace and address) is ensured, init containers
   run one after another, then the containers start; exited containers restart
   according to the restart policy with the crash-loop back-off; probes run when due;
3. the status computed from what the runtime reports is posted when it changed.

The sync returns when it next needs to run (a back-off ending, a probe falling due),
so a quiet pod costs nothing between events. Decisions are in pure modules
(pod_spec, pod_status, backoff, probes); this module does the I/O.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agents import pod_spec, pod_status
from agents.backoff import Backoff
from agents.probe_runner import run_probe
from agents.probes import ProbeSpec, ProbeState
from agents.runtime import ContainerConfig, ContainerRuntime, ContainerStatus, StartError
from apiserver.client import ApiClient, ApiStatusError

log = logging.getLogger(__name__)

Obj = dict[str, Any]
RETRY_SECONDS = 2.0  # a failed sandbox, status post or config error is retried after this
STARTUP_CONCURRENCY = 8  # pods whose sandbox and first start run at the same time
KEEP_ATTEMPTS = 2  # the current attempt and the one before it (for `logs --previous`)
PROBE_KINDS = ("startupProbe", "livenessProbe", "readinessProbe")


class Sandbox(Protocol):
    """The pod's network, as agents.pod_network provides it."""

    async def add_pod(self, pod_uid: str, namespace: str, name: str) -> Any: ...
    async def remove_pod(self, pod_uid: str) -> None: ...


class EventSink(Protocol):
    def __call__(self, pod: Mapping[str, Any], type_: str, reason: str,
                 message: str) -> None: ...


@dataclass
class WorkerContext:
    """What every pod worker shares: the node's runtime, network, API and settings."""

    api: ApiClient
    runtime: ContainerRuntime
    network: Sandbox
    node_name: str
    host_ip: str
    log_root: Path
    pods_root: Path
    record_event: EventSink
    services: Any  # callable returning the Service objects the agent knows
    backoff: Backoff = field(default_factory=Backoff)
    startup_gate: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(STARTUP_CONCURRENCY))


@dataclass
class _Probes:
    specs: dict[str, ProbeSpec]
    states: dict[str, ProbeState]
    attempt: int


class PodWorker:
    def __init__(self, ctx: WorkerContext, uid: str, pod: Obj | None) -> None:
        self.ctx = ctx
        self.uid = uid
        self.pod = pod
        self.key = _pod_key(pod) if pod else uid
        self._wake = asyncio.Event()
        self._wake.set()
        self._address: Any = None
        self._posted: Obj | None = None
        self._probes: dict[str, _Probes] = {}
        self._start_failures: dict[str, ContainerStatus] = {}
        self._waiting: dict[str, tuple[str, str]] = {}
        self._sandbox_error = ""  # why the pod network could not be set up, if so
        self._initializing = False
        self._last_ip: str | None = None
        self.done = asyncio.Event()

    # --- driving --------------------------------------------------------------------

    def update(self, pod: Obj | None) -> None:
        """The newest version of the pod (None: it is gone from the API)."""
        if pod is not None:
            self.key = _pod_key(pod)
        self.pod = pod
        self._wake.set()

    def poke(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                try:
                    finished, next_at = await self.sync()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 (one pod must never stop the agent)
                    log.exception("pod %s: sync failed", self.key)
                    finished, next_at = False, time.time() + RETRY_SECONDS
                if finished:
                    return
                if next_at is not None:
                    delay = max(0.0, next_at - time.time())
                    try:
                        await asyncio.wait_for(self._wake.wait(), delay)
                    except TimeoutError:
                        self._wake.set()
        finally:
            self.done.set()

    async def sync(self) -> tuple[bool, float | None]:
        """One pass; (finished, when to run again unless woken earlier)."""
        pod = self.pod
        if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
            await self.terminate(pod)
            return True, None
        now = time.time()
        deadlines: list[float] = []
        if _terminal((pod.get("status") or {}).get("phase")) and self._posted is None \
                and not self.ctx.runtime.list(self.uid):
            return False, None  # finished before this agent started: nothing to run
        if self._address is None and not self._is_terminal():
            # A burst of new pods goes through set-up a few at a time, so the first ones
            # are running (and reported) early instead of all of them finishing together.
            async with self.ctx.startup_gate:
                deadlines += await self._set_up(pod, now)
        elif self._address is not None and not self._is_terminal():
            deadlines += await self._drive(pod, now)
        elif self._is_terminal():
            await self._stop_all(pod, "the pod finished")
            if self._address is not None:
                # A finished pod keeps its status (podIP included) but not its sandbox:
                # completed Job pods must not hold the node's addresses.
                self._last_ip = str(getattr(self._address, "ip", "") or "") or None
                await self.ctx.network.remove_pod(self.uid)
                self._address = None
        deadlines += await self._post_status(pod)
        return False, min(deadlines) if deadlines else None

    async def _set_up(self, pod: Obj, now: float) -> list[float]:
        """The sandbox (network namespace and address), then the first containers."""
        try:
            self._address = await self.ctx.network.add_pod(
                self.uid, _meta(pod).get("namespace", ""), _meta(pod).get("name", ""))
            self._sandbox_error = ""
        except Exception as exc:  # noqa: BLE001 (reported on the pod, retried)
            message = f"failed to set up the pod network: {exc}"
            self._sandbox_error = message
            self.ctx.record_event(pod, "Warning", "FailedCreatePodSandBox", message)
            return [now + RETRY_SECONDS]
        return await self._drive(pod, now)

    # --- containers ---------------------------------------------------------------------

    async def _drive(self, pod: Obj, now: float) -> list[float]:
        spec = pod.get("spec") or {}
        deadlines: list[float] = []
        init = spec.get("initContainers") or []
        init_views = [self._view(c, is_init=True) for c in init]
        next_init, failed = pod_status.init_progress(spec, init_views)
        done = pod_status.initialized(spec, init_views)
        self._initializing = not done
        if failed:
            return deadlines
        if next_init is not None:
            deadlines += await self._ensure(pod, init[next_init], now, is_init=True)
            if not pod_status.initialized(spec, [self._view(c, is_init=True)
                                                 for c in init]):
                return deadlines
        elif not done:
            return deadlines  # an init container runs; its exit wakes this worker
        for container in spec.get("containers") or []:
            deadlines += await self._ensure(pod, container, now, is_init=False)
        deadlines += await self._probe(pod, now)
        return deadlines

    def _attempts(self, name: str) -> list[ContainerStatus]:
        found = [s for s in self.ctx.runtime.list(self.uid) if s.name == name]
        failure = self._start_failures.get(name)
        if failure is not None and all(s.attempt != failure.attempt for s in found):
            found.append(failure)
        return sorted(found, key=lambda s: s.attempt)

    async def _ensure(self, pod: Obj, container: Obj, now: float, *,
                      is_init: bool) -> list[float]:
        name = container.get("name", "")
        attempts = self._attempts(name)
        latest = attempts[-1] if attempts else None
        if latest is not None and latest.state == "running":
            return []
        if latest is not None:
            policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
            if is_init and latest.exit_code == 0:
                return []
            restart = pod_status.restart_decision(
                "OnFailure" if is_init and policy == "Always" else policy,
                latest.exit_code if latest.exit_code is not None else 1)
            if not restart:
                return []
            key = (self.uid, name)
            ran = (latest.finished_at or now) - (latest.started_at or now)
            self.ctx.backoff.record_exit(key, ran, latest.finished_at or now)
            start_at = self.ctx.backoff.next_start(key, latest.finished_at or now, now)
            if now < start_at:
                self._waiting[name] = ("CrashLoopBackOff", self.ctx.backoff.message(
                    key, container=name, pod=self._pod_ref(pod)))
                return [start_at]
        attempt = 0 if latest is None else latest.attempt + 1
        return await self._start(pod, container, attempt, now)

    async def _start(self, pod: Obj, container: Obj, attempt: int, now: float) -> list[float]:
        name = container.get("name", "")
        ip = str(getattr(self._address, "ip", "") or self.ctx.host_ip)
        try:
            plan = pod_spec.plan_container(pod, container, services=self.ctx.services(),
                                           pod_ip=ip, host_ip=self.ctx.host_ip)
        except (pod_spec.ConfigError, ValueError) as exc:
            self._waiting[name] = ("CreateContainerConfigError", str(exc))
            self.ctx.record_event(pod, "Warning", "Failed", f"Error: {exc}")
            return [now + RETRY_SECONDS * 5]
        config = ContainerConfig(
            pod_uid=self.uid, namespace=_meta(pod).get("namespace", ""),
            pod_name=_meta(pod).get("name", ""), name=name, attempt=attempt,
            argv=plan.argv, env=plan.env,
            working_dir=plan.working_dir or str(self._workdir(name)),
            netns_path=getattr(self._address, "netns_path", None),
            cpu_limit_millicores=plan.cpu_limit_millicores,
            memory_limit_bytes=plan.memory_limit_bytes,
            log_dir=self.log_dir(name), image=container.get("image", ""))
        self._waiting.pop(name, None)
        try:
            status = await self.ctx.runtime.start(config)
        except StartError as exc:
            stamp = time.time()
            self._start_failures[name] = ContainerStatus(
                id=f"{self.uid}/{name}/{attempt}", pod_uid=self.uid, name=name,
                attempt=attempt, state="exited", pid=None, started_at=stamp,
                finished_at=stamp, exit_code=128, reason="StartError", message=str(exc),
                image=container.get("image", ""))
            self.ctx.record_event(pod, "Warning", "Failed", f"Error: {exc}")
            return [stamp]
        self._start_failures.pop(name, None)
        self.ctx.record_event(pod, "Normal", "Started", f"Started container {name}")
        log.info("pod %s: started container %s (attempt %d, pid %s)", self.key, name,
                 attempt, status.pid)
        await self._forget_old_attempts(name)
        return []

    async def _forget_old_attempts(self, name: str) -> None:
        attempts = self._attempts(name)
        for old in attempts[:-KEEP_ATTEMPTS]:
            if old.state == "running":
                continue
            if old.id in {s.id for s in self.ctx.runtime.list(self.uid)}:
                await self.ctx.runtime.remove(old.id)
            for path in self.log_dir(name).glob(f"{old.attempt}.log*"):
                path.unlink(missing_ok=True)

    # --- probes ---------------------------------------------------------------------

    def _probe_set(self, container: Obj, latest: ContainerStatus) -> _Probes:
        name = container.get("name", "")
        current = self._probes.get(name)
        if current is None or current.attempt != latest.attempt:
            specs = {}
            for kind in PROBE_KINDS:
                if container.get(kind):
                    specs[kind] = ProbeSpec.parse(container[kind], kind,
                                                  ports=pod_spec.container_ports(container))
            current = _Probes(specs, {k: ProbeState(s, latest.started_at or time.time())
                                      for k, s in specs.items()}, latest.attempt)
            self._probes[name] = current
        return current

    async def _probe(self, pod: Obj, now: float) -> list[float]:
        deadlines: list[float] = []
        for container in (pod.get("spec") or {}).get("containers") or []:
            name = container.get("name", "")
            attempts = self._attempts(name)
            if not attempts or attempts[-1].state != "running":
                continue
            latest = attempts[-1]
            try:
                probes = self._probe_set(container, latest)
            except ValueError as exc:
                self.ctx.record_event(pod, "Warning", "Unhealthy", f"invalid probe: {exc}")
                continue
            for kind in PROBE_KINDS:
                state = probes.states.get(kind)
                if state is None:
                    continue
                if kind != "startupProbe" and not _started(probes):
                    continue
                if state.due(now):
                    result = await run_probe(
                        probes.specs[kind], host=str(getattr(self._address, "ip", "")
                                                     or self.ctx.host_ip),
                        exec_fn=lambda argv, timeout, cid=latest.id:
                        self.ctx.runtime.exec(cid, argv, timeout))
                    state.record(result.ok, time.time())
                    if not result.ok:
                        self.ctx.record_event(pod, "Warning", "Unhealthy", result.message)
                    if kind in ("livenessProbe", "startupProbe") and state.failed:
                        await self._kill_unhealthy(pod, container, latest, kind)
                        deadlines.append(time.time())
                        break
                due = state.next_due()
                if due is not None:
                    deadlines.append(due)
        return deadlines

    async def _kill_unhealthy(self, pod: Obj, container: Obj, latest: ContainerStatus,
                              kind: str) -> None:
        name = container.get("name", "")
        what = "liveness" if kind == "livenessProbe" else "startup"
        self.ctx.record_event(pod, "Normal", "Killing",
                              f"Container {name} failed {what} probe, will be restarted")
        await self.ctx.runtime.stop(latest.id, pod_spec.grace_seconds(pod))
        self._probes.pop(name, None)

    # --- status ---------------------------------------------------------------------

    def _view(self, container: Obj, *, is_init: bool) -> pod_status.ContainerView:
        name = container.get("name", "")
        attempts = self._attempts(name)
        current = attempts[-1] if attempts else None
        previous = attempts[-2] if len(attempts) > 1 else None
        probes = self._probes.get(name)
        ready = current is not None and current.state == "running"
        started: bool | None = ready
        if probes is not None and current is not None and probes.attempt == current.attempt:
            if "readinessProbe" in probes.states:
                ready = ready and probes.states["readinessProbe"].success
            if "startupProbe" in probes.states:
                started = ready and probes.states["startupProbe"].success
                ready = ready and bool(started)
        waiting = self._waiting.get(name)
        if current is None and waiting is None:
            if is_init or self._initializing:
                waiting = ("PodInitializing", "")
            else:
                waiting = ("ContainerCreating", self._sandbox_error)
        if current is not None and current.state == "running":
            waiting = None
        return pod_status.ContainerView(
            name=name, image=container.get("image", ""), current=current,
            previous=previous, restart_count=current.attempt if current else 0,
            ready=bool(ready) and not is_init, started=started,
            waiting_reason=waiting[0] if waiting else None,
            waiting_message=waiting[1] if waiting else None)

    def _compute_status(self, pod: Obj) -> Obj:
        spec = pod.get("spec") or {}
        init_views = [self._view(c, is_init=True) for c in spec.get("initContainers") or []]
        views = [self._view(c, is_init=False) for c in spec.get("containers") or []]
        previous = self._posted or pod.get("status") or {}
        ip = getattr(self._address, "ip", None) or self._last_ip
        return pod_status.pod_status(
            pod, init_views, views, pod_ip=str(ip) if ip else previous.get("podIP"),
            host_ip=self.ctx.host_ip, start_time=previous.get("startTime") or time.time(),
            previous_status=previous, now=time.time(), terminal=self._is_terminal(), sandbox_ready=self._address is not None)

    def _is_terminal(self) -> bool:
        return self._posted is not None and _terminal(self._posted.get("phase"))

    async def _post_status(self, pod: Obj) -> list[float]:
        status = self._compute_status(pod)
        if status == self._posted:
            return []
        path = _pod_path(pod) + "/status"
        try:
            await self.ctx.api.patch(path, {"metadata": {"uid": self.uid},
                                            "status": status}, type="merge")
        except ApiStatusError as err:
            if err.code == 404:
                return []
            log.warning("pod %s: status update refused: %s", self.key, err)
            return [time.time() + RETRY_SECONDS]
        except Exception as exc:  # noqa: BLE001 (apiserver away: keep running, retry)
            log.warning("pod %s: status update failed: %s", self.key, exc)
            return [time.time() + RETRY_SECONDS]
        self._posted = status
        return []

    # --- termination ----------------------------------------------------------------

    async def _stop_all(self, pod: Obj | None, why: str) -> None:
        grace = pod_spec.grace_seconds(pod) if pod else float(pod_spec.DEFAULT_GRACE_SECONDS)
        running = [s for s in self.ctx.runtime.list(self.uid) if s.state == "running"]
        if pod is not None and running:
            for status in running:
                self.ctx.record_event(pod, "Normal", "Killing",
                                      f"Stopping container {status.name}")
        await asyncio.gather(*(self.ctx.runtime.stop(s.id, grace) for s in running),
                             return_exceptions=True)
        if running:
            log.info("pod %s: stopped %d container(s): %s", self.key, len(running), why)

    async def terminate(self, pod: Obj | None) -> None:
        """Stop everything the pod runs, free what it holds, then finish its deletion."""
        await self._stop_all(pod, "the pod is being deleted")
        if pod is not None and self._posted is not None:
            await self._post_status(pod)
        await self.ctx.network.remove_pod(self.uid)
        for status in self.ctx.runtime.list(self.uid):
            await self.ctx.runtime.remove(status.id)
        for root in (self.pod_log_root(), self.ctx.pods_root / self.uid):
            shutil.rmtree(root, ignore_errors=True)
        if pod is not None:
            try:
                await self.ctx.api.delete(_pod_path(pod), {
                    "gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}})
            except ApiStatusError as err:
                if err.code not in (404, 409):
                    raise

    # --- places ---------------------------------------------------------------------

    def pod_log_root(self) -> Path:
        meta = _meta(self.pod) if self.pod else {}
        return self.ctx.log_root / f"{meta.get('namespace', '')}_{meta.get('name', '')}_" \
                                   f"{self.uid}"

    def log_dir(self, container: str) -> Path:
        return self.pod_log_root() / container

    def _workdir(self, container: str) -> Path:
        path = self.ctx.pods_root / self.uid / "containers" / container
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _pod_ref(self, pod: Obj) -> str:
        meta = _meta(pod)
        return f"{meta.get('name')}_{meta.get('namespace')}({self.uid})"


def _meta(pod: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (pod or {}).get("metadata") or {}


def _pod_key(pod: Mapping[str, Any]) -> str:
    meta = _meta(pod)
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _pod_path(pod: Mapping[str, Any]) -> str:
    meta = _meta(pod)
    return f"/api/v1/namespaces/{meta.get('namespace')}/pods/{meta.get('name')}"


def _terminal(phase: str | None) -> bool:
    return phase in ("Succeeded", "Failed")


def _started(probes: _Probes) -> bool:
    state = probes.states.get("startupProbe")
    return state is None or state.success
