"""`kubelite join`: add a machine that is new in the inventory to a running fleet.

A worker only needs kubelite installed and its agent started (`up` restricted to it).
A control plane changes the store's membership, which must never cost the store its
quorum, so control planes join strictly one at a time (the cluster directory's lock
serialises whole runs; inside a run, `join_control_plane` is called per machine):

1. cluster/member/add of its peer URL through the store's current leader (asked over
   SSH on the leader's own machine, so the change is proposed where it is decided),
   unless the member list already has it (a re-run after a failure);
2. the join order is recorded: from now on this member's flags are fixed
   (`--initial-cluster` = the members before it and itself, state `existing`);
3. kubelite is installed on it and its processes started;
4. wait until it knows the leader and has applied what the leader had.

Only then does the next control plane's join begin, so the store grows by exactly one
member at a time (3 -> 4 -> 5). When every new member has joined, `update_fleet`
brings the rest of the fleet up to date one machine at a time, each serving again
before the next is touched: the apiservers' store endpoints and the balancers'
backends now include the new members (done once, not after every join).
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
    from provisioning.up import converge, observe_all, store_endpoints  # up builds on join

    order = list(state["store_order"])
    bootstrap = int(state.get("bootstrap", len(order)))
    layout = machine_config.Layout(inv.cluster.data_dir, inv.cluster.install_dir)
    member = inv.by_name[name]
    peer_url = f"http://{member.address}:{inv.cluster.ports.store_peer}"
    running = [n for n in order if n in fleet.connections]
    if not running:
        raise FleetError([f"{name}: no running control plane to join through"])
    report = waits.wait_store_leader(fleet.connections[running[0]], layout,
                                     store_endpoints(inv, order))
    leader = through_leader(report, running)
    via = fleet.connections[leader]
    progress.step(name, f"adding to the store through its leader {leader} "
                        f"({len(report.get('members', []))} members now)")
    leader_url = f"http://{inv.by_name[leader].address}:{inv.cluster.ports.store_client}"
    answer = waits.health(via, layout, "member-add", "--endpoints", leader_url,
                          "--peer-url", peer_url)
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
    progress.step(name, f"joined the store ({len(order)} members)")
    return plans[name]


def update_fleet(fleet: Fleet, inv: Inventory, cdir: ClusterDir, state: dict, bundle: Bundle,
                 progress: Progress) -> dict[str, MachinePlan]:
    """Every machine to the configuration of the grown store, one at a time."""
    from provisioning.up import converge, observe_all, store_order

    order, bootstrap = store_order(state, inv)
    desired = machine_config.render(inv, cdir.material(), order, bootstrap)
    desired = {n: c for n, c in desired.items() if n in fleet.connections}
    observed = observe_all(fleet, desired)
    return converge(fleet, desired, observed, bundle, progress, list(desired), state, cdir,
                    serial=True)


def through_leader(report: dict, running: list[str]) -> str:
    """The machine to propose the membership change on: the store's leader when it is
    one we can reach, else the first running member (a follower forwards it)."""
    leader = report.get("leader")
    return leader if leader in running else running[0]
