"""`kubelite up`: bring every machine of the inventory to what it should run.

    connect to all machines at once, probe them        -> every problem, nothing changed
    PKI (kept on the operator's machine), bundle       -> built once, cached by hash
    per machine, in parallel: observe -> plan -> apply -> "no change" when plans are empty
    control planes new to the store join one at a time (provisioning/join.py)
    wait: the store has a leader, apiservers are ready, nodes are Ready
    admin kubeconfig (+ the lab's local forward), summary table

Every machine is planned from what it reports (provisioning/plan.py), so a second run
changes nothing and says so, and a run after a failure does only what is left. The
store's join order is recorded in the cluster directory as soon as it is known, so the
members' flags stay what they were when each joined.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from provisioning import bundle as bundle_mod
from provisioning import cluster_pki, local_forward, machine_config, remote, waits
from provisioning.cluster_dir import ClusterDir
from provisioning.fleet import Fleet, FleetError, each, open_fleet, preflight_problems
from provisioning.inventory import Inventory
from provisioning.machine_config import MachineConfig
from provisioning.plan import MachinePlan, Observed, plan
from provisioning.progress import Progress

log = logging.getLogger("kubelite.provisioning")


@dataclass
class Outcome:
    plans: dict[str, MachinePlan] = field(default_factory=dict)
    kubeconfig: Path | None = None
    nodes: list[dict] = field(default_factory=list)
    store: dict = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(not p.empty for p in self.plans.values())


def ensure_pki(cdir: ClusterDir, inv: Inventory) -> cluster_pki.ClusterPki:
    return cluster_pki.ClusterPki.ensure(
        cdir.pki, apiserver_hosts=inv.control_planes,
        load_balancer_hosts=inv.load_balancer_addresses, nodes=inv.workers,
        service_cidr=inv.cluster.service_cidr)


def store_order(state: dict, inv: Inventory) -> tuple[list[str], int]:
    """(members in join order, how many bootstrapped together). A fresh cluster starts
    with every control plane of the inventory."""
    order = [n for n in state.get("store_order", []) if n in inv.by_name]
    if not state.get("store_order"):
        order = [m.name for m in inv.control_planes]
        return order, len(order)
    return order, int(state.get("bootstrap", len(order)))


def store_endpoints(inv: Inventory, order: Iterable[str]) -> list[str]:
    port = inv.cluster.ports.store_client
    return [f"http://{inv.by_name[n].address}:{port}" for n in order]


def observe_all(fleet: Fleet, desired: dict[str, MachineConfig]
                ) -> dict[str, Observed]:
    observed, errors = each(desired, lambda n: remote.observe(
        fleet.connections[n], desired[n], python=fleet.python(n), systemd=fleet.systemd(n)))
    if errors:
        raise FleetError([f"{n}: cannot read its state: {e}" for n, e in errors.items()])
    return observed


def settle(fleet: Fleet, cdir: ClusterDir, state: dict, progress: Progress,
           want: MachineConfig, p: MachinePlan) -> None:
    """Wait until a machine whose processes were (re)started serves again: its store
    member has caught up with the leader and its apiserver is ready (a control plane),
    or its node is Ready (a worker). Serial runs call this before touching the next
    machine, so no more than one machine is ever out of service."""
    touched = set(p.start) | set(p.restart)
    if p.install:
        touched |= {proc.name for proc in want.processes}
    if not touched:
        return
    name = want.name
    inv = fleet.inventory
    layout = machine_config.Layout(inv.cluster.data_dir, inv.cluster.install_dir)
    conn = fleet.connections[name]
    if machine_config.STORE in touched:
        order = [n for n in state.get("store_order", []) if n in inv.by_name]
        progress.step(name, "waiting for its store member to catch up")
        mine = f"http://{inv.by_name[name].address}:{inv.cluster.ports.store_client}"
        waits.wait_member_caught_up(conn, layout, store_endpoints(inv, order), mine)
    if machine_config.APISERVER in touched:
        progress.step(name, "waiting for its apiserver")
        waits.wait_apiserver_ready(conn, layout, inv.cluster.ports.apiserver)
    if machine_config.AGENT in touched and cdir.kubeconfig.exists():
        progress.step(name, "waiting for its node to be Ready")
        waits.wait_nodes_ready(cdir.kubeconfig, [name], timeout=90.0)
    progress.step(name, "serving again")


def converge(fleet: Fleet, desired: dict[str, MachineConfig], observed: dict[str, Observed],
             bundle: bundle_mod.Bundle, progress: Progress, names: Iterable[str],
             state: dict, cdir: ClusterDir, *, serial: bool = False) -> dict[str, MachinePlan]:
    """Plan and apply on `names` (in parallel, or one at a time with `serial`, each
    machine serving again before the next is touched)."""
    plans = {n: plan(desired[n], observed[n], bundle.digest) for n in names}

    def apply(name: str) -> MachinePlan:
        p = plans[name]
        progress.step(name, p.describe() if not p.empty else "no change")
        if not p.empty:
            remote.apply(fleet.connections[name], desired[name], p, bundle,
                         python=fleet.python(name), systemd=fleet.systemd(name))
            progress.step(name, "configured")
        m = fleet.machines[name]
        state["machines"][name] = {"role": m.role, "address": m.address,
                                   "bundle": bundle.digest, "systemd": fleet.systemd(name)}
        return p

    errors: dict[str, Exception] = {}
    if serial:
        for name in plans:
            _, err = each([name], apply)
            if not err and not plans[name].empty:
                cdir.save(state)
                _, err = each([name], lambda n: settle(fleet, cdir, state, progress,
                                                      desired[n], plans[n]))
            errors.update(err)
            if err:
                break              # the rest keep serving; a re-run continues from here
    else:
        _, errors = each(list(plans), apply)
    cdir.save(state)
    if errors:
        raise FleetError([f"{n}: {e}" for n, e in errors.items()], changed=True)
    return plans


def admin_access(cdir: ClusterDir, inv: Inventory, state: dict) -> Path:
    """The admin kubeconfig; for the lab, through a local forward to a balancer."""
    balancers = machine_config.balancer_urls(inv)
    if inv.access.netns:
        first = balancers[0].removeprefix("https://")
        state["forward"] = local_forward.ensure(state.get("forward"), inv.access.netns, first,
                                                cdir.path / "forward.log")
        cdir.save(state)
        servers = [f"https://127.0.0.1:{state['forward']['port']}"]
    else:
        servers = balancers
    return cluster_pki.kubeconfig_for(cdir.pki, "admin", servers, path=cdir.kubeconfig)


def wait_cluster(fleet: Fleet, inv: Inventory, order: list[str], cdir: ClusterDir,
                 state: dict, progress: Progress, outcome: Outcome,
                 node_timeout: float = 180.0) -> None:
    layout = machine_config.Layout(inv.cluster.data_dir, inv.cluster.install_dir)
    cp = fleet.connections[order[0]]
    progress.note("waiting for the store's leader")
    outcome.store = waits.wait_store_leader(cp, layout, store_endpoints(inv, order))
    progress.note(f"store leader: {outcome.store['leader']}")
    for name in order:
        progress.step(name, "waiting for the apiserver")
        waits.wait_apiserver_ready(fleet.connections[name], layout, inv.cluster.ports.apiserver)
        progress.step(name, "apiserver ready")
    outcome.kubeconfig = admin_access(cdir, inv, state)
    workers = [m.name for m in inv.workers]
    if workers:
        progress.note(f"waiting for {len(workers)} nodes to be Ready")
        outcome.nodes = waits.wait_nodes_ready(outcome.kubeconfig, workers, node_timeout)
        progress.note("all nodes Ready")


def up(inv: Inventory, cdir: ClusterDir, *, accept_new: bool = False, out: TextIO,
       only: Iterable[str] | None = None, serial: bool = False) -> Outcome:
    """Provision the fleet (or, with `only`, those machines); raises FleetError."""
    from provisioning import join  # join builds on converge

    cdir.start_log()
    outcome = Outcome()
    with cdir.lock(), open_fleet(inv, accept_new=accept_new) as fleet:
        state = cdir.load()
        state.setdefault("machines", {})
        order, bootstrap = store_order(state, inv)
        joiners = [m.name for m in inv.control_planes if m.name not in order]
        pki = ensure_pki(cdir, inv)
        desired = machine_config.render(inv, cdir.material(), order, bootstrap)
        observed = observe_all(fleet, desired)
        problems = preflight_problems(fleet, desired, observed)
        if problems:
            raise FleetError(problems)
        if not state.get("store_order"):
            state.update(store_order=order, bootstrap=bootstrap)
            cdir.save(state)
        bundle = bundle_mod.build()
        names = [n for n in desired if only is None or n in set(only)]
        with Progress(names + joiners, title="kubelite up", stream=out) as progress:
            if pki.issued:
                progress.note(f"issued {len(pki.issued)} certificates")
            outcome.plans = converge(fleet, desired, observed, bundle, progress, names, state,
                                     cdir, serial=serial)
            joined = [n for n in joiners if only is None or n in set(only)]
            for name in joined:
                outcome.plans[name] = join.join_control_plane(
                    fleet, inv, cdir, state, bundle, progress, name)
                order = list(state["store_order"])
            if joined:
                for name, p in join.update_fleet(fleet, inv, cdir, state, bundle,
                                                 progress).items():
                    if name not in outcome.plans or outcome.plans[name].empty:
                        outcome.plans[name] = p
            wait_cluster(fleet, inv, order, cdir, state, progress, outcome)
    return outcome


def summary(inv: Inventory, outcome: Outcome) -> str:
    ready = {n["metadata"]["name"] for n in outcome.nodes if waits.node_ready(n)}
    rows = [("MACHINE", "ROLE", "ADDRESS", "NODE", "THIS RUN")]
    for m in inv.machines:
        p = outcome.plans.get(m.name)
        node = "-" if m.is_control_plane else ("Ready" if m.name in ready else "NotReady")
        rows.append((m.name, m.role, m.address, node, p.describe() if p else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    leader = outcome.store.get("leader")
    if leader:
        lines.append(f"\nstore leader: {leader}; members: "
                     f"{', '.join(m['name'] or '?' for m in outcome.store.get('members', []))}")
    lines.append("no change: the fleet already runs as the inventory says" if not outcome.changed
                 else "changed: see above")
    return "\n".join(lines)
