"""The runner keeps the contract of controllers/actions.py against a fake apiserver."""

from __future__ import annotations

import asyncio
from typing import Any

from controllers import actions, replicaset, runner
from controllers.expectations import Expectations
from controllers.leader_election import Fenced
from tests.unit.controller_fake_api import FakeApi, error, unknown_outcome
from tests.unit.controller_world import T0, World, make_pod, make_rs, suffixes

Obj = dict[str, Any]


class Events:
    def __init__(self) -> None:
        self.recorded: list[Obj] = []

    def record(self, event: Obj) -> None:
        self.recorded.append(event)


def _run(todo: list[actions.Action], api: FakeApi, **kwargs: Any) -> runner.Outcome:
    events = kwargs.pop("events", None)
    return asyncio.run(runner.Runner(api, api, events).run(todo, **kwargs))


def _pod_create(name: str, batch: int | None = None) -> actions.Create:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "generateName": "web-", "namespace": "ns"},
           "spec": {"containers": [{"name": "c", "image": "i"}]}}
    return actions.Create("pods", "v1", "ns", pod, batch=batch)


def _expectations(world: World, seen: dict[tuple[str, str], Obj]) -> Expectations:
    return Expectations("pods", lambda ns, name: seen.get((ns, name)), lambda: 0.0)


def test_a_replicaset_reconcile_goes_out_in_slow_start_batches() -> None:
    world = World()
    rs = world.add("replicasets", make_rs("web", 7, {"app": "web"}))
    todo, _ = replicaset.reconcile(rs, [], T0, suffixes())
    api = FakeApi(world)
    api.delay = 0.01
    events = Events()
    outcome = _run(todo, api, events=events)
    assert outcome.ok and outcome.writes == 8  # 7 pods and the status
    assert len(world.list("pods")) == 7
    assert api.max_in_flight == 4  # the largest batch: 1, 2, 4
    assert len(events.recorded) == 7


def test_the_first_failing_group_ends_the_run() -> None:
    api = FakeApi()
    api.fail("POST", "pods", lambda body: error(403, "Forbidden", "quota exceeded")
             if body and body["metadata"]["name"].endswith("3") else None)
    creates = actions.batched_creates([_pod_create(f"web-{i}") for i in range(1, 8)])
    todo: list[actions.Action] = []
    for create in creates:
        todo.append(create)
    todo += [actions.Emit({"reason": "After"}), actions.RequeueAfter(5)]
    events = Events()
    outcome = _run(todo, api, events=events)
    assert outcome.error == "403 Forbidden: quota exceeded"
    assert isinstance(outcome.failed, actions.Create)
    assert outcome.requeue_after == 5
    # batch 0 (web-1), batch 1 (web-2, web-3: both sent, one failed), nothing after
    assert sorted(p["metadata"]["name"] for p in api.world.list("pods")) == ["web-1", "web-2"]
    assert not events.recorded


def test_a_deleted_object_counts_as_deleted() -> None:
    world = World()
    world.add("pods", make_pod("gone-soon", uid="u-new"))
    todo: list[actions.Action] = [
        actions.Delete("pods", "v1", "ns", "missing", uid_precondition="u1"),
        actions.Delete("pods", "v1", "ns", "gone-soon", uid_precondition="u-old"),
    ]
    outcome = _run(todo, FakeApi(world))
    assert outcome.ok
    assert ("pods", "ns", "gone-soon") in world.objects  # the namesake was spared


def test_a_taken_name_is_retried_with_a_generated_one() -> None:
    world = World()
    world.add("pods", make_pod("web-abcde"))
    api = FakeApi(world)
    seen: dict[tuple[str, str], Obj] = {}
    exp = _expectations(world, seen)
    outcome = _run([_pod_create("web-abcde")], api, key="ns/web", expectations=exp)
    assert outcome.ok
    created = outcome.created[0]["metadata"]["name"]
    assert created != "web-abcde" and created.startswith("web-")
    assert exp.pending("ns/web") == (1, 0)
    seen[("ns", created)] = outcome.created[0]
    assert exp.satisfied("ns/web")


def test_a_create_of_unknown_outcome_that_landed_is_not_repeated() -> None:
    world = World()
    api = FakeApi(world)
    create = _pod_create("web-x1")
    world.add("pods", dict(create.obj))  # it did land before the connection broke
    api.fail("POST", "pods", lambda body: unknown_outcome())
    outcome = _run([create], api)
    assert outcome.ok
    assert [m for m, _ in api.calls] == ["POST", "GET"]


def test_a_create_of_unknown_outcome_that_did_not_land_fails() -> None:
    api = FakeApi()
    api.fail("POST", "pods", lambda body: unknown_outcome())
    outcome = _run([_pod_create("web-x1")], api)
    assert not outcome.ok and not outcome.conflict


def test_a_stale_update_is_a_conflict() -> None:
    world = World()
    rs = world.add("replicasets", make_rs("web", 1, {"app": "web"}))
    stale = dict(rs, metadata={**rs["metadata"], "resourceVersion": "0"})
    outcome = _run([actions.UpdateStatus("replicasets", "apps/v1", "ns", stale),
                    actions.Emit({"reason": "Never"})], FakeApi(world))
    assert outcome.conflict and isinstance(outcome.failed, actions.UpdateStatus)


def test_a_fenced_write_stops_the_run() -> None:
    api = FakeApi()

    class FencedWriter(FakeApi):
        async def create(self, obj: Any, **kwargs: Any) -> Obj:
            raise Fenced("term over")

    outcome = asyncio.run(runner.Runner(api, FencedWriter(api.world)).run(
        [_pod_create("a"), _pod_create("b")]))
    assert outcome.fenced and not outcome.ok and outcome.writes == 0
    assert not api.world.list("pods")


def test_expectations_hold_until_the_cache_shows_the_writes() -> None:
    world = World()
    victim = world.add("pods", make_pod("old", uid="u-old"))
    seen: dict[tuple[str, str], Obj] = {("ns", "old"): victim}
    exp = _expectations(world, seen)
    outcome = _run([_pod_create("new"),
                    actions.Delete("pods", "v1", "ns", "old", uid_precondition="u-old")],
                   FakeApi(world), key="ns/web", expectations=exp)
    assert outcome.ok
    assert exp.pending("ns/web") == (1, 1) and not exp.satisfied("ns/web")
    seen[("ns", "new")] = world.get("pods", "ns", "new")
    assert not exp.satisfied("ns/web")
    del seen[("ns", "old")]
    assert exp.satisfied("ns/web")


def test_owner_exists_believes_only_a_clear_not_found() -> None:
    world = World()
    rs = world.add("replicasets", make_rs("web", 1, {"app": "web"}, uid="u-rs"))
    api = FakeApi(world)
    ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "u-rs"}

    async def check(r: Obj) -> bool:
        return await runner.owner_exists(api, r, "ns")

    assert asyncio.run(check(ref))
    assert not asyncio.run(check({**ref, "uid": "u-other"}))
    assert not asyncio.run(check({**ref, "name": "nope"}))
    api.fail("GET", "replicasets", lambda body: error(503, "ServiceUnavailable", "down"))
    assert asyncio.run(check({**ref, "name": "nope"}))
    assert asyncio.run(check({"apiVersion": "x.io/v1", "kind": "Thing", "name": "t", "uid": "u"}))
    assert rs
