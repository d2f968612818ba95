"""The Proposer's promises about requests that time out, with a fake pysyncobj node.

A request answered with a timeout must never be proposed afterwards (it would take
effect long after the client gave up on it, e.g. when a partition heals), and a Raft
entry that pysyncobj never calls back (an installed snapshot replaced it) must not hold
the member's later requests up forever. Both were seen against real processes in
tests/integration/test_store_faults.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from pysyncobj import FAIL_REASON

from store import errors
from store.raft_node import Proposer


class FakeNode:
    """Records each proposed entry; answers only when the test says so."""

    def __init__(self) -> None:
        self.entries: list[tuple[tuple, Callable[[Any, int], None]]] = []

    def apply(self, commands: tuple, callback: Callable[[Any, int], None]) -> None:
        self.entries.append((commands, callback))

    def proposed(self) -> list[tuple]:
        return [c for commands, _ in self.entries for c in commands]


def make() -> tuple[Proposer, FakeNode]:
    node = FakeNode()
    return Proposer(SimpleNamespace(node=node), asyncio.get_running_loop()), node  # type: ignore[arg-type]


def test_a_request_that_timed_out_is_never_proposed_later() -> None:
    async def body() -> None:
        proposer, node = make()
        stuck = [asyncio.create_task(proposer.propose(("stuck", n), timeout=0.05))
                 for n in range(2)]  # fill both in-flight slots; never answered
        waiting = asyncio.create_task(proposer.propose(("late",), timeout=0.05))
        for task in [*stuck, waiting]:
            with pytest.raises(errors.EtcdError):
                await task
        assert ("late",) not in node.proposed()
        for _, callback in node.entries:  # the stuck entries are discarded at last
            callback(None, FAIL_REASON.DISCARDED)
        await asyncio.sleep(0.01)
        assert ("late",) not in node.proposed()

    asyncio.run(body())


def test_an_entry_never_called_back_does_not_block_later_requests() -> None:
    async def body() -> None:
        proposer, node = make()
        for n in range(2):
            with pytest.raises(errors.EtcdError):
                await proposer.propose(("lost", n), timeout=0.05)
        later = asyncio.create_task(proposer.propose(("later",), timeout=1.0))
        await asyncio.sleep(0.01)
        assert node.entries[-1][0] == (("later",),)
        node.entries[-1][1](["done"], FAIL_REASON.SUCCESS)
        assert await later == "done"

    asyncio.run(body())


def test_without_a_leader_a_request_is_retried_until_it_succeeds() -> None:
    async def body() -> None:
        proposer, node = make()
        task = asyncio.create_task(proposer.propose(("put",), timeout=1.0))
        await asyncio.sleep(0.01)
        node.entries[-1][1](None, FAIL_REASON.MISSING_LEADER)
        await asyncio.sleep(0.1)
        assert len(node.entries) == 2
        node.entries[-1][1](["ok"], FAIL_REASON.SUCCESS)
        assert await task == "ok"

    asyncio.run(body())


def test_a_read_barrier_without_a_leader_is_retried_until_it_succeeds() -> None:
    # A retried barrier once went to a list _maybe_flush had already replaced, so a
    # linearizable read issued during a leader election hung until its deadline.
    async def body() -> None:
        proposer, node = make()
        task = asyncio.create_task(proposer.read_barrier(timeout=1.0))
        await asyncio.sleep(0.01)
        node.entries[-1][1](None, FAIL_REASON.MISSING_LEADER)
        await asyncio.sleep(0.1)
        assert len(node.entries) == 2, "the barrier was not proposed again"
        node.entries[-1][1]([None], FAIL_REASON.SUCCESS)
        await asyncio.wait_for(task, 0.5)

    asyncio.run(body())
