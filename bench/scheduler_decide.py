#!/usr/bin/env python3
"""Time the scheduler's pure decision: schedule_many over N pending pods and M nodes.

No apiserver, no store, no binding: only controllers.scheduling, so the number is the
ceiling the scheduler process can reach before any I/O. The cluster is synthetic and
seeded: nodes of a few sizes, a zone and disk label on each, a tainted control plane and
a PreferNoSchedule pool; pods come from `--templates` Deployments (one controller uid
each) whose replicas share requests, tolerations and affinity, like real workloads.
`--unique` gives every pod its own toleration, which defeats the per-template cache and
shows the worst case.

    .venv/bin/python bench/scheduler_decide.py                 # 10,000 pods, 1,000 nodes
    .venv/bin/python bench/scheduler_decide.py --unique --pods 2000
    .venv/bin/python bench/scheduler_decide.py --profile       # where the time goes
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controllers.scheduling import cache, podinfo, schedule  # noqa: E402

SIZES = [("4", "16Gi"), ("8", "32Gi"), ("16", "64Gi"), ("32", "128Gi")]


def make_nodes(count: int, rng: random.Random) -> list[dict[str, Any]]:
    nodes = []
    for i in range(count):
        cpu, memory = rng.choice(SIZES)
        taints = []
        if i < 3:
            taints.append({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"})
        elif i % 10 == 0:
            taints.append({"key": "spot", "value": "true", "effect": "PreferNoSchedule"})
        nodes.append({
            "metadata": {"name": f"node-{i:05d}", "labels": {
                "kubernetes.io/hostname": f"node-{i:05d}",
                "topology.kubernetes.io/zone": f"zone-{i % 3}",
                "disk": "ssd" if i % 4 == 0 else "hdd",
            }},
            "spec": {"taints": taints},
            "status": {
                "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        })
    return nodes


def make_template(t: int, rng: random.Random) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": "app", "image": "app:1", "resources": {"requests": {
            "cpu": rng.choice(["50m", "100m", "250m", "500m", "1"]),
            "memory": rng.choice(["64Mi", "128Mi", "256Mi", "512Mi", "1Gi"]),
        }}}],
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ],
    }
    if t % 5 == 1:
        spec["nodeSelector"] = {"disk": "ssd"}
    if t % 5 == 2:
        spec["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "preference": {"matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone-1"]}]}}]}}
    if t % 5 == 3:
        spec["initContainers"] = [{"name": "init", "resources": {"requests": {"cpu": "2", "memory": "64Mi"}}}]
    return spec


def make_pods(count: int, templates: int, unique: bool, rng: random.Random) -> list[dict[str, Any]]:
    specs = [make_template(t, rng) for t in range(templates)]
    pods = []
    for i in range(count):
        t = i % templates
        spec = dict(specs[t])
        if unique:
            spec["tolerations"] = [*spec["tolerations"], {"key": f"unique-{i}", "operator": "Exists"}]
        pods.append({
            "metadata": {
                "name": f"web-{t}-{i}", "namespace": "bench", "uid": f"pod-{i}",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"web-{t}",
                                     "uid": f"rs-{t}", "controller": True}],
            },
            "spec": spec,
        })
    return pods


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--templates", type=int, default=20)
    parser.add_argument("--unique", action="store_true", help="a distinct toleration per pod")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    snapshot = cache.Snapshot(make_nodes(args.nodes, rng))
    pods = make_pods(args.pods, args.templates, args.unique, rng)

    started = time.perf_counter()
    infos = [podinfo.PodInfo(p) for p in pods]
    parsed = time.perf_counter() - started
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    started, cpu_started = time.perf_counter(), time.process_time()
    decisions = schedule.schedule_many(infos, snapshot)
    decided, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)

    placed = sum(1 for d in decisions if d.scheduled)
    total = parsed + decided
    print(f"{args.pods} pods ({args.templates} templates{', unique tolerations' if args.unique else ''}) "
          f"on {args.nodes} nodes: {placed} placed, {args.pods - placed} unschedulable")
    print(f"parse {parsed:.2f}s, decide {decided:.2f}s ({cpu:.2f}s CPU): {args.pods / total:.0f} pods/s "
          f"({args.pods / decided:.0f} pods/s deciding only, {args.pods / cpu:.0f} per CPU second)")


if __name__ == "__main__":
    main()
