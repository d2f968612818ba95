"""The sample application: a Deployment of a small HTTP server behind a Service, and the
proof that it answers through its ClusterIP from inside the fleet.

`deploy` creates namespace `demo`, Deployment `web` (2 replicas of a small Python HTTP
server that answers "hello from <pod name>", with a readiness probe) and Service `web`
(port 80 -> 8080) through the admin kubeconfig; objects that exist already are left as
they are. `check` waits until the Service has ready endpoints, then fetches
http://<ClusterIP>/ a few times from a worker over SSH (the agent's service rules catch
the machine's own traffic too), retrying until it answers, and reports which pods did.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from pathlib import Path

from apiserver.client import ApiClient
from apiserver.client_policy import ApiStatusError
from provisioning import ssh

NAMESPACE, NAME = "demo", "web"
TIMEOUT = 120.0
FETCHES = 8
SERVER = ("import http.server, os\n"
          "class Hello(http.server.BaseHTTPRequestHandler):\n"
          "    def do_GET(self):\n"
          "        body = f\"hello from {os.environ['POD_NAME']}\\n\".encode()\n"
          "        self.send_response(200)\n"
          "        self.send_header('Content-Type', 'text/plain')\n"
          "        self.send_header('Content-Length', str(len(body)))\n"
          "        self.end_headers()\n"
          "        self.wfile.write(body)\n"
          "http.server.ThreadingHTTPServer(('', 8080), Hello).serve_forever()\n")

OBJECTS = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
    {"apiVersion": "apps/v1", "kind": "Deployment",
     "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"app": NAME}},
     "spec": {"replicas": 2, "selector": {"matchLabels": {"app": NAME}},
              "template": {"metadata": {"labels": {"app": NAME}},
                           "spec": {"containers": [{
                               "name": NAME, "image": "python:3",
                               "command": ["python3", "-c", SERVER],
                               "env": [{"name": "POD_NAME", "valueFrom": {
                                   "fieldRef": {"fieldPath": "metadata.name"}}}],
                               "ports": [{"containerPort": 8080}],
                               "readinessProbe": {"httpGet": {"path": "/", "port": 8080},
                                                  "periodSeconds": 2},
                               "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}}}]}}}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": NAME, "namespace": NAMESPACE},
     "spec": {"selector": {"app": NAME}, "ports": [{"port": 80, "targetPort": 8080}]}},
]


async def _deploy(kubeconfig: Path, timeout: float) -> tuple[str, int]:
    async with ApiClient.from_kubeconfig(kubeconfig, timeout=15.0) as api:
        for obj in OBJECTS:
            try:
                await api.create(obj)
            except ApiStatusError as exc:
                if exc.code != 409:
                    raise
        service = await api.get(f"/api/v1/namespaces/{NAMESPACE}/services/{NAME}")
        deadline = time.monotonic() + timeout
        ready = 0
        while time.monotonic() < deadline:
            try:
                ep = await api.get(f"/api/v1/namespaces/{NAMESPACE}/endpoints/{NAME}")
            except ApiStatusError:
                ep = {}
            ready = sum(len(s.get("addresses") or []) for s in ep.get("subsets") or [])
            if ready >= 1:
                break
            await asyncio.sleep(1.0)
        return service["spec"]["clusterIP"], ready


def deploy(kubeconfig: Path, timeout: float = TIMEOUT) -> tuple[str, int]:
    """(ClusterIP, ready endpoints) of the sample Service once it has an endpoint."""
    return asyncio.run(_deploy(kubeconfig, timeout))


def fetch_from(conn: ssh.Connection, url: str, timeout: float = TIMEOUT) -> str:
    """GET `url` from the machine behind `conn`, retrying until it answers."""
    script = ("import sys, urllib.request\n"
              f"for _ in range({FETCHES}):\n"
              "    print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode()"
              ".strip())\n")
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        result = conn.run(f"python3 -c {shlex.quote(script)} {shlex.quote(url)}", timeout=30)
        if result.ok:
            return result.stdout.strip()
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        time.sleep(1.0)
    raise RuntimeError(f"{url} did not answer from {conn.name} within {timeout:g} s: {last}")


def check(kubeconfig: Path, conn: ssh.Connection, timeout: float = TIMEOUT) -> dict:
    cluster_ip, ready = deploy(kubeconfig, timeout)
    if not ready:
        raise RuntimeError(f"service {NAMESPACE}/{NAME} has no ready endpoints after "
                           f"{timeout:g} s")
    answers = fetch_from(conn, f"http://{cluster_ip}:80/", timeout).splitlines()
    counts = {line: answers.count(line) for line in sorted(set(answers))}
    answer = ", ".join(f"{line} (x{n})" for line, n in counts.items())
    return {"cluster_ip": cluster_ip, "endpoints": ready, "answer": answer,
            "answers": answers, "from": conn.name}
