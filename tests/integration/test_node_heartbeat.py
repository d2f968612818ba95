"""NodeHeartbeat against real processes: a kubelite store and a `kubelite apiserver`.

The heartbeat writes as the node itself (user system:node:node-1 in group system:nodes,
so the node restriction applies); the test reads and meddles as the admin. Checked:

- registration: the Node carries this machine's measured capacity, Ready, the
  kubelet's labels; the Lease in kube-node-lease names the node, is owned by the Node,
  and its renewTime advances;
- the status is posted again when it changes (readiness flips), not while it stays
  the same, and at once on poke();
- a restarted agent keeps spec.podCIDR, taints, foreign labels and conditions set by
  others, and adds its new labels; wait_pod_cidr sees a podCIDR assigned later;
- an apiserver outage (the only apiserver killed, then started again): the loops keep
  running, log the outage once and its end once, and the Lease is renewed again;
- a node credential cannot register another node: the heartbeat keeps retrying
  without crashing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from agents import measure, node_status
from agents.heartbeat import NodeHeartbeat
from apiserver.client import ApiClient, ApiStatusError
from apiserver.durations import parse_time
from tests.apiserver_cluster import ApiserverCluster
from tests.apiserver_http import Api
from tests.clusters import wait_until
from tests.control_plane import LoopThread
from tests.kubelite_cluster import KubeliteCluster

T = TypeVar("T")
NODE = "node-1"  # the node identity tests/apiserver_cluster.py issues a token for
NODE_PATH = f"/api/v1/nodes/{NODE}"
LEASE_PATH = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NODE}"
TEST_TIMEOUT = 120.0
WAIT = 30.0
FAST = {"lease_interval": 0.5, "check_interval": 0.3, "call_timeout": 3.0}


@dataclass
class Cluster:
    store: KubeliteCluster
    apis: ApiserverCluster

    def client(self, token: str) -> ApiClient:
        return ApiClient(self.apis.urls, ssl=self.apis.ssl_context(), token=token,
                         timeout=10.0)


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("heartbeat")
    failed_before = request.session.testsfailed
    with contextlib.ExitStack() as stack:
        store = KubeliteCluster(size=1, tmp_dir=base)
        stack.callback(store.close)
        apis = ApiserverCluster(store, base / "apiservers", count=1)
        stack.callback(apis.close)
        apis.wait_bootstrapped()
        # The node's role binding is written in the background too: wait until it counts
        # (reading its Lease answers 404, not 403).
        as_node = Api(apis.urls[0], apis.paths.ca_cert, token=apis.node_token)
        wait_until(lambda: as_node.get(LEASE_PATH).code == 404, WAIT,
                   what="the node credential authorized for its Lease")
        yield Cluster(store, apis)
        if request.session.testsfailed > failed_before:
            print("\n" + apis.log_tails())


def run(cluster: Cluster, scenario: Callable[[ApiClient, ApiClient], Coroutine[Any, Any, T]]) -> T:
    """Run `scenario(admin, node)` in a fresh loop, with the node's Node and Lease
    removed before and after."""
    async def bounded() -> T:
        admin = cluster.client(cluster.apis.admin_token)
        node = cluster.client(cluster.apis.node_token)
        try:
            await remove_node(admin)
            return await asyncio.wait_for(scenario(admin, node), TEST_TIMEOUT)
        finally:
            with contextlib.suppress(ApiStatusError):
                await remove_node(admin)
            await node.close()
            await admin.close()

    return asyncio.run(bounded())


async def remove_node(admin: ApiClient) -> None:
    for path in (NODE_PATH, LEASE_PATH):
        try:
            await admin.delete(path)
        except ApiStatusError as err:
            if err.code != 404:
                raise


async def eventually(check: Callable[[], Awaitable[T | None]], what: str,
                     timeout: float = WAIT) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.1)


class Readiness:
    """What the agent says about its own readiness; counts how often it was asked."""

    def __init__(self) -> None:
        self.value: tuple[bool, str, str] = (True, "", "")
        self.asked = 0

    def __call__(self) -> tuple[bool, str, str]:
        self.asked += 1
        return self.value


def heartbeat(api: ApiClient, data_dir: Path, readiness: Readiness | None = None,
              labels: dict[str, str] | None = None, name: str = NODE,
              **options: Any) -> NodeHeartbeat:
    build = measure.status_builder(
        data_dir, reserved=node_status.Reserved.parse("cpu=100m,memory=128Mi"),
        thresholds=node_status.Thresholds(), max_pods=50,
        addresses=node_status.node_addresses("127.0.0.1", name), agent_version="v1.32.0-test",
        runtime_version="process://0.1.0", daemon_port=10250,
        readiness=readiness or Readiness())
    node_labels = node_status.node_labels(name, measure.measure(data_dir), labels)
    return NodeHeartbeat(api, name, build_status=build, labels=node_labels,
                         **{**FAST, **options})


def conditions(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in node["status"]["conditions"]}


# --- the tests --------------------------------------------------------------------------


def test_registers_with_measured_capacity_and_renews_its_lease(cluster: Cluster,
                                                                tmp_path: Path) -> None:
    async def scenario(admin: ApiClient, api: ApiClient) -> None:
        hb = heartbeat(api, tmp_path)
        await hb.start()
        try:
            await hb.wait_registered(WAIT)
            node = await admin.get(NODE_PATH)
            capacity, allocatable = node["status"]["capacity"], node["status"]["allocatable"]
            assert capacity["cpu"] == str(os.cpu_count())
            assert capacity["memory"] == node_status.binary(psutil.virtual_memory().total)
            assert capacity["pods"] == "50"
            assert node_status.binary(psutil.disk_usage(str(tmp_path)).total) == \
                capacity["ephemeral-storage"]
            assert allocatable["cpu"] == node_status.millicores(os.cpu_count() * 1000 - 100)
            ready = conditions(node)["Ready"]
            assert (ready["status"], ready["reason"]) == ("True", "KubeletReady")
            assert node["metadata"]["labels"]["kubernetes.io/hostname"] == NODE
            assert node["metadata"]["labels"]["kubernetes.io/os"] == "linux"
            assert node["status"]["nodeInfo"]["bootID"] == \
                Path("/proc/sys/kernel/random/boot_id").read_text().strip()
            assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
            assert hb.node is not None and hb.node["metadata"]["uid"] == node["metadata"]["uid"]

            lease = await admin.get(LEASE_PATH)
            spec = lease["spec"]
            assert (spec["holderIdentity"], spec["leaseDurationSeconds"]) == (NODE, 40)
            assert lease["metadata"]["ownerReferences"] == [
                {"apiVersion": "v1", "kind": "Node", "name": NODE,
                 "uid": node["metadata"]["uid"]}]
            first = parse_time(spec["renewTime"])
            assert first is not None

            async def renewed() -> bool:
                later = parse_time((await admin.get(LEASE_PATH))["spec"]["renewTime"])
                return later is not None and later > first

            await eventually(renewed, "the Lease's renewTime advanced")
        finally:
            await hb.stop()

    run(cluster, scenario)


def test_status_is_posted_on_change_not_while_unchanged_and_on_poke(
        cluster: Cluster, tmp_path: Path) -> None:
    async def scenario(admin: ApiClient, api: ApiClient) -> None:
        readiness = Readiness()
        hb = heartbeat(api, tmp_path, readiness, status_interval=3600.0)
        await hb.start()
        try:
            await hb.wait_registered(WAIT)
            before = conditions(await admin.get(NODE_PATH))

            readiness.value = (False, "", "container runtime is down")

            async def not_ready() -> dict[str, Any] | None:
                node = await admin.get(NODE_PATH)
                return node if conditions(node)["Ready"]["status"] == "False" else None

            node = await eventually(not_ready, "Ready=False posted")
            after = conditions(node)
            assert (after["Ready"]["reason"], after["Ready"]["message"]) == \
                ("KubeletNotReady", "container runtime is down")
            assert after["MemoryPressure"]["lastTransitionTime"] == \
                before["MemoryPressure"]["lastTransitionTime"]

            # Unchanged: checked several more times, never written.
            await eventually(_settled(hb, admin), "the not-ready status seen by the heartbeat")
            posts, version = hb.status_posts, (await admin.get(NODE_PATH))["metadata"][
                "resourceVersion"]
            asked = readiness.asked
            await eventually(_async(lambda: readiness.asked >= asked + 3),
                             "three more status checks")
            assert hb.status_posts == posts
            assert (await admin.get(NODE_PATH))["metadata"]["resourceVersion"] == version

            # poke(): written at once although nothing changed.
            hb.poke()
            await eventually(_async(lambda: hb.status_posts > posts), "the poked post")
            assert (await admin.get(NODE_PATH))["metadata"]["resourceVersion"] != version
        finally:
            await hb.stop()

    run(cluster, scenario)


def test_restart_keeps_what_others_set_and_adds_new_labels(cluster: Cluster,
                                                            tmp_path: Path) -> None:
    async def scenario(admin: ApiClient, api: ApiClient) -> None:
        first = heartbeat(api, tmp_path, labels={"tier": "one"})
        await first.start()
        try:
            await first.wait_registered(WAIT)
        finally:
            await first.stop()

        # Others write while the agent is down: node IPAM, an operator, a network plugin.
        node = await admin.get(NODE_PATH)
        node["spec"].update(podCIDR="10.244.7.0/24", podCIDRs=["10.244.7.0/24"],
                            taints=[{"key": "dedicated", "value": "db",
                                     "effect": "NoSchedule"}])
        node["metadata"]["labels"]["team"] = "storage"
        node = await admin.update(node)
        node["status"]["conditions"].append({
            "type": "NetworkUnavailable", "status": "False", "reason": "RouteCreated",
            "message": "routes are in place", "lastHeartbeatTime": "2026-01-01T00:00:00Z",
            "lastTransitionTime": "2026-01-01T00:00:00Z"})
        for cond in node["status"]["conditions"]:
            if cond["type"] == "Ready":  # as the lifecycle controller leaves a silent node
                cond.update(status="Unknown", reason="NodeStatusUnknown")
        await admin.update_status(node)

        second = heartbeat(api, tmp_path, labels={"tier": "two"})
        await second.register()  # direct, as an agent may do before start()
        await second.start()
        try:
            assert await second.wait_pod_cidr(WAIT) == "10.244.7.0/24"
            node = await admin.get(NODE_PATH)
            assert node["spec"]["podCIDR"] == "10.244.7.0/24"
            assert node["spec"]["taints"] == [{"key": "dedicated", "value": "db",
                                               "effect": "NoSchedule"}]
            labels = node["metadata"]["labels"]
            assert (labels["team"], labels["tier"]) == ("storage", "two")
            cond = conditions(node)
            assert cond["Ready"]["status"] == "True"
            assert cond["NetworkUnavailable"]["reason"] == "RouteCreated"
        finally:
            await second.stop()

    run(cluster, scenario)


def test_wait_pod_cidr_sees_a_later_assignment(cluster: Cluster, tmp_path: Path) -> None:
    async def scenario(admin: ApiClient, api: ApiClient) -> None:
        hb = heartbeat(api, tmp_path)
        await hb.start()
        try:
            await hb.wait_registered(WAIT)
            assert await hb.wait_pod_cidr(0.3) == ""  # none yet: "" after the timeout
            waiter = asyncio.ensure_future(hb.wait_pod_cidr(WAIT))
            node = await admin.get(NODE_PATH)
            node["spec"].update(podCIDR="10.244.9.0/24", podCIDRs=["10.244.9.0/24"])
            await admin.update(node)
            assert await waiter == "10.244.9.0/24"
            assert hb.node is not None and hb.node["spec"]["podCIDR"] == "10.244.9.0/24"
        finally:
            await hb.stop()

    run(cluster, scenario)


def test_apiserver_outage_is_survived_and_logged_once(cluster: Cluster, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """The heartbeat runs in a LoopThread while this thread kills and restarts the
    apiserver: its process dies with the thread that started it (PR_SET_PDEATHSIG)."""
    caplog.set_level(logging.INFO, logger="agents.heartbeat")
    loop = LoopThread()
    admin = cluster.client(cluster.apis.admin_token)
    api = cluster.client(cluster.apis.node_token)
    hb = heartbeat(api, tmp_path, call_timeout=1.0)
    try:
        loop.run(remove_node(admin))

        async def registered() -> tuple[int, int]:
            await hb.start()
            await hb.wait_registered(WAIT)
            return len(caplog.records), hb.lease_renewals

        first_record, renewals = loop.run(registered(), TEST_TIMEOUT)
        cluster.apis.kill(0)
        try:
            async def failing() -> None:
                await eventually(_async(lambda: hb.failing), "the heartbeat noticed")
                failures = hb.write_failures
                await eventually(_async(lambda: hb.write_failures >= failures + 4),
                                 "the loops failed and backed off a few times")
                assert hb.running

            loop.run(failing(), TEST_TIMEOUT)
            renewals = hb.lease_renewals
        finally:
            cluster.apis.start(0)
        restarted_at = time.time()

        async def recovered() -> None:
            await eventually(_async(lambda: not hb.failing), "the heartbeat recovered")

            async def renewed_after_outage() -> bool:
                renew = parse_time((await admin.get(LEASE_PATH))["spec"]["renewTime"])
                return renew is not None and renew.timestamp() > restarted_at

            await eventually(renewed_after_outage, "a renewal after the outage")
            assert hb.lease_renewals > renewals and hb.running

        loop.run(recovered(), TEST_TIMEOUT)
    finally:
        with contextlib.suppress(Exception):
            loop.run(hb.stop())
        with contextlib.suppress(Exception):
            loop.run(remove_node(admin))
        loop.run(api.close())
        loop.run(admin.close())
        loop.close()
    records = [r for r in caplog.records[first_record:] if r.name == "agents.heartbeat"]
    failed = [r for r in records if "failed, retrying" in r.getMessage()]
    back = [r for r in records if "answers again" in r.getMessage()]
    assert len(failed) == 1 and failed[0].levelno == logging.WARNING
    assert len(back) == 1


def test_a_node_cannot_register_another_node_and_keeps_trying(cluster: Cluster,
                                                              tmp_path: Path) -> None:
    async def scenario(admin: ApiClient, api: ApiClient) -> None:
        hb = heartbeat(api, tmp_path, name="node-2")
        await hb.start()
        try:
            await eventually(_async(lambda: hb.failing), "registration refused")
            asked = hb.status_posts
            with pytest.raises(ApiStatusError) as refused:
                await hb.register()
            assert refused.value.code == 403
            assert not hb.registered and hb.status_posts == asked
            assert hb.running
            with pytest.raises(ApiStatusError) as missing:
                await admin.get("/api/v1/nodes/node-2")
            assert missing.value.code == 404
        finally:
            await hb.stop()

    run(cluster, scenario)


def _async(check: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    async def wrapped() -> T:
        return check()

    return wrapped


def _settled(hb: NodeHeartbeat, admin: ApiClient) -> Callable[[], Awaitable[bool]]:
    """The heartbeat's view of the Node has caught up with the stored one."""
    async def check() -> bool:
        stored = await admin.get(NODE_PATH)
        return hb.node is not None and \
            hb.node["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]

    return check
