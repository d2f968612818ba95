"""The sample application: a Deployment of a small HTTP server behind a Service, and the
proof that it answers through its ClusterIP from inside the fleet.

`deploy` creates namespace `demo`, Deployment `web` (2 replicas of `python3 -m
http.server 8080`) and Service `web` (port 80 -> 8080) through the admin kubeconfig;
objects that exist already are left as they are. `check` waits until the Service has
ready endpoints, then fetches http://<ClusterIP>/ from a worker over SSH (the agent's
service rules catch the machine's own traffic too), retrying until it answers.
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

OBJECTS = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
    {"apiVersion": "apps/v1", "kind": "Deployment",
     "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"app": NAME}},
     "spec": {"replicas": 2, "selector": {"matchLabels": {"app": NAME}},
              "template": {"metadata": {"labels": {"app": NAME}},
                           "spec": {"containers": [{
                               "name": NAME, "image": "python:3",
                               "command": ["python3", "-m", "http.server", "8080"],
                               "ports": [{"containerPort": 8080}],
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
              "r = urllib.request.urlopen(sys.argv[1], timeout=3)\n"
              "print(r.status, len(r.read()))\n")
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
    answer = fetch_from(conn, f"http://{cluster_ip}:80/", timeout)
    return {"cluster_ip": cluster_ip, "endpoints": ready, "answer": answer,
            "from": conn.name}
