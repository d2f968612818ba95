"""The node agent end to end on two machines made of network namespaces (root).

One fleet serves the module (tests.agent_cluster): a control plane in a control
namespace and two machines, each running `kubelite agent` with real pods (processes in
network namespaces of their own). Each test works in its own Kubernetes namespace.
Waits bound how long a test may hang; nothing asserts on how long anything took.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from agents.pod_network import short_id
from apiserver.client import ApiClient, ApiStatusError
from provisioning import netns
from tests.agent_cluster import AgentFleet, wait_for
from tests.control_plane import LoopThread
from tests.kubectl import Kubectl
from tests.privileges import require_root

pytestmark = [pytest.mark.slow]

Obj = dict[str, Any]
WAIT = 60.0
PY = "python3"
# A web server that answers every GET with the pod's name (from the downward API).
WHOAMI = ("import http.server, os\n"
          "class H(http.server.BaseHTTPRequestHandler):\n"
          "    def do_GET(self):\n"
          "        body = os.environ['POD_NAME'].encode()\n"
          "        self.send_response(200); self.send_header('Content-Length', str(len(body)))\n"
          "        self.end_headers(); self.wfile.write(body)\n"
          "    def log_message(self, *a): pass\n"
          "http.server.ThreadingHTTPServer(('0.0.0.0', 8080), H).serve_forever()\n")


class Env:
    def __init__(self, fleet: AgentFleet, loop: LoopThread, api: ApiClient,
                 kubectl: Kubectl) -> None:
        self.fleet, self.loop, self.api, self.kubectl = fleet, loop, api, kubectl

    def run(self, coro: Any, timeout: float = 2 * WAIT) -> Any:
        return self.loop.run(coro, timeout)

    def namespace(self, name: str) -> str:
        self.run(self.api.create({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": name}}))
        return name

    def create(self, obj: Obj) -> Obj:
        return self.run(self.api.create(obj))

    def pod(self, ns: str, name: str) -> Obj | None:
        async def get() -> Obj | None:
            try:
                return await self.api.get(f"/api/v1/namespaces/{ns}/pods/{name}")
            except ApiStatusError as err:
                if err.code == 404:
                    return None
                raise
        return self.run(get())

    def wait_pod(self, ns: str, name: str, check: Any, what: str,
                 timeout: float = WAIT) -> Obj:
        async def probe() -> Obj | None:
            try:
                pod = await self.api.get(f"/api/v1/namespaces/{ns}/pods/{name}")
            except ApiStatusError:
                return None
            return pod if check(pod) else None
        try:
            return self.run(wait_for(probe, timeout, what=f"{ns}/{name} {what}"),
                            timeout + 10)
        except TimeoutError:
            print(json.dumps(self.pod(ns, name), indent=1)[-3000:])
            print(self.fleet.logs()[-6000:])
            raise

    def wait_gone(self, ns: str, name: str, timeout: float = WAIT) -> None:
        async def gone() -> bool:
            try:
                await self.api.get(f"/api/v1/namespaces/{ns}/pods/{name}")
            except ApiStatusError as err:
                return err.code == 404
            return False
        self.run(wait_for(gone, timeout, what=f"{ns}/{name} deleted"), timeout + 10)

    def delete(self, ns: str, name: str) -> None:
        self.run(self.api.delete(f"/api/v1/namespaces/{ns}/pods/{name}"))


def pod(name: str, ns: str, command: list[str], *, node: str | None = None,
        labels: dict[str, str] | None = None, restart: str = "Always",
        grace: int | None = None, **container: Any) -> Obj:
    spec: Obj = {"restartPolicy": restart,
                 "containers": [{"name": "main", "image": "python:3", "command": command,
                                 "env": [{"name": "POD_NAME", "valueFrom": {
                                     "fieldRef": {"fieldPath": "metadata.name"}}}],
                                 **container}]}
    if node:
        spec["nodeName"] = node
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": spec}


def running_ready(p: Obj) -> bool:
    status = p.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or [])
    return status.get("phase") == "Running" and ready


def phase_is(*phases: str) -> Any:
    return lambda p: (p.get("status") or {}).get("phase") in phases


def container_state(p: Obj, name: str = "main") -> Obj:
    for status in (p.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == name:
            return status
    return {}


def runtime_pids(fleet: AgentFleet, node: str, uid: str) -> list[int]:
    """PIDs the agent's runtime recorded for a pod (its state directory is plain JSON)."""
    pids = []
    for path in (fleet.dir / f"agent-{node}" / "runtime").rglob("*.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("pod_uid") == uid and record.get("pid"):
            pids.append(int(record["pid"]))
    return pids


def fleet_env(request: pytest.FixtureRequest, directory: Path, *, machines: int,
              mode: str) -> Iterator[Env]:
    """A started AgentFleet whose nodes are all Ready (with a podCIDR), for a module;
    its processes' logs are printed when a test of the module failed."""
    loop = LoopThread()
    fleet = AgentFleet(directory, loop, machines=machines, mode=mode)
    try:
        fleet.start()
        api = ApiClient.from_kubeconfig(fleet.kubeconfig)
        test_env = Env(fleet, loop, api, Kubectl("1.32", fleet.kubeconfig,
                                                 directory / "kubectl-home"))

        async def nodes_ready() -> bool:
            nodes = (await api.list("/api/v1/nodes")).items
            ready = [n for n in nodes
                     if (n.get("spec") or {}).get("podCIDR") and any(
                         c.get("type") == "Ready" and c.get("status") == "True"
                         for c in (n.get("status") or {}).get("conditions") or [])]
            return len(ready) == machines
        try:
            loop.run(wait_for(nodes_ready, 90, what=f"{machines} Ready nodes"), 100)
        except TimeoutError:
            print(fleet.logs())
            raise
        failed_before = request.session.testsfailed
        yield test_env
        if request.session.testsfailed > failed_before:
            print(fleet.logs())
        loop.run(api.close())
    finally:
        fleet.close()
        loop.close()


@pytest.fixture(scope="module")
def env(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    require_root("the agent's pod networking")
    yield from fleet_env(request, tmp_path_factory.mktemp("agents"), machines=2, mode="netns")


# --- nodes --------------------------------------------------------------------------


def test_nodes_register_with_measured_capacity_and_renew_their_lease(env: Env) -> None:
    node = env.run(env.api.get("/api/v1/nodes/node-1"))
    status = node["status"]
    assert status["capacity"]["cpu"] == str(psutil.cpu_count())
    assert status["capacity"]["pods"] == "110"
    assert status["nodeInfo"]["kernelVersion"] == os.uname().release
    assert status["nodeInfo"]["architecture"] in ("amd64", "arm64")
    assert {"type": "InternalIP", "address": "10.77.0.11"} in status["addresses"]
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
    types = {c["type"]: c["status"] for c in status["conditions"]}
    assert types["Ready"] == "True"
    assert types["MemoryPressure"] == types["DiskPressure"] == types["PIDPressure"] == "False"
    annotations = node["metadata"].get("annotations") or {}
    assert annotations.get("kubelite.io/network-mode") == "pod-netns"
    assert annotations.get("kubelite.io/proxy-mode") == "nftables"  # no IPVS in this kernel
    lease_path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-1"
    first = env.run(env.api.get(lease_path))["spec"]["renewTime"]

    async def renewed() -> bool:
        return (await env.api.get(lease_path))["spec"]["renewTime"] != first
    env.run(wait_for(renewed, 20, what="lease renewal"))


def test_top_nodes_reads_usage_through_the_apiserver(env: Env) -> None:
    summary = env.run(env.api.get("/api/v1/nodes/node-2/proxy/stats/summary"))
    assert summary["node"]["nodeName"] == "node-2"
    assert summary["node"]["memory"]["workingSetBytes"] > 0


# --- pods ---------------------------------------------------------------------------


def test_pod_runs_becomes_ready_and_reports_status(env: Env) -> None:
    ns = env.namespace("run")
    env.create(pod("web", ns, [PY, "-c", WHOAMI], node="node-1",
                   readinessProbe={"httpGet": {"path": "/", "port": 8080},
                                   "periodSeconds": 1}))
    p = env.wait_pod(ns, "web", running_ready, "running and ready")
    status = p["status"]
    node = env.run(env.api.get("/api/v1/nodes/node-1"))
    cidr = node["spec"]["podCIDR"]
    prefix = cidr.rsplit(".", 2)[0]
    assert status["podIP"].startswith(prefix + "."), (status["podIP"], cidr)
    assert status["hostIP"] == "10.77.0.11"
    assert status["startTime"]
    main = container_state(p)
    assert "running" in main["state"] and main["ready"] is True
    assert main["restartCount"] == 0
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"PodScheduled": "True", "Initialized": "True",
                          "ContainersReady": "True", "Ready": "True",
                          **({"PodReadyToStartContainers": "True"}
                             if "PodReadyToStartContainers" in conditions else {})}


def test_pods_reach_each_other_across_machines(env: Env) -> None:
    ns = env.namespace("p2p")
    env.create(pod("server", ns, [PY, "-c", WHOAMI], node="node-1"))
    server = env.wait_pod(ns, "server", running_ready, "running")
    ip = server["status"]["podIP"]
    fetch = (f"import urllib.request, time\n"
             f"for i in range(50):\n"
             f"    try:\n"
             f"        print(urllib.request.urlopen('http://{ip}:8080/', timeout=2).read()"
             f".decode()); break\n"
             f"    except OSError as e:\n"
             f"        print('retry', e); time.sleep(0.2)\n"
             f"else:\n"
             f"    raise SystemExit(1)\n")
    env.create(pod("client", ns, [PY, "-c", fetch], node="node-2", restart="Never"))
    done = env.wait_pod(ns, "client", phase_is("Succeeded", "Failed"), "finished")
    logs = env.kubectl.ok("logs", "-n", ns, "client")
    assert done["status"]["phase"] == "Succeeded", logs
    assert "server" in logs.splitlines()[-1]
    # A finished pod gives its sandbox back but keeps its status.
    sandbox = f"{env.fleet.prefix}2-{short_id(done['metadata']['uid'])}"

    async def released() -> bool:
        return not netns.exists(sandbox)
    env.run(wait_for(released, 30, what="the finished pod's namespace removed"))
    assert (env.pod(ns, "client") or {})["status"]["podIP"]


def test_service_cluster_ip_balances_across_both_backends(env: Env) -> None:
    ns = env.namespace("svc")
    for i, node in enumerate(("node-1", "node-2")):
        env.create(pod(f"backend-{i}", ns, [PY, "-c", WHOAMI], node=node,
                       labels={"app": "whoami"},
                       readinessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1}))
    svc = env.create({"apiVersion": "v1", "kind": "Service",
                      "metadata": {"name": "whoami", "namespace": ns},
                      "spec": {"selector": {"app": "whoami"},
                               "ports": [{"port": 80, "targetPort": 8080}]}})
    for i in range(2):
        env.wait_pod(ns, f"backend-{i}", running_ready, "ready")
    cluster_ip = svc["spec"]["clusterIP"]
    fetch = (f"import urllib.request, time, collections\n"
             f"seen = collections.Counter()\n"
             f"deadline = time.time() + 40\n"
             f"while time.time() < deadline and (len(seen) < 2 or sum(seen.values()) < 20):\n"
             f"    try:\n"
             f"        seen[urllib.request.urlopen('http://{cluster_ip}:80/', timeout=2)"
             f".read().decode()] += 1\n"
             f"    except OSError as e:\n"
             f"        time.sleep(0.2)\n"
             f"print(dict(seen))\n"
             f"raise SystemExit(0 if len(seen) == 2 else 1)\n")
    env.create(pod("client", ns, [PY, "-c", fetch], node="node-1", restart="Never"))
    done = env.wait_pod(ns, "client", phase_is("Succeeded", "Failed"), "finished", 90)
    logs = env.kubectl.ok("logs", "-n", ns, "client")
    assert done["status"]["phase"] == "Succeeded", logs
    assert "backend-0" in logs and "backend-1" in logs


def test_kubectl_logs_and_follow_go_through_the_apiserver(env: Env) -> None:
    ns = env.namespace("logs")
    script = ("import time\n"
              "for i in range(6):\n"
              "    print('line', i, flush=True); time.sleep(0.5)\n")
    env.create(pod("talker", ns, [PY, "-c", script], node="node-2", restart="Never"))
    env.wait_pod(ns, "talker", phase_is("Running", "Succeeded"), "started")
    followed = env.kubectl.run("logs", "-f", "-n", ns, "talker", timeout=60)
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.splitlines() == [f"line {i}" for i in range(6)]
    env.wait_pod(ns, "talker", phase_is("Succeeded"), "finished")
    assert env.kubectl.ok("logs", "-n", ns, "talker", "--tail", "2").splitlines() == \
        ["line 4", "line 5"]
    stamped = env.kubectl.ok("logs", "-n", ns, "talker", "--timestamps").splitlines()
    assert len(stamped) == 6 and stamped[0].split(" ", 1)[1] == "line 0"
    assert stamped[0].split(" ", 1)[0].endswith("Z")


def test_crash_looping_container_backs_off(env: Env) -> None:
    ns = env.namespace("crash")
    env.create(pod("crasher", ns, ["sh", "-c", "echo dying; exit 3"], node="node-1"))

    def looping(p: Obj) -> bool:
        main = container_state(p)
        return main.get("restartCount", 0) >= 2 and \
            main.get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff"
    p = env.wait_pod(ns, "crasher", looping, "in CrashLoopBackOff", 90)
    main = container_state(p)
    assert main["lastState"]["terminated"]["exitCode"] == 3
    assert main["lastState"]["terminated"]["reason"] == "Error"
    assert "back-off" in main["state"]["waiting"]["message"]
    # Back-off doubles from 10 s: within the next 10 s at most one more restart happens.
    restarts = main["restartCount"]
    env.run(_sleep(10))
    later = container_state(env.pod(ns, "crasher") or {})
    assert later["restartCount"] <= restarts + 1
    assert env.kubectl.ok("logs", "-n", ns, "crasher", "--previous").strip() == "dying"


def test_missing_command_is_reported_not_fatal(env: Env) -> None:
    ns = env.namespace("badcmd")
    env.create(pod("nope", ns, ["/no/such/binary"], node="node-2", restart="Never"))
    p = env.wait_pod(ns, "nope", phase_is("Failed"), "failed")
    terminated = container_state(p)["state"]["terminated"]
    assert terminated["reason"] == "StartError"
    assert "/no/such/binary" in terminated["message"]
    assert terminated["exitCode"] == 128
    events = env.run(env.api.list(f"/api/v1/namespaces/{ns}/events")).items
    assert any(e["reason"] == "Failed" and e["involvedObject"]["name"] == "nope"
               for e in events)
    # The agent is unharmed: the node stays Ready.
    node = env.run(env.api.get("/api/v1/nodes/node-2"))
    assert any(c["type"] == "Ready" and c["status"] == "True"
               for c in node["status"]["conditions"])


def test_container_without_a_command_cannot_use_an_image_entrypoint(env: Env) -> None:
    ns = env.namespace("noentry")
    spec = pod("imageonly", ns, [], node="node-1")
    del spec["spec"]["containers"][0]["command"]
    spec["spec"]["containers"][0]["image"] = "nginx:1.27"
    env.create(spec)

    def config_error(p: Obj) -> bool:
        waiting = container_state(p).get("state", {}).get("waiting") or {}
        return waiting.get("reason") == "CreateContainerConfigError"
    p = env.wait_pod(ns, "imageonly", config_error, "CreateContainerConfigError")
    assert "nginx:1.27" in container_state(p)["state"]["waiting"]["message"]
    assert p["status"]["phase"] == "Pending"


def test_pods_keep_running_while_the_apiserver_is_away(env: Env) -> None:
    ns = env.namespace("outage")
    env.create(pod("survivor", ns, [PY, "-c", "import time; time.sleep(600)"], node="node-1"))
    p = env.wait_pod(ns, "survivor", running_ready, "running")
    pids = runtime_pids(env.fleet, "node-1", p["metadata"]["uid"])
    env.fleet.stop_member("apiserver")
    try:
        env.run(_sleep(6))  # heartbeats and watches fail meanwhile
        assert all(psutil.pid_exists(pid) for pid in pids)
    finally:
        env.fleet.start_member("apiserver")
    # The agent resyncs: a pod created after the outage runs, the old one still does.
    env.create(pod("newcomer", ns, [PY, "-c", "import time; time.sleep(600)"],
                   node="node-1"))
    env.wait_pod(ns, "newcomer", running_ready, "running after the outage", 90)
    assert running_ready(env.pod(ns, "survivor") or {})
    assert runtime_pids(env.fleet, "node-1", p["metadata"]["uid"]) == pids
    lease = env.run(env.api.get(
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-1"))
    first = lease["spec"]["renewTime"]

    async def renewed() -> bool:
        got = await env.api.get(
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-1")
        return got["spec"]["renewTime"] != first
    env.run(wait_for(renewed, 30, what="lease renewed after the outage"))


def test_init_containers_run_first_in_order(env: Env) -> None:
    ns = env.namespace("init")
    spec = pod("ordered", ns, [PY, "-c", "import time; print('main'); time.sleep(60)"],
               node="node-1")
    spec["spec"]["initContainers"] = [
        {"name": f"init-{i}", "image": "python:3",
         "command": [PY, "-c", f"import time; print('init {i}'); time.sleep(0.5)"]}
        for i in range(2)]
    env.create(spec)
    p = env.wait_pod(ns, "ordered", phase_is("Running"), "running")
    first, second = p["status"]["initContainerStatuses"]
    assert first["state"]["terminated"]["reason"] == "Completed"
    assert second["state"]["terminated"]["reason"] == "Completed"
    assert first["state"]["terminated"]["finishedAt"] <= \
        second["state"]["terminated"]["startedAt"]
    assert second["state"]["terminated"]["finishedAt"] <= \
        container_state(p)["state"]["running"]["startedAt"]


def test_failing_liveness_probe_restarts_the_container(env: Env) -> None:
    ns = env.namespace("live")
    env.create(pod("sick", ns, [PY, "-c", "import time; time.sleep(600)"], node="node-2",
                   livenessProbe={"exec": {"command": ["false"]}, "periodSeconds": 1,
                                  "failureThreshold": 2}))
    p = env.wait_pod(ns, "sick", lambda p: container_state(p).get("restartCount", 0) >= 1,
                     "restarted by its liveness probe")
    assert container_state(p)["lastState"]["terminated"]["exitCode"] in (137, 143)
    events = env.run(env.api.list(f"/api/v1/namespaces/{ns}/events")).items
    assert any(e["reason"] == "Unhealthy" for e in events)


def test_deleted_pod_leaves_nothing_behind(env: Env) -> None:
    ns = env.namespace("gone")
    marker = env.fleet.dir / f"term-{ns}"  # pods see the machine's filesystem
    term = ("import signal, sys, time\n"
            "def bye(*_):\n"
            f"    open({str(marker)!r}, 'w').write('got SIGTERM'); sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, bye)\n"
            "time.sleep(600)\n")
    env.create(pod("victim", ns, [PY, "-c", term], node="node-1", grace=30))
    env.create(pod("stubborn", ns, ["sh", "-c", "trap '' TERM; while :; do sleep 1; done"],
                   node="node-1", grace=2))
    stubborn = env.wait_pod(ns, "stubborn", phase_is("Running"), "running")
    stubborn_pids = runtime_pids(env.fleet, "node-1", stubborn["metadata"]["uid"])
    p = env.wait_pod(ns, "victim", phase_is("Running"), "running")
    uid = p["metadata"]["uid"]
    pids = runtime_pids(env.fleet, "node-1", uid)
    assert pids and all(psutil.pid_exists(pid) for pid in pids)
    before = set(netns.list_with_prefix(f"{env.fleet.prefix}1-"))
    assert before, "the pod has a network namespace"
    veths = _links(env, 0)
    env.delete(ns, "victim")
    env.wait_gone(ns, "victim")
    assert marker.read_text() == "got SIGTERM"  # asked to stop, not killed
    env.delete(ns, "stubborn")
    env.wait_gone(ns, "stubborn")  # SIGKILL after its 2 s of grace
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                   for pid in stubborn_pids)
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                   for pid in pids)
    after = set(netns.list_with_prefix(f"{env.fleet.prefix}1-"))
    assert len(after) == len(before) - 2
    assert len(_links(env, 0)) == len(veths) - 2
    assert not runtime_pids(env.fleet, "node-1", uid)
    ipam = (env.fleet.dir / "agent-node-1" / "network").rglob("*.json")
    assert all(uid not in path.read_text() for path in ipam)


def test_agent_restart_keeps_its_pods(env: Env) -> None:
    ns = env.namespace("restart")
    env.create(pod("steady", ns, [PY, "-c", "import time\nwhile True:\n"
                                            "    print('tick', flush=True); time.sleep(0.2)"],
                   node="node-2"))
    p = env.wait_pod(ns, "steady", phase_is("Running"), "running")
    uid = p["metadata"]["uid"]
    pids = runtime_pids(env.fleet, "node-2", uid)
    env.fleet.stop_agent(1)
    assert all(psutil.pid_exists(pid) for pid in pids), "pods outlive their agent"
    env.fleet.start_agent(1)

    def settled(p: Obj) -> bool:
        return running_ready(p) and container_state(p).get("restartCount") == 0
    env.wait_pod(ns, "steady", settled, "still running after the restart")
    env.run(_sleep(2))
    assert runtime_pids(env.fleet, "node-2", uid) == pids
    assert container_state(env.pod(ns, "steady") or {})["restartCount"] == 0
    lines = env.kubectl.ok("logs", "-n", ns, "steady", "--tail", "3").splitlines()
    assert lines == ["tick"] * 3


async def _sleep(seconds: float) -> None:
    import asyncio
    await asyncio.sleep(seconds)


def _links(env: Env, machine: int) -> list[str]:
    out = env.fleet.run_in(env.fleet.machine(machine), ["ip", "-o", "link", "show"]).stdout
    return [line for line in out.splitlines() if "veth" in line or "@" in line]
