"""The informer: a local, current copy of one resource, and handlers told of changes.

As client-go's reflector and shared informer: list the collection, then watch from the
list's resourceVersion, applying each event to a local cache (`informer_cache.Cache`,
by namespace/name and by index) and queueing an add, update or delete for the handlers.

- A watch that ends cleanly (the server's timeoutSeconds) is opened again from the last
  resourceVersion seen (an event's or a bookmark's).
- A watch that fails, with 410 Gone (an ERROR event: the version was compacted away or
  the apiserver reset its watch cache) or a broken stream (the apiserver died), is
  followed by a re-list. The re-list replaces the cache and hands the handlers exactly
  the adds, updates and deletes that happened meanwhile, relative to the old cache.
- Errors back off (0.1 s doubling to 5 s) and retry for as long as the informer runs;
  each is logged.

Handlers run one at a time, in event order, in one task; they may be plain functions or
coroutines; one that raises is logged and the next event still goes out. `has_synced()`
turns true once the first list is in the cache and its adds were handed to every
handler. Both background tasks are named (`informer-<resource>` and
`informer-<resource>-handlers`) and a crash of either is logged and raised by
`wait_synced`.

    informer = Informer(api, "pods", indexers={"by_node": lambda p: p["spec"].get("nodeName")})
    informer.add_handlers(on_add=enqueue, on_update=lambda old, new: enqueue(new))
    async with informer:
        await informer.wait_synced(30)
        informer.by_index("by_node", "n1")
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from apiserver import client_paths
from apiserver.client_policy import ApiStatusError
from apiserver.informer_cache import Cache, Delta, IndexFunc, key_of
from apiserver.registry import Resource

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0
WATCH_TIMEOUT = (300, 600)  # seconds the server keeps one watch open (random per watch)
QUICK_END = 1.0  # a watch that ends this fast with no event is retried after a back-off


class ListResult(Protocol):
    @property
    def items(self) -> list[dict[str, Any]]: ...

    @property
    def resource_version(self) -> str: ...


class EventStream(Protocol):
    def __aiter__(self) -> AsyncIterator[tuple[str, dict[str, Any]]]: ...
    async def __aenter__(self) -> Any: ...
    async def __aexit__(self, *exc_info: object) -> None: ...


class ListWatcher(Protocol):
    """What an informer needs from the API client (apiserver.client.ApiClient)."""

    async def list(self, path: str, *, label_selector: str | None = ...,
                   field_selector: str | None = ...) -> ListResult: ...

    def watch(self, path: str, resource_version: str | None = ..., *,
              label_selector: str | None = ..., field_selector: str | None = ...,
              allow_bookmarks: bool = ..., timeout_seconds: int | None = ...) -> EventStream: ...


Handler = Callable[..., Awaitable[None] | None]


@dataclass(frozen=True)
class Handlers:
    on_add: Handler | None = None
    on_update: Handler | None = None  # called with (old, new)
    on_delete: Handler | None = None


class InformerError(RuntimeError):
    """The informer's background task died (a bug; it was logged too)."""


_SYNCED = object()  # queued after the first list's deltas


class Informer:
    def __init__(
        self,
        client: ListWatcher,
        resource: str | Resource,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
    ) -> None:
        self.client = client
        self.resource = client_paths.resolve(resource)
        self.path = client_paths.path_of(self.resource, namespace)
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.cache = Cache(indexers)
        self.name = self.resource.group_resource + (f"@{namespace}" if namespace else "")
        self.resource_version = ""  # the newest version seen: list, event or bookmark
        self.lists = 0  # how many lists have been applied (1 + re-lists)
        self._handlers: list[Handlers] = []
        self._queue: asyncio.Queue[Delta | object] = asyncio.Queue()
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._backoff = BACKOFF_FIRST

    # --- set-up ---------------------------------------------------------------------

    def add_handlers(self, on_add: Handler | None = None, on_update: Handler | None = None,
                     on_delete: Handler | None = None) -> None:
        """Register handlers; before start(), so that they see every object's add."""
        if self._tasks:
            raise RuntimeError("add handlers before starting the informer")
        self._handlers.append(Handlers(on_add, on_update, on_delete))

    async def start(self) -> None:
        if self._tasks:
            raise RuntimeError("the informer is already started")
        for coro, name in ((self._run(), f"informer-{self.name}"),
                           (self._dispatch(), f"informer-{self.name}-handlers")):
            task = asyncio.get_running_loop().create_task(coro, name=name)
            task.add_done_callback(_log_crash)
            self._tasks.append(task)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> Informer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- reads ----------------------------------------------------------------------

    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Return once synced; TimeoutError after `timeout`, InformerError if it died."""
        if not self._tasks:
            raise RuntimeError("the informer is not started")
        waiter = asyncio.ensure_future(self._synced.wait())
        try:
            done, _ = await asyncio.wait([waiter, *self._tasks], timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if self._synced.is_set():
            return
        for task in self._tasks:
            if task in done:
                cause = None if task.cancelled() else task.exception()
                raise InformerError(f"{task.get_name()} ended before the informer synced") \
                    from cause
        raise TimeoutError(f"informer {self.name} not synced within {timeout} s")

    def get(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        ns = namespace if namespace is not None else self.namespace
        return self.cache.get(f"{ns}/{name}" if self.resource.namespaced and ns else name)

    def list(self) -> list[dict[str, Any]]:
        return self.cache.list()

    def keys(self) -> list[str]:
        return self.cache.keys()

    def by_index(self, index: str, value: str) -> list[dict[str, Any]]:
        return self.cache.by_index(index, value)

    # --- list and watch -------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._list()
                await self._watch_until_broken()
            except asyncio.CancelledError:
                raise
            except ApiStatusError as err:
                log.warning("informer %s: %s; re-listing in %.1f s", self.name, err,
                            self._backoff)
                await self._sleep_backoff()
            except Exception:  # noqa: BLE001 (a bug: logged loudly, then start over)
                log.exception("informer %s failed; re-listing in %.1f s", self.name,
                              self._backoff)
                await self._sleep_backoff()

    async def _list(self) -> None:
        listed = await self.client.list(self.path, label_selector=self.label_selector,
                                        field_selector=self.field_selector)
        for delta in self.cache.replace(listed.items):
            self._queue.put_nowait(delta)
        self.resource_version = listed.resource_version
        self.lists += 1
        self._backoff = BACKOFF_FIRST
        if self.lists == 1:
            self._queue.put_nowait(_SYNCED)
        log.debug("informer %s listed %d objects at %s", self.name, len(listed.items),
                  listed.resource_version)

    async def _watch_until_broken(self) -> None:
        """Watch from the newest version, again after each clean end; return (to re-list)
        on 410 and raise on any other failure."""
        loop = asyncio.get_running_loop()
        while True:
            opened, events = loop.time(), 0
            try:
                async with self.client.watch(
                        self.path, self.resource_version, label_selector=self.label_selector,
                        field_selector=self.field_selector, allow_bookmarks=True,
                        timeout_seconds=random.randint(*WATCH_TIMEOUT)) as stream:
                    async for event_type, obj in stream:
                        events += 1
                        self._observe(event_type, obj)
            except ApiStatusError as err:
                if err.code == 410:
                    log.info("informer %s: %s; re-listing", self.name, err.message)
                    return
                raise
            self._backoff = BACKOFF_FIRST
            if events == 0 and loop.time() - opened < QUICK_END:
                await self._sleep_backoff()

    def _observe(self, event_type: str, obj: dict[str, Any]) -> None:
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if event_type == "BOOKMARK":
            self.resource_version = version or self.resource_version
            return
        if event_type not in ("ADDED", "MODIFIED", "DELETED"):
            log.warning("informer %s: ignoring a %r event", self.name, event_type)
            return
        delta = self.cache.apply(event_type, obj)
        if version:
            self.resource_version = version
        if delta is not None:
            self._queue.put_nowait(delta)

    async def _sleep_backoff(self) -> None:
        await asyncio.sleep(self._backoff * random.uniform(0.8, 1.2))
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)

    # --- handlers -------------------------------------------------------------------

    async def _dispatch(self) -> None:
        while True:
            item = await self._queue.get()
            if item is _SYNCED:
                self._synced.set()
                continue
            assert isinstance(item, Delta)
            for handlers in self._handlers:
                await self._call(handlers, item)

    async def _call(self, handlers: Handlers, delta: Delta) -> None:
        if delta.kind == "add":
            handler, args = handlers.on_add, (delta.obj,)
        elif delta.kind == "update":
            handler, args = handlers.on_update, (delta.old, delta.obj)
        else:
            handler, args = handlers.on_delete, (delta.obj,)
        if handler is None:
            return
        try:
            result = handler(*args)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 (one handler's bug must not stop the others)
            log.exception("informer %s: %s handler failed for %s", self.name, delta.kind,
                          key_of(delta.obj))


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s crashed", task.get_name(), exc_info=task.exception())
