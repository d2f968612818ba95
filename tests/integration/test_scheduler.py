"""`kubelite scheduler` against real processes: 3 store members, 2 apiservers, and two
scheduler processes under leader election, with hollow nodes (tests/hollow_nodes.py).

Each test brings its own hollow nodes (a prefix of its own; deleted at the end, with
the test's pods) so that it sees only those. What is checked:

- 20 pods with requests spread evenly over 5 nodes, each within capacity, all bound by
  the lease holder (the standby binds nothing);
- 50 pods created at once onto room for 30: exactly 30 bound, no node over-committed,
  20 Pending with PodScheduled=False;
- a pod that fits nowhere stays Pending with Kubernetes' message in its condition and
  a FailedScheduling event, and is bound once a big enough node appears;
- a cordoned node gets nothing;
- SIGKILL the leader: the standby takes over (within the lease duration, plus the
  polling slack) and every pod is bound exactly once;
- SIGSTOP the leader past its lease, let the standby take over, SIGCONT it: it steps
  down without binding anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from apiserver.auth import kubeconfig
from apiserver.client import ApiClient, ApiStatusError
from apiserver.quantities import cpu_millis
from tests.apiserver_cluster import ApiserverCluster
from tests.apiserver_http import Api
from tests.clusters import Member, wait_until
from tests.hollow_nodes import HollowNodes
from tests.kubelite_cluster import REPO, KubeliteCluster

T = TypeVar("T")
TEST_TIMEOUT = 60.0
LEASE, RENEW, RETRY = 4.0, 2.5, 0.5
# How long a takeover may take after the leader dies: the lease duration from the
# standby's last observation, which lags the last renewal by up to one (jittered) retry,
# plus the standby's own polling interval.
TAKEOVER_BOUND = LEASE + 2 * RETRY * 2.2 + 1.0
LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler"
FULL_MESSAGE = ("0/5 nodes are available: 5 Insufficient cpu. preemption: 0/5 nodes are "
                "available: 5 Preemption is not helpful for scheduling.")


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, TEST_TIMEOUT)

    return asyncio.run(bounded())


class Schedulers:
    """Two `kubelite scheduler` processes, identities sched-0 and sched-1."""

    def __init__(self, apis: ApiserverCluster, directory: Path) -> None:
        self.apis = apis
        self.members = [Member(f"sched-{i}", directory / f"s{i}", directory / f"sched-{i}.log")
                        for i in range(2)]

    def start(self, i: int) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.members[i].spawn([
            sys.executable, "-m", "kubelite_cli", "scheduler",
            "--kubeconfig", str(self.apis.kubeconfig), "--identity", f"sched-{i}",
            "--leader-elect-lease-duration", f"{LEASE}s",
            "--leader-elect-renew-deadline", f"{RENEW}s",
            "--leader-elect-retry-period", f"{RETRY}s"], env)

    def ensure_running(self) -> None:
        for i, member in enumerate(self.members):
            if member.paused:
                member.resume()
            if not member.running:
                self.start(i)

    def log(self, i: int) -> str:
        return self.members[i].log_path.read_text(errors="replace")

    def close(self) -> None:
        for member in self.members:
            member.kill()


@dataclass
class Cluster:
    store: KubeliteCluster
    apis: ApiserverCluster
    schedulers: Schedulers

    def client(self) -> ApiClient:
        config = kubeconfig.load_kubeconfig(self.apis.kubeconfig)
        return ApiClient(self.apis.urls, ssl=kubeconfig.ssl_context(config),
                         token=self.apis.admin_token, timeout=10.0)


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("sched")
    failed_before = request.session.testsfailed
    with contextlib.ExitStack() as stack:
        store = KubeliteCluster(size=3, tmp_dir=base)
        stack.callback(store.close)
        apis = ApiserverCluster(store, base / "apiservers", count=2)
        stack.callback(apis.close)
        apis.wait_bootstrapped()
        schedulers = Schedulers(apis, base)
        stack.callback(schedulers.close)
        found = Cluster(store, apis, schedulers)
        yield found
        if request.session.testsfailed > failed_before:
            print("\n" + "\n".join(f"--- scheduler {i} ---\n" + "\n".join(
                schedulers.log(i).splitlines()[-30:]) for i in range(2)))
            print(apis.log_tails())


@pytest.fixture
def healthy(cluster: Cluster) -> Cluster:
    """Both schedulers running (an earlier test may have killed one), one holding the
    lease, and the other synced as its standby."""
    cluster.schedulers.ensure_running()
    api = Api(cluster.apis.urls[0], cluster.apis.paths.ca_cert, token=cluster.apis.admin_token)

    def settled() -> bool:
        reply = api.get(LEASE_PATH)
        if reply.code != 200 or not reply.json["spec"].get("holderIdentity"):
            return False
        # Each process's latest start has synced its informers.
        return all("informers synced" in cluster.schedulers.log(i).rsplit("===== start", 1)[-1]
                   for i in range(2))

    wait_until(settled, 30, what="a scheduler leading and a standby synced")
    return cluster


def pod(namespace: str, name: str, cpu: str = "500m", memory: str = "256Mi",
        **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "c", "image": "hollow", "resources": {
                "requests": {"cpu": cpu, "memory": memory}}}], **spec}}


async def create_namespace(api: ApiClient, name: str) -> None:
    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


async def pods_of(api: ApiClient, namespace: str) -> list[dict[str, Any]]:
    return (await api.list(api.path("v1", "pods", namespace))).items


async def events_of(api: ApiClient, namespace: str) -> list[dict[str, Any]]:
    return (await api.list(api.path("v1", "events", namespace))).items


async def eventually(check: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll `check` (a function, or a coroutine function) until true, at most `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.1)


async def clean_up(api: ApiClient, namespace: str, nodes: HollowNodes) -> None:
    for item in await pods_of(api, namespace):
        with contextlib.suppress(ApiStatusError):
            await api.delete(api.path("v1", "pods", namespace, item["metadata"]["name"]),
                             {"gracePeriodSeconds": 0})
    await nodes.delete()


def cpu_by_node(pods: list[dict[str, Any]]) -> dict[str, int]:
    used: dict[str, int] = {}
    for item in pods:
        node = item["spec"].get("nodeName")
        if node:
            request = item["spec"]["containers"][0]["resources"]["requests"]["cpu"]
            used[node] = used.get(node, 0) + cpu_millis(request)
    return used


def scheduled_counts(events: list[dict[str, Any]]) -> dict[str, int]:
    """Pod name -> how many times a Scheduled event says it was bound."""
    counts: dict[str, int] = {}
    for event in events:
        if event["reason"] == "Scheduled":
            name = event["involvedObject"]["name"]
            counts[name] = counts.get(name, 0) + int(event.get("count") or 1)
    return counts


async def holder(api: ApiClient) -> str:
    return (await api.get(LEASE_PATH))["spec"].get("holderIdentity") or ""


def test_pods_spread_over_nodes_within_capacity_bound_by_the_leader_only(
        healthy: Cluster) -> None:
    async def scenario() -> None:
        async with healthy.client() as api:
            await create_namespace(api, "spread")
            nodes = HollowNodes(api, 5, cpu="4", memory="8Gi", prefix="spread-")
            await nodes.start()
            try:
                for i in range(20):
                    await api.create(pod("spread", f"web-{i}"))

                async def all_running() -> bool:
                    items = await pods_of(api, "spread")
                    return sum(p["status"].get("phase") == "Running" for p in items) == 20

                await eventually(all_running, 30, "20 pods running")
                items = await pods_of(api, "spread")
                used = cpu_by_node(items)
                assert sorted(used) == sorted(nodes.names)
                assert all(cpu <= 4000 for cpu in used.values())
                assert set(used.values()) == {2000}  # least-allocated: 4 pods each
                assert all(p["status"]["podIP"] for p in items)
                leader = await holder(api)
                events = await events_of(api, "spread")
                assert scheduled_counts(events) == {f"web-{i}": 1 for i in range(20)}
                assert {e["reportingInstance"] for e in events
                        if e["reason"] == "Scheduled"} == {leader}
            finally:
                await clean_up(api, "spread", nodes)

    run(scenario())


def test_fifty_pods_at_once_never_overcommit_a_node(healthy: Cluster) -> None:
    async def scenario() -> None:
        async with healthy.client() as api:
            await create_namespace(api, "burst")
            nodes = HollowNodes(api, 5, cpu="2", memory="8Gi", prefix="burst-")
            await nodes.start()
            try:
                await asyncio.gather(*(api.create(pod("burst", f"b-{i}", cpu="300m"))
                                       for i in range(50)))

                async def settled() -> bool:
                    items = await pods_of(api, "burst")
                    unschedulable = [p for p in items if any(
                        c["type"] == "PodScheduled" and c["status"] == "False"
                        for c in p["status"].get("conditions") or [])]
                    bound = [p for p in items if p["spec"].get("nodeName")]
                    return len(bound) == 30 and len(unschedulable) == 20

                await eventually(settled, 30, "30 bound and 20 unschedulable")
                used = cpu_by_node(await pods_of(api, "burst"))
                assert used == {name: 1800 for name in nodes.names}  # 6 x 300m of 2000m
                await asyncio.sleep(1.5)  # retries after the back-off change nothing
                assert cpu_by_node(await pods_of(api, "burst")) == used
            finally:
                await clean_up(api, "burst", nodes)

    run(scenario())


def test_a_pod_that_fits_nowhere_waits_for_a_bigger_node(healthy: Cluster) -> None:
    async def scenario() -> None:
        async with healthy.client() as api:
            await create_namespace(api, "big")
            nodes = HollowNodes(api, 5, cpu="2", memory="8Gi", prefix="small-")
            await nodes.start()
            try:
                await api.create(pod("big", "huge", cpu="3"))

                async def refused() -> bool:
                    current = await api.get(api.path("v1", "pods", "big", "huge"))
                    return any(c["type"] == "PodScheduled" and c["status"] == "False"
                               for c in current["status"].get("conditions") or [])

                await eventually(refused, 20, "PodScheduled=False")
                current = await api.get(api.path("v1", "pods", "big", "huge"))
                (condition,) = current["status"]["conditions"]
                assert condition["reason"] == "Unschedulable"
                assert condition["message"] == FULL_MESSAGE
                assert current["status"]["phase"] == "Pending"
                assert not current["spec"].get("nodeName")
                (event,) = [e for e in await events_of(api, "big")
                            if e["reason"] == "FailedScheduling"]
                assert event["type"] == "Warning"
                assert event["message"] == FULL_MESSAGE

                await nodes.add_node("big-node", cpu="8")

                async def bound() -> bool:
                    current = await api.get(api.path("v1", "pods", "big", "huge"))
                    return current["spec"].get("nodeName") == "big-node"

                await eventually(bound, 20, "bound to the new node")
                current = await api.get(api.path("v1", "pods", "big", "huge"))
                scheduled = [c for c in current["status"]["conditions"]
                             if c["type"] == "PodScheduled"]
                assert [c["status"] for c in scheduled] == ["True"]
            finally:
                await clean_up(api, "big", nodes)

    run(scenario())


def test_a_cordoned_node_gets_nothing(healthy: Cluster) -> None:
    async def scenario() -> None:
        async with healthy.client() as api:
            await create_namespace(api, "cordon")
            nodes = HollowNodes(api, 3, cpu="4", memory="8Gi", prefix="cordon-")
            await nodes.start()
            try:
                await api.patch(api.path("v1", "nodes", None, "cordon-0"),
                                {"spec": {"unschedulable": True}})
                await asyncio.sleep(0.5)  # the scheduler's informer sees the cordon first
                for i in range(12):
                    await api.create(pod("cordon", f"c-{i}"))

                async def all_bound() -> bool:
                    return all(p["spec"].get("nodeName") for p in await pods_of(api, "cordon"))

                await eventually(all_bound, 20, "12 pods bound")
                used = cpu_by_node(await pods_of(api, "cordon"))
                assert "cordon-0" not in used
                assert sum(used.values()) == 12 * 500
            finally:
                await clean_up(api, "cordon", nodes)

    run(scenario())


def test_the_standby_takes_over_when_the_leader_is_killed(healthy: Cluster) -> None:
    async def scenario() -> None:
        async with healthy.client() as api:
            await create_namespace(api, "failover")
            nodes = HollowNodes(api, 5, cpu="8", memory="16Gi", prefix="failover-")
            await nodes.start()
            try:
                leader = await holder(api)
                index = int(leader.rsplit("-", 1)[1])
                creates = [api.create(pod("failover", f"f-{i}", cpu="100m")) for i in range(60)]
                await asyncio.gather(*creates[:30])
                healthy.schedulers.members[index].kill()
                killed_at = time.monotonic()
                await asyncio.gather(*creates[30:])

                async def taken_over() -> bool:
                    return await holder(api) not in ("", leader)

                await eventually(taken_over, TAKEOVER_BOUND, "the standby holds the lease")
                print(f"takeover after {time.monotonic() - killed_at:.1f} s")

                async def all_bound() -> bool:
                    return all(p["spec"].get("nodeName") for p in await pods_of(api, "failover"))

                await eventually(all_bound, 20, "60 pods bound")
                lease = await api.get(LEASE_PATH)
                assert lease["spec"]["holderIdentity"] == f"sched-{1 - index}"
                events = await events_of(api, "failover")
                counts = scheduled_counts(events)
                # Every Scheduled event names the node the pod is on; none is doubled.
                items = {p["metadata"]["name"]: p for p in await pods_of(api, "failover")}
                for event in events:
                    if event["reason"] == "Scheduled":
                        name = event["involvedObject"]["name"]
                        assert event["message"].endswith(" to " + items[name]["spec"]["nodeName"])
                assert all(count == 1 for count in counts.values()), counts
            finally:
                await clean_up(api, "failover", nodes)

    run(scenario())


def test_a_paused_leader_wakes_up_fenced(healthy: Cluster) -> None:
    async def scenario() -> None:
        async with healthy.client() as api:
            await create_namespace(api, "pause")
            nodes = HollowNodes(api, 3, cpu="2", memory="8Gi", prefix="pause-")
            await nodes.start()
            try:
                leader = await holder(api)
                index = int(leader.rsplit("-", 1)[1])
                old = healthy.schedulers.members[index]
                old.pause()
                # Pods that fit nowhere yet: the old leader's informer will find them
                # pending when it wakes, together with the node that makes them fit.
                for i in range(10):
                    await api.create(pod("pause", f"p-{i}", cpu="3"))

                async def taken_over() -> bool:
                    return await holder(api) not in ("", leader)

                await eventually(taken_over, TAKEOVER_BOUND + 2, "the standby holds the lease")
                await nodes.add_node("pause-big", cpu="40")
                logged = len(healthy.schedulers.log(index))
                old.resume()

                async def all_bound() -> bool:
                    return all(p["spec"].get("nodeName") for p in await pods_of(api, "pause"))

                await eventually(all_bound, 20, "10 pods bound")
                await eventually(
                    lambda: "stopped leading" in healthy.schedulers.log(index)[logged:],
                    10, "the old leader steps down")


                async def scheduled_events_written() -> bool:
                    # Events are written in the background, after the bindings.
                    events = await events_of(api, "pause")
                    return len(scheduled_counts(events)) == 10
                await eventually(scheduled_events_written, 20, "10 Scheduled events")
                events = await events_of(api, "pause")
                assert {e["reportingInstance"] for e in events if e["reason"] == "Scheduled"} \
                    == {f"sched-{1 - index}"}
                assert all(count == 1 for count in scheduled_counts(events).values())
            finally:
                await clean_up(api, "pause", nodes)

    run(scenario())
