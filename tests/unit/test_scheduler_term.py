"""A scheduling term against a scripted writer: what it binds, what it does when a
binding fails for sure or maybe, what it writes for a pod that fits nowhere, and that a
fenced writer stops everything. The informers are not started: the test fills their
caches and calls the handlers, as the informers would."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from apiserver.client_policy import ApiStatusError, ApiUnavailable, status_body
from controllers.leader_election import Fenced
from controllers.scheduler_runner import Options, Scheduler
from tests.unit.scheduling_objects import node, pod

T = TypeVar("T")
Obj = dict[str, Any]


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, 20)

    return asyncio.run(bounded())


class Writer:
    """Applies bindings to the fake cluster, unless `fail(pod, node)` gives an error."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.binds: list[tuple[str, str]] = []
        self.patches: list[tuple[str, Any]] = []
        self.events: list[Obj] = []
        self.fail: Callable[[str, str], BaseException | None] = lambda _pod, _node: None
        self.apply_failed = False  # a failure that still changed the pod (unknown outcome)

    async def bind(self, namespace: str, name: str, node_name: str, *,
                   timeout: float | None = None) -> Obj:
        await asyncio.sleep(0)
        key = f"{namespace}/{name}"
        self.binds.append((key, node_name))
        error = self.fail(key, node_name)
        if error is None or self.apply_failed:
            self.cluster.bind(key, node_name)
        if error is not None:
            raise error
        return {}

    async def patch(self, path: str, patch: Any, *, type: str = "merge",
                    timeout: float | None = None) -> Obj:
        await asyncio.sleep(0)
        self.patches.append((path, patch))
        return {}

    async def create(self, obj: Mapping[str, Any], *, timeout: float | None = None) -> Obj:
        await asyncio.sleep(0)
        self.events.append(dict(obj))
        return dict(obj)


class Cluster:
    """Pods and nodes, with the informers' caches and handlers kept in step."""

    def __init__(self) -> None:
        self.scheduler = Scheduler(api=None, options=Options(
            instance="s1", writers=4, batch=8, initial_backoff=0.01, max_backoff=0.05))
        self.versions = itertools.count(1)
        self.writer = Writer(self)

    def _stamp(self, obj: Obj) -> Obj:
        obj["metadata"]["resourceVersion"] = str(next(self.versions))
        return obj

    def add_node(self, obj: Obj) -> None:
        self.scheduler.nodes.cache.apply("ADDED", self._stamp(obj))
        self.scheduler._node_added(obj)

    def add_pod(self, obj: Obj) -> None:
        self.scheduler.pods.cache.apply("ADDED", self._stamp(obj))
        self.scheduler._pod_added(obj)

    def bind(self, key: str, node_name: str) -> None:
        old = self.scheduler.pods.cache.get(key)
        assert old is not None and not old["spec"].get("nodeName")
        new = self._stamp({**old, "spec": {**old["spec"], "nodeName": node_name},
                           "metadata": dict(old["metadata"])})
        self.scheduler.pods.cache.apply("MODIFIED", new)
        self.scheduler._pod_updated(old, new)

    def node_of(self, key: str) -> str:
        found = self.scheduler.pods.cache.get(key)
        assert found is not None
        return str(found["spec"].get("nodeName") or "")

    async def lead_until(self, done: Callable[[], bool]) -> None:
        task = asyncio.ensure_future(self.scheduler.lead(self.writer))
        try:
            while not done():
                if task.done():
                    task.result()
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)  # let the event writers catch up
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def error(code: int) -> ApiStatusError:
    return ApiStatusError(code, "X", status_body(code, "X", f"refused with {code}"))


def test_pending_pods_are_bound_within_capacity_with_scheduled_events() -> None:
    async def scenario() -> Cluster:
        cluster = Cluster()
        for i in range(3):
            cluster.add_node(node(f"n{i}", cpu="2"))
        for i in range(9):
            cluster.add_pod(pod(f"p{i}", cpu="500m"))
        cluster.add_pod(pod("theirs", cpu="100m", schedulerName="other"))
        await cluster.lead_until(lambda: len(cluster.writer.binds) == 9)
        return cluster

    cluster = run(scenario())
    nodes = [cluster.node_of(f"default/p{i}") for i in range(9)]
    assert sorted(nodes) == ["n0"] * 3 + ["n1"] * 3 + ["n2"] * 3
    assert cluster.node_of("default/theirs") == ""
    reasons = [e["reason"] for e in cluster.writer.events]
    assert reasons.count("Scheduled") == 9
    assert {e["reportingInstance"] for e in cluster.writer.events} == {"s1"}


def test_a_binding_of_unknown_outcome_keeps_its_node_and_is_retried_there() -> None:
    async def scenario() -> Cluster:
        cluster = Cluster()
        cluster.add_node(node("n0", cpu="1"))
        cluster.add_node(node("n1", cpu="1"))
        failures = iter([ApiUnavailable("timeout", maybe_applied=True, causes=[])])
        cluster.writer.fail = lambda key, _node: next(failures, None) if key == "default/a" else None
        cluster.add_pod(pod("a", cpu="1"))
        await cluster.lead_until(lambda: cluster.node_of("default/a") != "")
        return cluster

    cluster = run(scenario())
    (first, second) = [n for key, n in cluster.writer.binds if key == "default/a"]
    assert first == second  # retried on the same node, not decided again
    assert cluster.scheduler.uncertain == {}


def test_a_refused_binding_is_forgotten_and_the_pod_decided_again() -> None:
    async def scenario() -> Cluster:
        cluster = Cluster()
        cluster.add_node(node("n0", cpu="1"))
        cluster.add_node(node("n1", cpu="1"))
        refused: list[str] = []

        def fail(key: str, node_name: str) -> BaseException | None:
            if not refused:
                refused.append(node_name)
                return error(422)
            return None

        cluster.writer.fail = fail
        cluster.add_pod(pod("a", cpu="1"))
        await cluster.lead_until(lambda: cluster.node_of("default/a") != "")
        return cluster

    cluster = run(scenario())
    assert len(cluster.writer.binds) == 2
    rejected = [e for e in cluster.writer.events if e["reason"] == "FailedScheduling"]
    assert [e["message"] for e in rejected] == ["Binding rejected: refused with 422"]


def test_a_pod_that_fits_nowhere_gets_its_condition_once_and_a_new_node() -> None:
    async def scenario() -> Cluster:
        cluster = Cluster()
        cluster.add_node(node("small", cpu="1"))
        cluster.add_pod(pod("big", cpu="4"))
        await cluster.lead_until(lambda: len(cluster.writer.patches) == 1)
        # The condition is in the pod now (as the informer would show): another
        # attempt must not write it again.
        current = cluster.scheduler.pods.cache.get("default/big")
        assert current is not None
        (path, body) = cluster.writer.patches[0]
        updated = {**current, "status": {"conditions": body["status"]["conditions"]}}
        cluster.scheduler.pods.cache.apply("MODIFIED", cluster._stamp(updated))
        cluster.scheduler._pod_updated(current, updated)

        async def more() -> None:
            await asyncio.sleep(0.05)
            cluster.add_node(node("large", cpu="8"))

        adder = asyncio.ensure_future(more())
        await cluster.lead_until(lambda: cluster.node_of("default/big") == "large")
        await adder
        return cluster

    cluster = run(scenario())
    (path, body) = cluster.writer.patches[0]
    assert path == "/api/v1/namespaces/default/pods/big/status"
    (condition,) = body["status"]["conditions"]
    assert (condition["status"], condition["reason"]) == ("False", "Unschedulable")
    assert condition["message"].startswith("0/1 nodes are available: 1 Insufficient cpu.")
    assert len(cluster.writer.patches) == 1


def test_a_fenced_writer_binds_nothing_and_leaves_nothing_assumed() -> None:
    async def scenario() -> Cluster:
        cluster = Cluster()
        cluster.add_node(node("n0", cpu="4"))
        cluster.writer.fail = lambda _key, _node: Fenced("lost")
        for i in range(3):
            cluster.add_pod(pod(f"p{i}", cpu="1"))
        await cluster.lead_until(lambda: len(cluster.writer.binds) >= 3)
        return cluster

    cluster = run(scenario())
    assert all(cluster.node_of(f"default/p{i}") == "" for i in range(3))
    assert cluster.scheduler.uncertain == {}
    assert not [e for e in cluster.writer.events if e["reason"] == "Scheduled"]


def test_a_binding_that_failed_but_landed_is_not_retried() -> None:
    async def scenario() -> Cluster:
        cluster = Cluster()
        cluster.add_node(node("n0", cpu="2"))
        cluster.writer.apply_failed = True
        cluster.writer.fail = lambda _key, _node: error(500)
        cluster.add_pod(pod("a", cpu="1"))
        await cluster.lead_until(lambda: cluster.node_of("default/a") != "")
        await asyncio.sleep(0.1)  # a retry would come after the 10 ms back-off
        return cluster

    cluster = run(scenario())
    assert cluster.writer.binds == [("default/a", "n0")]
    assert cluster.scheduler.uncertain == {}
