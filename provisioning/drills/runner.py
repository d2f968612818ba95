"""One drill on a running fleet: workload, faults on schedule, healing, checks, report.

    view = fleet_view(inventory, cluster_dir)         # who is who, endpoints, credentials
    with open_fleet(...) as fleet:
        summary = asyncio.run(Runner(view, fleet.connections, options).run())

The order of a run, and why:

1. every leftover of an earlier drill is healed (`Faults.cleanup` on each machine), so
   a run starts from a whole fleet;
2. the workload (provisioning/drills/workload.py) creates its objects and starts; the
   schedule (provisioning/drills/scenarios.py) is played against the clock, each
   injection and heal run in a thread (SSH is blocking) while the clients keep going;
   each is logged with its time, resolved targets and what the runner observed (when a
   killed member answered again);
3. whatever is still injected is healed in `finally`, also on an error or a signal (the
   caller turns SIGINT/SIGTERM into cancellation);
4. the fleet settles (every store member answers and knows a leader), the clients stop
   between two requests, final linearizable reads of every key are recorded, the
   watchers drain up to the last revision, and every member's keyspace is read at one
   common revision;
5. the checks: linearizability per key, lost acknowledged writes, duplicate appends,
   gaps in each watch stream, members' agreement (and, for worker-loss, that the lost
   worker's pods were replaced elsewhere). Any failure makes the run fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl as ssl_module
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from apiserver.auth import kubeconfig
from provisioning import machine_config, ssh
from provisioning.cluster_dir import ClusterDir
from provisioning.drills import faults as faults_mod
from provisioning.drills import invariants, linearizability, report, scenarios, workload
from provisioning.drills.faults import Faults, MachineRef
from provisioning.drills.history import History
from provisioning.drills.scenarios import Injection
from provisioning.inventory import Inventory
from provisioning.up import store_order
from store.client import Status, StoreClient, StoreUnavailable

log = logging.getLogger("kubelite.drill")
SETTLE_TIMEOUT = 90.0
RECOVERY_TIMEOUT = 60.0
CHECK_DEADLINE = 20.0
DRILL_LABEL = "kubelite-drill"


class DrillError(RuntimeError):
    """The drill could not run as asked (not: a check failed)."""


@dataclass(frozen=True)
class FleetView:
    control_planes: tuple[MachineRef, ...]
    workers: tuple[MachineRef, ...]
    store_endpoints: dict[str, str]          # control plane -> http://addr:port
    balancers: tuple[str, ...]
    apiserver_port: int
    peer_port: int
    ssl: ssl_module.SSLContext

    @property
    def machines(self) -> dict[str, MachineRef]:
        return {m.name: m for m in (*self.control_planes, *self.workers)}

    def by_endpoint(self, endpoint: str) -> str | None:
        return next((n for n, e in self.store_endpoints.items()
                     if e.rstrip("/") == endpoint.rstrip("/")), None)


def fleet_view(inv: Inventory, cdir: ClusterDir) -> FleetView:
    """The fleet as `kubelite up` left it: its cluster directory must exist."""
    state = cdir.load()
    if not state.get("store_order") or not cdir.kubeconfig.exists():
        raise DrillError(f"no cluster in {cdir.path} (run `kubelite up` first, or give --dir)")
    order, _ = store_order(state, inv)
    layout = machine_config.Layout(inv.cluster.data_dir, inv.cluster.install_dir)
    machines = state.get("machines", {})

    def ref(m: Any) -> MachineRef:
        return MachineRef(m.name, m.address, m.role, layout,
                          bool(machines.get(m.name, {}).get("systemd")), m.python)

    cps = tuple(ref(m) for m in inv.control_planes if m.name in order)
    ports = inv.cluster.ports
    config = kubeconfig.load_kubeconfig(cdir.kubeconfig)
    return FleetView(
        control_planes=cps, workers=tuple(ref(m) for m in inv.workers),
        store_endpoints={m.name: f"http://{m.address}:{ports.store_client}" for m in cps},
        balancers=tuple(machine_config.balancer_urls(inv)), apiserver_port=ports.apiserver,
        peer_port=ports.store_peer, ssl=kubeconfig.ssl_context(config))


@dataclass
class DrillOptions:
    scenario: str
    duration: float = 60.0
    seed: int = 0
    report_dir: Path = Path("drill-report")
    op_timeout: float = 5.0
    api_clients: int = 3
    store_clients: int = 3
    list_clients: int = 2
    unsafe_stale_reads: bool = False        # self-test of the checker only


@dataclass
class Record:
    """One injection as it happened (times in seconds after the workload started)."""

    id: int
    kind: str
    planned: dict[str, Any]
    at: float | None = None
    started_at: float | None = None
    resolved: list[str] = field(default_factory=list)
    healed_at: float | None = None
    recovered_at: float | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "planned": self.planned, "at": self.at,
                "started_at": self.started_at,
                "resolved": self.resolved, "healed_at": self.healed_at,
                "recovered_at": self.recovered_at, "notes": self.notes, "error": self.error,
                "targets": self.planned.get("targets")}


class Runner:
    def __init__(self, view: FleetView, conns: Mapping[str, ssh.Connection],
                 options: DrillOptions, out: Callable[[str], None] = print) -> None:
        self.view, self.options, self.say = view, options, out
        self.faults = Faults(conns, view.machines, view.peer_port)
        self.records: list[Record] = []
        self.heals: dict[int, Callable[[], None]] = {}
        self.t0 = 0.0
        self.run_id = f"drill-{secrets.token_hex(3)}"
        self.background: list[asyncio.Task[None]] = []
        self.pod_samples: list[tuple[float, dict[str, int]]] = []

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    # --- resolving targets --------------------------------------------------------------

    async def statuses(self) -> list[Status | StoreUnavailable]:
        async with StoreClient(list(self.view.store_endpoints.values()), timeout=2) as c:
            return await c.statuses()

    async def leader(self) -> str | None:
        for s in await self.statuses():
            if isinstance(s, Status) and s.is_leader:
                return self.view.by_endpoint(s.endpoint)
        return None

    async def resolve(self, targets: Sequence[str]) -> list[str]:
        out = []
        for t in targets:
            if t == scenarios.LEADER:
                name = None
                for _ in range(50):
                    name = await self.leader()
                    if name:
                        break
                    await asyncio.sleep(0.2)
                if name is None:
                    raise faults_mod.FaultError("the store has no leader to target")
                out.append(name)
            else:
                out.append(t)
        return out

    def cps_except(self, names: Sequence[str]) -> list[str]:
        return [m.address for m in self.view.control_planes if m.name not in names]

    def addr(self, name: str) -> str:
        return self.view.machines[name].address

    # --- injecting ----------------------------------------------------------------------

    async def inject(self, inj: Injection, rec: Record) -> None:
        names = await self.resolve(inj.targets)
        rec.resolved = names
        rec.started_at = self.now()
        try:
            await self._inject(inj, rec, names)
        finally:
            # The fault is surely in effect once its command returned: unavailability is
            # measured from here (rolling restarts: from their start).
            rec.at = rec.started_at if inj.kind == "rolling-restart" else self.now()

    async def _inject(self, inj: Injection, rec: Record, names: list[str]) -> None:
        hold = inj.hold or 0.0
        f = self.faults
        kind = inj.kind
        if kind in ("kill-store", "kill-all-stores"):
            await asyncio.gather(*(asyncio.to_thread(f.signal, n, "store", "KILL")
                                   for n in names))
            self.watch_recovery(rec, names)
        elif kind == "pause-store":
            pid = await asyncio.to_thread(f.pause, names[0], "store", hold)
            self.heals[rec.id] = lambda: f.resume(names[0], pid)
        elif kind in ("isolate", "split"):
            side = set(names)
            rules: list[tuple[str, str]] = []
            for m in self.view.control_planes:
                peers = ([self.addr(n) for n in side] if m.name not in side
                         else self.cps_except(list(side)))
                fid = await asyncio.to_thread(f.drop, m.name, peers, hold)
                rules.append((m.name, fid))
            self.heals[rec.id] = lambda: [f.heal(n, fid, "drop") for n, fid in rules]
        elif kind in ("loss", "delay"):
            rules = []
            if kind == "delay" and await asyncio.to_thread(f.netem_available, names[0]):
                rec.notes.append("netem is available; the proxy is used anyway (peer traffic only)")
            for n in names:
                peers = self.cps_except([n])
                if kind == "loss":
                    fid = await asyncio.to_thread(f.loss, n, peers, int(inj.param("percent", 20)),
                                                  hold)
                else:
                    fid = await asyncio.to_thread(f.delay, n, peers,
                                                  float(inj.param("seconds", 0.1)), hold)
                rules.append((n, fid))
            self.heals[rec.id] = lambda: [f.heal(n, fid, kind) for n, fid in rules]
        elif kind == "machine-loss":
            target = names[0]
            others = [m.address for m in self.view.machines.values() if m.name != target]
            fid = await asyncio.to_thread(f.kill_machine, target, others, hold)
            self.heals[rec.id] = lambda: f.start_machine(target, fid)
        elif kind == "apiserver-loss":
            await asyncio.to_thread(f.hold_down, names[0], "apiserver", hold)
            self.heals[rec.id] = lambda: f.release(names[0], "apiserver")
        elif kind == "worker-loss":
            cps = [m.address for m in self.view.control_planes]
            fid = await asyncio.to_thread(f.drop, names[0], cps, hold)
            self.heals[rec.id] = lambda: f.heal(names[0], fid, "drop")
        elif kind == "rolling-restart":
            for n in names:
                started = self.now()
                await asyncio.to_thread(f.restart_machine, n)
                await self.wait_ready(n)
                rec.notes.append(f"{n}: restarted at {started}, ready at {self.now()}")
            rec.recovered_at = self.now()
        else:
            raise DrillError(f"unknown fault kind {kind}")

    async def heal(self, rec: Record) -> None:
        fn = self.heals.pop(rec.id, None)
        if fn is None:
            return
        try:
            await asyncio.to_thread(fn)
        finally:
            rec.healed_at = self.now()
        self.watch_recovery(rec, rec.resolved if rec.kind in ("machine-loss",) else [])

    def heal_all_now(self) -> None:
        """Synchronous: for `finally`, when the loop may be going away."""
        for rid, fn in list(self.heals.items()):
            self.heals.pop(rid, None)
            rec = next(r for r in self.records if r.id == rid)
            try:
                fn()
                rec.healed_at = self.now()
            except Exception as exc:  # keep healing the others; reported
                rec.notes.append(f"heal failed: {exc}")
                log.exception("healing %s failed", rec.kind)

    def watch_recovery(self, rec: Record, names: Sequence[str]) -> None:
        """Note when the store members `names` answer again (in the background)."""
        if not names:
            return

        async def wait() -> None:
            deadline = time.monotonic() + RECOVERY_TIMEOUT
            endpoints = [self.view.store_endpoints[n] for n in names
                         if n in self.view.store_endpoints]
            async with StoreClient(endpoints or ["http://127.0.0.1:1"], timeout=1) as c:
                await asyncio.sleep(0.3)
                while time.monotonic() < deadline:
                    got = await c.statuses()
                    if all(isinstance(s, Status) and s.leader for s in got):
                        rec.recovered_at = self.now()
                        return
                    await asyncio.sleep(0.2)
            rec.notes.append(f"not recovered within {RECOVERY_TIMEOUT:g} s")

        self.background.append(asyncio.get_running_loop().create_task(wait()))

    async def wait_ready(self, name: str, timeout: float = 90.0) -> None:
        """The machine's store member knows a leader and its apiserver is ready."""
        endpoint = self.view.store_endpoints[name]
        url = f"https://{self.addr(name)}:{self.view.apiserver_port}/readyz"
        deadline = time.monotonic() + timeout
        connector = aiohttp.TCPConnector(ssl=self.view.ssl)
        async with StoreClient([endpoint], timeout=2) as c, \
                aiohttp.ClientSession(connector=connector) as http:
            while time.monotonic() < deadline:
                try:
                    s = await c.status(endpoint)
                    async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if s.leader and r.status == 200:
                            return
                except (StoreUnavailable, aiohttp.ClientError, TimeoutError, OSError):
                    pass
                await asyncio.sleep(0.3)
        raise DrillError(f"{name} did not come back within {timeout:g} s")

    # --- the run ------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        o = self.options
        view = self.view
        plan = scenarios.plan(o.scenario, o.duration, [m.name for m in view.control_planes],
                              [m.name for m in view.workers], o.seed)
        self.say(f"kubelite drill {o.scenario} (seed {o.seed}, {o.duration:g} s), run "
                 f"{self.run_id}:\n{scenarios.describe(plan)}")
        await asyncio.gather(*(asyncio.to_thread(self.faults.cleanup, n)
                               for n in view.machines))
        cfg = workload.WorkloadConfig(
            run=self.run_id, balancers=view.balancers,
            store_endpoints=tuple(view.store_endpoints.values()), ssl=view.ssl,
            api_clients=o.api_clients, store_clients=o.store_clients,
            list_clients=o.list_clients, op_timeout=o.op_timeout, seed=o.seed,
            unsafe_stale_reads=o.unsafe_stale_reads)
        load = workload.Workload(cfg)
        await load.prepare()
        pods = None
        if any(i.kind == "worker-loss" for i in plan):
            pods = await self.start_pods()
        self.t0 = time.monotonic()
        load.start()
        self.records = [Record(i + 1, inj.kind, inj.to_json()) for i, inj in enumerate(plan)]
        actions = sorted([(inj.at, 0, inj, rec) for inj, rec in zip(plan, self.records,
                                                                   strict=True)]
                         + [(inj.heal_at, 1, inj, rec) for inj, rec in
                            zip(plan, self.records, strict=True) if inj.heal_at is not None],
                         key=lambda a: (a[0], a[1]))
        error: BaseException | None = None
        try:
            for at, phase, inj, rec in actions:
                await asyncio.sleep(max(0.0, self.t0 + at - time.monotonic()))
                if phase == 0:
                    self.say(f"{self.now():7.2f}s  inject #{rec.id} {inj.kind} "
                             f"{','.join(inj.targets)}")
                    try:
                        await self.inject(inj, rec)
                    except faults_mod.FaultError as exc:
                        rec.error = str(exc)
                        self.say(f"           failed: {exc}")
                    if rec.resolved != list(inj.targets):
                        self.say(f"           -> {','.join(rec.resolved)}")
                else:
                    self.say(f"{self.now():7.2f}s  heal   #{rec.id} {inj.kind}")
                    await self.heal(rec)
                if pods is not None:
                    await self.sample_pods()
            end = self.t0 + o.duration
            while time.monotonic() < end:
                await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
                if pods is not None:
                    await self.sample_pods()
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.heal_all_now()
            if error is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(load.stop())
        return await self.finish(load, cfg, plan)

    async def settle(self) -> None:
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            got = await self.statuses()
            if all(isinstance(s, Status) and s.leader for s in got):
                return
            await asyncio.sleep(0.5)
        raise DrillError(f"the store did not settle within {SETTLE_TIMEOUT:g} s of healing")

    async def finish(self, load: workload.Workload, cfg: workload.WorkloadConfig,
                     plan: Sequence[Injection]) -> dict[str, Any]:
        self.say(f"{self.now():7.2f}s  settling")
        await self.settle()
        await asyncio.gather(*self.background, return_exceptions=True)
        end = time.monotonic()
        await load.stop_clients()
        history = load.out.history
        state, last_rev = await workload.final_reads(cfg, history, self.view.ssl)
        recorded = await load.stop(drain_until=last_rev)
        revision = min(s.revision for s in await self.statuses() if isinstance(s, Status))
        snapshots, _ = await workload.member_snapshots(
            list(self.view.store_endpoints.values()), revision)
        return self.judge(history, state, recorded, snapshots, revision, end, last_rev)

    def judge(self, history: History, state: dict[str, Any], recorded: workload.Recorded,
              snapshots: dict[str, Any], revision: int, end: float,
              last_rev: int) -> dict[str, Any]:
        o = self.options
        ops = history.ops
        # Written first: a history can be checked again later, away from the fleet.
        o.report_dir.mkdir(parents=True, exist_ok=True)
        history.to_jsonl(o.report_dir / "history.jsonl")
        verdict = linearizability.check(history, None, deadline=CHECK_DEADLINE)
        counter_text = None
        if verdict.counterexample:
            counter_text = linearizability.render(verdict.counterexample,
                                                  context=verdict.context)
        lost = invariants.lost_writes(history, state)
        dups = invariants.duplicate_appends(state.get(workload.LIST_KEY))
        gaps = [[str(p) for p in invariants.watch_gaps(ev, recorded.start_revision, last_rev,
                                                       recorded.acked_revisions)]
                for ev in recorded.watch_events]
        agree = [str(p) for p in invariants.members_agree(
            snapshots, {m: revision for m in snapshots})]
        checks: dict[str, dict[str, Any]] = {
            "linearizable": {"ok": verdict.ok, "detail": verdict.reason,
                             "key": verdict.key, "timed_out": verdict.timed_out},
            "no_lost_writes": {"ok": not lost, "detail": "; ".join(op.describe()
                                                                  for op in lost[:10])},
            "no_duplicate_appends": {"ok": not dups, "detail": str(dups[:10])},
            "watch_complete": {"ok": not any(gaps), "detail": "; ".join(
                f"watch {i}: {g[:3]}" for i, g in enumerate(gaps) if g),
                "events": [len(ev) for ev in recorded.watch_events]},
            "members_agree": {"ok": not agree, "detail": "; ".join(agree[:5]) or
                              f"{len(snapshots)} members hold the same "
                              f"{len(next(iter(snapshots.values()), {}))} keys at revision "
                              f"{revision}"},
        }
        worker = [r for r in self.records if r.kind == "worker-loss"]
        if worker:
            checks["pods_rescheduled"] = self.rescheduled(worker[0])
        unav = report.unavailability(ops, [r.to_json() for r in self.records], self.t0)
        summary = {
            "scenario": o.scenario, "seed": o.seed, "duration": o.duration, "run": self.run_id,
            "ok": all(c["ok"] for c in checks.values()),
            "ops": len(ops), "ops_checked": verdict.ops_checked, "counts": report.counts(ops),
            "checks": checks, "injections": [r.to_json() for r in self.records],
            "unavailability": unav,
            "unavailable": {p: report.spread(u[f"{p}_write_s"] for u in unav)
                            for p in report.PATHS},
            "acked_store_writes": len(recorded.acked_revisions),
            "watch_endpoints": recorded.watch_endpoints,
        }
        rows = report.buckets(ops, self.t0, end)
        windows = [(r.at, r.healed_at if r.healed_at is not None else
                    (r.recovered_at if r.recovered_at is not None else r.at + 1.0),
                    f"#{r.id} {r.kind}") for r in self.records if r.at is not None]
        return report.write(self.options.report_dir, summary, rows=rows, windows=windows,
                            watch_events=recorded.watch_events,
                            counterexample_text=counter_text)

    # --- worker loss: the pods must move --------------------------------------------

    async def start_pods(self) -> str:
        """A Deployment whose pods tolerate an unreachable node for 10 s only, so that
        they are evicted and replaced soon after their node is lost."""
        from apiserver.client import ApiClient
        name = self.run_id
        tolerations = [{"key": k, "operator": "Exists", "effect": "NoExecute",
                        "tolerationSeconds": 10}
                       for k in ("node.kubernetes.io/unreachable",
                                 "node.kubernetes.io/not-ready")]
        body = {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": workload.NAMESPACE,
                             "labels": {DRILL_LABEL: name}},
                "spec": {"replicas": 2, "selector": {"matchLabels": {DRILL_LABEL: name}},
                         "template": {"metadata": {"labels": {DRILL_LABEL: name}},
                                      "spec": {"tolerations": tolerations, "containers": [{
                                          "name": "sleep", "image": "busybox",
                                          "command": ["sleep", "100000"]}]}}}}
        async with ApiClient(list(self.view.balancers), ssl=self.view.ssl) as api:
            await api.create(body, namespace=workload.NAMESPACE)
            path = api.path("v1", "pods", workload.NAMESPACE)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                items = (await api.list(path, label_selector=f"{DRILL_LABEL}={name}")).items
                if sum(_ready(p) for p in items) >= 2:
                    return name
                await asyncio.sleep(1)
        raise DrillError("the drill's pods did not become Ready within 120 s")

    async def sample_pods(self) -> None:
        from apiserver.client import ApiClient
        try:
            async with ApiClient(list(self.view.balancers), ssl=self.view.ssl,
                                 timeout=3) as api:
                items = (await api.list(api.path("v1", "pods", workload.NAMESPACE),
                                        label_selector=f"{DRILL_LABEL}={self.run_id}")).items
        except Exception:  # a sample missed during a fault is just a missing sample
            return
        ready: dict[str, int] = {}
        for p in items:
            if _ready(p):
                node = p.get("spec", {}).get("nodeName") or "?"
                ready[node] = ready.get(node, 0) + 1
        self.pod_samples.append((self.now(), ready))

    def rescheduled(self, rec: Record) -> dict[str, Any]:
        lost = rec.resolved[0] if rec.resolved else None
        for t, ready in self.pod_samples:
            if rec.at is not None and t > rec.at and \
                    sum(v for n, v in ready.items() if n != lost) >= 2:
                return {"ok": True, "detail": f"2 pods Ready off {lost} {t - rec.at:.1f} s "
                                              "after it was lost"}
        return {"ok": False, "detail": f"the pods of {lost} were not Ready elsewhere "
                                       "before the end of the run"}


def _ready(pod: dict) -> bool:
    for c in pod.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False
