#!/usr/bin/env python3
"""Apiserver benchmark: 3 store members + 3 apiservers + HAProxy, all on 127.0.0.1.

Starts a 3-member `kubelite store` cluster (tests.kubelite_cluster.KubeliteCluster), three
`kubelite apiserver`s over it with TLS, bearer tokens and RBAC (tests.apiserver_cluster),
and Debian's HAProxy in front of them with the configuration `kubelite apiserver
haproxy-config` generates (tests.haproxy_balancer; `leastconn`, the generated default).
Every request goes through HAProxy over TLS with the admin's bearer token, from aiohttp
clients holding keep-alive connections (apiserver.client.ApiClient, the client every
kubelite component uses; raw aiohttp for the Table lists, whose Accept header it does
not set). The issue's cases:

    create / get / update  open loop at --rate req/s for --seconds, 8 clients     p99 < 50 ms (aim), < 1 s (SLO)
                           ConfigMaps of ~1 KiB; update = PUT with resourceVersion
    create / get / update  closed loop, 16 clients (one connection each)          max throughput
    LIST 10,000 pods       one namespace, pods with a realistic spec, created       < 30 s (SLO floor)
                           first through the apiservers: full JSON, limit=500
                           pages, full Table, Table in limit=500 pages (kubectl)
    watch fan-out          1,000 watches on configmaps of one namespace (spread     p99 ack -> last watcher
                           over the apiservers by HAProxy, held by 4 processes),
                           then --writes creates paced at --write-rate/s: time from
                           the create's answer to the LAST watcher's receipt, and
                           that no watcher missed an event

Load runs in child processes of this script (`--worker SPEC`), so its CPU is counted
apart. Per run the script records p50/p99 (open loop: from each request's scheduled
start, so a server or client falling behind shows; the time from the actual send is kept
too), achieved rate, errors, and the CPU seconds (user+system, psutil) the apiservers,
store members and HAProxy used during the run, and RSS afterwards. Raw per-run JSON goes
to bench/raw/apiserver-<session>/, the summary (median [min-max] over the repeats) to
bench/RESULTS-apiserver.md.

    .venv/bin/python bench/apiserver_bench.py --repeats 3

Several sessions in one table: `apiserver_bench.py --summarize OUT.md RAWDIR...`.

Profiling (`--profile CASE`, e.g. `--profile watch --repeats 1 --results ''`) samples the
three apiservers with py-spy (raw collapsed stacks, --threads --nonblocking) during that
case and writes a per-process summary next to the raw JSON.

Bounds: every load loop stops at its request count and at its time limit; every child
process has a timeout and is killed by PID (the clusters and HAProxy by their handles,
which also die with this process through PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import os
import platform
import re
import resource as rusage
import shlex
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
import orjson  # noqa: E402

from apiserver.client import ApiClient, ApiStatusError  # noqa: E402

PY_SPY = str(Path(sys.executable).parent / "py-spy")
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
REQUEST_TIMEOUT = 10.0        # one API call, failover included
LIST_TIMEOUT = 180.0          # one full LIST of 10,000 pods
OPEN_LOOP_CLIENTS = 8         # keep-alive clients the open loop spreads its requests over
FANOUT_PROCS = 4              # processes holding the watches
MAX_CLOSED_REQUESTS = 200_000  # a closed loop also stops here, whatever its time limit
WATCH_READY_TIMEOUT = 180.0
WATCH_OPEN_BATCH = 25         # watches a watcher process opens at a time (TLS handshakes)
WATCH_DRAIN_TIMEOUT = 30.0    # after the last write, how long watchers may take to catch up


# ==== objects ===================================================================================

def configmap(ns: str, name: str, run: str, size: int = 1024) -> dict:
    filler = ("kubelite-" * (size // 9 + 1))[:size - 64]
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"app": "bench", "bench-run": run}},
            "data": {"payload": filler, "counter": "0", "mode": "benchmark"}}


def pod(ns: str, i: int) -> dict:
    """A pod as a Deployment's ReplicaSet would create it (about 2.5 KiB stored)."""
    rs = "web-7c9d8b6f5d"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": f"{rs}-{i:05d}", "namespace": ns,
            "labels": {"app": "web", "tier": "frontend", "pod-template-hash": "7c9d8b6f5d",
                       "release": "stable", "shard": str(i % 16)},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9102",
                            "kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                 "uid": "6b1a7d1e-3c55-4d8e-9a43-0f3b8c2d1e77",
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "containers": [
                {"name": "web", "image": "registry.example.com/shop/web:1.24.3",
                 "imagePullPolicy": "IfNotPresent",
                 "args": ["--port=8080", "--log-level=info", "--cache-size=256"],
                 "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                           {"name": "metrics", "containerPort": 9102, "protocol": "TCP"}],
                 "env": [{"name": "MODE", "value": "production"},
                         {"name": "REGION", "value": "eu-west-1"},
                         {"name": "POD_NAME", "valueFrom": {"fieldRef": {
                             "apiVersion": "v1", "fieldPath": "metadata.name"}}},
                         {"name": "POD_IP", "valueFrom": {"fieldRef": {
                             "apiVersion": "v1", "fieldPath": "status.podIP"}}}],
                 "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                               "limits": {"cpu": "1", "memory": "512Mi"}},
                 "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080},
                                    "periodSeconds": 5, "failureThreshold": 3},
                 "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                                   "initialDelaySeconds": 10, "periodSeconds": 10},
                 "volumeMounts": [{"name": "config", "mountPath": "/etc/web", "readOnly": True},
                                  {"name": "cache", "mountPath": "/var/cache/web"}]},
                {"name": "log-shipper", "image": "registry.example.com/infra/shipper:3.1.0",
                 "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                               "limits": {"cpu": "200m", "memory": "128Mi"}},
                 "volumeMounts": [{"name": "cache", "mountPath": "/var/cache/web",
                                   "readOnly": True}]},
            ],
            "volumes": [{"name": "config", "configMap": {"name": "web-config"}},
                        {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}}],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web",
                             "effect": "NoSchedule"}],
            "terminationGracePeriodSeconds": 30,
        },
    }


# ==== worker side (runs in a child process) =====================================================

def _percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))]


def _lat(xs: list[float]) -> dict:
    """Latency summary in ms."""
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "p50_ms": round(_percentile(xs, 0.50) * 1e3, 2),
            "p90_ms": round(_percentile(xs, 0.90) * 1e3, 2),
            "p99_ms": round(_percentile(xs, 0.99) * 1e3, 2),
            "max_ms": round(max(xs) * 1e3, 2), "mean_ms": round(statistics.fmean(xs) * 1e3, 2)}


def _client(spec: dict, **options: Any) -> ApiClient:
    ctx = ssl.create_default_context(cafile=spec["ca"])
    options.setdefault("timeout", REQUEST_TIMEOUT)
    return ApiClient([spec["url"]], ssl=ctx, token=spec["token"], **options)


def _cpu_self() -> float:
    r = rusage.getrusage(rusage.RUSAGE_SELF)
    return round(r.ru_utime + r.ru_stime, 2)


class _Errors:
    def __init__(self) -> None:
        self.count = 0
        self.by_kind: collections.Counter[str] = collections.Counter()
        self.samples: list[str] = []

    def add(self, exc: BaseException) -> None:
        self.count += 1
        kind = f"{exc.code} {exc.reason}" if isinstance(exc, ApiStatusError) else \
            type(exc).__name__
        self.by_kind[kind] += 1
        if len(self.samples) < 5:
            self.samples.append(f"{kind}: {str(exc)[:300]}")

    def json(self) -> dict:
        return {"errors": self.count, "error_kinds": dict(self.by_kind),
                "error_samples": self.samples}


class _Verb:
    """One request of a verb on object number i (ConfigMaps)."""

    def __init__(self, spec: dict, verb: str) -> None:
        self.spec = spec
        self.verb = verb
        self.ns = spec["ns"]
        self.names: list[str] = spec.get("names") or []
        self.objects: dict[str, dict] = {}

    async def prepare(self, api: ApiClient) -> None:
        if self.verb == "update":  # current resourceVersions, unmeasured
            listed = await api.list(api.path("v1", "configmaps", self.ns),
                                    label_selector=f"bench-run={self.spec['names_run']}",
                                    timeout=60)
            self.objects = {o["metadata"]["name"]: o for o in listed.items}
            self.names = [n for n in self.names if n in self.objects]
        if self.verb in ("get", "update") and not self.names:
            raise RuntimeError(f"{self.verb}: no objects to work on")

    def name_for(self, i: int, worker: int = 0, workers: int = 1) -> str:
        """Object i of this loop; with several closed-loop workers each owns a disjoint
        share of the names, so that updates never race each other."""
        share = self.names[worker::workers] or self.names
        return share[i % len(share)]

    async def __call__(self, api: ApiClient, i: int, worker: int = 0,
                       workers: int = 1) -> None:
        if self.verb == "create":
            name = f"{self.spec['prefix']}-w{worker}-{i}"
            await api.create(configmap(self.ns, name, self.spec["run"]),
                             timeout=REQUEST_TIMEOUT)
        elif self.verb == "get":
            name = self.name_for(i, worker, workers)
            await api.get(api.path("v1", "configmaps", self.ns, name), timeout=REQUEST_TIMEOUT)
        else:
            name = self.name_for(i, worker, workers)
            obj = self.objects[name]
            obj["data"]["counter"] = str(i)
            self.objects[name] = await api.update(obj, timeout=REQUEST_TIMEOUT)


async def _warm(clients: list[ApiClient], ns: str, per_client: int = 5) -> None:
    """Open each client's connection (TLS handshake) before the clock starts."""
    async def one(api: ApiClient) -> None:
        for _ in range(per_client):
            await api.get(api.path("v1", "namespaces", None, ns))
    await asyncio.gather(*(one(c) for c in clients))


async def open_loop(spec: dict) -> dict:
    rate, seconds = float(spec["rate"]), float(spec["seconds"])
    n = int(rate * seconds)
    clients = [_client(spec) for _ in range(spec.get("clients", OPEN_LOOP_CLIENTS))]
    verb = _Verb(spec, spec["verb"])
    errors = _Errors()
    from_sched: list[float] = []
    from_send: list[float] = []
    in_flight = max_in_flight = 0
    try:
        await verb.prepare(clients[0])
        await _warm(clients, spec["ns"])
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.1
        last_end = t0

        async def one(i: int, sched: float) -> None:
            nonlocal in_flight, max_in_flight, last_end
            in_flight += 1
            max_in_flight = max(max_in_flight, in_flight)
            start = loop.time()
            try:
                await verb(clients[i % len(clients)], i)
            except Exception as exc:  # noqa: BLE001 (counted, the loop goes on)
                errors.add(exc)
            else:
                end = loop.time()
                from_sched.append(end - sched)
                from_send.append(end - start)
                last_end = max(last_end, end)
            finally:
                in_flight -= 1

        tasks = []
        hard_stop = t0 + seconds + 5.0  # the dispatcher gives up scheduling after this
        for i in range(n):
            sched = t0 + i / rate
            delay = sched - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if loop.time() > hard_stop:
                break
            tasks.append(asyncio.create_task(one(i, sched)))
        sent = len(tasks)
        done, pending = await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT + 5) if tasks else \
            (set(), set())
        for t in pending:
            t.cancel()
        ok = len(from_sched)
        elapsed = max(last_end - t0, 1e-9)
        return {"mode": "open", "verb": spec["verb"], "target_rate": rate, "planned": n,
                "sent": sent, "ok": ok, "unfinished": len(pending),
                "achieved_rate": round(ok / elapsed, 1), "elapsed_s": round(elapsed, 3),
                "latency": _lat(from_sched), "service_latency": _lat(from_send),
                "max_in_flight": max_in_flight, **errors.json(), "client_cpu_s": _cpu_self()}
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def closed_loop(spec: dict) -> dict:
    workers, seconds = int(spec["clients"]), float(spec["seconds"])
    clients = [_client(spec) for _ in range(workers)]
    verb = _Verb(spec, spec["verb"])
    errors = _Errors()
    lats: list[float] = []
    try:
        await verb.prepare(clients[0])
        await _warm(clients, spec["ns"], per_client=2)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        deadline = t0 + seconds
        budget = MAX_CLOSED_REQUESTS // workers

        async def run(w: int) -> None:
            api = clients[w]
            for i in range(budget):
                if loop.time() >= deadline:
                    return
                start = loop.time()
                try:
                    await verb(api, i, w, workers)
                except Exception as exc:  # noqa: BLE001
                    errors.add(exc)
                else:
                    lats.append(loop.time() - start)

        await asyncio.wait_for(asyncio.gather(*(run(w) for w in range(workers))),
                               seconds + REQUEST_TIMEOUT + 5)
        elapsed = loop.time() - t0
        return {"mode": "closed", "verb": spec["verb"], "clients": workers, "ok": len(lats),
                "throughput": round(len(lats) / elapsed, 1), "elapsed_s": round(elapsed, 3),
                "latency": _lat(lats), **errors.json(), "client_cpu_s": _cpu_self()}
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def preload_pods(spec: dict) -> dict:
    """Create spec['count'] pods in spec['ns'], `concurrency` at a time (in flight)."""
    count, conc = int(spec["count"]), int(spec["concurrency"])
    clients = [_client(spec) for _ in range(OPEN_LOOP_CLIENTS)]
    errors = _Errors()
    created = 0
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    deadline = t0 + float(spec["max_seconds"])
    next_i = 0

    async def run(w: int) -> None:
        nonlocal created, next_i
        api = clients[w % len(clients)]
        while next_i < count and loop.time() < deadline:
            i = next_i
            next_i += 1
            try:
                await api.create(pod(spec["ns"], i), timeout=30)
                created += 1
            except ApiStatusError as exc:
                if exc.code == 409:  # left over from an earlier attempt
                    created += 1
                else:
                    errors.add(exc)
            except Exception as exc:  # noqa: BLE001
                errors.add(exc)
    try:
        await asyncio.gather(*(run(w) for w in range(conc)))
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    elapsed = loop.time() - t0
    return {"mode": "preload", "created": created, "elapsed_s": round(elapsed, 2),
            "rate": round(created / elapsed, 1), **errors.json(), "client_cpu_s": _cpu_self()}


async def list_pods(spec: dict) -> dict:
    """One LIST of every pod in spec['ns'] in spec['form']: json, json-paged, table,
    table-paged (limit=500 pages, following `continue`). Time until the last page is
    parsed."""
    form = spec["form"]
    ctx = ssl.create_default_context(cafile=spec["ca"])
    accept = TABLE_ACCEPT if form.startswith("table") else "application/json"
    headers = {"Authorization": f"Bearer {spec['token']}", "Accept": accept}
    path = f"{spec['url']}/api/v1/namespaces/{spec['ns']}/pods"
    limit = 500 if form.endswith("paged") else 0
    connector = aiohttp.TCPConnector(ssl=ctx, limit=0)
    timeout = aiohttp.ClientTimeout(total=LIST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, headers=headers,
                                     timeout=timeout) as session:
        async with session.get(f"{spec['url']}/version") as r:  # connection, unmeasured
            await r.read()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        items = pages = size = 0
        token = ""
        first_page_s = None
        for _ in range(10_000):
            params = {}
            if limit:
                params["limit"] = str(limit)
            if token:
                params["continue"] = token
            async with session.get(path, params=params) as r:
                raw = await r.read()
                if r.status != 200:
                    raise RuntimeError(f"LIST {form}: HTTP {r.status}: {raw[:300]!r}")
            body = orjson.loads(raw)
            size += len(raw)
            pages += 1
            items += len(body.get("rows" if form.startswith("table") else "items") or [])
            if first_page_s is None:
                first_page_s = loop.time() - t0
            token = (body.get("metadata") or {}).get("continue") or ""
            if not token:
                break
        elapsed = loop.time() - t0
    return {"mode": "list", "form": form, "seconds": round(elapsed, 3), "items": items,
            "pages": pages, "bytes": size, "first_page_s": round(first_page_s or 0, 3),
            "client_cpu_s": _cpu_self()}


async def watchers(spec: dict) -> dict:
    """Hold spec['count'] watches from spec['rv'] on configmaps of spec['ns']; print
    READY once all are open; record when each expected create arrives on each watch."""
    count = int(spec["count"])
    expected = set(spec["names"])
    api = _client(spec, timeout=60.0, connect_timeout=10.0)
    path = api.path("v1", "configmaps", spec["ns"])
    loop = asyncio.get_running_loop()
    received: dict[str, list[float]] = {n: [] for n in expected}
    other: collections.Counter[str] = collections.Counter()
    errors = _Errors()
    streams = [api.watch(path, spec["rv"], allow_bookmarks=False) for _ in range(count)]
    complete = 0
    all_done = asyncio.Event()
    end = asyncio.Event()

    async def follow(stream) -> None:
        nonlocal complete
        seen: set[str] = set()
        try:
            async for kind, obj in stream:
                now = loop.time()
                name = (obj.get("metadata") or {}).get("name", "")
                if kind == "ADDED" and name in expected and name not in seen:
                    seen.add(name)
                    received[name].append(now)
                    if len(seen) == len(expected):
                        break
                else:
                    other[kind] += 1
        except Exception as exc:  # noqa: BLE001
            errors.add(exc)
        finally:
            await stream.aclose()
            complete += 1
            if complete == count:
                all_done.set()

    def wait_end() -> None:  # the parent writes a line (or closes stdin) to end early
        sys.stdin.readline()
        loop.call_soon_threadsafe(end.set)

    threading.Thread(target=wait_end, daemon=True).start()
    tasks: list[asyncio.Task] = []
    t0 = loop.time()
    try:
        # A few at a time: a storm of 1,000 TLS handshakes starves the apiservers' event
        # loops, and HAProxy's health checks with them (all servers marked down at once).
        for k in range(0, count, WATCH_OPEN_BATCH):
            batch = streams[k:k + WATCH_OPEN_BATCH]
            started = [asyncio.create_task(follow(s)) for s in batch]
            tasks.extend(started)
            while not all(s.server is not None or t.done()
                          for s, t in zip(batch, started, strict=True)):
                if loop.time() - t0 > WATCH_READY_TIMEOUT:
                    break
                await asyncio.sleep(0.01)
        opened = sum(s.server is not None for s in streams)
        servers = collections.Counter(s.server for s in streams if s.server)
        print("READY " + json.dumps({"opened": opened, "open_s": round(loop.time() - t0, 2),
                                     "errors": errors.count}), flush=True)
        waiters = [asyncio.create_task(all_done.wait()), asyncio.create_task(end.wait())]
        await asyncio.wait(waiters, timeout=float(spec["max_seconds"]),
                           return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await api.close()
    return {"mode": "watchers", "count": count, "opened": opened,
            "servers": dict(servers), "received": {n: [round(x, 6) for x in v]
                                                   for n, v in received.items()},
            "other_events": dict(other), **errors.json(), "client_cpu_s": _cpu_self()}


WORKERS = {"open": open_loop, "closed": closed_loop, "preload": preload_pods,
           "list": list_pods, "watchers": watchers}


def worker_main(spec_text: str) -> int:
    spec = json.loads(spec_text)
    if spec.get("names_file"):
        spec["names"] = json.loads(Path(spec["names_file"]).read_text())
    result = asyncio.run(WORKERS[spec["mode"]](spec))
    print(json.dumps(result), flush=True)
    return 0


# ==== orchestration ============================================================================

class Stack:
    """3 store members + 3 apiservers + HAProxy, stopped by close() (by PID)."""

    def __init__(self, tmp_dir: str | None) -> None:
        from tests.apiserver_cluster import ApiserverCluster
        from tests.clusters import wait_for_leader
        from tests.haproxy_balancer import HAProxy
        from tests.kubelite_cluster import KubeliteCluster

        self.dir = Path(tempfile.mkdtemp(prefix="kubelite-apibench-", dir=tmp_dir))
        self.store = self.apis = self.lb = None
        self.user = "admin"  # whose token the load uses (bind_rbac_user: "rbac")
        try:
            self.store = KubeliteCluster(3, tmp_dir=self.dir)
            wait_for_leader(self.store)
            self.apis = ApiserverCluster(self.store, self.dir / "apiservers", 3)
            self.apis.wait_bootstrapped()
            self.lb = HAProxy(self.apis.urls, self.dir / "haproxy", self.apis.paths.ca_cert,
                              balance="leastconn")
        except BaseException:
            self.close()
            raise

    def spec(self, **kw: Any) -> dict:
        return {"url": self.lb.url, "ca": str(self.apis.paths.ca_cert),
                "token": self.token, **kw}

    @property
    def token(self) -> str:
        return self.apis.viewer_token if self.user == "rbac" else self.apis.admin_token

    def bind_rbac_user(self) -> None:
        """Make the token file's `viewer` a cluster-admin through RBAC, and use it."""
        async def go(api: ApiClient) -> None:
            binding = {"apiVersion": "rbac.authorization.k8s.io/v1",
                       "kind": "ClusterRoleBinding", "metadata": {"name": "bench-viewer-admin"},
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                   "kind": "ClusterRole", "name": "cluster-admin"},
                       "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                     "name": "viewer"}]}
            try:
                await api.create(binding)
            except ApiStatusError as exc:
                if exc.code != 409:
                    raise
        asyncio.run(_api_call(self, go))
        self.user = "rbac"
        deadline = time.monotonic() + 30
        while True:  # every apiserver reloads its RBAC policy within a second
            try:
                ensure_namespace(self, "bench-ol")
                return
            except ApiStatusError as exc:
                if exc.code != 403 or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def pids(self) -> dict[str, list[int]]:
        return {"apiserver": [m.proc.pid for m in self.apis.members],
                "store": [m.proc.pid for m in self.store.members],
                "haproxy": [self.lb.member.proc.pid]}

    def close(self, keep_dir: bool = False) -> None:
        for part in (self.lb, self.apis, self.store):
            if part is not None:
                try:
                    part.close()
                except Exception as exc:  # noqa: BLE001
                    print(f"closing {part}: {exc}", file=sys.stderr)
        if keep_dir:
            print(f"logs kept in {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def cpu_seconds(pids: list[int]) -> list[float]:
    out = []
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            out.append(t.user + t.system)
        except psutil.Error:
            out.append(float("nan"))
    return out


def rss_mib(pids: list[int]) -> list[float]:
    out = []
    for pid in pids:
        try:
            out.append(round(psutil.Process(pid).memory_info().rss / 2**20, 1))
        except psutil.Error:
            out.append(float("nan"))
    return out


def haproxy_downs(stack: Stack) -> int:
    """How many times HAProxy has marked an apiserver down so far (its log)."""
    try:
        text = stack.lb.member.log_path.read_text(errors="replace")
    except OSError:
        return -1
    return len(re.findall(r"^Server \S+ is DOWN", text, re.M))


class CpuMeter:
    def __init__(self, pids: dict[str, list[int]], stack: Stack | None = None) -> None:
        self.pids = pids
        self.stack = stack
        self.downs = haproxy_downs(stack) if stack is not None else 0
        self.start = {k: cpu_seconds(v) for k, v in pids.items()}
        self.t0 = time.monotonic()

    def stop(self) -> dict:
        end = {k: cpu_seconds(v) for k, v in self.pids.items()}
        out = {"wall_s": round(time.monotonic() - self.t0, 2)}
        if self.stack is not None:
            out["haproxy_marked_down"] = haproxy_downs(self.stack) - self.downs
        for k in self.pids:
            out[f"{k}_cpu_s"] = [round(b - a, 2) for a, b in zip(self.start[k], end[k], strict=True)]
            out[f"{k}_rss_mib"] = rss_mib(self.pids[k])
        return out


def run_worker(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if p.returncode != 0:
        raise RuntimeError(f"worker {spec['mode']} failed ({p.returncode}): {p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


async def _api_call(stack: Stack, fn):
    spec = stack.spec()
    async with _client(spec, timeout=30) as api:
        return await fn(api)


def ensure_namespace(stack: Stack, ns: str) -> None:
    async def go(api: ApiClient) -> None:
        try:
            await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        except ApiStatusError as exc:
            if exc.code != 409:
                raise
    asyncio.run(_api_call(stack, go))


def list_rv(stack: Stack, ns: str) -> str:
    async def go(api: ApiClient) -> str:
        return (await api.list(api.path("v1", "configmaps", ns))).resource_version
    return asyncio.run(_api_call(stack, go))


class Profiler:
    """py-spy on every apiserver for `seconds` (raw collapsed stacks with thread names)."""

    def __init__(self, pids: list[int], seconds: float, out: Path, tag: str) -> None:
        self.files = []
        self.procs: list[subprocess.Popen] = []
        self.seconds = seconds
        for i, pid in enumerate(pids):
            f = out / f"profile-{tag}-apiserver{i}.txt"
            self.files.append(f)
            self.procs.append(subprocess.Popen(
                [PY_SPY, "record", "--pid", str(pid), "--duration", str(int(seconds)),
                 "--rate", "100", "--format", "raw", "--threads", "--nonblocking",
                 "-o", str(f)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def wait(self) -> list[Path]:
        for p in self.procs:
            try:
                p.wait(timeout=self.seconds + 60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return [f for f in self.files if f.exists()]


def maybe_profile(a, case: str, stack: Stack, seconds: float, raw_dir: Path) -> Profiler | None:
    if case not in a.profile:
        return None
    return Profiler(stack.pids()["apiserver"], seconds, raw_dir, case)


def record(raw_dir: Path, runs: list[dict], rec: dict) -> None:
    rec["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    runs.append(rec)
    fname = f"r{rec['repeat']}-{rec['case']}.json".replace(" ", "_").replace("/", "-")
    (raw_dir / fname).write_text(json.dumps(rec, indent=1))
    print(f"[{time.strftime('%H:%M:%S')}] r{rec['repeat']} {rec['case']:22s} {_brief(rec)}",
          flush=True)


def _brief(rec: dict) -> str:
    r = rec["result"]
    cpu = (f"| cpu api {sum(rec['apiserver_cpu_s']):.1f} store {sum(rec['store_cpu_s']):.1f} "
           f"haproxy {sum(rec['haproxy_cpu_s']):.1f} client {r.get('client_cpu_s')} "
           f"wall {rec['wall_s']}"
           + (f" | HAPROXY MARKED {rec['haproxy_marked_down']} SERVERS DOWN"
              if rec.get("haproxy_marked_down") else ""))
    if r["mode"] == "open":
        return (f"{r['achieved_rate']}/s of {r['target_rate']} p50 {r['latency'].get('p50_ms')} "
                f"p99 {r['latency'].get('p99_ms')} (send p99 "
                f"{r['service_latency'].get('p99_ms')}) err {r['errors']} {cpu}")
    if r["mode"] == "closed":
        return (f"{r['throughput']}/s p50 {r['latency'].get('p50_ms')} p99 "
                f"{r['latency'].get('p99_ms')} err {r['errors']} {cpu}")
    if r["mode"] == "list":
        return (f"{r['seconds']} s, {r['items']} items, {r['pages']} pages, "
                f"{r['bytes'] / 2**20:.1f} MiB {cpu}")
    if r["mode"] == "fanout":
        return (f"ack->last p50 {r['ack_to_last'].get('p50_ms')} p99 "
                f"{r['ack_to_last'].get('p99_ms')} max {r['ack_to_last'].get('max_ms')}; "
                f"all deliveries p99 {r['ack_to_each'].get('p99_ms')}; missed {r['missed']} "
                f"err {r['errors']} {cpu}")
    return json.dumps(r)[:200]


async def fanout(stack: Stack, a, rep: int, raw_dir: Path) -> tuple[dict, dict, dict]:
    """Watchers in FANOUT_PROCS children, then paced creates from here. Returns
    (result, cpu during the writes, cpu while the watches opened)."""
    ns = f"fanout-r{rep}"
    ensure_ns = asyncio.to_thread(ensure_namespace, stack, ns)
    await ensure_ns
    rv = await asyncio.to_thread(list_rv, stack, ns)
    names = [f"fan-r{rep}-{k:03d}" for k in range(a.writes)]
    per = [a.watchers // FANOUT_PROCS + (1 if k < a.watchers % FANOUT_PROCS else 0)
           for k in range(FANOUT_PROCS)]
    write_s = a.writes / a.write_rate
    max_s = write_s + WATCH_DRAIN_TIMEOUT + 30
    procs = []
    setup = CpuMeter(stack.pids(), stack)
    for _k, count in enumerate(per):
        spec = stack.spec(mode="watchers", count=count, ns=ns, rv=rv, names=names,
                          max_seconds=max_s)
        procs.append(await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=REPO, limit=64 * 2**20))
    try:
        ready = []
        for p in procs:
            line = await asyncio.wait_for(p.stdout.readline(), WATCH_READY_TIMEOUT + 30)
            if not line.startswith(b"READY "):
                err = await asyncio.wait_for(p.stderr.read(), 10)
                raise RuntimeError(f"watcher did not get ready: {line[:300]!r} {err[-2000:]!r}")
            ready.append(json.loads(line[6:]))
        setup_cpu = setup.stop()
        readers = [asyncio.ensure_future(p.stdout.read()) for p in procs]
        stderr_drains = [asyncio.ensure_future(p.stderr.read()) for p in procs]
        watch_conns = _connections_per_apiserver(stack)
        await asyncio.sleep(1.0)
        prof = maybe_profile(a, "watch", stack, write_s + 3, raw_dir)
        meter = CpuMeter(stack.pids(), stack)
        acks: dict[str, float] = {}
        sends: dict[str, float] = {}
        errors = _Errors()
        async with _client(stack.spec()) as api:
            await api.get(api.path("v1", "namespaces", None, ns))  # connection, unmeasured
            loop = asyncio.get_running_loop()
            t0 = loop.time() + 0.1
            for k, name in enumerate(names):
                delay = t0 + k / a.write_rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                sends[name] = loop.time()
                try:
                    await api.create(configmap(ns, name, f"fan-r{rep}"), timeout=REQUEST_TIMEOUT)
                    acks[name] = loop.time()
                except Exception as exc:  # noqa: BLE001
                    errors.add(exc)
        # Watchers end by themselves once every watch has every event; those still
        # waiting after the drain timeout are told to stop (a line on stdin).
        done, _ = await asyncio.wait(readers, timeout=WATCH_DRAIN_TIMEOUT)
        for p, reader in zip(procs, readers, strict=True):
            if reader not in done and p.stdin is not None:
                p.stdin.write(b"END\n")
                await p.stdin.drain()
        await asyncio.wait(readers, timeout=30)
        outs = []
        for p, reader in zip(procs, readers, strict=True):
            if not reader.done():
                p.kill()
            out = await reader
            err = await stderr_drains[procs.index(p)]
            if not out.strip():
                raise RuntimeError(f"watcher gave no result: {err[-2000:]!r}")
            outs.append(json.loads(out.decode().strip().splitlines()[-1]))
        cpu = meter.stop()
        if prof is not None:
            cpu["profiles"] = [str(f) for f in prof.wait()]
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
    opened = sum(o["opened"] for o in outs)
    last, each, send_last = [], [], []
    missed = 0
    for name in names:
        times = [t for o in outs for t in o["received"].get(name, [])]
        missed += opened - len(times)
        if name in acks and times:
            last.append(max(times) - acks[name])
            send_last.append(max(times) - sends[name])
            each.extend(t - acks[name] for t in times)
    result = {"mode": "fanout", "watchers": a.watchers, "opened": opened,
              "open_s": max(r["open_s"] for r in ready), "writes": len(names),
              "acked": len(acks), "write_rate": a.write_rate,
              "ack_to_last": _lat(last), "send_to_last": _lat(send_last),
              "ack_to_each": _lat(each), "missed": missed,
              "watch_errors": sum(o["errors"] for o in outs),
              "watch_error_kinds": [o["error_kinds"] for o in outs],
              "watch_connections_per_apiserver": watch_conns,
              "other_events": [o["other_events"] for o in outs],
              "client_cpu_s": round(sum(o["client_cpu_s"] for o in outs), 2),
              **errors.json()}
    return result, cpu, setup_cpu


def _connections_per_apiserver(stack: Stack) -> list[int]:
    """Established TCP connections each apiserver holds on its serving port."""
    out = []
    for member, url in zip(stack.apis.members, stack.apis.urls, strict=True):
        port = int(url.rsplit(":", 1)[1])
        try:
            conns = psutil.Process(member.proc.pid).net_connections(kind="tcp")
            out.append(sum(1 for c in conns if c.laddr and c.laddr.port == port
                           and c.status == psutil.CONN_ESTABLISHED))
        except psutil.Error:
            out.append(-1)
    return out


# ==== summary ==================================================================================

def med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def fmt(xs: list[float | None], digits: int = 1) -> str:
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    m = med(xs)
    return f"{m:,.{digits}f} [{min(xs):,.{digits}f}-{max(xs):,.{digits}f}]"


USERS = {"admin": "the admin (group system:masters, allowed before RBAC is consulted)",
         "rbac": "a user bound to ClusterRole cluster-admin by a ClusterRoleBinding "
                 "(every request evaluated by RBAC, as for controllers and agents)"}


def _g(r: dict, *path: str) -> Any:
    for p in path:
        if r is None:
            return None
        r = r.get(p)
    return r


SLO = {"create": ("mutating", 1000.0), "update": ("mutating", 1000.0), "get": ("get", 1000.0)}


def table(runs: list[dict], info: dict) -> str:
    lines: list[str] = []
    add = lines.append
    add("# kubelite apiserver benchmark: 3 store members + 3 apiservers + HAProxy\n")
    add(f"- Date: {info['date']}")
    add(f"- Machine: {info['nproc']} CPUs ({info['cpu']}), {info['mem_gib']} GiB, kernel "
        f"{info['kernel']}, Python {info['python']}; {info['haproxy']}; load average at "
        f"start {info['loadavg']} (the machine is shared: other jobs ran alongside)")
    add(f"- Command: `{info['command']}`")
    add(f"- Setup: 3 `kubelite store` members, 3 `kubelite apiserver`s (TLS, token auth, "
        f"RBAC), HAProxy ({info['balance']}, TCP passthrough) in front, all on 127.0.0.1. "
        f"Every request goes through HAProxy over TLS with the bearer token of "
        f"{USERS[info.get('user', 'admin')]}, on "
        "keep-alive connections of `apiserver.client.ApiClient` (aiohttp); the load runs in "
        "child processes of the benchmark (their CPU is the *client* column).")
    add(f"- Repeats: {info['repeats']}; cells are median [min-max] over them. Open loop: "
        f"{info['rate']:g} requests/s for {info['seconds']:g} s per verb, spread over "
        f"{OPEN_LOOP_CLIENTS} clients, latency counted from each request's *scheduled* "
        f"start. Closed loop: {info['closed_clients']} clients, one connection each, "
        f"{info['closed_seconds']:g} s. ConfigMaps of ~1 KiB (create: new names; get and "
        "update: the objects the open-loop create made; update = PUT of the last object "
        "read, with its resourceVersion).")
    add(f"- LIST: {info['pods']:,} pods in one namespace (two containers, probes, env, "
        f"resources, volumes, ownerReference: {info.get('pod_bytes', '?')} bytes of JSON "
        f"each as listed), created through the apiservers first ({info.get('preload')}). "
        "Time until the whole answer is read and parsed by the client.")
    add(f"- Watch fan-out: {info['watchers']:,} watches on configmaps of one namespace "
        f"(from a listed resourceVersion, in {FANOUT_PROCS} client processes, spread over "
        f"the apiservers by HAProxy), then {info['writes']} creates at {info['write_rate']:g}"
        "/s; latency from the create's answer (ack) to the last of the watches receiving "
        "its ADDED event, per write.")
    add(f"- Raw per-run JSON: `{info['raw_dir']}`; 1-minute load average after each run "
        f"(2 CPUs): median {fmt([r.get('loadavg_1m_after') for r in runs])}\n")

    add("## Results against the targets\n")
    add("| case | p50 | p99 | throughput | errors | target | result |")
    add("|---|---|---|---|---|---|---|")
    for verb in ("create", "get", "update"):
        rs = [r["result"] for r in runs if r["case"] == f"{verb} open"]
        if not rs:
            continue
        p99 = [_g(r, "latency", "p99_ms") for r in rs]
        ok_aim = med([x for x in p99 if x is not None] or [math.inf]) < 50
        ok_slo = med([x for x in p99 if x is not None] or [math.inf]) < SLO[verb][1]
        achieved = med([r["achieved_rate"] for r in rs]) or 0
        rate_ok = achieved >= 0.95 * info["rate"]
        add(f"| {verb} ConfigMap, open loop {info['rate']:g}/s | "
            f"{fmt([_g(r, 'latency', 'p50_ms') for r in rs])} ms | {fmt(p99)} ms | "
            f"{fmt([r['achieved_rate'] for r in rs])} /s | {sum(r['errors'] for r in rs)} | "
            f"p99 < 50 ms at {info['rate']:g}/s (aim); < 1 s (SLO) | "
            f"{'aim met' if ok_aim and rate_ok else 'SLO met, aim missed' if ok_slo else 'SLO missed'} |")
    for verb in ("create", "get", "update"):
        rs = [r["result"] for r in runs if r["case"] == f"{verb} closed"]
        if not rs:
            continue
        add(f"| {verb} ConfigMap, closed loop {info['closed_clients']} clients | "
            f"{fmt([_g(r, 'latency', 'p50_ms') for r in rs])} ms | "
            f"{fmt([_g(r, 'latency', 'p99_ms') for r in rs])} ms | "
            f"{fmt([r['throughput'] for r in rs], 0)} /s | {sum(r['errors'] for r in rs)} | "
            f"max throughput (no target) | - |")
    for form, label in (("json", "full JSON"), ("json-paged", "JSON, limit=500 pages"),
                        ("table", "full Table"), ("table-paged", "Table, limit=500 pages")):
        rs = [r["result"] for r in runs if r["case"] == f"list {form}"]
        if not rs:
            continue
        secs = [r["seconds"] for r in rs]
        add(f"| LIST {info['pods']:,} pods, {label} | - | {fmt(secs, 2)} s (each run) | "
            f"{fmt([r['items'] / r['seconds'] for r in rs], 0)} items/s, "
            f"{fmt([r['bytes'] / 2**20 for r in rs], 1)} MiB, {rs[0]['pages']} page(s) | "
            f"{sum(1 for r in rs if r['items'] < info['pods'])} short | < 30 s (SLO floor); "
            f"5 s is Kubernetes' namespace-scope SLO | "
            f"{'met' if (med(secs) or 99) < 30 else 'missed'}"
            f"{' (5 s too)' if (med(secs) or 99) < 5 else ''} |")
    rs = [r["result"] for r in runs if r["case"] == "watch fanout"]
    if rs:
        add(f"| watch fan-out {info['watchers']:,} watchers: ack -> last watcher, per write | "
            f"{fmt([_g(r, 'ack_to_last', 'p50_ms') for r in rs])} ms | "
            f"{fmt([_g(r, 'ack_to_last', 'p99_ms') for r in rs])} ms (max "
            f"{fmt([_g(r, 'ack_to_last', 'max_ms') for r in rs])}) | "
            f"{info['write_rate']:g} writes/s x {info['watchers']:,} = "
            f"{info['write_rate'] * info['watchers']:,.0f} events/s | "
            f"missed {sum(r['missed'] for r in rs)}, errors "
            f"{sum(r['errors'] + r['watch_errors'] for r in rs)} | none missed; "
            "(no SLO: watch latency is a WIP SLI) | "
            f"{'none missed' if sum(r['missed'] for r in rs) == 0 else 'events missed'} |")
        add(f"| watch fan-out: ack -> each delivery (all {info['watchers']:,} x "
            f"{info['writes']}) | {fmt([_g(r, 'ack_to_each', 'p50_ms') for r in rs])} ms | "
            f"{fmt([_g(r, 'ack_to_each', 'p99_ms') for r in rs])} ms | - | - | - | - |")
    add("")
    add("## Resources per case (medians over repeats)\n")
    add("CPU seconds (user+system, psutil) used during the case; per-process lists are in "
        "member order. RSS after the case. The client column is the load generator's own "
        "processes.\n")
    add("| case | wall s | apiservers CPU s (sum of 3) | per apiserver | store CPU s (sum of 3) "
        "| per member | HAProxy CPU s | client CPU s | apiserver RSS MiB | store RSS MiB |")
    add("|---|---|---|---|---|---|---|---|---|---|")
    for case in info["case_order"]:
        rs = [r for r in runs if r["case"] == case]
        if not rs:
            continue
        per_api = [round(med([r["apiserver_cpu_s"][i] for r in rs]), 1) for i in range(3)]
        per_store = [round(med([r["store_cpu_s"][i] for r in rs]), 1) for i in range(3)]
        add(f"| {case} | {fmt([r['wall_s'] for r in rs])} | "
            f"{fmt([sum(r['apiserver_cpu_s']) for r in rs])} | {per_api} | "
            f"{fmt([sum(r['store_cpu_s']) for r in rs])} | {per_store} | "
            f"{fmt([sum(r['haproxy_cpu_s']) for r in rs], 2)} | "
            f"{fmt([r['result'].get('client_cpu_s') for r in rs])} | "
            f"{rs[-1]['apiserver_rss_mib']} | {rs[-1]['store_rss_mib']} |")
    setups = [r for r in runs if r["case"] == "watch fanout" and r.get("setup")]
    if setups:
        s = [r["setup"] for r in setups]
        add(f"| (opening the {info['watchers']:,} watches) | {fmt([x['wall_s'] for x in s])} | "
            f"{fmt([sum(x['apiserver_cpu_s']) for x in s])} | - | "
            f"{fmt([sum(x['store_cpu_s']) for x in s])} | - | "
            f"{fmt([sum(x['haproxy_cpu_s']) for x in s], 2)} | - | "
            f"{s[-1]['apiserver_rss_mib']} | {s[-1]['store_rss_mib']} |")
    add("")
    add("## Details\n")
    for verb in ("create", "get", "update"):
        rs = [r["result"] for r in runs if r["case"] == f"{verb} open"]
        if rs:
            add(f"- {verb} open loop: latency from the actual send p50 "
                f"{fmt([_g(r, 'service_latency', 'p50_ms') for r in rs])} ms, p99 "
                f"{fmt([_g(r, 'service_latency', 'p99_ms') for r in rs])} ms; max "
                f"{fmt([_g(r, 'latency', 'max_ms') for r in rs])} ms; most requests in "
                f"flight {fmt([r['max_in_flight'] for r in rs], 0)}; error kinds "
                f"{[r['error_kinds'] for r in rs if r['errors']] or 'none'}")
    for form in ("json", "json-paged", "table", "table-paged"):
        rs = [r["result"] for r in runs if r["case"] == f"list {form}"]
        if rs:
            add(f"- LIST {form}: first page after {fmt([r['first_page_s'] for r in rs], 3)} s")
    downs = {case: sum(r.get("haproxy_marked_down", 0) + (r.get("setup") or {}).get(
        "haproxy_marked_down", 0) for r in runs if r["case"] == case) for case in
        info["case_order"]}
    add("- HAProxy marked an apiserver down (health check on /readyz failed 3 times): "
        + (", ".join(f"{n} times during {c}" for c, n in downs.items() if n) or "never"))
    rs = [r["result"] for r in runs if r["case"] == "watch fanout"]
    if rs:
        add(f"- watch fan-out: watches open after {fmt([r['open_s'] for r in rs])} s; "
            f"connections per apiserver {[r['watch_connections_per_apiserver'] for r in rs]}; "
            f"send -> last watcher p99 {fmt([_g(r, 'send_to_last', 'p99_ms') for r in rs])} ms;"
            f" the writes' own latency is inside that.")
    add("")
    return "\n".join(lines)


# ==== main =====================================================================================

def summarize_sessions(dirs: list[str], results: str) -> int:
    """The table over several sessions' raw runs (e.g. sessions run in turn with another
    build), their repeats numbered in order; the first session's settings head it."""
    runs: list[dict] = []
    infos = []
    for d in dirs:
        info = json.loads((Path(d) / "session.json").read_text())
        infos.append(info)
        offset = 1 + max((r["repeat"] for r in runs), default=-1)
        for f in sorted(Path(d).glob("r*-*.json")):
            rec = json.loads(f.read_text())
            rec["repeat"] += offset
            runs.append(rec)
    info = dict(infos[0])
    info["repeats"] = 1 + max((r["repeat"] for r in runs), default=-1)
    info["command"] = "; ".join(i["command"] for i in infos)
    info["raw_dir"] = ", ".join(i["raw_dir"] for i in infos)
    text = table(runs, info)
    print(text)
    if results:
        Path(results).write_text(text)
    return 0


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        return worker_main(sys.argv[2])
    if len(sys.argv) >= 3 and sys.argv[1] == "--summarize":
        return summarize_sessions(sys.argv[3:], sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rate", type=float, default=200.0, help="open-loop requests/s")
    ap.add_argument("--seconds", type=float, default=10.0, help="open-loop seconds per verb")
    ap.add_argument("--closed-clients", type=int, default=16)
    ap.add_argument("--closed-seconds", type=float, default=5.0)
    ap.add_argument("--pods", type=int, default=10_000, help="pods to LIST")
    ap.add_argument("--watchers", type=int, default=1000)
    ap.add_argument("--writes", type=int, default=50, help="fan-out: creates to watch")
    ap.add_argument("--write-rate", type=float, default=10.0, help="fan-out: creates/s")
    ap.add_argument("--user", choices=sorted(USERS), default="admin",
                    help="whose token the load uses: " + "; ".join(
                        f"{k}: {v}" for k, v in USERS.items()))
    ap.add_argument("--only", default="", help="comma list of case-name prefixes "
                    "(create, get, update, list, watch)")
    ap.add_argument("--profile", default="", help="comma list of cases to sample the "
                    "apiservers with py-spy during (e.g. 'watch', 'create open', 'list json')")
    ap.add_argument("--raw-dir", default=str(HERE / "raw"))
    ap.add_argument("--results", default=str(HERE / "RESULTS-apiserver.md"),
                    help="Markdown output ('' to skip)")
    ap.add_argument("--tmp-dir", default=None, help="where the clusters keep their data")
    ap.add_argument("--keep-dir", action="store_true",
                    help="keep the apiserver and HAProxy logs and PKI after the run")
    a = ap.parse_args()
    a.profile = {p.strip() for p in a.profile.split(",") if p.strip()}

    session = time.strftime("%Y%m%d-%H%M%S")
    raw_dir = Path(a.raw_dir) / f"apiserver-{session}"
    raw_dir.mkdir(parents=True, exist_ok=True)
    wanted = [p.strip() for p in a.only.split(",") if p.strip()]

    def on(case: str) -> bool:
        return not wanted or any(case.startswith(p) for p in wanted)

    case_order = ["create open", "get open", "update open", "create closed", "get closed",
                  "update closed", "list json", "list json-paged", "list table",
                  "list table-paged", "watch fanout"]
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "nproc": os.cpu_count(),
        "cpu": _cpu_model(), "kernel": platform.release(),
        "python": platform.python_version(), "haproxy": _haproxy_version(),
        "mem_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "command": " ".join(shlex.quote(x) for x in [
            os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO))
            else sys.executable, os.path.relpath(__file__, REPO), *sys.argv[1:]]),
        "repeats": a.repeats, "rate": a.rate, "seconds": a.seconds,
        "closed_clients": a.closed_clients, "closed_seconds": a.closed_seconds,
        "pods": a.pods, "watchers": a.watchers, "writes": a.writes,
        "write_rate": a.write_rate, "balance": "leastconn", "user": a.user,
        "raw_dir": os.path.relpath(raw_dir, REPO), "case_order": case_order,
    }
    runs: list[dict] = []
    started = time.monotonic()
    stack = Stack(a.tmp_dir)
    try:
        print(f"stack up: HAProxy {stack.lb.url}, apiservers {stack.apis.urls}, "
              f"pids {stack.pids()}", flush=True)
        for ns in ("bench-ol", "bench-cl", "bench-list"):
            ensure_namespace(stack, ns)
        if a.user == "rbac":
            stack.bind_rbac_user()
        if any(on(c) for c in case_order if c.startswith("list")):
            meter = CpuMeter(stack.pids(), stack)
            res = run_worker(stack.spec(mode="preload", ns="bench-list", count=a.pods,
                                        concurrency=32, max_seconds=600), 660)
            cpu = meter.stop()
            info["preload"] = (f"{res['created']:,} pods in {res['elapsed_s']} s, "
                               f"{res['rate']} creates/s with 32 in flight")
            (raw_dir / "preload.json").write_text(json.dumps({"result": res, **cpu}, indent=1))
            print(f"preload: {info['preload']}, errors {res['errors']} "
                  f"{res['error_samples'][:2]} | cpu api {sum(cpu['apiserver_cpu_s']):.1f} "
                  f"store {sum(cpu['store_cpu_s']):.1f}", flush=True)
            if res["created"] < a.pods:
                raise RuntimeError(f"preload created only {res['created']} pods")
            info["pod_bytes"] = len(orjson.dumps(pod("bench-list", 0)))
        for rep in range(a.repeats):
            names_file = raw_dir / f"names-r{rep}.json"
            names: list[str] = []
            for verb in ("create", "get", "update"):
                case = f"{verb} open"
                if not on(case) or (verb != "create" and not names):
                    continue
                spec = stack.spec(mode="open", verb=verb, rate=a.rate, seconds=a.seconds,
                                  ns="bench-ol", prefix=f"ol-r{rep}", run=f"ol-r{rep}",
                                  names_run=f"ol-r{rep}",
                                  names_file=str(names_file) if verb != "create" else "")
                prof = maybe_profile(a, case, stack, a.seconds, raw_dir)
                meter = CpuMeter(stack.pids(), stack)
                res = run_worker(spec, a.seconds + 120)
                cpu = meter.stop()
                if prof is not None:
                    cpu["profiles"] = [str(f) for f in prof.wait()]
                record(raw_dir, runs, {"case": case, "repeat": rep, "result": res, **cpu})
                if verb == "create":
                    names = [f"ol-r{rep}-w0-{i}" for i in range(int(a.rate * a.seconds))]
                    names_file.write_text(json.dumps(names))
            for verb in ("create", "get", "update"):
                case = f"{verb} closed"
                if not on(case) or (verb != "create" and not names):
                    continue
                spec = stack.spec(mode="closed", verb=verb, clients=a.closed_clients,
                                  seconds=a.closed_seconds, ns="bench-ol" if verb != "create"
                                  else "bench-cl", prefix=f"cl-r{rep}", run=f"cl-r{rep}",
                                  names_run=f"ol-r{rep}",
                                  names_file=str(names_file) if verb != "create" else "")
                prof = maybe_profile(a, case, stack, a.closed_seconds, raw_dir)
                meter = CpuMeter(stack.pids(), stack)
                res = run_worker(spec, a.closed_seconds + 120)
                cpu = meter.stop()
                if prof is not None:
                    cpu["profiles"] = [str(f) for f in prof.wait()]
                record(raw_dir, runs, {"case": case, "repeat": rep, "result": res, **cpu})
            forms = ["json", "json-paged", "table", "table-paged"]
            forms = forms[rep % len(forms):] + forms[:rep % len(forms)]  # vary the order
            for form in forms:
                case = f"list {form}"
                if not on(case):
                    continue
                prof = maybe_profile(a, case, stack, 8, raw_dir)
                meter = CpuMeter(stack.pids(), stack)
                res = run_worker(stack.spec(mode="list", form=form, ns="bench-list"),
                                 LIST_TIMEOUT + 60)
                cpu = meter.stop()
                if prof is not None:
                    cpu["profiles"] = [str(f) for f in prof.wait()]
                record(raw_dir, runs, {"case": case, "repeat": rep, "result": res, **cpu})
            if on("watch fanout"):
                res, cpu, setup = asyncio.run(fanout(stack, a, rep, raw_dir))
                record(raw_dir, runs, {"case": "watch fanout", "repeat": rep, "result": res,
                                       **cpu, "setup": setup})
            print(f"repeat {rep} done after {time.monotonic() - started:.0f} s", flush=True)
    finally:
        stack.close(a.keep_dir)
    info["total_s"] = round(time.monotonic() - started)
    (raw_dir / "session.json").write_text(json.dumps(info, indent=1))
    for prof_files in [r.get("profiles") for r in runs if r.get("profiles")]:
        summary = "\n\n".join(summarize_profile(Path(f)) for f in prof_files)
        out = Path(prof_files[0]).with_suffix(".summary.md")
        out.write_text(summary)
        print(f"profile summary: {out}")
    text = table(runs, info)
    print()
    print(text)
    if a.results:
        Path(a.results).write_text(text)
    return 0


# ==== profile summary ==========================================================================

BUCKETS = [  # inclusive: a sample counts in every bucket one of its frames matches
    ("TLS (ssl read/write/handshake)", r"\bssl\.py|sslproto\.py|_ssl|do_handshake"),
    ("JSON (orjson dumps/loads)", r"orjson|\bdumps\b|\bloads\b|storage\.py.*decode|encode \("),
    ("store round trips (store.client*)", r"store/client"),
    ("aiohttp server (parse, dispatch, write)", r"aiohttp/web_|aiohttp/http_|aiohttp/_http"),
    ("aiohttp client (to the store)", r"aiohttp/client"),
    ("auth: authenticate + RBAC", r"apiserver/security\.py|apiserver/auth/"),
    ("validation + defaults + typecheck", r"apiserver/validation|apiserver/defaults|"
                                          r"apiserver/typecheck"),
    ("tables", r"apiserver/table"),
    ("watch cache + fan-out", r"apiserver/watch_cache|_EventWriter|resources\.py.*watch"),
    ("asyncio event loop machinery", r"asyncio/"),
    ("idle (selector poll)", r"\bselect \(|\bpoll \("),
]


def summarize_profile(path: Path, top: int = 20) -> str:
    from bench.profile_store import parse_collapsed, short

    rows = parse_collapsed(path)
    total = sum(n for _, n in rows)
    lines = [f"### {path.name}: {total} samples (100 Hz)\n"]
    leaf: collections.Counter[str] = collections.Counter()
    for stack, n in rows:
        frames = [short(f) for f in stack[1:]] or ["?"]
        leaf[frames[-1]] += n
    lines.append("| top self (leaf) frames | % of samples |\n|---|---|")
    for f, n in leaf.most_common(top):
        lines.append(f"| `{f}` | {100 * n / max(total, 1):.1f} |")
    lines.append("\n| bucket (inclusive) | % of samples |\n|---|---|")
    for name, pat in BUCKETS:
        rx = re.compile(pat)
        n = sum(c for stack, c in rows if any(rx.search(fr) for fr in stack[1:]))
        if n:
            lines.append(f"| {name} | {100 * n / max(total, 1):.1f} |")
    return "\n".join(lines)


def _haproxy_version() -> str:
    try:
        out = subprocess.run(["/usr/sbin/haproxy", "-v"], capture_output=True, text=True,
                             timeout=10).stdout
        return out.splitlines()[0].split(" - ")[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "haproxy ?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
