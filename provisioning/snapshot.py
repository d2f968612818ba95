"""`kubelite snapshot save|list|restore|schedule`: the store's backups, kept on the
operator's machine under the cluster directory's snapshots/.

`save` runs `kubelite store backup` on a control plane (a consistent snapshot with its
SHA-256, see store/backup.py), fetches the file and keeps the newest `--keep`
(`retain` decides which go). `schedule` does that every `--every` seconds, a bounded
number of times or until interrupted. `restore FILE` (a path, or a name `list` shows)
stops every process of the control planes, moves each store data directory aside
(`store.before-restore-<time>`), seeds a new one with `kubelite store restore` naming
every member, and runs `up`, which starts the members again as one cluster formed from
the backup.
"""

from __future__ import annotations

import datetime as dt
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from provisioning import remote, up
from provisioning.cluster_dir import ClusterDir
from provisioning.fleet import FleetError, each, open_fleet
from provisioning.inventory import Inventory
from provisioning.machine_config import Layout, initial_cluster

PREFIX, SUFFIX = "snapshot-", ".db"
q = shlex.quote


def retain(names: Sequence[str], keep: int) -> tuple[list[str], list[str]]:
    """(kept, dropped): the newest `keep` snapshots stay (names sort by time)."""
    ordered = sorted(n for n in names if n.startswith(PREFIX) and n.endswith(SUFFIX))
    cut = max(0, len(ordered) - max(keep, 1))
    return ordered[cut:], ordered[:cut]


def snapshot_name(now: dt.datetime) -> str:
    return f"{PREFIX}{now.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%S%fZ')}{SUFFIX}"


def listing(cdir: ClusterDir) -> list[Path]:
    if not cdir.snapshots.exists():
        return []
    return sorted(p for p in cdir.snapshots.iterdir()
                  if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX))


def locate(cdir: ClusterDir, given: str | Path) -> Path:
    """The backup `restore` means: a file path, or a name `list` printed (looked up in
    the cluster directory's snapshots/)."""
    path = Path(given)
    if path.is_file():
        return path
    kept = cdir.snapshots / path.name
    if kept.is_file():
        return kept
    raise FileNotFoundError(f"no snapshot {given} (neither a file nor one of "
                            f"`kubelite snapshot list` in {cdir.snapshots})")


def save(inv: Inventory, cdir: ClusterDir, *, keep: int = 10) -> Path:
    state = cdir.load()
    order, _ = up.store_order(state, inv)
    layout = Layout(inv.cluster.data_dir, inv.cluster.install_dir)
    name = snapshot_name(dt.datetime.now(dt.UTC))
    cdir.snapshots.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open_fleet(inv, names=order, probe=False) as fleet:
        via = next(n for n in order if n in fleet.connections)
        conn = fleet.connections[via]
        remote_path = f"{layout.data_dir}/{name}"
        endpoints = ",".join(up.store_endpoints(inv, order))
        conn.run(f"{q(layout.bin())} store backup --endpoints {q(endpoints)} {q(remote_path)}",
                 check=True, timeout=300)
        try:
            conn.get(remote_path, cdir.snapshots / name)
        finally:
            conn.run(f"rm -f {q(remote_path)}")
    _, dropped = retain([p.name for p in listing(cdir)], keep)
    for old in dropped:
        (cdir.snapshots / old).unlink(missing_ok=True)
    return cdir.snapshots / name


def schedule(inv: Inventory, cdir: ClusterDir, *, every: float, keep: int, count: int,
             out: TextIO) -> None:
    for i in range(count):
        path = save(inv, cdir, keep=keep)
        print(f"saved {path}", file=out, flush=True)
        if i + 1 < count:
            time.sleep(every)


def restore(inv: Inventory, cdir: ClusterDir, backup: str | Path, *, out: TextIO) -> None:
    backup = locate(cdir, backup)
    state = cdir.load()
    order, _ = up.store_order(state, inv)
    layout = Layout(inv.cluster.data_dir, inv.cluster.install_dir)
    addresses = {n: inv.by_name[n].address for n in order}
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    data = backup.read_bytes()
    with open_fleet(inv, names=order, probe=False) as fleet:
        def one(name: str) -> None:
            conn = fleet.connections[name]
            systemd = bool(state.get("machines", {}).get(name, {}).get("systemd"))
            remote.stop_all(conn, layout, systemd)
            store_dir = f"{layout.data_dir}/store"
            remote_file = f"{layout.data_dir}/restore.db"
            conn.put(data, remote_file, 0o600)
            cluster, _ = initial_cluster(order, addresses, name, len(order),
                                         inv.cluster.ports.store_peer)
            conn.run(f"if [ -e {q(store_dir)} ]; then mv {q(store_dir)} "
                     f"{q(store_dir)}.before-restore-{stamp}; fi && "
                     f"{q(layout.bin())} store restore {q(remote_file)} --data-dir "
                     f"{q(store_dir)} --name {q(name)} --initial-cluster {q(cluster)} && "
                     f"rm -f {q(remote_file)}", check=True, timeout=300)

        _, errors = each(order, one)
    if errors:
        raise FleetError([f"{n}: {e}" for n, e in errors.items()], changed=True)
    state["bootstrap"] = len(order)     # every member now starts as one new cluster
    cdir.save(state)
    print(f"restored {backup.name} on {', '.join(order)}; starting the cluster", file=out)
    up.up(inv, cdir, out=out)
