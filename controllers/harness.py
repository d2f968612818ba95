"""One controller's moving parts: a work queue of keys, N workers, an optional resync.

Informer handlers only `enqueue(key)`; a worker takes a key, calls the controller's
`sync(key)` (read the cache, reconcile, run the actions) and settles the key by what
the run says, as Kubernetes' processNextWorkItem does:

- success: the key's failures are forgotten; a RequeueAfter puts it back after that
  delay (the earliest one wins, so a watch event in between still acts at once);
- failure: back into the queue with the rate limiter's back-off (5 ms doubling per
  failure, capped), so that a stale cache (409) is retried almost at once and a
  persistent error does not spin;
- a sync that raises is a bug: logged with its traceback, retried with back-off;
  the worker goes on with the next key.

The work queue hands a key to one worker at a time and coalesces repeats, which gives
STYLE.md's "one coalescing worker per object". `start()` (on becoming the leader) queues
every key `keys()` lists, since the informers' adds went by while this instance stood
by; a periodic resync (`resync` seconds) queues them again, for controllers driven by
the clock (node lifecycle) or that sweep (garbage collector). Until `start()` and
after `stop()` the queue is shut and `enqueue` drops keys. Every task is named `<name>-worker-<i>`
or `<name>-resync` and a crash is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from apiserver.workqueue import QueueShutDown, WorkQueue

log = logging.getLogger(__name__)


class Result(Protocol):
    """What a sync reports (runner.Outcome has this shape)."""

    @property
    def ok(self) -> bool: ...

    @property
    def requeue_after(self) -> float | None: ...


SyncFn = Callable[[str], Awaitable[Result | None]]


class Controller:
    """A named control loop: `enqueue` from handlers, `start`/`stop` with leadership."""

    def __init__(self, name: str, sync: SyncFn, workers: int = 1, *,
                 resync: float | None = None,
                 keys: Callable[[], Iterable[str]] | None = None) -> None:
        if workers < 1:
            raise ValueError(f"{name}: need at least one worker")
        self.name = name
        self.sync = sync
        self.workers = workers
        self.resync = resync
        self.keys = keys
        self.queue: WorkQueue[str] = WorkQueue(name)
        self.queue.shutdown()  # keys are dropped until start(), which enqueues them all
        self.syncs = 0
        self.failures = 0
        self._tasks: list[asyncio.Task[None]] = []

    def enqueue(self, key: str) -> None:
        if key:
            self.queue.add(key)

    def enqueue_after(self, key: str, delay: float) -> None:
        if key:
            self.queue.add_after(key, delay)

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def start(self) -> None:
        if self._tasks:
            raise RuntimeError(f"controller {self.name} is already running")
        loop = asyncio.get_running_loop()
        self.queue = WorkQueue(self.name)
        if self.keys is not None:
            for key in self.keys():
                self.enqueue(key)
        for i in range(self.workers):
            self._spawn(loop, self._work(), f"{self.name}-worker-{i}")
        if self.resync is not None and self.keys is not None:
            self._spawn(loop, self._resync_loop(self.resync), f"{self.name}-resync")

    def _spawn(self, loop: asyncio.AbstractEventLoop, coro: Awaitable[None], name: str) -> None:
        task = loop.create_task(coro, name=name)  # type: ignore[arg-type]
        task.add_done_callback(_log_crash)
        self._tasks.append(task)

    async def stop(self) -> None:
        """Stop taking keys and cancel in-flight syncs (leadership is gone: no more writes)."""
        self.queue.shutdown()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _work(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueShutDown:
                return
            try:
                await self._process(key)
            finally:
                self.queue.done(key)

    async def _process(self, key: str) -> None:
        self.syncs += 1
        try:
            result = await self.sync(key)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 (a bug in one sync must not stop the loop)
            self.failures += 1
            log.exception("%s: sync of %r crashed; retrying with back-off", self.name, key)
            self.queue.add_rate_limited(key)
            return
        if result is not None and not result.ok:
            self.failures += 1
            self.queue.add_rate_limited(key)
            return
        self.queue.forget(key)
        if result is not None and result.requeue_after is not None:
            self.queue.add_after(key, result.requeue_after)

    async def _resync_loop(self, period: float) -> None:
        assert self.keys is not None
        while True:
            await asyncio.sleep(period)
            try:
                for key in self.keys():
                    self.enqueue(key)
            except Exception:  # noqa: BLE001 (listing keys from a cache; try again next time)
                log.exception("%s: listing keys to resync failed", self.name)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s crashed", task.get_name(), exc_info=task.exception())

