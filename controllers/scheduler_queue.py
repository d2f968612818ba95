"""The scheduler's queue of pending pods: active, backing off, or parked unschedulable.

kube-scheduler's PriorityQueue without priorities (kubelite never preempts, so order by
arrival is enough), built on the WorkQueue:

- active and back-off live in the WorkQueue: a pod to decide is `add`ed; a pod whose
  binding failed is `requeue`d with per-pod exponential back-off (1 s doubling to 10 s,
  kube-scheduler's podInitialBackoffSeconds and podMaxBackoffSeconds). While a pod is
  being decided or bound, or its status written, its key is in process, so one pod is
  never handled twice at once and a change seen meanwhile queues it once more.
- a pod that fits nowhere is `park`ed: retrying it is pointless until the cluster
  changes. `move_all` (a node added or changed, a bound pod deleted) sends every parked
  pod back, each after whatever is left of its back-off, and `flush` sends back those
  parked longer than `max_parked` (kube-scheduler's leftover flush), in case an event
  that mattered was not one we recognise.

Time is an argument (`now`, the WorkQueue's clock) wherever a decision depends on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from apiserver.workqueue import ItemExponentialLimiter, WorkQueue

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_PARKED = 30.0


class SchedulerQueue:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 initial_backoff: float = INITIAL_BACKOFF, max_backoff: float = MAX_BACKOFF,
                 max_parked: float = MAX_PARKED) -> None:
        self.work: WorkQueue[str] = WorkQueue(
            "scheduler", limiter=ItemExponentialLimiter(initial_backoff, max_backoff),
            clock=clock)
        self.clock = clock
        self.max_parked = max_parked
        self.parked: dict[str, tuple[float, float]] = {}  # key -> (parked at, back-off until)

    def __len__(self) -> int:
        return len(self.work) + len(self.parked)

    def add(self, key: str) -> None:
        """A new pending pod (or one to look at again now)."""
        self.parked.pop(key, None)
        self.work.add(key)

    def pod_updated(self, key: str, spec_changed: bool) -> None:
        """A pending pod changed: a parked one comes back only if what it asks for
        changed (not for our own status writes); one held back keeps its back-off."""
        if key in self.parked:
            if spec_changed:
                self._move(key, self.clock())
            return
        if key not in self.work.state.held:
            self.work.add(key)

    def requeue(self, key: str) -> None:
        """Retry after the pod's back-off (an error, e.g. the binding failed)."""
        self.work.add_rate_limited(key)

    def park(self, key: str) -> None:
        """The pod fits nowhere: wait for a cluster change (or the flush), and back off."""
        now = self.clock()
        delay = self.work.limiter.when(key, now)
        self.parked[key] = (now, now + delay)

    def move_all(self) -> int:
        """The cluster changed in a way that may let parked pods fit: retry them all."""
        now = self.clock()
        moved = list(self.parked)
        for key in moved:
            self._move(key, now)
        return len(moved)

    def flush(self) -> int:
        """Retry the pods parked for longer than `max_parked`."""
        now = self.clock()
        stale = [key for key, (at, _) in self.parked.items() if now - at >= self.max_parked]
        for key in stale:
            self._move(key, now)
        return len(stale)

    def succeeded(self, key: str) -> None:
        """Bound: reset the back-off."""
        self.parked.pop(key, None)
        self.work.forget(key)

    def drop(self, key: str) -> None:
        """The pod is gone or no longer pending: nothing to retry (a queued key is skipped
        when it comes up, since the cache no longer shows it pending)."""
        self.parked.pop(key, None)
        self.work.forget(key)

    def _move(self, key: str, now: float) -> None:
        _, until = self.parked.pop(key)
        self.work.add_after(key, max(0.0, until - now))
