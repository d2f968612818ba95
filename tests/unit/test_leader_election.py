"""Leader election: the pure decision, the flags, the fence on a fake clock, and two
electors against an in-memory apiserver (who leads when, and whose writes land)."""

from __future__ import annotations

import argparse
import asyncio
import itertools
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from apiserver.client_policy import ApiStatusError, ApiUnavailable, status_body
from controllers import election_config
from controllers.election_config import ElectionConfig, parse_duration
from controllers.leader_election import (
    FENCE_MARGIN,
    Fenced,
    LeaderElector,
    next_lease,
    observe,
    released_lease,
    should_acquire,
    write_budget,
)

T = TypeVar("T")
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
CONFIG = ElectionConfig(name="kube-scheduler", identity="me")


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, 30)

    return asyncio.run(bounded())


def lease(holder: str = "other", duration: int | None = 15, renew: str = "r1",
          transitions: int = 3, rv: str = "7") -> dict[str, Any]:
    spec: dict[str, Any] = {"holderIdentity": holder, "acquireTime": "a0", "renewTime": renew,
                            "leaseTransitions": transitions}
    if duration is not None:
        spec["leaseDurationSeconds"] = duration
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "kube-scheduler", "namespace": "kube-system",
                         "resourceVersion": rv}, "spec": spec}


# --- should_acquire and observe ------------------------------------------------------------


def test_a_missing_or_unheld_lease_is_free() -> None:
    assert should_acquire(None, "me", 0.0, observed_at=0.0, lease_duration=15)
    assert should_acquire(lease(holder=""), "me", 0.0, observed_at=0.0, lease_duration=15)


def test_our_own_lease_is_renewed() -> None:
    assert should_acquire(lease(holder="me"), "me", 1000.0, observed_at=0.0, lease_duration=15)


def test_another_holder_is_waited_out_on_our_own_clock() -> None:
    held = lease(holder="other", duration=15)
    assert not should_acquire(held, "me", 114.9, observed_at=100.0, lease_duration=15)
    assert should_acquire(held, "me", 115.0, observed_at=100.0, lease_duration=15)


def test_the_holders_declared_duration_counts() -> None:
    held = lease(holder="other", duration=40)
    assert not should_acquire(held, "me", 130.0, observed_at=100.0, lease_duration=15)
    assert should_acquire(held, "me", 140.0, observed_at=100.0, lease_duration=15)
    undeclared = lease(holder="other", duration=None)
    assert should_acquire(undeclared, "me", 115.0, observed_at=100.0, lease_duration=15)


def test_observation_time_restarts_only_when_the_record_changes() -> None:
    first = observe(None, lease(renew="r1"), 10.0)
    assert observe(first, lease(renew="r1", rv="99"), 20.0).at == 10.0  # same record
    assert observe(first, lease(renew="r2"), 20.0).at == 20.0  # renewed
    assert observe(first, None, 30.0).at == 30.0


# --- next_lease and released_lease ------------------------------------------------------------


def test_creating_the_lease() -> None:
    created = next_lease(None, CONFIG, T0)
    assert created["metadata"] == {"name": "kube-scheduler", "namespace": "kube-system"}
    assert created["spec"] == {"holderIdentity": "me", "leaseDurationSeconds": 15,
                               "acquireTime": "2026-01-01T12:00:00.000000Z",
                               "renewTime": "2026-01-01T12:00:00.000000Z",
                               "leaseTransitions": 0}


def test_renewing_keeps_acquire_time_and_transitions_and_the_resource_version() -> None:
    renewed = next_lease(lease(holder="me", transitions=3), CONFIG, T0)
    assert renewed["metadata"]["resourceVersion"] == "7"
    assert renewed["spec"]["acquireTime"] == "a0"
    assert renewed["spec"]["leaseTransitions"] == 3
    assert renewed["spec"]["renewTime"] == "2026-01-01T12:00:00.000000Z"


def test_taking_over_counts_a_transition() -> None:
    taken = next_lease(lease(holder="other", transitions=3), CONFIG, T0 + timedelta(seconds=1))
    assert taken["spec"]["holderIdentity"] == "me"
    assert taken["spec"]["leaseTransitions"] == 4
    assert taken["spec"]["acquireTime"] == "2026-01-01T12:00:01.000000Z"
    assert taken["metadata"]["resourceVersion"] == "7"  # the precondition


def test_release_empties_the_holder_and_shortens_the_lease() -> None:
    released = released_lease(lease(holder="me"), T0)
    assert released["spec"]["holderIdentity"] == ""
    assert released["spec"]["leaseDurationSeconds"] == 1
    assert released["metadata"]["resourceVersion"] == "7"


# --- the fence ------------------------------------------------------------------------------


def test_write_budget_closes_at_the_renew_deadline() -> None:
    assert write_budget(None, 0.0, CONFIG) == 0.0
    assert write_budget(100.0, 100.0, CONFIG) == pytest.approx(15 - FENCE_MARGIN)
    assert write_budget(100.0, 110.0, CONFIG) == pytest.approx(5 - FENCE_MARGIN)
    assert write_budget(100.0, 110.001, CONFIG) == 0.0
    # Whenever a write is allowed it gets at least lease - deadline - margin seconds, and
    # its attempts end before anyone else may hold the lease (renewed_at + 15).
    for now in (100.0, 105.0, 110.0):
        budget = write_budget(100.0, now, CONFIG)
        assert budget >= CONFIG.lease_duration - CONFIG.renew_deadline - FENCE_MARGIN
        assert now + budget < 100.0 + CONFIG.lease_duration


# --- flags and durations ---------------------------------------------------------------------


@pytest.mark.parametrize("text,seconds", [
    ("15s", 15.0), ("500ms", 0.5), ("1m30s", 90.0), ("2.5s", 2.5), ("1h", 3600.0),
    ("10", 10.0), ("0.25", 0.25), ("100us", 1e-4),
])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "15x", "1s2", "abc"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_flags_have_kubernetes_defaults() -> None:
    parser = argparse.ArgumentParser()
    election_config.add_flags(parser, "kube-scheduler")
    config = election_config.from_args(parser.parse_args([]), "me")
    assert (config.lease_duration, config.renew_deadline, config.retry_period) == (15, 10, 2)
    assert (config.name, config.namespace) == ("kube-scheduler", "kube-system")
    args = parser.parse_args(["--leader-elect=false", "--leader-elect-lease-duration=4s",
                              "--leader-elect-renew-deadline", "3s",
                              "--leader-elect-retry-period", "500ms",
                              "--leader-elect-resource-name", "x",
                              "--leader-elect-resource-namespace", "y"])
    assert args.leader_elect is False
    config = election_config.from_args(args, "me")
    assert (config.lease_duration, config.renew_deadline, config.retry_period) == (4, 3, 0.5)
    assert (config.name, config.namespace, config.lease_seconds) == ("x", "y", 4)


@pytest.mark.parametrize("lease_s,renew_s,retry_s", [(10, 10, 2), (15, 10, 9), (10.5, 10, 2),
                                                     (15, 10, 0)])
def test_inconsistent_timings_are_refused(lease_s: float, renew_s: float, retry_s: float) -> None:
    with pytest.raises(ValueError):
        ElectionConfig("n", "me", lease_duration=lease_s, renew_deadline=renew_s,
                       retry_period=retry_s).validate()


# --- the elector against an in-memory apiserver ------------------------------------------------


class Store:
    """Leases with resourceVersions, and a log of the fenced writes that landed."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.versions = itertools.count(1)
        self.writes: list[tuple[float, str]] = []  # (time, identity) of landed writes
        self.acquired: list[tuple[float, str]] = []  # (time, identity) of takeovers


class FakeApi:
    """One candidate's view of the Store; `partitioned` cuts its lease calls only."""

    timeout = 5.0

    def __init__(self, store: Store, identity: str) -> None:
        self.store = store
        self.identity = identity
        self.partitioned = False

    def _check(self) -> None:
        if self.partitioned:
            raise ApiUnavailable("partitioned", maybe_applied=False, causes=[])

    async def get(self, path: str, *, timeout: float | None = None) -> dict[str, Any]:
        await asyncio.sleep(0)
        self._check()
        if path not in self.store.leases:
            raise ApiStatusError(404, "NotFound", status_body(404, "NotFound", path))
        return dict(self.store.leases[path])

    async def create(self, obj: Mapping[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        await asyncio.sleep(0)
        if obj.get("kind") != "Lease":  # a fenced write of the leading work
            self.store.writes.append((asyncio.get_running_loop().time(), self.identity))
            return dict(obj)
        self._check()
        path = self._path(obj)
        if path in self.store.leases:
            raise ApiStatusError(409, "AlreadyExists", status_body(409, "AlreadyExists", path))
        return self._put(path, obj)

    async def update(self, obj: Mapping[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        await asyncio.sleep(0)
        self._check()
        path = self._path(obj)
        current = self.store.leases.get(path)
        if current is None or current["metadata"]["resourceVersion"] != obj["metadata"].get("resourceVersion"):
            raise ApiStatusError(409, "Conflict", status_body(409, "Conflict", path))
        return self._put(path, obj)

    def _put(self, path: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        stored = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(next(self.store.versions))}}
        previous = self.store.leases.get(path)
        if previous is None or previous["spec"].get("holderIdentity") != obj["spec"]["holderIdentity"]:
            self.store.acquired.append((asyncio.get_running_loop().time(), obj["spec"]["holderIdentity"]))
        self.store.leases[path] = stored
        return dict(stored)

    @staticmethod
    def _path(obj: Mapping[str, Any]) -> str:
        meta = obj["metadata"]
        return f"/apis/coordination.k8s.io/v1/namespaces/{meta['namespace']}/leases/{meta['name']}"


FAST = dict(lease_duration=1.5, renew_deadline=0.4, retry_period=0.1)


async def busy_leader(fenced: Any) -> None:
    """Leading work that writes as fast as it can, through the fence."""
    while True:
        try:
            await fenced.create({"kind": "ConfigMap"})
        except Fenced:
            pass
        await asyncio.sleep(0.005)


def elector(store: Store, identity: str) -> tuple[LeaderElector, FakeApi]:
    api = FakeApi(store, identity)
    config = ElectionConfig("lock", identity, **FAST)
    clock = lambda: asyncio.get_running_loop().time()  # noqa: E731 (the writes' clock)
    return LeaderElector(api, config, clock=clock), api


def test_only_one_of_two_leads_and_a_cut_off_leader_is_fenced_before_the_takeover() -> None:
    async def scenario() -> Store:
        store = Store()
        (a, api_a), (b, _) = elector(store, "a"), elector(store, "b")
        task_a = asyncio.ensure_future(a.run(busy_leader))
        await asyncio.sleep(0.05)
        task_b = asyncio.ensure_future(b.run(busy_leader))
        await asyncio.sleep(0.5)
        assert a.is_leader and not b.is_leader
        api_a.partitioned = True  # a can no longer renew, but still "writes"
        while not b.is_leader:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        for task in (task_a, task_b):
            task.cancel()
        await asyncio.gather(task_a, task_b, return_exceptions=True)
        return store

    store = run(scenario())
    assert [who for _, who in store.acquired] == ["a", "b", ""]  # b released at the end
    taken_by_b = store.acquired[1][0]
    last_by_a = max(t for t, who in store.writes if who == "a")
    first_by_b = min(t for t, who in store.writes if who == "b")
    assert last_by_a < taken_by_b <= first_by_b


def test_a_clean_shutdown_releases_the_lease_for_the_standby() -> None:
    async def scenario() -> tuple[Store, str]:
        store = Store()
        (a, _), (b, _) = elector(store, "a"), elector(store, "b")
        task_a = asyncio.ensure_future(a.run(busy_leader))
        await asyncio.sleep(0.05)
        task_b = asyncio.ensure_future(b.run(busy_leader))
        await asyncio.sleep(0.2)
        task_a.cancel()
        await asyncio.gather(task_a, return_exceptions=True)
        released = store.leases[b.path]["spec"]["holderIdentity"]
        while not b.is_leader:
            await asyncio.sleep(0.01)
        task_b.cancel()
        await asyncio.gather(task_b, return_exceptions=True)
        return store, released

    store, released = run(scenario())
    assert released == ""
    assert [who for _, who in store.acquired] == ["a", "", "b", ""]  # b releases too


def test_a_paused_leader_wakes_up_fenced() -> None:
    """The clock jumps (the process was stopped): the next write is refused at once."""
    async def scenario() -> None:
        store = Store()
        now = [0.0]
        api = FakeApi(store, "a")
        a = LeaderElector(api, ElectionConfig("lock", "a", **FAST), clock=lambda: now[0])
        assert await a._try_acquire_or_renew()
        from controllers.leader_election import FencedClient
        fenced = FencedClient(api, a, term=1)
        await fenced.create({"kind": "ConfigMap"})
        now[0] += FAST["renew_deadline"] + 0.001
        with pytest.raises(Fenced):
            await fenced.create({"kind": "ConfigMap"})
        assert len(store.writes) == 1
        assert not a.is_leader

    run(scenario())
