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

from tests import ports
from tests.integration.test_agent import (
    PY,
    Env,
    container_state,
    fleet_env,
    phase_is,
    pod,
    running_ready,
    runtime_pids,
)

pytestmark = [pytest.mark.slow]


def server_script(port: int) -> str:
    return ("import http.server\n"
            f"http.server.ThreadingHTTPServer(('127.0.0.1', {port}), "
            "http.server.SimpleHTTPRequestHandler).serve_forever()\n")


@pytest.fixture(scope="module")
def env(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    yield from fleet_env(request, tmp_path_factory.mktemp("agents-loopback"), machines=1,
                         mode="loopback")


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
