"""One store watch per apiserver, fanned out to every API watch it serves.

The cache watches all of `/registry/` from the revision at which it started and keeps
the most recent events in a ring, as the store sent them (bytes): each event is decoded
once when it arrives, for the watches open then, and again only when a new watch replays
it. Decoded objects would make the ring tens of times larger and, as millions of
long-lived Python objects, make every full garbage collection pause the apiserver for
up to a second. An API watch from resourceVersion R is served from the
ring when the ring still holds everything after R; an older R gets its own store watch
(the store keeps history until compaction); older than the store's compaction it gets
410 Gone, and the client re-lists, as with Kubernetes.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from apiserver import status, storage
from store.client import StoreClient, StoreUnavailable, WatchCompacted, prefix_range_end
from store.kv_types import DELETE, Event

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE = 4096


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED
    revision: int
    key: bytes
    obj: dict  # the object after the change (before it, for DELETED)
    prev: dict | None
    # Encoded watch lines by (type, apiVersion, kind): one encoding for every watch.
    lines: dict = field(default_factory=dict, compare=False, repr=False)


def to_watch_event(event) -> WatchEvent:
    """A store event as the API reports it."""
    rev = event.kv.mod_revision
    prev = storage.decode(event.prev_kv) if event.prev_kv is not None else None
    if event.type == DELETE:
        obj = dict(prev) if prev is not None else {"metadata": {}}
        obj["metadata"] = dict(obj.get("metadata", {}), resourceVersion=str(rev))
        return WatchEvent("DELETED", rev, event.kv.key, obj, prev)
    kind = "ADDED" if event.kv.create_revision == rev else "MODIFIED"
    return WatchEvent(kind, rev, event.kv.key, storage.decode(event.kv), prev)


def _convert(event) -> WatchEvent | None:
    """to_watch_event, or None for a key under /registry/ that holds no object (e.g. the
    ClusterIP allocations): one such key must not end the watch for every client."""
    try:
        return to_watch_event(event)
    except (ValueError, AttributeError, TypeError):
        log.debug("watch skips %r: its value is not a JSON object", event.kv.key)
        return None


class Subscription:
    """Events under one key prefix after one revision; iterate, then close()."""

    def __init__(self, prefix: bytes, after: int) -> None:
        self.prefix = prefix
        self.after = after
        self.queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.closed = False
        self.error: status.ApiError | None = None

    def wants(self, revision: int, key: bytes) -> bool:
        return not self.closed and revision > self.after and key.startswith(self.prefix)

    def offer(self, event: WatchEvent) -> None:
        if not self.wants(event.revision, event.key):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.end(status.gone("the watch fell too far behind; re-list and watch again"))

    def end(self, error: status.ApiError | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        self.error = error
        while True:
            try:
                self.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()

    async def next(self) -> WatchEvent | None:
        """The next event, None once the subscription ended (or its error). Unlike a step
        of the async iterator, this may be cancelled (a timeout) without ending it."""
        event = await self.queue.get()
        if event is None:
            self.queue.put_nowait(None)  # the end stays the end for a later call
            if self.error is not None:
                raise self.error
        return event

    async def __aiter__(self) -> AsyncIterator[WatchEvent]:
        while True:
            event = await self.queue.get()
            if event is None:
                if self.error is not None:
                    raise self.error
                return
            yield event


class WatchCache:
    def __init__(self, client: StoreClient, capacity: int = 20000) -> None:
        self.client = client
        self.capacity = capacity
        self.ring: collections.deque[Event] = collections.deque()  # store events
        self.floor = 0  # the ring holds every event with revision > floor
        self.latest = 0  # the newest revision the cache has seen
        self.ready = asyncio.Event()
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task | None = None

    def healthy(self) -> bool:
        """Following the store: started, synced once, and its task still running."""
        return self._task is not None and not self._task.done() and self.ready.is_set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="watch-cache")
        self._task.add_done_callback(_log_crash)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for sub in list(self._subscribers):
            sub.end()

    async def _run(self) -> None:
        """Follow the store forever; on a break in continuity, drop every subscriber."""
        while True:
            try:
                revision = (await self.client.range(b"/registry/", count_only=True)).revision
            except (StoreUnavailable, Exception) as exc:  # noqa: BLE001 (retried below)
                log.warning("watch cache cannot read the store: %s", exc)
                await asyncio.sleep(1.0)
                continue
            self._reset(revision)
            try:
                async with self.client.watch(
                    b"/registry/",
                    prefix_range_end(b"/registry/"),
                    start_revision=revision + 1,
                    prev_kv=True,
                    progress_notify=True,
                ) as watch:
                    async for batch in watch:
                        for event in batch.events:
                            self._publish(event)
                        self.latest = max(self.latest, batch.revision)
            except (WatchCompacted, StoreUnavailable) as exc:
                log.warning("watch cache lost the store watch (%s); restarting", exc)
            except Exception:  # noqa: BLE001 (a dead cache would silence every watch)
                log.exception("watch cache failed; restarting it (watchers get 410)")
            await asyncio.sleep(0.2)

    def _reset(self, revision: int) -> None:
        for sub in list(self._subscribers):
            sub.end(status.gone("the apiserver's watch was reset; re-list and watch again"))
        self._subscribers.clear()
        self.ring.clear()
        self.floor = revision
        self.latest = revision
        self.ready.set()

    def _publish(self, event: Event) -> None:
        revision, key = event.kv.mod_revision, event.kv.key
        self.ring.append(event)
        self.latest = max(self.latest, revision)
        while len(self.ring) > self.capacity:
            self.floor = self.ring.popleft().kv.mod_revision
        converted: WatchEvent | None = None  # decoded once, for every watch that wants it
        for sub in list(self._subscribers):
            if sub.wants(revision, key):
                if converted is None:
                    converted = _convert(event)
                    if converted is None:
                        return
                sub.offer(converted)
            if sub.closed:
                self._subscribers.discard(sub)

    def subscribe(self, prefix: bytes, after: int) -> Subscription | None:
        """Events under `prefix` with revision > `after`, or None if the ring is too short."""
        if after < self.floor:
            return None
        sub = Subscription(prefix, after)
        for event in self.ring:
            if sub.wants(event.kv.mod_revision, event.kv.key):
                converted = _convert(event)
                if converted is not None:
                    sub.offer(converted)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)
        sub.end()

    async def from_store(self, prefix: bytes, after: int) -> AsyncIterator[WatchEvent]:
        """Events older than the ring: straight from the store's history."""
        try:
            async with self.client.watch(
                prefix, prefix_range_end(prefix), start_revision=after + 1, prev_kv=True
            ) as watch:
                async for batch in watch:
                    for event in batch.events:
                        converted = _convert(event)
                        if converted is not None:
                            yield converted
        except WatchCompacted as exc:
            raise status.gone(
                f"too old resource version: {after} ({exc.compact_revision})"
            ) from exc
        except StoreUnavailable as exc:
            raise storage.unavailable(exc) from exc


def _log_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s crashed", task.get_name(), exc_info=task.exception())
