"""A rate-limited work queue of keys, as client-go's workqueue, for one controller.

A controller reacts to informer events by queueing the *key* of the object that changed
("namespace/name"), never the object: the worker reads the current object from the
informer's cache when it gets to the key, so ten updates in a row cost one reconcile.
The rules, which are client-go's:

- De-duplication. A key waits in the queue at most once. A key added while a worker
  processes it is marked dirty and queued again, once, when the worker calls `done`; so
  one key is never processed by two workers at a time, and no change is missed.
- Delays. `add_after(key, d)` holds the key back `d` seconds; if it is already held, the
  earlier time wins.
- Back-off. `add_rate_limited(key)` asks the rate limiter how long to hold it back: the
  maximum of a per-key exponential back-off (5 ms, doubling with each failure up to
  1000 s) and one token bucket for the whole queue (10 per second, bursts of 100), the
  same as client-go's DefaultControllerRateLimiter. `forget(key)` resets the key's
  failures after a success.
- `shutdown()` wakes every waiting `get`, which then raise QueueShutDown once the queue
  is empty; keys added after it are dropped.

The timing is pure: `ItemExponentialLimiter`, `BucketLimiter` and `QueueState` take the
time as an argument, so the unit tests drive them with a fake clock; `WorkQueue` only
adds the waiting (an asyncio.Event and a timer for the earliest held key).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

K = TypeVar("K", bound=Hashable)

ITEM_BASE_DELAY = 0.005
ITEM_MAX_DELAY = 1000.0
BUCKET_QPS = 10.0
BUCKET_BURST = 100


class QueueShutDown(Exception):
    """`get` on a queue that was shut down and has nothing left."""


class RateLimiter(Protocol):
    """How long to hold a key back before it is retried (`now`: the queue's clock)."""

    def when(self, key: Hashable, now: float) -> float: ...

    def forget(self, key: Hashable) -> None: ...

    def failures(self, key: Hashable) -> int: ...


class ItemExponentialLimiter:
    """Per key: base * 2**failures, capped (ItemExponentialFailureRateLimiter)."""

    def __init__(self, base: float = ITEM_BASE_DELAY, cap: float = ITEM_MAX_DELAY) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[Hashable, int] = {}

    def when(self, key: Hashable, now: float) -> float:
        exponent = self._failures.get(key, 0)
        self._failures[key] = exponent + 1
        if exponent > 62:  # 2**63 overflows Go's int64; here it only wastes time
            return self.cap
        return min(self.base * 2**exponent, self.cap)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def failures(self, key: Hashable) -> int:
        return self._failures.get(key, 0)


class BucketLimiter:
    """One token bucket for every key (golang.org/x/time/rate's Reserve): a burst passes,
    then `qps` per second; each call takes a token, possibly one not yet refilled."""

    def __init__(self, qps: float = BUCKET_QPS, burst: int = BUCKET_BURST) -> None:
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)
        self._last: float | None = None

    def when(self, key: Hashable, now: float) -> float:
        if self._last is not None and now > self._last:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        if self._last is None or now > self._last:
            self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, key: Hashable) -> None:
        return None

    def failures(self, key: Hashable) -> int:
        return 0


class MaxOfLimiter:
    """The longest delay any of the limiters asks for (MaxOfRateLimiter)."""

    def __init__(self, *limiters: RateLimiter) -> None:
        self.limiters = limiters

    def when(self, key: Hashable, now: float) -> float:
        return max(limiter.when(key, now) for limiter in self.limiters)

    def forget(self, key: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(key)

    def failures(self, key: Hashable) -> int:
        return max(limiter.failures(key) for limiter in self.limiters)


def default_limiter() -> MaxOfLimiter:
    """client-go's DefaultControllerRateLimiter."""
    return MaxOfLimiter(ItemExponentialLimiter(), BucketLimiter())


class QueueState(Generic[K]):
    """The queue's bookkeeping, without waiting: which keys are ready, held, in process.

    `ready`: keys to hand out, in order, each at most once; `dirty`: keys wanted again
    (every ready key, and any key added while processing); `processing`: keys handed
    out and not yet done; `held`: key -> the time it becomes ready (the heap may hold
    stale entries; the dict is the truth).
    """

    def __init__(self) -> None:
        self.ready: deque[K] = deque()
        self.dirty: set[K] = set()
        self.processing: set[K] = set()
        self.held: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self.shutting_down = False

    def __len__(self) -> int:
        """Keys ready to hand out (client-go's Len)."""
        return len(self.ready)

    def add(self, key: K) -> bool:
        """Queue `key` now; True if a waiting `get` has something new to take."""
        if self.shutting_down or key in self.dirty:
            return False
        self.dirty.add(key)
        if key in self.processing:
            return False  # queued again by done()
        self.ready.append(key)
        return True

    def add_at(self, key: K, at: float, now: float) -> bool:
        """Queue `key` at time `at` (now if already past); keeps an earlier hold."""
        if self.shutting_down:
            return False
        if at <= now:
            return self.add(key)
        current = self.held.get(key)
        if current is not None and current <= at:
            return False
        self.held[key] = at
        heapq.heappush(self._heap, (at, next(self._seq), key))
        return True  # the earliest hold may have moved: wake the waiter to re-arm

    def promote(self, now: float) -> float | None:
        """Move the held keys that are due into the queue; the next hold's time."""
        while self._heap:
            at, _, key = self._heap[0]
            if self.held.get(key) != at:
                heapq.heappop(self._heap)  # superseded by an earlier hold, or done
                continue
            if at > now:
                return at
            heapq.heappop(self._heap)
            del self.held[key]
            self.add(key)
        return None

    def pop(self) -> K | None:
        """Hand out the next ready key (now in process), or None."""
        if not self.ready:
            return None
        key = self.ready.popleft()
        self.processing.add(key)
        self.dirty.discard(key)
        return key

    def done(self, key: K) -> bool:
        """The worker finished `key`; True if it was queued again meanwhile."""
        self.processing.discard(key)
        if key in self.dirty:
            self.ready.append(key)
            return True
        return False

    def knows(self, key: K) -> bool:
        """Ready, held or in process."""
        return key in self.dirty or key in self.processing or key in self.held

    def shutdown(self) -> None:
        self.shutting_down = True
        self.held.clear()
        self._heap.clear()


class WorkQueue(Generic[K]):
    """The async queue over QueueState; `clock` is monotonic seconds (injectable)."""

    def __init__(self, name: str, limiter: RateLimiter | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.limiter = limiter if limiter is not None else default_limiter()
        self.clock = clock
        self.state: QueueState[K] = QueueState()
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self.state)

    def add(self, key: K) -> None:
        if self.state.add(key):
            self._wake.set()

    def add_after(self, key: K, delay: float) -> None:
        now = self.clock()
        if self.state.add_at(key, now + delay, now):
            self._wake.set()

    def add_rate_limited(self, key: K) -> None:
        """Hold `key` back as long as the rate limiter says (a failure to retry)."""
        now = self.clock()
        self.add_after(key, self.limiter.when(key, now))

    def forget(self, key: K) -> None:
        """Stop counting `key`'s failures (it succeeded); does not dequeue it."""
        self.limiter.forget(key)

    def failures(self, key: K) -> int:
        return self.limiter.failures(key)

    def knows(self, key: K) -> bool:
        return self.state.knows(key)

    def done(self, key: K) -> None:
        if self.state.done(key):
            self._wake.set()

    def shutdown(self) -> None:
        self.state.shutdown()
        self._wake.set()

    @property
    def shutting_down(self) -> bool:
        return self.state.shutting_down

    async def get(self) -> K:
        """The next key to process (call `done(key)` after); QueueShutDown at the end."""
        while True:
            self._wake.clear()
            next_at = self.state.promote(self.clock())
            key = self.state.pop()
            if key is not None:
                return key
            if self.state.shutting_down:
                raise QueueShutDown(self.name)
            if next_at is None:
                await self._wake.wait()
            else:
                try:
                    await asyncio.wait_for(self._wake.wait(), max(0.0, next_at - self.clock()))
                except TimeoutError:
                    pass

    async def get_batch(self, limit: int) -> list[K]:
        """At least one key (waiting for it), then whatever else is ready, up to `limit`;
        each needs its own `done`."""
        keys = [await self.get()]
        self.state.promote(self.clock())
        while len(keys) < limit:
            key = self.state.pop()
            if key is None:
                break
            keys.append(key)
        return keys
