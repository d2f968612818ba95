"""The controller-manager end to end: store, apiservers, scheduler, two controller-managers
and five hollow nodes, all on loopback (issue 4's integration list).

One control plane serves the whole module (starting it is most of the cost); each test
works in a namespace of its own. The tests run in file order, and the last two change
the cluster for good (a node dies, the leading controller-manager is killed). The
timings are shortened by flags (leases of 3 s, a node grace period of 5 s) so that the
module runs in well under three minutes; nothing asserts on how long anything took,
the waits only bound how long a test may hang.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apiserver import quantities, registry
from apiserver.client import ApiClient, ApiStatusError
from controllers import podutil
from tests.control_plane import (
    ControlPlane,
    LoopThread,
    Watch,
    available,
    deployment,
    live,
    wait_for,
)
from tests.hollow_nodes import PHASE_ANNOTATION, HollowNodes
from tests.kubectl import Kubectl
from tests.kubelite_cluster import KubeliteCluster

pytestmark = pytest.mark.slow

Obj = dict[str, Any]
NODES = 5
ELECTION = ("--leader-elect-lease-duration", "3s", "--leader-elect-renew-deadline", "2s",
            "--leader-elect-retry-period", "0.5s")
MANAGER = ("--node-monitor-grace-period", "5s", "--node-monitor-period", "1s",
           "--pod-eviction-timeout", "5s", "--gc-sweep-period", "5s")
WAIT = 60.0


class Plane:
    """What the tests use: the processes, the test loop, an API client, the hollow nodes."""

    def __init__(self, cp: ControlPlane, loop: LoopThread, api: ApiClient,
                 nodes: HollowNodes, kubectl: Kubectl) -> None:
        self.cp, self.loop, self.api, self.nodes, self.kubectl = cp, loop, api, nodes, kubectl

    def run(self, coro: Any, timeout: float = 2 * WAIT) -> Any:
        return self.loop.run(coro, timeout)

    def namespace(self, name: str) -> str:
        self.run(self.api.create({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": name}}))
        return name

    async def pods(self, ns: str) -> list[Obj]:
        return (await self.api.list(f"/api/v1/namespaces/{ns}/pods")).items

    async def get(self, path: str) -> Obj | None:
        try:
            return await self.api.get(path)
        except ApiStatusError as err:
            if err.code == 404:
                return None
            raise


@pytest.fixture(scope="module")
def plane(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    directory = tmp_path_factory.mktemp("controllers")
    failed_before = request.session.testsfailed
    store = KubeliteCluster(size=3, tmp_dir=directory)
    cp: ControlPlane | None = None
    loop: LoopThread | None = None
    api: ApiClient | None = None
    nodes: HollowNodes | None = None
    try:
        cp = ControlPlane(store, directory, manager_args=MANAGER, election_args=ELECTION)
        loop = LoopThread()
        api = cp.client()
        nodes = HollowNodes(api, NODES, cpu="4", memory="8Gi", pods="40", renew_interval=1.0)
        loop.run(nodes.start())
        kubectl = Kubectl("1.32", cp.apis.kubeconfig, Path(directory) / "kubectl")
        yield Plane(cp, loop, api, nodes, kubectl)
    finally:
        if cp is not None and request.session.testsfailed > failed_before:
            capture = request.config.pluginmanager.getplugin("capturemanager")
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                print("\ncontrol plane logs:\n" + cp.log_tails())
        if loop is not None:
            if nodes is not None:
                loop.run(nodes.stop())
            if api is not None:
                loop.run(api.close())
            loop.close()
        if cp is not None:
            cp.close()
        store.close()


# --- helpers ---------------------------------------------------------------------


async def create(plane: Plane, ns: str, obj: Obj) -> Obj:
    return await plane.api.create(obj, namespace=ns)


async def available_count(plane: Plane, ns: str, want: int) -> bool:
    return len(available(await plane.pods(ns))) == want and \
        len(live(await plane.pods(ns))) == want


# --- the tests, in order --------------------------------------------------------------


def test_a_deployment_spreads_over_the_nodes_within_requests(plane: Plane) -> None:
    ns = plane.namespace("spread")
    plane.run(create(plane, ns, deployment("web", 20)))
    plane.kubectl.ok("rollout", "status", "deployment/web", "-n", ns, "--timeout=90s")
    pods = live(plane.run(plane.pods(ns)))
    assert len(pods) == 20 and all(p["status"]["phase"] == "Running" for p in pods)
    by_node: dict[str, list[Obj]] = {}
    for pod in pods:
        by_node.setdefault(pod["spec"]["nodeName"], []).append(pod)
    assert sorted(by_node) == sorted(plane.nodes.names)
    for node in plane.nodes.names:
        requested = sum(quantities.cpu_millis(c["resources"]["requests"]["cpu"])
                        for p in by_node[node] for c in p["spec"]["containers"])
        assert requested <= quantities.cpu_millis("4")
    reasons = {e["reason"] for e in plane.run(plane.api.list(
        f"/api/v1/namespaces/{ns}/events")).items}
    assert {"ScalingReplicaSet", "SuccessfulCreate", "Scheduled"} <= reasons


def test_a_rolling_update_keeps_availability_within_max_unavailable(plane: Plane) -> None:
    ns = "spread"
    floor, ceiling = 20 - 5, 20 + 5  # 25 % of 20 each way
    seen = {"min_available": 20, "max_replicas": 0}
    was_ready: dict[str, bool] = {}
    lost_readiness: list[str] = []  # not the controllers' doing: a node judged unhealthy

    def check_pods(pods: list[Obj]) -> None:
        seen["min_available"] = min(seen["min_available"], len(available(pods)))
        for pod in live(pods):
            name, ready = pod["metadata"]["name"], podutil.is_ready(pod)
            if was_ready.get(name) and not ready:
                lost_readiness.append(f"{name} on {pod['spec'].get('nodeName')}")
            was_ready[name] = ready

    def check_replicasets(replicasets: list[Obj]) -> None:
        # maxSurge bounds the ReplicaSets' replicas, as in Kubernetes: pods of a
        # ReplicaSet just scaled down may linger until its controller deletes them.
        total = sum(rs["spec"]["replicas"] for rs in replicasets)
        seen["max_replicas"] = max(seen["max_replicas"], total)

    watch = Watch(plane.api, f"/api/v1/namespaces/{ns}/pods", check_pods)
    rs_watch = Watch(plane.api, f"/apis/apps/v1/namespaces/{ns}/replicasets", check_replicasets)
    plane.run(watch.start())
    plane.run(rs_watch.start())
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:2"}]}}}}
    plane.run(plane.api.patch("/apis/apps/v1/namespaces/spread/deployments/web", patch,
                              type="strategic"))
    plane.kubectl.ok("rollout", "status", "deployment/web", "-n", ns, "--timeout=90s")
    plane.run(wait_for(lambda: available_count(plane, ns, 20), WAIT, "the old pods to go"))
    plane.run(watch.stop())
    plane.run(rs_watch.stop())
    images = {p["spec"]["containers"][0]["image"] for p in live(plane.run(plane.pods(ns)))}
    assert images == {"nginx:2"}
    assert watch.events > 40  # the watch saw the rollout, not just its end
    assert lost_readiness == []
    assert seen["min_available"] >= floor, seen
    assert seen["max_replicas"] <= ceiling, seen


def test_endpoints_follow_pod_readiness(plane: Plane) -> None:
    ns = plane.namespace("endpoints")
    plane.run(create(plane, ns, deployment("ep", 3)))
    plane.run(create(plane, ns, {"apiVersion": "v1", "kind": "Service",
                                 "metadata": {"name": "ep"},
                                 "spec": {"selector": {"app": "ep"}, "ports": [
                                     {"name": "web", "port": 80, "targetPort": "http"}]}}))

    async def addresses(ready: int, not_ready: int) -> Obj | None:
        ep = await plane.get(f"/api/v1/namespaces/{ns}/endpoints/ep")
        subsets = (ep or {}).get("subsets") or []
        got = [len(s.get("addresses") or []) for s in subsets]
        missing = [len(s.get("notReadyAddresses") or []) for s in subsets]
        return ep if (sum(got), sum(missing)) == (ready, not_ready) else None

    ep = plane.run(wait_for(lambda: addresses(3, 0), WAIT, "3 ready endpoints"))
    pods = live(plane.run(plane.pods(ns)))
    assert {a["ip"] for a in ep["subsets"][0]["addresses"]} == {p["status"]["podIP"] for p in pods}
    assert ep["subsets"][0]["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
    victim = pods[0]
    key = f"{ns}/{victim['metadata']['name']}"
    plane.nodes.set_ready(key, False)
    ep = plane.run(wait_for(lambda: addresses(2, 1), WAIT, "one endpoint not ready"))
    assert ep["subsets"][0]["notReadyAddresses"][0]["ip"] == victim["status"]["podIP"]
    plane.nodes.set_ready(key, True)
    plane.run(wait_for(lambda: addresses(3, 0), WAIT, "the endpoint ready again"))


def test_a_job_of_five_completions_two_at_a_time_completes(plane: Plane) -> None:
    ns = plane.namespace("batch")
    seen = {"max_running": 0}

    def check(pods: list[Obj]) -> None:
        running = [p for p in live(pods) if not podutil.is_terminal(p)]
        seen["max_running"] = max(seen["max_running"], len(running))

    watch = Watch(plane.api, f"/api/v1/namespaces/{ns}/pods", check)
    plane.run(watch.start())
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "count"},
           "spec": {"completions": 5, "parallelism": 2, "backoffLimit": 2, "template": {
               "metadata": {"annotations": {PHASE_ANNOTATION: "Succeeded"}},
               "spec": {"restartPolicy": "Never", "containers": [
                   {"name": "main", "image": "busybox",
                    "resources": {"requests": {"cpu": "100m"}}}]}}}}
    plane.run(create(plane, ns, job))

    async def complete() -> Obj | None:
        got = await plane.get(f"/apis/batch/v1/namespaces/{ns}/jobs/count")
        conditions = ((got or {}).get("status") or {}).get("conditions") or []
        done = any(c["type"] == "Complete" and c["status"] == "True" for c in conditions)
        return got if done else None

    finished = plane.run(wait_for(complete, WAIT, "the Job to complete"))
    plane.run(watch.stop())
    assert finished["status"]["succeeded"] == 5
    pods = plane.run(plane.pods(ns))
    assert len(pods) == 5 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    assert 1 <= seen["max_running"] <= 2, seen


def test_deleting_a_deployment_collects_its_replicasets_and_pods(plane: Plane) -> None:
    ns = plane.namespace("collect")
    plane.run(create(plane, ns, deployment("gc", 4)))
    plane.run(wait_for(lambda: available_count(plane, ns, 4), WAIT, "4 available pods"))
    plane.run(plane.api.delete(f"/apis/apps/v1/namespaces/{ns}/deployments/gc"))

    async def nothing_left() -> bool:
        rs = (await plane.api.list(f"/apis/apps/v1/namespaces/{ns}/replicasets")).items
        return not rs and not await plane.pods(ns)

    plane.run(wait_for(nothing_left, WAIT, "the ReplicaSet and pods to be collected"))


def test_deleting_a_namespace_leaves_nothing(plane: Plane) -> None:
    ns = plane.namespace("doomed")
    plane.run(create(plane, ns, deployment("app", 3)))
    plane.run(create(plane, ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app"},
                                 "spec": {"selector": {"app": "app"}, "ports": [{"port": 80}]}}))
    plane.run(wait_for(lambda: available_count(plane, ns, 3), WAIT, "3 available pods"))

    async def token() -> bool:
        return bool((await plane.api.list(f"/api/v1/namespaces/{ns}/secrets")).items)

    plane.run(wait_for(token, WAIT, "the default account's token Secret"))
    plane.run(plane.api.delete(f"/api/v1/namespaces/{ns}"))

    async def gone() -> bool:
        return await plane.get(f"/api/v1/namespaces/{ns}") is None

    plane.run(wait_for(gone, WAIT, "the namespace to go"))

    async def leftovers() -> list[str]:
        found = []
        for resource in registry.RESOURCES:
            if resource.namespaced and "list" in resource.verbs:
                path = plane.api.path(resource.api_version, resource.plural, ns)
                found += [f"{resource.plural}/{o['metadata']['name']}"
                          for o in (await plane.api.list(path)).items]
        return found

    assert plane.run(leftovers()) == []


def test_a_node_that_stops_renewing_is_tainted_and_its_pods_replaced(plane: Plane) -> None:
    ns = plane.namespace("failover")
    plane.run(create(plane, ns, deployment("ha", 6, tolerate_seconds=2)))
    plane.run(wait_for(lambda: available_count(plane, ns, 6), WAIT, "6 available pods"))
    pods = live(plane.run(plane.pods(ns)))
    victim = pods[0]["spec"]["nodeName"]
    on_victim = {p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == victim}
    plane.nodes.stop_renewing(victim)

    async def tainted() -> Obj | None:
        node = await plane.api.get(f"/api/v1/nodes/{victim}")
        taints = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        unreachable = {("node.kubernetes.io/unreachable", "NoSchedule"),
                       ("node.kubernetes.io/unreachable", "NoExecute")}
        return node if unreachable <= taints and ready[0]["status"] == "Unknown" else None

    plane.run(wait_for(tainted, WAIT, f"{victim} to be tainted unreachable"))

    async def replaced() -> bool:
        current = await plane.pods(ns)
        evicted = {p["metadata"]["name"] for p in current if p["metadata"].get("deletionTimestamp")}
        elsewhere = [p for p in available(current) if p["spec"]["nodeName"] != victim]
        return on_victim <= evicted and len(elsewhere) == 6

    plane.run(wait_for(replaced, WAIT, "the pods evicted and replaced elsewhere"))
    plane.nodes.resume_renewing(victim)

    async def untainted() -> bool:
        node = await plane.api.get(f"/api/v1/nodes/{victim}")
        return not any(t["key"].startswith("node.kubernetes.io/")
                       for t in node["spec"].get("taints") or [])

    plane.run(wait_for(untainted, WAIT, f"{victim}'s taints to come off"))


def test_killing_the_leader_hands_over_without_duplicate_pods(plane: Plane) -> None:
    ns = plane.namespace("handover")
    replicas = 12
    limit = {"desired": replicas}  # no rollout here: the surge allowance is 0
    excess: list[tuple[str, int, int]] = []
    replicasets: set[str] = set()
    leader = plane.run(wait_for(lambda: ControlPlane.leader(plane.api), WAIT, "a leader"))
    killed_at: list[int] = []

    def check(pods: list[Obj]) -> None:
        counts: dict[str, int] = {}
        for pod in live(pods):
            for ref in pod["metadata"].get("ownerReferences") or []:
                counts[ref["uid"]] = counts.get(ref["uid"], 0) + 1
                replicasets.add(ref["uid"])
        excess.extend((uid, n, limit["desired"]) for uid, n in counts.items()
                      if n > limit["desired"])
        if pods and not killed_at:  # the first pod is seen: kill it mid-way through
            plane.cp.kill_manager(leader)  # its slow-start batches (SIGKILL: no release)
            killed_at.append(len(pods))

    watch = Watch(plane.api, f"/api/v1/namespaces/{ns}/pods", check)
    plane.run(watch.start())
    plane.run(create(plane, ns, deployment("ho", replicas)))

    async def new_leader() -> str | None:
        holder = await ControlPlane.leader(plane.api)
        return holder if holder and holder != leader else None

    plane.run(wait_for(new_leader, WAIT, "the standby to take over"))
    plane.run(wait_for(lambda: available_count(plane, ns, replicas), WAIT,
                       f"{replicas} available pods"))
    limit["desired"] = replicas + 2
    plane.run(plane.api.patch(f"/apis/apps/v1/namespaces/{ns}/deployments/ho",
                              {"spec": {"replicas": replicas + 2}}))
    plane.run(wait_for(lambda: available_count(plane, ns, replicas + 2), WAIT,
                       "the new leader to scale up"))
    plane.run(watch.stop())
    rs_list = plane.run(plane.api.list(f"/apis/apps/v1/namespaces/{ns}/replicasets")).items
    assert killed_at == [1]
    assert len(rs_list) == 1 and len(replicasets) == 1
    assert excess == []
    assert len(plane.run(plane.pods(ns))) == replicas + 2
