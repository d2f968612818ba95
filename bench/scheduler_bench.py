#!/usr/bin/env python3
"""Scheduler throughput through the real apiserver and store (the issue's benchmark).

Starts a 3-member kubelite store and `--apiservers` apiservers on 127.0.0.1, registers
`--nodes` hollow nodes (Node objects only: no Lease renewals, no pod status), creates
`--pods` pending pods through the apiserver in concurrent batches (from `--templates`
"Deployments": pods of one template share requests and a controller uid, as real
workloads do), and only then starts one `kubelite scheduler` process (leader election
on, default timings). It measures, from one watch on pods opened before the first
create, the arrival time of each pod's ADDED event and of the first event showing it
bound:

- pods bound per second, from the first binding seen to the last (and from the
  scheduler's start, which includes its informers' initial list of every pod);
- creation -> binding latency (p50/p99/max) from those arrival times. With every pod
  created before the scheduler starts this is dominated by the backlog: the p99 pod
  simply waited for 99% of the others. `--stream N --rate R` then creates N more pods
  at R pods/s with the scheduler running and reports their latencies separately.

`--profile DIR` records the scheduler, the apiserver and the store leader with py-spy
(collapsed stacks) during the binding phase and prints where the time goes.

    .venv/bin/python bench/scheduler_bench.py                        # 1,000 nodes, 10,000 pods
    .venv/bin/python bench/scheduler_bench.py --stream 3000 --rate 200
    .venv/bin/python bench/scheduler_bench.py --profile /tmp/sched-profile
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apiserver.auth import kubeconfig  # noqa: E402
from apiserver.client import ApiClient, ApiStatusError  # noqa: E402
from tests.apiserver_cluster import ApiserverCluster  # noqa: E402
from tests.clusters import Member, leader_index_by_status  # noqa: E402
from tests.hollow_nodes import HollowNodes  # noqa: E402
from tests.kubelite_cluster import REPO, KubeliteCluster  # noqa: E402

NAMESPACE = "bench"
PY_SPY = str(Path(sys.executable).with_name("py-spy"))  # the venv's (requirements.lock)
SIZES = [("100m", "128Mi"), ("200m", "256Mi"), ("250m", "512Mi"), ("500m", "256Mi")]


def template_pod(i: int, templates: int) -> dict[str, Any]:
    t = i % templates
    cpu, memory = SIZES[t % len(SIZES)]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"p-{t:02d}-{i:05d}", "namespace": NAMESPACE,
                     "labels": {"app": f"app-{t}"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                          "name": f"app-{t}", "uid": f"rs-uid-{t}",
                                          "controller": True}]},
        "spec": {"containers": [{"name": "c", "image": "hollow", "resources": {
            "requests": {"cpu": cpu, "memory": memory}}}]},
    }


class Observer:
    """One watch on the namespace's pods: when each was first seen, and seen bound."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.added: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.nodes: Counter[str] = Counter()
        self.resource_version = ""
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listed = await self.api.list(self.api.path("v1", "pods", NAMESPACE))
        self.resource_version = listed.resource_version
        self.task = asyncio.get_running_loop().create_task(self._watch(), name="bench-watch")

    async def _watch(self) -> None:
        path = self.api.path("v1", "pods", NAMESPACE)
        while True:
            try:
                async with self.api.watch(path, self.resource_version,
                                          timeout_seconds=600) as stream:
                    async for kind, pod in stream:
                        self._see(kind, pod)
            except ApiStatusError as err:
                print(f"watch: {err}; again", file=sys.stderr)
                await asyncio.sleep(0.5)

    def _see(self, kind: str, pod: dict[str, Any]) -> None:
        now = time.monotonic()
        meta = pod.get("metadata") or {}
        self.resource_version = meta.get("resourceVersion") or self.resource_version
        if kind not in ("ADDED", "MODIFIED"):
            return
        name = meta.get("name", "")
        self.added.setdefault(name, now)
        node = (pod.get("spec") or {}).get("nodeName")
        if node and name not in self.bound:
            self.bound[name] = now
            self.nodes[node] += 1

    async def wait_bound(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while any(n not in self.bound for n in names):
            if time.monotonic() > deadline:
                missing = sum(n not in self.bound for n in names)
                raise TimeoutError(f"{missing} pods not bound within {timeout:.0f} s")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def create_all(api: ApiClient, pods: list[dict[str, Any]], concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(pod: dict[str, Any]) -> None:
        async with gate:
            await api.create(pod)

    for start in range(0, len(pods), 1000):  # batches keep the task count modest
        await asyncio.gather(*(one(p) for p in pods[start:start + 1000]))


async def create_at_rate(api: ApiClient, pods: list[dict[str, Any]], rate: float,
                         concurrency: int) -> None:
    """Start one create every 1/rate s (at most `concurrency` in flight: an overloaded
    apiserver slows the stream down rather than drowning in requests)."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)

    async def one(pod: dict[str, Any]) -> None:
        try:
            for _ in range(5):
                try:
                    await api.create(pod)
                    return
                except ApiStatusError as err:
                    if err.code == 409:
                        return  # an earlier attempt landed
                    await asyncio.sleep(0.5)
        finally:
            gate.release()

    begin = loop.time()
    tasks = []
    for i, pod in enumerate(pods):
        delay = begin + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await gate.acquire()
        tasks.append(loop.create_task(one(pod)))
    await asyncio.gather(*tasks)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def latency_line(observer: Observer, names: list[str]) -> str:
    waits = [observer.bound[n] - observer.added[n] for n in names]
    return (f"creation->binding p50 {percentile(waits, 0.5):.2f} s, "
            f"p99 {percentile(waits, 0.99):.2f} s, max {max(waits):.2f} s")


class Profiler:
    """py-spy on a few processes, stopped with SIGINT (py-spy then writes its file)."""

    def __init__(self, directory: Path, targets: dict[str, int]) -> None:
        if not os.access(PY_SPY, os.X_OK):
            raise SystemExit(f"--profile needs py-spy at {PY_SPY} (.venv/bin/pip install py-spy)")
        directory.mkdir(parents=True, exist_ok=True)
        self.procs = [
            (name, directory / f"{name}.collapsed", subprocess.Popen(
                [PY_SPY, "record", "--pid", str(pid), "--rate", "100", "--gil", "--format", "raw",
                 "--output", str(directory / f"{name}.collapsed"), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            for name, pid in targets.items()]

    def stop(self) -> list[tuple[str, Path]]:
        for _, _, proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for _, _, proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return [(name, path) for name, path, _ in self.procs]


class CpuMeter:
    """CPU seconds each process used between `start` and `stop` (the bench itself too)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.before: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        times = {name: sum(p.cpu_times()[:2]) for name, p in self.procs.items()}
        own = resource.getrusage(resource.RUSAGE_SELF)
        times["bench (watch, creates)"] = own.ru_utime + own.ru_stime
        return times

    def start(self) -> None:
        self.before = self._sample()

    def stop(self, wall: float) -> str:
        after = self._sample()
        used = {name: after[name] - self.before[name] for name in after}
        total = sum(used.values())
        lines = [f"CPU seconds during the binding phase ({wall:.1f} s wall, "
                 f"{os.cpu_count()} CPUs): total {total:.1f} ({total / wall:.2f} CPUs busy)"]
        lines += [f"  {name:<24} {seconds:6.1f} s  {100 * seconds / total:5.1f}%"
                  for name, seconds in sorted(used.items(), key=lambda kv: -kv[1])]
        return "\n".join(lines)


def summarize(path: Path, top: int = 15) -> str:
    """Self and inclusive time by function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  if " (" in f else f for f in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return f"{path.name}: no samples"
    lines = [f"{path.stem}: {total} samples", "  self:"]
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines += ["  inclusive:"]
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


async def bench(args: argparse.Namespace, apis: ApiserverCluster, store: KubeliteCluster,
                base: Path) -> None:
    config = kubeconfig.load_kubeconfig(apis.kubeconfig)
    async with ApiClient(apis.urls, ssl=kubeconfig.ssl_context(config),
                         token=apis.admin_token, timeout=60.0) as api:
        await api.create({"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": NAMESPACE}})
        t0 = time.monotonic()
        await HollowNodes(api, args.nodes, cpu="32", memory="128Gi", pods="110",
                          prefix="node-", renew_leases=False, run_pods=False).start()
        print(f"{args.nodes} nodes registered in {time.monotonic() - t0:.1f} s", flush=True)
        observer = Observer(api)
        await observer.start()
        pods = [template_pod(i, args.templates) for i in range(args.pods)]
        t0 = time.monotonic()
        await create_all(api, pods, args.concurrency)
        created_in = time.monotonic() - t0
        print(f"{args.pods} pods created in {created_in:.1f} s "
              f"({args.pods / created_in:.0f}/s)", flush=True)

        scheduler = Member("scheduler", base / "sched", base / "scheduler.log")
        env = dict(os.environ, PYTHONPATH=str(REPO))
        print(f"load average before the scheduler starts: {os.getloadavg()[0]:.1f}")
        scheduler.spawn([sys.executable, "-m", "kubelite_cli", "scheduler",
                         "--kubeconfig", str(apis.kubeconfig), "--log-level", "warning",
                         "--bind-concurrency", str(args.bind_concurrency)], env)
        started = time.monotonic()
        assert scheduler.proc is not None
        pids = {"scheduler": scheduler.proc.pid}
        pids.update({f"apiserver{i}": m.proc.pid for i, m in enumerate(apis.members) if m.proc})
        pids.update({f"store {m.name}": m.proc.pid for m in store.members if m.proc})
        meter = CpuMeter(pids)
        meter.start()
        profiler = None
        if args.profile:
            leader = leader_index_by_status(store.endpoints, lambda i: False)
            assert scheduler.proc is not None
            targets = {"scheduler": scheduler.proc.pid,
                       "apiserver0": apis.members[0].proc.pid,  # type: ignore[union-attr]
                       "store-leader": store.members[leader].proc.pid}  # type: ignore[union-attr]
            profiler = Profiler(Path(args.profile), targets)
        names = [p["metadata"]["name"] for p in pods]
        try:
            await observer.wait_bound(names, args.timeout)
        finally:
            reports = profiler.stop() if profiler else []
        first = min(observer.bound[n] for n in names)
        last = max(observer.bound[n] for n in names)
        print(f"bound {len(names)} pods: {len(names) / (last - first):.0f} pods/s from the "
              f"first binding to the last ({last - first:.1f} s); "
              f"{len(names) / (last - started):.0f} pods/s from the scheduler's start "
              f"(first binding after {first - started:.1f} s)")
        print("backlog " + latency_line(observer, names))
        print(meter.stop(last - started))
        print(f"load average after: {os.getloadavg()[0]:.1f} "
              "(other processes on this machine compete for the same CPUs)")
        per_node = list(observer.nodes.values())
        print(f"pods per node: min {min(per_node)}, max {max(per_node)} over "
              f"{len(per_node)} nodes")
        if args.stream:
            more = [template_pod(args.pods + i, args.templates) for i in range(args.stream)]
            t0 = time.monotonic()
            await create_at_rate(api, more, args.rate, args.concurrency)
            more_names = [p["metadata"]["name"] for p in more]
            await observer.wait_bound(more_names, args.timeout)
            print(f"stream of {args.stream} pods at {args.rate:.0f}/s "
                  f"(achieved {args.stream / (time.monotonic() - t0):.0f}/s): "
                  + latency_line(observer, more_names))
        await observer.stop()
        scheduler.stop()
        events = await api.list(api.path("v1", "events", NAMESPACE))
        print(f"Scheduled events written: {len(events.items)}")
        for name, path in reports:
            print(summarize(path) if path.exists() else f"{name}: no profile written")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--pods", type=int, default=10_000)
    p.add_argument("--templates", type=int, default=20)
    p.add_argument("--apiservers", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=64, help="creates in flight")
    p.add_argument("--bind-concurrency", type=int, default=64,
                   help="the scheduler's bindings in flight")
    p.add_argument("--stream", type=int, default=0, help="pods created with the scheduler up")
    p.add_argument("--rate", type=float, default=200.0, help="their creation rate (pods/s)")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--profile", default="", help="directory for py-spy collapsed stacks")
    args = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="sched-bench-"))
    with contextlib.ExitStack() as stack:
        store = KubeliteCluster(3, tmp_dir=base)
        stack.callback(store.close)
        apis = ApiserverCluster(store, base / "apiservers", count=args.apiservers)
        stack.callback(apis.close)
        apis.wait_bootstrapped()
        asyncio.run(bench(args, apis, store, base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
