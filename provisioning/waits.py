"""Waiting for the cluster to come up: the store has a leader, every apiserver is ready,
every node is Ready. Each wait is bounded and, when it gives up, says what it saw last.

The store and the apiservers are asked from a control plane over SSH (the operator may
not reach the fleet's addresses; provisioning/health.py does the asking there); the
nodes through the admin kubeconfig, as any client would.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from collections.abc import Sequence
from pathlib import Path

from apiserver.client import ApiClient
from provisioning import ssh
from provisioning.machine_config import Layout

POLL = 0.5


class WaitTimeout(RuntimeError):
    pass


def health(conn: ssh.Connection, layout: Layout, *args: str, timeout: float = 30.0) -> dict:
    """Run provisioning.health on the machine; its JSON answer (or {"error": ...})."""
    cmd = " ".join(shlex.quote(a) for a in [layout.python, "-m", "provisioning.health", *args])
    try:
        result = conn.run(cmd, timeout=timeout)
    except ssh.SshError as exc:
        return {"error": str(exc)}
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": (result.stderr or result.stdout).strip()[-300:]}


def store_report(conn: ssh.Connection, layout: Layout, endpoints: Sequence[str]) -> dict:
    return health(conn, layout, "store", "--endpoints", ",".join(endpoints))


def wait_store_leader(conn: ssh.Connection, layout: Layout, endpoints: Sequence[str],
                      timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    report: dict = {}
    while time.monotonic() < deadline:
        report = store_report(conn, layout, endpoints)
        if report.get("leader") and all("error" not in s for s in report.get("statuses", [])):
            return report
        time.sleep(POLL)
    raise WaitTimeout(f"the store has no leader after {timeout:g} s; last seen: "
                      f"{json.dumps(report)[:500]}")


def wait_member_caught_up(conn: ssh.Connection, layout: Layout, endpoints: Sequence[str],
                          endpoint: str, timeout: float = 90.0) -> None:
    """The member at `endpoint` knows the leader and has applied what the leader had."""
    deadline = time.monotonic() + timeout
    report: dict = {}
    while time.monotonic() < deadline:
        report = store_report(conn, layout, endpoints)
        rows = {s.get("endpoint"): s for s in report.get("statuses", [])}
        mine = rows.get(endpoint.rstrip("/"))
        leader = next((s for s in rows.values() if s.get("is_leader")), None)
        if mine and leader and mine.get("leader") and "error" not in mine \
                and mine.get("applied", 0) >= leader.get("applied", 0) - 5:
            return
        time.sleep(POLL)
    raise WaitTimeout(f"store member {endpoint} did not catch up in {timeout:g} s; last "
                      f"seen: {json.dumps(report)[:500]}")


def wait_apiserver_ready(conn: ssh.Connection, layout: Layout, port: int,
                         timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        last = health(conn, layout, "readyz", "--url", f"https://127.0.0.1:{port}",
                      "--ca-file", f"{layout.pki}/ca.crt")
        if last.get("ready"):
            return
        time.sleep(POLL)
    raise WaitTimeout(f"{conn.name}: the apiserver is not ready after {timeout:g} s "
                      f"({last.get('error', 'not ready')}); see {layout.log}/apiserver.log there")


def node_ready(node: dict) -> bool:
    for cond in node.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


async def nodes(kubeconfig: Path) -> list[dict]:
    async with ApiClient.from_kubeconfig(kubeconfig, timeout=10.0) as api:
        return (await api.list("/api/v1/nodes")).items


def wait_nodes_ready(kubeconfig: Path, names: Sequence[str], timeout: float = 180.0
                     ) -> list[dict]:
    deadline = time.monotonic() + timeout
    missing: list[str] = list(names)
    while time.monotonic() < deadline:
        try:
            items = asyncio.run(nodes(kubeconfig))
        except Exception:  # not up yet; asked again until the deadline
            items = []
        ready = {n["metadata"]["name"] for n in items if node_ready(n)}
        missing = [n for n in names if n not in ready]
        if not missing:
            return items
        time.sleep(POLL * 2)
    raise WaitTimeout(f"nodes not Ready after {timeout:g} s: {', '.join(missing)}; see "
                      "agent.log under the data dir on those machines")
