"""The controller loop (harness), event routing (handlers) and expectations' time-out."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from controllers import handlers, informers
from controllers.expectations import Expectations
from controllers.harness import Controller
from controllers.runner import Outcome
from tests.unit.controller_world import make_pod, make_rs

Obj = dict[str, Any]


# --- harness --------------------------------------------------------------------------


async def _until(condition: Any, rounds: int = 500) -> None:
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


def test_failures_are_retried_and_requeue_after_brings_a_key_back() -> None:
    seen: list[str] = []

    async def sync(key: str) -> Outcome:
        seen.append(key)
        if key == "flaky" and seen.count("flaky") < 3:
            return Outcome(error="409 Conflict", conflict=True)
        if key == "timer" and seen.count("timer") < 2:
            return Outcome(requeue_after=0.01)
        return Outcome()

    async def scenario() -> None:
        loop = Controller("test", sync, 2, keys=lambda: ["flaky", "timer"])
        loop.enqueue("dropped-before-start")
        await loop.start()
        try:
            await _until(lambda: seen.count("flaky") == 3 and seen.count("timer") == 2)
        finally:
            await loop.stop()
        loop.enqueue("dropped-after-stop")
        assert "dropped-before-start" not in seen
        assert loop.failures == 2

    asyncio.run(scenario())


def test_a_crashing_sync_is_logged_and_retried() -> None:
    calls: list[str] = []

    async def sync(key: str) -> None:
        calls.append(key)
        if len(calls) == 1:
            raise RuntimeError("bug")

    async def scenario() -> None:
        loop = Controller("crashy", sync, 1, keys=lambda: ["k"])
        await loop.start()
        try:
            await _until(lambda: len(calls) == 2)
        finally:
            await loop.stop()

    asyncio.run(scenario())


# --- routing --------------------------------------------------------------------------


class Recorder:
    def __init__(self, name: str, log: dict[str, list[str]]) -> None:
        self.name = name
        self.log = log

    def enqueue(self, key: str) -> None:
        self.log[self.name].append(key)


def _router() -> tuple[handlers.Router, informers.Informers, dict[str, list[str]]]:
    inf = informers.Informers(api=None)  # type: ignore[arg-type]  # caches only, never started
    log: dict[str, list[str]] = defaultdict(list)
    names = ("replicaset", "deployment", "job", "endpoints", "nodelifecycle", "nodeipam",
             "garbagecollector", "serviceaccount", "serviceaccount-token")
    return handlers.Router(inf, {n: Recorder(n, log) for n in names}), inf, log  # type: ignore[dict-item]


def test_a_pod_wakes_its_replicaset_the_deployment_above_and_selecting_services() -> None:
    router, inf, log = _router()
    rs = make_rs("web-1", 2, {"app": "web"})
    rs["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": "web", "uid": "d1", "controller": True}]
    inf.replicasets.cache.apply("ADDED", rs)
    inf.services.cache.apply("ADDED", {"metadata": {"name": "svc", "namespace": "ns"},
                                       "spec": {"selector": {"app": "web"}}})
    inf.services.cache.apply("ADDED", {"metadata": {"name": "other", "namespace": "ns"},
                                       "spec": {"selector": {"app": "db"}}})
    router.pod(make_pod("p", {"app": "web"}, owner=rs))
    assert dict(log) == {"replicaset": ["ns/web-1"], "deployment": ["ns/web"],
                         "endpoints": ["ns/svc"]}


def test_an_orphan_pod_wakes_the_replicasets_that_may_adopt_it() -> None:
    router, inf, log = _router()
    inf.replicasets.cache.apply("ADDED", make_rs("web-1", 2, {"app": "web"}))
    inf.replicasets.cache.apply("ADDED", make_rs("db-1", 2, {"app": "db"}))
    router.pod(make_pod("p", {"app": "web"}))
    assert log["replicaset"] == ["ns/web-1"]


def test_deletions_and_foreground_deletes_wake_the_garbage_collector() -> None:
    router, _, log = _router()
    rs = make_rs("web-1", 2, {"app": "web"})
    deleting = {**rs, "metadata": {**rs["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z",
                                   "finalizers": ["foregroundDeletion"]}}
    router._gc_update(rs, rs)
    assert not log["garbagecollector"]
    router._gc_update(rs, deleting)
    router._gc_delete(rs)
    assert log["garbagecollector"] == ["graph", "graph"]


# --- expectations ---------------------------------------------------------------------


def test_expectations_give_up_after_the_timeout() -> None:
    clock = [0.0]
    exp = Expectations("pods", lambda ns, name: None, lambda: clock[0], timeout=10)
    exp.expect_create("ns/rs", "ns", "never-seen")
    assert not exp.satisfied("ns/rs")
    clock[0] = 10.0
    assert exp.satisfied("ns/rs") and exp.pending("ns/rs") == (0, 0)
