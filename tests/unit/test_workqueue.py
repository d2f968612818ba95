"""The work queue: rate limiters and queue bookkeeping on a fake clock, then the async
wrapper's waiting (ordering only, no timing assertions)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apiserver.workqueue import (
    BucketLimiter,
    ItemExponentialLimiter,
    QueueShutDown,
    QueueState,
    WorkQueue,
    default_limiter,
)

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, 10)

    return asyncio.run(bounded())


# --- limiters ------------------------------------------------------------------------------


def test_item_limiter_doubles_from_5ms_to_1000s_and_forgets() -> None:
    limiter = ItemExponentialLimiter()
    delays = [limiter.when("a", 0.0) for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 1000.0  # 0.005 * 2**19 > 1000: capped
    assert limiter.failures("a") == 20
    assert limiter.when("b", 0.0) == 0.005  # per key
    limiter.forget("a")
    assert limiter.failures("a") == 0
    assert limiter.when("a", 0.0) == 0.005


def test_item_limiter_survives_huge_failure_counts() -> None:
    limiter = ItemExponentialLimiter(0.005, 1000.0)
    for _ in range(100):
        delay = limiter.when("k", 0.0)
    assert delay == 1000.0


def test_bucket_passes_a_burst_then_paces_reservations() -> None:
    bucket = BucketLimiter(qps=10, burst=100)
    assert [bucket.when(i, 5.0) for i in range(100)] == [0.0] * 100
    assert bucket.when("x", 5.0) == pytest.approx(0.1)
    assert bucket.when("y", 5.0) == pytest.approx(0.2)
    # One second later ten tokens came back; two of them were already promised.
    assert bucket.when("z", 6.0) == 0.0
    assert [bucket.when(i, 6.0) for i in range(7)] == [0.0] * 7
    assert bucket.when("w", 6.0) == pytest.approx(0.1)


def test_bucket_refills_to_the_burst_only() -> None:
    bucket = BucketLimiter(qps=10, burst=3)
    assert bucket.when("a", 0.0) == 0.0
    assert [bucket.when(i, 1000.0) for i in range(3)] == [0.0] * 3
    assert bucket.when("b", 1000.0) == pytest.approx(0.1)


def test_default_limiter_is_the_max_of_both() -> None:
    limiter = default_limiter()
    # 100 different keys fail at once: the bucket's burst covers them, 5 ms each.
    assert {limiter.when(i, 0.0) for i in range(100)} == {0.005}
    assert limiter.when("late", 0.0) == pytest.approx(0.1)  # the bucket now dominates
    for _ in range(12):
        delay = limiter.when("again", 100.0)
    assert delay == pytest.approx(0.005 * 2**11)  # the item limiter dominates
    limiter.forget("again")
    assert limiter.failures("again") == 0


# --- bookkeeping -----------------------------------------------------------------------------


def test_a_key_is_queued_once() -> None:
    state: QueueState[str] = QueueState()
    assert state.add("a")
    assert not state.add("a")
    state.add("b")
    assert list(state.ready) == ["a", "b"]
    assert state.pop() == "a"
    assert state.pop() == "b"
    assert state.pop() is None


def test_a_key_added_while_processing_comes_back_once_after_done() -> None:
    state: QueueState[str] = QueueState()
    state.add("a")
    assert state.pop() == "a"
    assert not state.add("a")  # not handed to a second worker
    assert not state.add("a")
    assert state.pop() is None
    assert state.done("a")
    assert state.pop() == "a"
    assert not state.done("a")
    assert state.pop() is None
    assert not state.knows("a")


def test_holds_release_in_time_order_and_the_earlier_hold_wins() -> None:
    state: QueueState[str] = QueueState()
    state.add_at("late", 10.0, now=0.0)
    state.add_at("soon", 5.0, now=0.0)
    state.add_at("soon", 8.0, now=0.0)  # later than the current hold: ignored
    state.add_at("late", 3.0, now=0.0)  # earlier: moves up
    assert state.knows("late") and len(state) == 0
    assert state.promote(1.0) == 3.0
    assert state.promote(3.0) == 5.0
    assert list(state.ready) == ["late"]
    assert state.promote(20.0) is None
    assert list(state.ready) == ["late", "soon"]


def test_a_hold_in_the_past_queues_at_once() -> None:
    state: QueueState[str] = QueueState()
    assert state.add_at("a", 1.0, now=2.0)
    assert state.pop() == "a"


def test_a_held_key_that_is_also_added_is_handed_out_once_per_add() -> None:
    state: QueueState[str] = QueueState()
    state.add_at("a", 5.0, now=0.0)
    state.add("a")
    assert state.pop() == "a"
    state.done("a")
    state.promote(6.0)  # the hold comes due later: one more round, as in client-go
    assert state.pop() == "a"


def test_shutdown_refuses_new_keys_and_drops_holds() -> None:
    state: QueueState[str] = QueueState()
    state.add("a")
    state.add_at("b", 5.0, now=0.0)
    state.shutdown()
    assert not state.add("c")
    assert state.promote(10.0) is None
    assert state.pop() == "a"  # what was queued is still handed out (drained)
    assert state.pop() is None


@given(st.lists(st.tuples(st.sampled_from(["add", "pop", "done", "hold", "tick"]),
                          st.integers(0, 4)), max_size=200))
def test_no_key_is_ever_queued_twice_or_queued_while_in_process(ops: list[tuple[str, int]]) -> None:
    state: QueueState[int] = QueueState()
    now = 0.0
    taken: set[int] = set()
    for op, key in ops:
        if op == "add":
            state.add(key)
        elif op == "pop":
            got = state.pop()
            if got is not None:
                assert got not in taken  # never two workers on one key
                taken.add(got)
        elif op == "done" and key in taken:
            taken.discard(key)
            state.done(key)
        elif op == "hold":
            state.add_at(key, now + key, now)
        else:
            now += 1.0
            state.promote(now)
        assert len(state.ready) == len(set(state.ready))
        assert not set(state.ready) & state.processing
        assert set(state.ready) <= state.dirty


# --- the async queue ---------------------------------------------------------------------


def test_get_waits_for_an_add() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue("t")
        getter = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0.01)
        assert not getter.done()
        queue.add("a")
        return [await getter]

    assert run(scenario()) == ["a"]


def test_add_after_and_rate_limited_keys_come_out_eventually_in_order() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue("t")
        queue.add_after("second", 0.05)
        queue.add_after("first", 0.01)
        queue.add_rate_limited("third")  # 5 ms after its first failure
        queue.add_rate_limited("third")  # already held: the earlier time stays
        got = [await queue.get() for _ in range(3)]
        return got

    got = run(scenario())
    assert set(got) == {"first", "second", "third"}
    assert got.index("first") < got.index("second")


def test_get_batch_takes_what_is_ready() -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        queue: WorkQueue[int] = WorkQueue("t")
        for i in range(5):
            queue.add(i)
        first = await queue.get_batch(3)
        second = await queue.get_batch(10)
        return first, second

    assert run(scenario()) == ([0, 1, 2], [3, 4])


def test_shutdown_wakes_every_waiter() -> None:
    async def scenario() -> list[bool]:
        queue: WorkQueue[str] = WorkQueue("t")
        waiters = [asyncio.ensure_future(queue.get()) for _ in range(3)]
        await asyncio.sleep(0.01)
        queue.shutdown()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        return [isinstance(r, QueueShutDown) for r in results]

    assert run(scenario()) == [True, True, True]


def test_workers_never_share_a_key_and_see_every_change() -> None:
    async def scenario() -> tuple[int, int]:
        queue: WorkQueue[str] = WorkQueue("t")
        busy: set[str] = set()
        processed = 0
        overlaps = 0

        async def worker() -> None:
            nonlocal processed, overlaps
            while True:
                try:
                    key = await queue.get()
                except QueueShutDown:
                    return
                overlaps += key in busy
                busy.add(key)
                await asyncio.sleep(0.001)
                busy.discard(key)
                processed += 1
                queue.done(key)

        workers = [asyncio.ensure_future(worker()) for _ in range(4)]
        for _ in range(20):
            for key in ("a", "b", "c"):
                queue.add(key)
            await asyncio.sleep(0.0005)
        while len(queue) or queue.state.processing:
            await asyncio.sleep(0.005)
        queue.shutdown()
        await asyncio.gather(*workers)
        return processed, overlaps

    processed, overlaps = run(scenario())
    assert overlaps == 0
    assert 3 <= processed <= 60  # coalesced, never more than one round per add
