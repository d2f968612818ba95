"""Events through the API, with repeats folded into one Event's count.

client-go's EventCorrelator, simplified: events that agree on everything but time
(involved object, reason, message, type, source) are one Event whose `count` and
`lastTimestamp` move; the first occurrence is created, later ones PATCH it. A pod that
fails to schedule every 10 seconds for an hour is one Event with count 360, not 360
Events in the store.

Writes go out from a few workers over a WorkQueue keyed by that correlation key, so one
key is never written by two workers at once (its create cannot race its own patch),
and occurrences that arrive while a write is in flight are folded into the next one.
Recording never blocks the caller: past `max_pending` distinct keys waiting, new keys
are dropped (and counted), as client-go's broadcaster drops when its queue is full.
Events are best effort: a failed write is retried a few times with back-off, then
dropped; a write refused by the leader-election fence is dropped at once.

`pure` parts: `correlation_key`, `Pending.merge` and `plan_write` decide what to send
from what was seen; `EventRecorder` does the sending.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from apiserver.client import ApiStatusError, Fenced
from apiserver.workqueue import ItemExponentialLimiter, QueueShutDown, WorkQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]
WORKERS = 4
MAX_PENDING = 1000
SEEN_CACHE = 4096  # client-go's maxLruCacheEntries
MAX_RETRIES = 3
WRITE_TIMEOUT = 10.0


class EventWriter(Protocol):
    async def create(self, obj: Mapping[str, Any], *, timeout: float | None = ...) -> Obj: ...

    async def patch(self, path: str, patch: Any, *, type: str = ...,
                    timeout: float | None = ...) -> Obj: ...


def correlation_key(event: Mapping[str, Any]) -> tuple[str, ...]:
    """What two occurrences of "the same" event share (getEventKey)."""
    involved = event.get("involvedObject") or {}
    source = event.get("source") or {}
    return (
        str(source.get("component") or ""), str(source.get("host") or ""),
        str(involved.get("kind") or ""), str(involved.get("namespace") or ""),
        str(involved.get("name") or ""), str(involved.get("uid") or ""),
        str(involved.get("apiVersion") or ""), str(event.get("type") or ""),
        str(event.get("reason") or ""), str(event.get("message") or ""),
    )


@dataclass
class Pending:
    """Occurrences of one key not written yet: the latest event and how many."""

    event: Obj
    count: int
    first_timestamp: str

    @classmethod
    def of(cls, event: Obj) -> Pending:
        return cls(event, int(event.get("count") or 1), str(event.get("firstTimestamp") or ""))

    def merge(self, event: Obj) -> None:
        self.event = event
        self.count += int(event.get("count") or 1)


@dataclass(frozen=True)
class Seen:
    """The Event object already written for a key."""

    namespace: str
    name: str
    count: int


def plan_write(seen: Seen | None, pending: Pending) -> tuple[str, Obj]:
    """("patch", body) to bump the existing Event, or ("create", event) for a new one."""
    event = pending.event
    if seen is not None:
        return "patch", {"count": seen.count + pending.count,
                         "lastTimestamp": event.get("lastTimestamp")}
    created = dict(event, count=pending.count)
    if pending.first_timestamp:
        created["firstTimestamp"] = pending.first_timestamp
    return "create", created


class EventRecorder:
    """Queue events (`record`), write them from `workers` named background tasks."""

    def __init__(self, writer: EventWriter, *, name: str = "events", workers: int = WORKERS,
                 max_pending: int = MAX_PENDING) -> None:
        self.writer = writer
        self.name = name
        self.workers = workers
        self.max_pending = max_pending
        self.dropped = 0
        self.written = 0
        self._pending: dict[Hashable, Pending] = {}
        self._seen: OrderedDict[Hashable, Seen] = OrderedDict()
        self._queue: WorkQueue[Hashable] = WorkQueue(
            f"{name}-queue", limiter=ItemExponentialLimiter(0.1, 5.0))
        self._tasks: list[asyncio.Task[None]] = []

    def record(self, event: Obj) -> None:
        """Queue one occurrence; never blocks, drops new keys when too many wait."""
        key = correlation_key(event)
        pending = self._pending.get(key)
        if pending is not None:
            pending.merge(event)
            return
        if len(self._pending) >= self.max_pending or self._queue.shutting_down:
            self.dropped += 1
            if self.dropped % 100 == 1:
                log.warning("%s: dropped %d events (too many waiting)", self.name, self.dropped)
            return
        self._pending[key] = Pending.of(event)
        self._queue.add(key)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for i in range(self.workers):
            task = loop.create_task(self._work(), name=f"{self.name}-writer-{i}")
            task.add_done_callback(_log_crash)
            self._tasks.append(task)

    async def stop(self) -> None:
        self._queue.shutdown()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _work(self) -> None:
        while True:
            try:
                key = await self._queue.get()
            except QueueShutDown:
                return
            try:
                await self._write(key)
            finally:
                self._queue.done(key)

    async def _write(self, key: Hashable) -> None:
        pending = self._pending.pop(key, None)
        if pending is None:
            return
        seen = self._seen.get(key)
        try:
            self._remember(key, await self._send(seen, pending))
            self._queue.forget(key)
            self.written += 1
        except Fenced:
            self._queue.forget(key)
        except ApiStatusError as err:
            if self._queue.failures(key) >= MAX_RETRIES or err.code in (400, 403, 422):
                log.info("%s: dropping event %s: %s", self.name, key[-2:], err)
                self._queue.forget(key)
                return
            again = self._pending.get(key)
            if again is not None:  # occurrences recorded while this write failed
                pending.event = again.event
                pending.count += again.count
            self._pending[key] = pending
            self._queue.add_rate_limited(key)

    async def _send(self, seen: Seen | None, pending: Pending) -> Seen:
        action, body = plan_write(seen, pending)
        if action == "patch" and seen is not None:
            path = f"/api/v1/namespaces/{seen.namespace}/events/{seen.name}"
            try:
                await self.writer.patch(path, body, type="merge", timeout=WRITE_TIMEOUT)
                return Seen(seen.namespace, seen.name, body["count"])
            except ApiStatusError as err:
                if err.code != 404:
                    raise
                # The Event expired or was deleted: start a new one (as client-go does).
                action, body = plan_write(None, pending)
        created = await self.writer.create(body, timeout=WRITE_TIMEOUT)
        meta = created.get("metadata") or body["metadata"]
        return Seen(str(meta.get("namespace") or ""), str(meta.get("name") or ""),
                    int(created.get("count") or body["count"]))

    def _remember(self, key: Hashable, seen: Seen) -> None:
        self._seen[key] = seen
        self._seen.move_to_end(key)
        while len(self._seen) > SEEN_CACHE:
            self._seen.popitem(last=False)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s crashed", task.get_name(), exc_info=task.exception())
