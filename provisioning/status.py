"""`kubelite status`: machines and their processes, the store's leader and members, node
readiness and certificate expiry, in one report.

Machines that cannot be reached are shown as such rather than failing the report; a
process that keeps restarting shows its restart count. Certificates expiring within 90
days are listed with what to do (`kubelite certs rotate`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from provisioning import cluster_pki, machine_config, remote, ssh, waits
from provisioning.cluster_dir import ClusterDir
from provisioning.fleet import Fleet, each, targets
from provisioning.inventory import Inventory
from provisioning.up import store_endpoints, store_order


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def gather(inv: Inventory, cdir: ClusterDir) -> dict:
    state = cdir.load()
    order, bootstrap = store_order(state, inv)
    desired = machine_config.render(inv, cdir.material(), order, bootstrap) \
        if cdir.pki.exists() else {}
    known = Path(inv.access.known_hosts) if inv.access.known_hosts else None
    conns, errors = ssh.connect_all(targets(inv), known_hosts=known)
    fleet = Fleet(inv, conns)
    report: dict = {"machines": {}, "store": {}, "nodes": None, "certs": [], "warnings": []}
    try:
        def one(name: str) -> dict:
            systemd = bool(state.get("machines", {}).get(name, {}).get("systemd"))
            obs = remote.observe(conns[name], desired[name], python=fleet.python(name),
                                 systemd=systemd)
            return {n: {"running": p.running, "restarts": p.restarts, "pid": p.pid}
                    for n, p in obs.processes.items()}

        observed, failed = each([n for n in conns if n in desired], one)
        for m in inv.machines:
            why = errors.get(m.name) or failed.get(m.name)
            report["machines"][m.name] = {"role": m.role, "address": m.address,
                                          "processes": observed.get(m.name, {}),
                                          "error": str(why) if why else None}
        layout = machine_config.Layout(inv.cluster.data_dir, inv.cluster.install_dir)
        via = next((n for n in order if n in conns), None)
        if via is not None:
            report["store"] = waits.store_report(conns[via], layout, store_endpoints(inv, order))
    finally:
        fleet.close()
    if cdir.kubeconfig.exists():
        try:
            report["nodes"] = [{"name": n["metadata"]["name"], "ready": waits.node_ready(n)}
                               for n in asyncio.run(waits.nodes(cdir.kubeconfig))]
        except Exception as exc:  # shown in the report: the apiserver is part of health
            report["nodes_error"] = str(exc)
    if cdir.pki.exists():
        expiries = cluster_pki.expiries(cdir.pki)
        report["certs"] = [{"name": e.name, "not_after": e.not_after.isoformat(),
                            "days_left": e.days_left, "serial": f"{e.serial:x}"}
                           for e in expiries]
        report["warnings"] = cluster_pki.warnings(expiries)
    return report


def render(report: dict) -> str:
    rows: list[tuple[str, ...]] = [("MACHINE", "ROLE", "ADDRESS", "PROCESSES")]
    for name, m in report["machines"].items():
        if m["error"]:
            procs = f"UNREACHABLE: {m['error']}"
        else:
            procs = " ".join(
                f"{p}:{'up' if s['running'] else 'DOWN'}"
                + (f"({s['restarts']} restarts)" if s["restarts"] else "")
                for p, s in m["processes"].items()) or "nothing installed"
        rows.append((name, m["role"], m["address"], procs))
    out = [table(rows), ""]
    store = report["store"]
    if store:
        out.append(f"store leader: {store.get('leader') or 'NONE'}")
        members = [("MEMBER", "ID", "PEER", "LEARNER")]
        members += [(m["name"] or "(not started)", f"{m['id']:x}", ",".join(m["peer_urls"]),
                     "yes" if m["is_learner"] else "no") for m in store.get("members", [])]
        out += [table(members), ""]
    if report["nodes"] is not None:
        nodes = [("NODE", "STATUS")]
        nodes += [(n["name"], "Ready" if n["ready"] else "NotReady") for n in report["nodes"]]
        out += [table(nodes), ""]
    elif "nodes_error" in report:
        out += [f"nodes: cannot ask the apiserver: {report['nodes_error']}", ""]
    if report["certs"]:
        certs = [("CERTIFICATE", "EXPIRES", "DAYS LEFT", "SERIAL")]
        certs += [(c["name"], c["not_after"][:19], str(c["days_left"]), c.get("serial", ""))
                  for c in report["certs"]]
        out.append(table(certs))
    out += [f"WARNING: {w}" for w in report["warnings"]]
    return "\n".join(out)
