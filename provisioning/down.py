"""`kubelite down`: stop and remove everything `up` installed, on every machine.

Per machine, in parallel: stop the supervisor (which stops its processes) or the
systemd units, run `kubelite agent --cleanup` on workers (their pods, pod network
namespaces and nftables table go), remove the agent's cgroups, then the install and
data directories. Here: stop the lab's local forward and remove the cluster's state,
PKI and kubeconfig (snapshots and up.log stay: they may be all that is left of it).
A machine that cannot be reached is reported, and the state is kept, so that `down`
can be run again once it is back.
"""

from __future__ import annotations

import shutil
from typing import TextIO

from provisioning import local_forward, remote
from provisioning.cluster_dir import ClusterDir
from provisioning.fleet import FleetError, each, open_fleet
from provisioning.inventory import Inventory
from provisioning.machine_config import Layout
from provisioning.progress import Progress


def down(inv: Inventory, cdir: ClusterDir, *, out: TextIO, accept_new: bool = False) -> None:
    cdir.start_log()
    layout = Layout(inv.cluster.data_dir, inv.cluster.install_dir)
    with cdir.lock():
        state = cdir.load()
        fleet = open_fleet(inv, accept_new=accept_new, probe=False)
        try:
            names = list(fleet.connections)
            with Progress(names, title="kubelite down", stream=out) as progress:
                def one(name: str) -> None:
                    m = fleet.machines[name]
                    systemd = bool(state.get("machines", {}).get(name, {}).get("systemd"))
                    progress.step(name, "stopping and removing kubelite")
                    remote.teardown(fleet.connections[name], layout, name,
                                    not m.is_control_plane, systemd)
                    progress.step(name, "removed")

                _, errors = each(names, one)
        finally:
            fleet.close()
        if errors:
            raise FleetError([f"{n}: {e}" for n, e in errors.items()], changed=True)
        local_forward.stop(state.get("forward"))
        for path in (cdir.pki, cdir.state_file, cdir.kubeconfig, cdir.path / "forward.log"):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
