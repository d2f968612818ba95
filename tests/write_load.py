"""A concurrent write load that records exactly which writes the store acknowledged.

Fault tests break a cluster while this runs and then hold the store to its promise:
every acknowledged write is there, with the acknowledged value at the acknowledged
revision, and nothing the client reported as "certainly not applied" shows up.

Each writer puts unique keys (`<prefix>/w<writer>/<n>`), so a key's presence and its
`mod_revision` say everything about one write: no later write can hide an earlier one.
A failed write is recorded with the client's verdict (`maybe_applied`) and the writer
moves on to its next key after a short pause. Loops are bounded by a write count per
writer and by `stop()`; the test bounds the time.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from store import errors
from store.client import StoreClient, StoreUnavailable, prefix_range_end
from store.kv_types import KeyValue

FAILURE_PAUSE = 0.02
MAX_WRITES_PER_WRITER = 200_000
STOP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Ack:
    key: bytes
    value: bytes
    revision: int
    sent: float  # time.monotonic() when the request started
    at: float  # time.monotonic() when the reply arrived


@dataclass(frozen=True)
class Failed:
    key: bytes
    value: bytes
    at: float
    maybe_applied: bool
    error: str


@dataclass
class WriteLoad:
    """`writers` concurrent writers sharing one client with every endpoint.

    Use as `async with WriteLoad(endpoints, b"/load") as load: ...`; leaving the block
    stops the writers (or call `stop()` first to check the history while the client
    is still open).
    """

    endpoints: Sequence[str]
    prefix: bytes
    writers: int = 16
    client_timeout: float = 10.0
    pace: float = 0.0  # seconds each writer sleeps after an ack (0: as fast as it can)
    acks: list[Ack] = field(default_factory=list)
    failures: list[Failed] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._token = os.urandom(4).hex().encode()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.client = StoreClient(list(self.endpoints), timeout=self.client_timeout)

    async def __aenter__(self) -> WriteLoad:
        self._tasks = [asyncio.create_task(self._writer(w), name=f"writer-{w}")
                       for w in range(self.writers)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.stop()
        finally:
            await self.client.close()

    async def stop(self) -> None:
        """Stop every writer; wait (bounded) for the writes in flight to end."""
        self._stopping.set()
        if not self._tasks:
            return
        done, pending = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"{task.get_name()} crashed") from task.exception()
        self._tasks = []

    async def _writer(self, w: int) -> None:
        for n in range(MAX_WRITES_PER_WRITER):
            if self._stopping.is_set():
                return
            key = b"%s/w%02d/%07d" % (self.prefix, w, n)
            value = b"%s-%d-%d" % (self._token, w, n)
            sent = time.monotonic()
            try:
                result = await self.client.put(key, value)
            except StoreUnavailable as exc:
                self.failures.append(Failed(key, value, time.monotonic(), exc.maybe_applied,
                                            str(exc)))
                await asyncio.sleep(FAILURE_PAUSE)
            except errors.EtcdError as exc:
                # An answer from a member; only the timeouts leave the outcome open.
                maybe = exc.code in (errors.GrpcCode.UNAVAILABLE, errors.GrpcCode.UNKNOWN,
                                     errors.GrpcCode.DEADLINE_EXCEEDED)
                self.failures.append(Failed(key, value, time.monotonic(), maybe,
                                            f"{exc.code.name}: {exc.message}"))
                await asyncio.sleep(FAILURE_PAUSE)
            else:
                self.acks.append(Ack(key, value, result.revision, sent, time.monotonic()))
                if self.pace:
                    await asyncio.sleep(self.pace)

    # --- waiting and looking at the history --------------------------------------------

    async def wait_for_acks(self, count: int, timeout: float) -> None:
        """Until `count` more writes than now are acknowledged."""
        target = len(self.acks) + count
        deadline = time.monotonic() + timeout
        while len(self.acks) < target:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"only {len(self.acks)} of {target} writes acknowledged within "
                    f"{timeout} s; last failures: {self.failures[-3:]}")
            await asyncio.sleep(0.02)

    def last_ack_before(self, moment: float) -> Ack | None:
        return max((a for a in self.acks if a.at <= moment), key=lambda a: a.at, default=None)

    def first_ack_sent_after(self, moment: float) -> Ack | None:
        """The first acknowledgement of a write that started after `moment`.

        Replies already on their way at `moment` do not count: they say nothing about
        whether the cluster accepts writes after it.
        """
        return min((a for a in self.acks if a.sent > moment), key=lambda a: a.at, default=None)

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time within [start, end] with no acknowledgement."""
        times = sorted(a.at for a in self.acks if start <= a.at <= end)
        points = [start, *times, end]
        return max(b - a for a, b in zip(points, points[1:], strict=False))

    def max_acked_revision(self) -> int:
        return max((a.revision for a in self.acks), default=0)


def check_history(load: WriteLoad, kvs: Sequence[KeyValue]) -> None:
    """Every ack is present exactly as acknowledged; nothing refused or unknown is there
    unless its failure left the outcome open; no key appears that nobody wrote."""
    present = {kv.key: kv for kv in kvs}
    missing = []
    wrong = []
    for ack in load.acks:
        kv = present.get(ack.key)
        if kv is None:
            missing.append(ack)
        elif kv.value != ack.value or kv.mod_revision != ack.revision:
            wrong.append((ack, kv))
    assert not missing, (f"{len(missing)} of {len(load.acks)} acknowledged writes are lost, "
                         f"e.g. {missing[:5]}")
    assert not wrong, (f"{len(wrong)} acknowledged writes differ from what was acknowledged, "
                       f"e.g. {wrong[:5]}")
    attempted = {a.key for a in load.acks} | {f.key for f in load.failures}
    strangers = [k for k in present if k not in attempted]
    assert not strangers, f"keys nobody wrote: {strangers[:5]}"
    refused_but_there = [f for f in load.failures if not f.maybe_applied and f.key in present]
    assert not refused_but_there, (
        f"writes reported as not applied are in the store: {refused_but_there[:5]}")


async def read_prefix(endpoints: Sequence[str], prefix: bytes, *, serializable: bool = False,
                      timeout: float = 10.0) -> tuple[list[KeyValue], int]:
    """All keys under `prefix` and the revision of the read, from the given members."""
    async with StoreClient(list(endpoints), timeout=timeout) as client:
        result = await client.range(prefix + b"/", prefix_range_end(prefix + b"/"),
                                    serializable=serializable)
    return list(result.kvs), result.revision
