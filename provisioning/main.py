"""`kubelite up|down|status|join|certs|snapshot`: provision a fleet from an inventory.

    kubelite up -i inventory.yaml [--dir .kubelite-cluster] [--sample]
    kubelite join -i inventory.yaml NAME [NAME...]
    kubelite status -i inventory.yaml
    kubelite certs status|rotate [--force] -i inventory.yaml
    kubelite snapshot save|list|restore FILE-OR-NAME|schedule -i inventory.yaml
    kubelite down -i inventory.yaml

The sub-command comes first in argv (kubelite_cli passes it). Exit codes: 0 done,
1 a problem was reported (each line names its machine and what to do), 2 usage.
Everything also goes to <dir>/up.log.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from provisioning import certs, cluster_pki, down, join_token, sample, snapshot, ssh, status, up
from provisioning.cluster_dir import DEFAULT_DIR, ClusterDir
from provisioning.fleet import FleetError, open_fleet
from provisioning.inventory import Inventory, InventoryError, load_inventory
from provisioning.waits import WaitTimeout


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--inventory", default="inventory.yaml",
                   help="the fleet's inventory (YAML; what `kubelite lab up` writes)")
    p.add_argument("--vagrant", metavar="DIR",
                   help="take the inventory from the Vagrant machines in DIR instead")
    p.add_argument("--dir", default=DEFAULT_DIR,
                   help=f"the cluster directory: PKI, state, logs (default ./{DEFAULT_DIR})")
    p.add_argument("--accept-new-host-keys", action="store_true",
                   help="record host keys of machines not in known_hosts yet")


def parser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"kubelite {command}")
    if command == "certs":
        p.add_argument("action", choices=("status", "rotate"))
        p.add_argument("--force", action="store_true", help="renew every certificate")
        p.add_argument("--within-days", type=int, default=90)
    elif command == "snapshot":
        p.add_argument("action", choices=("save", "list", "restore", "schedule"))
        p.add_argument("file", nargs="?", help="the snapshot to restore")
        p.add_argument("--keep", type=int, default=10, help="snapshots to keep (retention)")
        p.add_argument("--every", type=float, default=3600.0, help="seconds between saves")
        p.add_argument("--count", type=int, default=24, help="saves before `schedule` ends")
    elif command == "join":
        p.add_argument("name", nargs="+",
                       help="the machines to add (already listed in the inventory); control "
                            "planes join the store one at a time, in inventory order")
        p.add_argument("--token-ttl-hours", type=float, default=1.0)
    elif command == "up":
        p.add_argument("--sample", action="store_true",
                       help="deploy the sample application and check it answers")
    elif command == "status":
        p.add_argument("--json", action="store_true")
    _common(p)
    return p


def _inventory(args: argparse.Namespace) -> Inventory:
    if args.vagrant:
        from provisioning import vagrant
        return vagrant.inventory_from_vagrant(args.vagrant)
    return load_inventory(Path(args.inventory))


def _how_to_use(cdir: ClusterDir, args: argparse.Namespace) -> str:
    inv = f"-i {args.inventory}" if not args.vagrant else f"--vagrant {args.vagrant}"
    return (f"\nuse the cluster:\n  export KUBECONFIG={cdir.kubeconfig}\n  kubectl get nodes\n"
            f"status:    kubelite status {inv} --dir {cdir.path}\n"
            f"tear down: kubelite down {inv} --dir {cdir.path}")


def _join(inv: Inventory, cdir: ClusterDir, args: argparse.Namespace) -> int:
    unknown = [n for n in args.name if n not in inv.by_name]
    if unknown:
        print(f"kubelite join: {', '.join(unknown)} not in the inventory; add "
              f"{'it' if len(unknown) == 1 else 'them'} there first", file=sys.stderr)
        return 1
    state = cdir.load()
    if not state.get("store_order"):
        print("kubelite join: no cluster in this directory yet; run `kubelite up` first",
              file=sys.stderr)
        return 1
    # The join token pins the CA: the machine's files are checked against it before use.
    import datetime as dt
    token, record = join_token.issue(dt.datetime.now(dt.UTC),
                                     dt.timedelta(hours=args.token_ttl_hours),
                                     description=f"join of {', '.join(args.name)}")
    pki = cluster_pki.ClusterPki(cdir.pki)
    join_string = join_token.render_join_string(token, pki.ca_hash())
    join_token.verify_ca(join_string, pki.ca_cert.read_bytes())
    outcome = up.up(inv, cdir, accept_new=args.accept_new_host_keys, out=sys.stdout,
                    only=args.name)
    print(up.summary(inv, outcome))
    return 0


def run(command: str, args: argparse.Namespace) -> int:
    cdir = ClusterDir.at(args.dir)
    if command == "certs" and args.action == "status":
        print(certs.status_text(cdir))
        return 0
    if command == "snapshot" and args.action == "list":
        for path in snapshot.listing(cdir):
            print(f"{path.name}  {path.stat().st_size} bytes")
        return 0
    inv = _inventory(args)
    if command == "up":
        outcome = up.up(inv, cdir, accept_new=args.accept_new_host_keys, out=sys.stdout)
        print(up.summary(inv, outcome))
        if args.sample:
            worker = inv.workers[0] if inv.workers else inv.control_planes[0]
            with open_fleet(inv, names=[worker.name], probe=False) as fleet:
                assert outcome.kubeconfig is not None
                result = sample.check(outcome.kubeconfig, fleet.connections[worker.name])
            print(f"\nsample app demo/web, {len(result['answers'])} requests to its ClusterIP "
                  f"{result['cluster_ip']} from {result['from']}: {result['answer']}")
        print(_how_to_use(cdir, args))
        return 0
    if command == "join":
        return _join(inv, cdir, args)
    if command == "status":
        report = status.gather(inv, cdir)
        print(json.dumps(report, indent=2, default=str) if args.json else status.render(report))
        return 0
    if command == "down":
        down.down(inv, cdir, out=sys.stdout, accept_new=args.accept_new_host_keys)
        print("removed kubelite from every machine")
        return 0
    if command == "certs":
        certs.rotate(inv, cdir, out=sys.stdout, within_days=args.within_days, force=args.force)
        return 0
    if args.action == "save":
        print(f"saved {snapshot.save(inv, cdir, keep=args.keep)}")
    elif args.action == "schedule":
        snapshot.schedule(inv, cdir, every=args.every, keep=args.keep, count=args.count,
                          out=sys.stdout)
    else:
        if not args.file:
            print("kubelite snapshot restore: which file? (kubelite snapshot list)",
                  file=sys.stderr)
            return 2
        snapshot.restore(inv, cdir, args.file, out=sys.stdout)
    return 0


COMMANDS = ("up", "down", "status", "join", "certs", "snapshot")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"kubelite: {argv[0] if argv else '(none)'} is not one of {', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    command = argv[0]
    args = parser(command).parse_args(argv[1:])
    try:
        return run(command, args)
    except InventoryError as exc:
        print(f"kubelite {command}: the inventory cannot be used:\n{exc}", file=sys.stderr)
    except FleetError as exc:
        head = ("some machines failed; fix these and run it again (finished work is kept)"
                if exc.changed else "nothing was changed; fix these first")
        print(f"kubelite {command}: {head}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
    except (WaitTimeout, ssh.SshError, cluster_pki.ClusterPkiError, RuntimeError,
            FileNotFoundError) as exc:
        print(f"kubelite {command}: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
