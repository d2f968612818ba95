"""`kubelite join`: add a machine that is new in the inventory to a running fleet.

A worker only needs kubelite installed and its agent started (`up` restricted to it).
A control plane changes the store's membership, which must never cost the store its
quorum, so control planes join strictly one at a time (the cluster directory's lock
serialises whole runs; inside a run, `join_control_plane` is called per machine):

1. cluster/member/add of its peer URL through a running member (a follower forwards
   it to the leader), unless the member list already has it (a re-run after a failure);
2. the join order is recorded: from now on this member's flags are fixed
   (`--initial-cluster` = the members before it and itself, state `existing`);
3. kubelite is installed on it and its processes started;
4. wait until it knows the leader and has applied what the leader had;
5. the other control planes are updated one at a time (their apiservers' store
   endpoints and balancers' backends now include it).
"""

from __future__ import annotations

from provisioning import machine_config, waits
from provisioning.bundle import Bundle
from provisioning.cluster_dir import ClusterDir
from provisioning.fleet import Fleet, FleetError
from provisioning.inventory import Inventory
from provisioning.plan import MachinePlan
from provisioning.progress import Progress


def join_control_plane(fleet: Fleet, inv: Inventory, cdir: ClusterDir, state: dict,
                       bundle: Bundle, progress: Progress, name: str) -> MachinePlan:
    from provisioning.up import converge, observe_all, store_endpoints

    order = list(state["store_order"])
    bootstrap = int(state.get("bootstrap", len(order)))
    layout = machine_config.Layout(inv.cluster.data_dir, inv.cluster.install_dir)
    member = inv.by_name[name]
    peer_url = f"http://{member.address}:{inv.cluster.ports.store_peer}"
    running = [n for n in order if n in fleet.connections]
    if not running:
        raise FleetError([f"{name}: no running control plane to join through"])
    via = fleet.connections[running[0]]
    progress.step(name, f"adding to the store through {running[0]}")
    waits.wait_store_leader(via, layout, store_endpoints(inv, order))
    answer = waits.health(via, layout, "member-add", "--endpoints",
                          ",".join(store_endpoints(inv, order)), "--peer-url", peer_url)
    if "error" in answer:
        raise FleetError([f"{name}: the store refused to add {peer_url}: {answer['error']}"],
                         changed=False)
    if name not in order:
        order.append(name)
        state["store_order"] = order
        cdir.save(state)
    desired = machine_config.render(inv, cdir.material(), order, bootstrap)
    observed = observe_all(fleet, {name: desired[name]})
    plans = converge(fleet, desired, observed, bundle, progress, [name], state, cdir)
    progress.step(name, "catching up with the store's leader")
    mine = f"http://{member.address}:{inv.cluster.ports.store_client}"
    waits.wait_member_caught_up(via, layout, store_endpoints(inv, order), mine)
    others = [n for n in order if n != name]
    observed = observe_all(fleet, {n: desired[n] for n in others})
    converge(fleet, desired, observed, bundle, progress, others, state, cdir, serial=True)
    progress.step(name, "joined the store")
    return plans[name]
