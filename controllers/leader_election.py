"""Leader election on a coordination.k8s.io/v1 Lease, with fenced writes.

As client-go's leaderelection: every candidate reads the Lease each retry period. The
holder renews it (renewTime) every retry period; another candidate takes it only after
seeing the *same* record, unchanged, for leaseDurationSeconds of its own clock (never
by comparing timestamps across machines), and writes it with the resourceVersion it
read, so of two candidates racing for it the apiserver accepts one and answers the
other 409. The holder steps down (cancels its work) when it has not renewed within the
renew deadline.

Fencing. Stepping down is not enough: a leader paused (GC, SIGSTOP, a stalled VM)
wakes up with writes in hand and no idea time passed. So every write goes through the
`FencedClient` of its term, which refuses it (raises Fenced) unless

    now <= renewed_at + renew_deadline

where `renewed_at` is read from a clock that keeps counting while the process is paused
(CLOCK_BOOTTIME) just *before* the write that last took or renewed the lease was sent.
Why that is safe: the record R of that write was committed after `renewed_at`, so any
other candidate first saw R after `renewed_at` and takes over no earlier than
`renewed_at + lease_duration`. A fenced write is therefore checked at least
`lease_duration - renew_deadline` (5 s by default) before anyone else may lead, and its
call timeout is cut to end `FENCE_MARGIN` before `renewed_at + lease_duration`, so the
client sends no attempt (no failover retry either) after that.

The residual window, precisely: a write whose check passed is applied after a new
leader could have started only if it spends more than `lease_duration - renew_deadline`
between the check and its commit in the store while the client still waits for it,
i.e. the process is paused between the check and handing the request to the socket, or
the apiserver receives it in time and takes longer than the time left (at least
FENCE_MARGIN) to commit it. Both clocks must also run at the same rate (client-go makes
the same assumption). Nothing here can close that window without a fencing token the
store checks; it is bounded by `lease_duration - renew_deadline - FENCE_MARGIN` of
client-side time plus the apiserver's own processing of a request already received.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from apiserver.client import ApiStatusError, Fenced
from controllers.election_config import ElectionConfig

log = logging.getLogger(__name__)

JITTER_FACTOR = 1.2  # client-go's: a candidate retries after retry_period * [1, 2.2)
FENCE_MARGIN = 0.5  # seconds: a fenced call's attempts end this long before the lease could pass
RELEASE_TIMEOUT = 2.0
Obj = dict[str, Any]

__all__ = ["ElectionConfig", "Fenced", "FencedClient", "LeaderElector", "next_lease",
           "observe", "should_acquire", "write_budget"]


def fence_clock() -> float:
    """Seconds that keep counting while the process is stopped or the machine sleeps."""
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):
        return time.monotonic()


def default_identity() -> str:
    """client-go's "<hostname>_<uuid>": unique per process, so a restart is a new candidate."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


# --- the pure decision ----------------------------------------------------------------


class Observed(NamedTuple):
    """The lease record last seen and the local time it was first seen unchanged."""

    record: tuple[Any, ...]
    at: float


def _spec(lease: Mapping[str, Any] | None) -> Mapping[str, Any]:
    spec = (lease or {}).get("spec")
    return spec if isinstance(spec, Mapping) else {}


def holder_of(lease: Mapping[str, Any] | None) -> str:
    return str(_spec(lease).get("holderIdentity") or "")


def record_of(lease: Mapping[str, Any] | None) -> tuple[Any, ...]:
    spec = _spec(lease)
    return tuple(spec.get(f) for f in ("holderIdentity", "leaseDurationSeconds", "acquireTime",
                                       "renewTime", "leaseTransitions"))


def observe(previous: Observed | None, lease: Mapping[str, Any] | None, now: float) -> Observed:
    """Keep the first-seen time while the record stays the same; restart it on a change."""
    record = record_of(lease)
    if previous is not None and previous.record == record:
        return previous
    return Observed(record, now)


def should_acquire(lease: Mapping[str, Any] | None, identity: str, now: float, *,
                   observed_at: float, lease_duration: float) -> bool:
    """May `identity` write itself into `lease` now?

    Yes if nobody holds it, if we hold it (a renewal), or if the holder's record has not
    changed for the duration it declared (else `lease_duration`, our own) since we first
    saw it at `observed_at` (local clock, like `now`).
    """
    holder = holder_of(lease)
    if not holder or holder == identity:
        return True
    declared = _spec(lease).get("leaseDurationSeconds")
    duration = declared if isinstance(declared, int) and declared > 0 else lease_duration
    return now >= observed_at + duration


def micro_time(now: datetime) -> str:
    """metav1.MicroTime's RFC 3339 form with microseconds."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def next_lease(lease: Mapping[str, Any] | None, config: ElectionConfig,
               now: datetime) -> Obj:
    """The Lease to write to take or renew it: renewing keeps acquireTime and the
    transition count, taking over from someone else counts one more transition."""
    spec = dict(_spec(lease))
    meta = dict((lease or {}).get("metadata") or {"name": config.name,
                                                   "namespace": config.namespace})
    stamp = micro_time(now)
    if spec.get("holderIdentity") != config.identity or not spec.get("acquireTime"):
        transitions = spec.get("leaseTransitions")
        count = transitions if isinstance(transitions, int) else 0
        if lease is not None and spec.get("holderIdentity") != config.identity:
            count += 1
        spec["acquireTime"] = stamp
        spec["leaseTransitions"] = count
    spec["holderIdentity"] = config.identity
    spec["leaseDurationSeconds"] = config.lease_seconds
    spec["renewTime"] = stamp
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
            "spec": spec}


def released_lease(lease: Mapping[str, Any], now: datetime) -> Obj:
    """What a leader leaving on purpose writes (client-go's release): no holder, a one
    second duration, so a standby takes over at its next retry."""
    spec = dict(_spec(lease))
    stamp = micro_time(now)
    spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=stamp, acquireTime=stamp)
    return {**lease, "spec": spec}


def write_budget(renewed_at: float | None, now: float, config: ElectionConfig) -> float:
    """Seconds a fenced write may take, or <= 0 if it must not be sent at all."""
    if renewed_at is None or now > renewed_at + config.renew_deadline:
        return 0.0
    return renewed_at + config.lease_duration - FENCE_MARGIN - now


# --- the loop ---------------------------------------------------------------------------


class LeaseClient(Protocol):
    """What the elector needs from the API client (apiserver.client.ApiClient)."""

    timeout: float

    async def get(self, path: str, *, timeout: float | None = ...) -> Obj: ...

    async def create(self, obj: Mapping[str, Any], *, timeout: float | None = ...) -> Obj: ...

    async def update(self, obj: Mapping[str, Any], *, timeout: float | None = ...) -> Obj: ...


@dataclass
class _Term:
    number: int
    renewed_at: float


class LeaderElector:
    """Campaign for the lease; while holding it, run `lead(fenced_client)`; step down
    (cancel it) when a renewal misses the deadline, and campaign again."""

    def __init__(self, api: LeaseClient, config: ElectionConfig, *,
                 clock: Callable[[], float] = fence_clock,
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        config.validate()
        self.api = api
        self.config = config
        self.clock = clock
        self.wall = wall
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{config.namespace}/leases/{config.name}"
        self._observed: Observed | None = None
        self._term: _Term | None = None  # set while leading
        self._terms = 0

    @property
    def identity(self) -> str:
        return self.config.identity

    @property
    def is_leader(self) -> bool:
        return self._term is not None and self.budget(self._term.number) > 0

    def budget(self, term: int) -> float:
        """Seconds a write of `term` may take now (<= 0: refuse it)."""
        current = self._term
        if current is None or current.number != term:
            return 0.0
        return write_budget(current.renewed_at, self.clock(), self.config)

    async def run(self, lead: Callable[[FencedClient], Awaitable[None]]) -> None:
        """Until cancelled: acquire, lead, step down, repeat. On cancellation the work is
        cancelled first, then the lease released (if still ours) for a quick hand-over."""
        try:
            while True:
                await self._acquire()
                await self._lead(lead)
        finally:
            await self._release()

    async def _acquire(self) -> None:
        while not await self._try_acquire_or_renew():
            await asyncio.sleep(self._retry_delay())
        assert self._term is not None
        log.info("%s: acquired lease %s/%s (term %d)", self.identity, self.config.namespace,
                 self.config.name, self._term.number)

    async def _lead(self, lead: Callable[[FencedClient], Awaitable[None]]) -> None:
        assert self._term is not None
        fenced = FencedClient(self.api, self, self._term.number)
        work = asyncio.get_running_loop().create_task(
            lead(fenced), name=f"leader-{self.config.name}-term-{self._term.number}")
        try:
            await self._renew_until_lost(work)
        finally:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            if work.done() and not work.cancelled() and work.exception() is not None:
                log.error("%s: leading work crashed", self.identity, exc_info=work.exception())
        if self._term is not None and not work.cancelled():
            raise RuntimeError(f"the leading work of {self.config.name} ended by itself")

    async def _renew_until_lost(self, work: asyncio.Task[None]) -> None:
        """Renew every retry period; return when the deadline passes without a renewal."""
        while self._term is not None and not work.done():
            deadline = self._term.renewed_at + self.config.renew_deadline
            await asyncio.wait([work], timeout=max(0.0, min(
                self.config.retry_period, deadline - self.clock())))
            if work.done():
                return
            if await self._try_acquire_or_renew():
                continue
            if self._term is not None and self.clock() > deadline:
                log.warning("%s: could not renew lease %s within %.1f s; stepping down",
                            self.identity, self.config.name, self.config.renew_deadline)
                self._term = None

    async def _try_acquire_or_renew(self) -> bool:
        """One round: read the lease, decide, write it; True if we hold it now."""
        timeout = self._call_timeout()
        try:
            lease: Obj | None = await self.api.get(self.path, timeout=timeout)
        except ApiStatusError as err:
            if err.code != 404:
                log.info("%s: reading lease %s: %s", self.identity, self.config.name, err)
                return False
            lease = None
        now = self.clock()
        self._observed = observe(self._observed, lease, now)
        if not should_acquire(lease, self.identity, now, observed_at=self._observed.at,
                              lease_duration=self.config.lease_duration):
            self._term = None  # someone else holds it (we may have missed a beat)
            return False
        wanted = next_lease(lease, self.config, self.wall())
        sent = self.clock()
        try:
            if lease is None:
                written = await self.api.create(wanted, timeout=self._call_timeout())
            else:
                written = await self.api.update(wanted, timeout=self._call_timeout())
        except ApiStatusError as err:
            log.info("%s: writing lease %s: %s", self.identity, self.config.name, err)
            return False
        self._observed = Observed(record_of(written), sent)
        if self._term is None:
            self._terms += 1
            self._term = _Term(self._terms, sent)
        else:
            self._term.renewed_at = sent
        return True

    def _retry_delay(self) -> float:
        """A jittered retry period, cut short to wake right when the holder's lease (as
        we observed it) runs out, so a dead leader is replaced without polling lag."""
        period = self.config.retry_period
        delay = random.uniform(period, period * (1 + JITTER_FACTOR))
        observed = self._observed
        if observed is not None and observed.record[0]:
            declared = observed.record[1]
            duration = declared if isinstance(declared, int) and declared > 0 \
                else self.config.lease_duration
            delay = min(delay, max(0.0, observed.at + duration - self.clock()))
        return delay

    def _call_timeout(self) -> float:
        """A lease call must not outlast the renew deadline while leading."""
        if self._term is None:
            return self.config.renew_deadline
        left = self._term.renewed_at + self.config.renew_deadline - self.clock()
        return max(0.05, min(self.config.renew_deadline, left))

    async def _release(self) -> None:
        """Hand the lease back, fenced like any write: only while it is surely ours."""
        term = self._term
        self._term = None
        if term is None:
            return
        try:
            lease = await self.api.get(self.path, timeout=RELEASE_TIMEOUT)
            budget = write_budget(term.renewed_at, self.clock(), self.config)
            if holder_of(lease) == self.identity and budget > 0:
                await self.api.update(released_lease(lease, self.wall()),
                                      timeout=min(RELEASE_TIMEOUT, budget))
                log.info("%s: released lease %s", self.identity, self.config.name)
        except (ApiStatusError, OSError) as err:
            log.info("%s: could not release lease %s: %s", self.identity, self.config.name, err)


class FencedClient:
    """The writes of one leadership term: each refused once the term is (maybe) over,
    and given no more time than is left before another candidate could take over.
    Reads go to `api` directly; they need no fence."""

    def __init__(self, api: Any, elector: LeaderElector, term: int) -> None:
        self.api = api
        self.elector = elector
        self.term = term

    def _timeout(self, asked: float | None) -> float:
        budget = self.elector.budget(self.term)
        if budget <= 0:
            raise Fenced(f"{self.elector.identity}: not the leader of term {self.term} any more")
        return min(asked or self.api.timeout, budget)

    async def create(self, obj: Mapping[str, Any], *, timeout: float | None = None,
                     **options: Any) -> Obj:
        return await self.api.create(obj, timeout=self._timeout(timeout), **options)

    async def update(self, obj: Mapping[str, Any], *, timeout: float | None = None,
                     **options: Any) -> Obj:
        return await self.api.update(obj, timeout=self._timeout(timeout), **options)

    async def update_status(self, obj: Mapping[str, Any], *,
                            timeout: float | None = None) -> Obj:
        return await self.api.update_status(obj, timeout=self._timeout(timeout))

    async def patch(self, path: str, patch: Any, *, type: str = "merge",
                    timeout: float | None = None) -> Obj:
        return await self.api.patch(path, patch, type=type, timeout=self._timeout(timeout))

    async def delete(self, path: str, options: Mapping[str, Any] | None = None, *,
                     timeout: float | None = None) -> Obj:
        return await self.api.delete(path, options, timeout=self._timeout(timeout))

    async def bind(self, namespace: str, pod: str, node: str, *,
                   timeout: float | None = None) -> Obj:
        return await self.api.bind(namespace, pod, node, timeout=self._timeout(timeout))
