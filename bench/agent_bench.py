"""Pod startup latency through the node agent, and the agent's own cost with 100 pods.

    .venv/bin/python bench/agent_bench.py [--pods 100] [--repeats 3] [--mode netns|loopback]

One machine (a network namespace with `kubelite agent`, as in tests/agent_cluster.py)
under a control plane of one store member, one apiserver, the scheduler and the
controller-manager. Each repeat creates `--pods` pods at once (bounded concurrency of
API calls, pods bound to the node by the scheduler), each running `sleep` so that the
figure is the agent's and the control plane's work, not an application's start-up, and
measures, per pod, from the moment its create call returned to the moment a watch saw
it Ready (both on this process's monotonic clock; Kubernetes' pod-startup SLI counts
from creation to the Running/Ready status being observed, without image pulls). Then,
with all pods running, it samples the agent process's CPU over `--idle-seconds` and its
memory (RSS and PSS), and deletes the pods (timing the teardown too).

Results go to stdout as a JSON line per repeat and a summary; bench/RESULTS-agent.md
records them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apiserver.client import ApiClient  # noqa: E402
from tests.agent_cluster import AgentFleet, wait_for  # noqa: E402
from tests.control_plane import LoopThread  # noqa: E402

CREATE_CONCURRENCY = 20


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def pod(ns: str, i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p{i:03d}", "namespace": ns},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                {"name": "main", "image": "busybox", "command": ["sleep", "3600"],
                 "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}]}}


def is_ready(obj: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


async def one_round(api: ApiClient, ns: str, count: int, agent_pid: int,
                    idle_seconds: float) -> dict[str, Any]:
    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    created: dict[str, float] = {}
    ready_at: dict[str, float] = {}
    bound_at: dict[str, float] = {}
    running_at: dict[str, float] = {}
    listing = await api.list(f"/api/v1/namespaces/{ns}/pods")
    all_ready = asyncio.Event()

    async def watch() -> None:
        async with api.watch(f"/api/v1/namespaces/{ns}/pods",
                             listing.resource_version) as events:
            async for _type, obj in events:
                name = obj["metadata"]["name"]
                now = time.monotonic()
                if name not in bound_at and (obj.get("spec") or {}).get("nodeName"):
                    bound_at[name] = now
                if name not in running_at and any(
                        "running" in (c.get("state") or {})
                        for c in (obj.get("status") or {}).get("containerStatuses") or []):
                    running_at[name] = now
                if name not in ready_at and is_ready(obj):
                    ready_at[name] = time.monotonic()
                    if len(ready_at) == count:
                        all_ready.set()
                        return

    watcher = asyncio.create_task(watch())
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def create(i: int) -> None:
        async with gate:
            await api.create(pod(ns, i))
            created[f"p{i:03d}"] = time.monotonic()

    start = time.monotonic()
    await asyncio.gather(*(create(i) for i in range(count)))
    await asyncio.wait_for(all_ready.wait(), 300)
    all_ready_s = time.monotonic() - start
    watcher.cancel()
    latencies = [ready_at[n] - created[n] for n in created]
    bound = [bound_at[n] - created[n] for n in created if n in bound_at]
    running = [running_at[n] - created[n] for n in created if n in running_at]

    proc = psutil.Process(agent_pid)
    await asyncio.sleep(2.0)
    cpu0 = proc.cpu_times()
    t0 = time.monotonic()
    await asyncio.sleep(idle_seconds)
    cpu1 = proc.cpu_times()
    idle_cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (time.monotonic() - t0)
    memory = proc.memory_full_info()

    t0 = time.monotonic()
    await api.delete(f"/api/v1/namespaces/{ns}")

    async def pods_gone() -> bool:
        return not (await api.list(f"/api/v1/namespaces/{ns}/pods")).items
    await wait_for(pods_gone, 300, interval=0.5, what="pods deleted")
    teardown_s = time.monotonic() - t0
    return {"pods": count, "p50_s": round(statistics.median(latencies), 3),
            "p90_s": round(pct(latencies, 0.9), 3), "p99_s": round(pct(latencies, 0.99), 3),
            "max_s": round(max(latencies), 3), "all_ready_s": round(all_ready_s, 3),
            "bound_p50_s": round(statistics.median(bound), 3) if bound else None,
            "bound_p99_s": round(pct(bound, 0.99), 3) if bound else None,
            "running_p50_s": round(statistics.median(running), 3) if running else None,
            "running_p99_s": round(pct(running, 0.99), 3) if running else None,
            "agent_idle_cpu_cores": round(idle_cpu, 4),
            "agent_rss_mib": round(memory.rss / 2**20, 1),
            "agent_pss_mib": round(memory.pss / 2**20, 1),
            "teardown_s": round(teardown_s, 2), "load1": round(psutil.getloadavg()[0], 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--mode", choices=("netns", "loopback"), default="netns")
    args = parser.parse_args()
    loop = LoopThread()
    with tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp:
        fleet = AgentFleet(Path(tmp), loop, machines=1, mode=args.mode)
        fleet.start()
        try:
            api = ApiClient.from_kubeconfig(fleet.kubeconfig, timeout=60)

            async def node_ready() -> bool:
                nodes = (await api.list("/api/v1/nodes")).items
                return any(is_ready(n) for n in nodes)
            loop.run(wait_for(node_ready, 90, what="node Ready"), 100)
            agent_pid = fleet.members["agent-node-1"].proc.pid  # type: ignore[union-attr]
            # Warm-up (not measured): the scheduler and controller-manager win their
            # leases and the agent's informers settle.
            loop.run(one_round(api, "bench-warmup", 2, agent_pid, 0.1), 300)
            rounds = []
            for r in range(args.repeats):
                result = loop.run(one_round(api, f"bench-{r}", args.pods, agent_pid,
                                            args.idle_seconds), 900)
                print(json.dumps(result), flush=True)
                rounds.append(result)
            summary = {key: statistics.median(r[key] for r in rounds)
                       for key in ("p50_s", "p99_s", "all_ready_s", "agent_idle_cpu_cores",
                                   "agent_rss_mib", "agent_pss_mib", "teardown_s")}
            print("median of", len(rounds), "rounds:", json.dumps(summary))
            loop.run(api.close())
        finally:
            fleet.close()
            loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
