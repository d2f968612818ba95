"""Fan-out of applied events to watch streams, on the asyncio side.

Every member applies every entry, so every member can serve watches. Events arrive from
the Raft thread (through `loop.call_soon_threadsafe`, which keeps their order) and are
matched against each synced watcher. A new watcher first replays history from its start
revision up to what has been published, then joins the live feed: the two meet at
`published_revision` without a gap or a duplicate because both run on the event loop.

A watcher whose stream falls behind (its queue grows past a bound) is moved to
"unsynced" and catches up from history, as etcd's watchable store does, so a slow
client costs memory bounded by the queue, never the whole history.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from store import errors
from store.kv_types import DELETE, PUT, Event

log = logging.getLogger(__name__)

NOPUT = 0
NODELETE = 1

HeaderFn = Callable[[int], dict]


class StateView(Protocol):
    """What the hub needs from the replicated state: history, under the state lock."""

    def events_since(self, start_revision: int, key: bytes, range_end: bytes) -> list[Event]: ...

    @property
    def revision(self) -> int: ...


class Stream(Protocol):
    """Where a watcher's messages go: one JSON-ready WatchResponse dict at a time."""

    def send(self, message: dict) -> None: ...

    def backlog(self) -> int: ...


@dataclass(eq=False)
class Watcher:
    watch_id: int
    key: bytes
    range_end: bytes
    start_revision: int
    prev_kv: bool
    filters: frozenset[int]
    progress_notify: bool
    stream: Stream
    next_rev: int = 0
    synced: bool = False
    sent_since_progress: bool = False
    catching_up: asyncio.Task | None = field(default=None, repr=False)

    def matches(self, key: bytes) -> bool:
        if not self.range_end:
            return key == self.key
        if self.range_end == b"\0":
            return key >= self.key
        return self.key <= key < self.range_end

    def visible(self, event: Event) -> Event | None:
        if event.type == PUT and NOPUT in self.filters:
            return None
        if event.type == DELETE and NODELETE in self.filters:
            return None
        if not self.prev_kv and event.prev_kv is not None:
            return event._replace(prev_kv=None)
        return event


class WatchHub:
    """Delivers events to watchers, in revision order, once each."""

    def __init__(self, state: Callable[[], StateView], lock: Any, header: HeaderFn,
                 max_backlog: int = 1024) -> None:
        self._state = state
        self._lock = lock
        self._header = header
        self._max_backlog = max_backlog
        self._watchers: set[Watcher] = set()
        self.published_revision = 0

    def start(self) -> None:
        with self._lock:
            self.published_revision = self._state().revision

    # ---- registration ------------------------------------------------------------------

    def add(self, watcher: Watcher) -> None:
        """Register a watcher: replay history from its start revision, then go live."""
        current = self.published_revision
        watcher.next_rev = watcher.start_revision or current + 1
        self._watchers.add(watcher)
        if watcher.next_rev > current:
            watcher.synced = True
            return
        self._catch_up(watcher)

    def remove(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)
        if watcher.catching_up is not None:
            watcher.catching_up.cancel()

    def __len__(self) -> int:
        return len(self._watchers)

    # ---- live feed ---------------------------------------------------------------------

    def publish(self, events: list[Event]) -> None:
        """Deliver freshly applied events (called on the loop, in apply order)."""
        if not self._watchers:  # nobody to tell: just move the published revision on
            if events:
                self.published_revision = max(self.published_revision,
                                              events[-1].kv.mod_revision)
            return
        by_revision: list[tuple[int, list[Event]]] = []
        for event in events:
            rev = event.kv.mod_revision
            if by_revision and by_revision[-1][0] == rev:
                by_revision[-1][1].append(event)
            else:
                by_revision.append((rev, [event]))
        for rev, group in by_revision:
            if rev <= self.published_revision:
                continue  # replayed after a restart or snapshot load: already delivered
            self.published_revision = rev
            for watcher in list(self._watchers):
                if watcher.synced and rev >= watcher.next_rev:
                    self._deliver_live(watcher, rev, group)

    def _deliver_live(self, watcher: Watcher, rev: int, group: list[Event]) -> None:
        visible = [v for e in group if watcher.matches(e.kv.key)
                   for v in (watcher.visible(e),) if v is not None]
        watcher.next_rev = rev + 1
        if not visible:
            return
        if watcher.stream.backlog() >= self._max_backlog:
            watcher.synced = False
            watcher.next_rev = rev
            self._catch_up(watcher)
            return
        watcher.sent_since_progress = True
        watcher.stream.send(self._message(watcher, rev, visible))

    def resync_all(self) -> None:
        """After this member loaded a snapshot, re-derive every watcher from history."""
        with self._lock:
            self.published_revision = self._state().revision
        for watcher in list(self._watchers):
            if watcher.next_rev <= self.published_revision:
                watcher.synced = False
                self._catch_up(watcher)

    # ---- catch-up from history -----------------------------------------------------

    def _catch_up(self, watcher: Watcher) -> None:
        if watcher.catching_up is not None and not watcher.catching_up.done():
            return
        watcher.catching_up = asyncio.get_running_loop().create_task(
            self._replay(watcher), name=f"watch-catch-up-{watcher.watch_id}")
        watcher.catching_up.add_done_callback(_log_crash)

    async def _replay(self, watcher: Watcher) -> None:
        """Send history from `next_rev` up to the published revision, then go live.

        Runs without awaiting between reading history and marking the watcher synced, so
        no live event can slip between the two; it yields only when the stream's backlog
        is full, and then reads history again from where it stopped.
        """
        while watcher in self._watchers:
            upto = self.published_revision
            try:
                with self._lock:
                    history = self._state().events_since(watcher.next_rev, watcher.key,
                                                         watcher.range_end)
            except errors.EtcdError:
                self._cancel_compacted(watcher)
                return
            finished = True
            for rev, group in _group(history):
                if rev > upto:
                    break
                if watcher.stream.backlog() >= self._max_backlog:
                    finished = False
                    break
                visible = [v for e in group for v in (watcher.visible(e),) if v is not None]
                if visible:
                    watcher.sent_since_progress = True
                    watcher.stream.send(self._message(watcher, rev, visible))
                watcher.next_rev = rev + 1
            if finished:
                watcher.next_rev = max(watcher.next_rev, upto + 1)
                watcher.synced = True
                return
            while watcher.stream.backlog() >= self._max_backlog // 2:
                await asyncio.sleep(0.005)

    def _cancel_compacted(self, watcher: Watcher) -> None:
        with self._lock:
            compact_rev = getattr(self._state(), "compact_revision", 0)
        header = self._header(0)
        watcher.stream.send({"header": header, "watch_id": watcher.watch_id,
                             "canceled": True, "compact_revision": compact_rev})
        self._watchers.discard(watcher)

    def _message(self, watcher: Watcher, rev: int, events: list[Event]) -> dict:
        return {"header": self._header(rev), "watch_id": watcher.watch_id, "events": events}

    # ---- progress ------------------------------------------------------------------

    def progress(self, watchers: list[Watcher], only_idle: bool) -> None:
        """Send header-only progress messages to synced watchers."""
        header = self._header(self.published_revision)
        for watcher in watchers:
            if not watcher.synced or watcher not in self._watchers:
                continue
            if only_idle and watcher.sent_since_progress:
                watcher.sent_since_progress = False
                continue
            watcher.stream.send({"header": header, "watch_id": watcher.watch_id})


def _group(events: list[Event]) -> list[tuple[int, list[Event]]]:
    groups: list[tuple[int, list[Event]]] = []
    for event in events:
        rev = event.kv.mod_revision
        if groups and groups[-1][0] == rev:
            groups[-1][1].append(event)
        else:
            groups.append((rev, [event]))
    return groups


def _log_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("watch task %s crashed", task.get_name(), exc_info=task.exception())
