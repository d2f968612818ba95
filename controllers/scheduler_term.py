"""One leadership term of the scheduler: decide pending pods, bind them, say why not.

Built fresh each time the lease is acquired (from the informers' caches, so nothing
assumed by an earlier term survives but the bindings of unknown outcome) and thrown
away when it is lost. Its tasks, all named and watched (`run` fails when one dies):

- `scheduler-loop`: takes up to `batch` keys from the queue, drops those no longer
  pending, decides the rest with `schedule_many` against the Snapshot (assuming each
  placement), parks the ones that fit nowhere and hands jobs to the writers. Bounded
  job queue: when every writer is busy the loop waits, and decisions never run far
  ahead of bindings.
- `scheduler-writer-N`: binds (pods/binding) or writes a PodScheduled=False condition
  (a strategic-merge patch of pods/status, only when it changes), then marks the pod's
  key done, so a pod is not decided again while its write is in flight.
- `scheduler-flush`: every few seconds, retries pods parked too long.

Events (FailedScheduling, Scheduled) go to the term's EventRecorder, which folds
repeats into counts and never blocks the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from apiserver.client import ApiStatusError, ApiUnavailable
from apiserver.event_recorder import EventRecorder
from apiserver.informer_cache import key_of
from controllers.leader_election import Fenced
from controllers.scheduler_queue import SchedulerQueue
from controllers.scheduling import events
from controllers.scheduling.cache import Snapshot
from controllers.scheduling.podinfo import PodInfo
from controllers.scheduling.schedule import Decision, schedule_many

if TYPE_CHECKING:
    from controllers.scheduler_runner import Scheduler

log = logging.getLogger(__name__)

Obj = dict[str, Any]
WRITE_TIMEOUT = 10.0
FLUSH_CHECK = 5.0


class Writer(Protocol):
    """The writes a term makes: a leader_election.FencedClient, or the ApiClient itself
    when leader election is off."""

    async def bind(self, namespace: str, pod: str, node: str, *,
                   timeout: float | None = ...) -> Obj: ...

    async def patch(self, path: str, patch: Any, *, type: str = ...,
                    timeout: float | None = ...) -> Obj: ...

    async def create(self, obj: Mapping[str, Any], *, timeout: float | None = ...) -> Obj: ...


def pending(pod: Mapping[str, Any], scheduler_name: str) -> bool:
    """A pod this scheduler must place: no node, ours, not being deleted."""
    spec = pod.get("spec") or {}
    meta = pod.get("metadata") or {}
    return (not spec.get("nodeName") and not meta.get("deletionTimestamp")
            and (spec.get("schedulerName") or events.SCHEDULER_NAME) == scheduler_name)


@dataclass(frozen=True)
class BindJob:
    key: str
    info: PodInfo
    node: str


@dataclass(frozen=True)
class StatusJob:
    key: str
    info: PodInfo
    condition: Obj


def certainly_failed(err: ApiStatusError) -> bool:
    """Did the binding surely not happen? A 409 may be our own earlier attempt that
    landed; a 5xx or a timeout may have been applied: those keep the assumption."""
    if isinstance(err, ApiUnavailable):
        return not err.maybe_applied
    return 400 <= err.code < 500 and err.code != 409


def pod_condition(pod: Mapping[str, Any], kind: str) -> Obj | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == kind:
            return condition
    return None


def condition_changes(previous: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    if previous is None:
        return True
    return any(previous.get(f) != wanted.get(f) for f in ("status", "reason", "message"))


class Term:
    def __init__(self, scheduler: Scheduler, writer: Writer, queue: SchedulerQueue,
                 recorder: EventRecorder) -> None:
        self.scheduler = scheduler
        self.options = scheduler.options
        self.writer = writer
        self.queue = queue
        self.recorder = recorder
        self.snapshot = Snapshot()
        self.jobs: asyncio.Queue[BindJob | StatusJob] = asyncio.Queue(
            maxsize=2 * self.options.writers)
        self._tick = 0
        self._tasks: list[asyncio.Task[None]] = []

    def seed(self, nodes: Iterable[Obj], pods: Iterable[Obj]) -> None:
        """The informers' caches as they are now; handlers keep it current from here."""
        for node in nodes:
            self.snapshot.set_node(node)
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName"):
                self.snapshot.add_pod(pod)
            elif pending(pod, self.options.scheduler_name):
                self.queue.add(key_of(pod))
        for key, (info, node) in list(self.scheduler.uncertain.items()):
            if self.snapshot.get(node) is None:
                del self.scheduler.uncertain[key]  # decide again; a landed bind answers 409
            else:
                self.snapshot.assume(info, node)
            self.queue.add(key)

    async def run(self) -> None:
        await self.recorder.start()
        loop = asyncio.get_running_loop()
        work = [(self._schedule_loop(), "scheduler-loop"), (self._flush_loop(), "scheduler-flush")]
        work += [(self._write_loop(), f"scheduler-writer-{i}") for i in range(self.options.writers)]
        for coro, name in work:
            self._tasks.append(loop.create_task(coro, name=name))
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        ended = done.pop()
        raise RuntimeError(f"task {ended.get_name()} ended") from (
            None if ended.cancelled() else ended.exception())

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.recorder.stop()
        self.queue.work.shutdown()

    # --- deciding -----------------------------------------------------------------------

    async def _schedule_loop(self) -> None:
        while True:
            keys = await self.queue.work.get_batch(self.options.batch)
            jobs: list[BindJob | StatusJob] = []
            todo: list[tuple[str, PodInfo]] = []
            for key in keys:
                retry = self._triage(key)
                if isinstance(retry, BindJob):
                    jobs.append(retry)
                elif retry is not None:
                    todo.append((key, retry))
            decisions = schedule_many([info for _, info in todo], self.snapshot,
                                      tie_breaker=self._tick) if todo else []
            self._tick += len(todo)
            now = datetime.now(UTC)
            # Park every misfit before the first await below: a node added while we wait
            # for a writer must find them parked, or its move would miss them.
            for (key, info), decision in zip(todo, decisions, strict=True):
                if decision.node_name is not None:
                    jobs.append(BindJob(key, info, decision.node_name))
                else:
                    job = self._unschedulable(key, info, decision, now)
                    if job is not None:
                        jobs.append(job)
            for job in jobs:
                await self.jobs.put(job)
            await asyncio.sleep(0)  # let the informers' handlers and the writers run

    def _triage(self, key: str) -> PodInfo | BindJob | None:
        """The pod to decide, a binding to retry as it was, or None (key done)."""
        pod = self.scheduler.pods.cache.get(key)
        if pod is None or not pending(pod, self.options.scheduler_name):
            self.scheduler.uncertain.pop(key, None)
            self.queue.work.done(key)
            return None
        retry = self.scheduler.uncertain.get(key)
        if retry is not None:
            return BindJob(key, retry[0], retry[1])
        info = PodInfo(pod)
        if self.snapshot.is_assumed(info):  # bound a moment ago; the informer lags
            self.queue.work.done(key)
            return None
        return info

    def _unschedulable(self, key: str, info: PodInfo, decision: Decision,
                       now: datetime) -> StatusJob | None:
        self.queue.park(key)
        pod = info.pod
        self.recorder.record(events.failed_scheduling_event(
            pod, decision.message, now, instance=self.options.instance))
        previous = pod_condition(pod, "PodScheduled")
        condition = events.pod_scheduled_condition(decision, now, previous)
        if not condition_changes(previous, condition):
            self.queue.work.done(key)
            return None
        log.info("pod %s fits nowhere: %s", key, decision.message)
        return StatusJob(key, info, condition)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_CHECK)
            moved = self.queue.flush()
            if moved:
                log.info("retrying %d pods unschedulable for %.0f s", moved,
                         self.queue.max_parked)

    # --- writing ------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            job = await self.jobs.get()
            try:
                if isinstance(job, BindJob):
                    await self._bind(job)
                else:
                    await self._write_status(job)
            finally:
                self.queue.work.done(job.key)

    async def _bind(self, job: BindJob) -> None:
        info, uncertain = job.info, self.scheduler.uncertain
        try:
            await self.writer.bind(info.namespace, info.name, job.node, timeout=WRITE_TIMEOUT)
        except Fenced:
            self.snapshot.forget(info)  # never sent
            return
        except ApiStatusError as err:
            log.info("binding %s to %s failed: %s", job.key, job.node, err)
            if certainly_failed(err):
                self.snapshot.forget(info)
                uncertain.pop(job.key, None)
                if err.code == 404:
                    self.queue.drop(job.key)
                    return
                self.recorder.record(events.failed_scheduling_event(
                    info.pod, f"Binding rejected: {err.message}", datetime.now(UTC),
                    instance=self.options.instance))
            elif self.scheduler.pods.cache.get(job.key) is not None:
                uncertain[job.key] = (info, job.node)
            self.queue.requeue(job.key)
            return
        except asyncio.CancelledError:
            uncertain[job.key] = (info, job.node)
            raise
        uncertain.pop(job.key, None)
        self.queue.succeeded(job.key)
        self.scheduler.bound += 1
        self.recorder.record(events.scheduled_event(info.pod, job.node, datetime.now(UTC),
                                                    instance=self.options.instance))

    async def _write_status(self, job: StatusJob) -> None:
        info = job.info
        path = f"/api/v1/namespaces/{info.namespace}/pods/{info.name}/status"
        try:
            await self.writer.patch(path, {"status": {"conditions": [job.condition]}},
                                    type="strategic", timeout=WRITE_TIMEOUT)
        except Fenced:
            return
        except ApiStatusError as err:
            if err.code != 404:
                log.info("writing the PodScheduled condition of %s failed: %s", job.key, err)
