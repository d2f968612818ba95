"""The node agent in loopback mode: no kernel networking, pods share the host network.

The same life cycle as tests/integration/test_agent.py, on 127.0.0.1: a control plane
and one agent started with `--network host`, real processes for pods, logs through the
apiserver, deletion, an agent restart, and a port clash reported on the pod.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import psutil
import pytest

from apiserver.client import ApiClient, ApiStatusError
from tests import ports
from tests.agent_cluster import AgentFleet, wait_for
from tests.control_plane import LoopThread
from tests.integration.test_agent import (
    PY,
    Env,
    container_state,
    phase_is,
    pod,
    running_ready,
    runtime_pids,
)
from tests.kubectl import Kubectl

pytestmark = [pytest.mark.slow]


def server_script(port: int) -> str:
    return ("import http.server\n"
            f"http.server.ThreadingHTTPServer(('127.0.0.1', {port}), "
            "http.server.SimpleHTTPRequestHandler).serve_forever()\n")


@pytest.fixture(scope="module")
def env(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    directory = tmp_path_factory.mktemp("agents-loopback")
    loop = LoopThread()
    fleet = AgentFleet(directory, loop, machines=1, mode="loopback")
    try:
        fleet.start()
        api = ApiClient.from_kubeconfig(fleet.kubeconfig)
        test_env = Env(fleet, loop, api, Kubectl("1.32", fleet.kubeconfig,
                                                 directory / "kubectl-home"))

        async def ready() -> bool:
            try:
                node = await api.get("/api/v1/nodes/node-1")
            except ApiStatusError:
                return False
            return any(c.get("type") == "Ready" and c.get("status") == "True"
                       for c in node["status"].get("conditions") or [])
        try:
            loop.run(wait_for(ready, 60, what="node Ready"), 70)
        except Exception:
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


def test_node_says_pods_share_the_host_network(env: Env) -> None:
    node = env.run(env.api.get("/api/v1/nodes/node-1"))
    mode = node["metadata"]["annotations"]["kubelite.io/network-mode"]
    assert mode.startswith("host")
    assert {"type": "InternalIP", "address": "127.0.0.1"} in node["status"]["addresses"]


def test_pod_lifecycle_on_the_host_network(env: Env) -> None:
    ns = env.namespace("lifecycle")
    port = ports.free_port()
    env.create(pod("web", ns, [PY, "-c", server_script(port)], node="node-1",
                   readinessProbe={"tcpSocket": {"port": port}, "periodSeconds": 1}))
    p = env.wait_pod(ns, "web", running_ready, "running and ready")
    assert p["status"]["podIP"] == p["status"]["hostIP"] == "127.0.0.1"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        assert resp.status == 200
    uid = p["metadata"]["uid"]
    pids = runtime_pids(env.fleet, "node-1", uid)
    assert pids

    env.fleet.stop_agent(0)
    assert all(psutil.pid_exists(pid) for pid in pids)
    env.fleet.start_agent(0)
    env.wait_pod(ns, "web", lambda q: running_ready(q) and
                 container_state(q)["restartCount"] == 0, "adopted after the restart")
    assert runtime_pids(env.fleet, "node-1", uid) == pids

    env.delete(ns, "web")
    env.wait_gone(ns, "web")
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                   for pid in pids)


def test_port_already_in_use_is_reported_on_the_pod(env: Env) -> None:
    ns = env.namespace("clash")
    port = ports.free_port()
    env.create(pod("first", ns, [PY, "-c", server_script(port)], node="node-1"))
    env.wait_pod(ns, "first", phase_is("Running"), "running")
    env.create(pod("second", ns, [PY, "-c", server_script(port)], node="node-1"))

    def crashed(p: dict) -> bool:
        main = container_state(p)
        return main.get("restartCount", 0) >= 1 or "terminated" in (main.get("state") or {})
    env.wait_pod(ns, "second", crashed, "crashed on the taken port")
    logs = env.kubectl.run("logs", "-n", ns, "second", "--previous")
    text = logs.stdout if logs.returncode == 0 else \
        env.kubectl.ok("logs", "-n", ns, "second")
    assert "Address already in use" in text
    first = env.pod(ns, "first") or {}
    assert container_state(first)["restartCount"] == 0
