"""`kubelite drill`: inject faults into a running fleet and check what its clients saw.

    kubelite drill SCENARIO -i inventory.yaml [--dir .kubelite-cluster] [--duration 60]
                   [--seed N] [--report DIR]
    kubelite drill --list
    kubelite drill --cleanup -i inventory.yaml

Exit status: 0 every check passed; 1 a check failed (the report says which, with a
counterexample); 2 usage; 3 the drill could not run or was interrupted (everything it
injected was healed). Give the same scenario, duration and --seed to replay a run.

For a lab fleet (the inventory names the lab's namespace) the process moves into that
network namespace first, before it starts any thread, so that the workload reaches the
machines' addresses directly, as an operator's clients reach a real fleet; SSH works
the same from there. SIGINT and SIGTERM cancel the run, which heals every fault in its
`finally`; `--cleanup` heals whatever an earlier run could not (a drill killed with
SIGKILL), and the faults' own nft timeouts and scheduled SIGCONTs heal the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from provisioning import netns, ssh
from provisioning.cluster_dir import DEFAULT_DIR, ClusterDir
from provisioning.drills import runner, scenarios
from provisioning.drills.faults import FaultError, Faults
from provisioning.fleet import FleetError, each, open_fleet
from provisioning.inventory import InventoryError, load_inventory

EXIT_FAILED, EXIT_USAGE, EXIT_ERROR = 1, 2, 3


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubelite drill",
        description="Run a workload against a fleet while injecting faults, then check "
                    "the recorded history (linearizability, lost writes, watches, the "
                    "store members' agreement) and write a report.",
        epilog="scenarios: " + "; ".join(f"{k}: {v}" for k, v in scenarios.SCENARIOS.items()))
    p.add_argument("scenario", nargs="?", help="what to inject (--list shows them)")
    p.add_argument("-i", "--inventory", default="inventory.yaml")
    p.add_argument("--dir", default=DEFAULT_DIR, help="the cluster directory `up` wrote")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of workload")
    p.add_argument("--seed", type=int, default=0, help="fixes targets and timing")
    p.add_argument("--report", type=Path, default=None,
                   help="report directory (default: ./drill-<scenario>-<seed>)")
    p.add_argument("--op-timeout", type=float, default=5.0,
                   help="seconds before a request counts as timed out")
    p.add_argument("--clients", type=int, default=3, help="clients per kind")
    p.add_argument("--list", action="store_true", help="list the scenarios")
    p.add_argument("--cleanup", action="store_true",
                   help="heal whatever a drill left on the machines, then exit")
    # Reads served by one member without a read barrier (possibly stale): only to prove
    # that the checks catch a broken store configuration.
    p.add_argument("--unsafe-stale-reads", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _enter_netns(name: str | None) -> None:
    if name:
        netns.setns_thread_initializer(netns.netns_path(name))


def cleanup(inv_path: Path, cdir: ClusterDir) -> int:
    inv = load_inventory(inv_path)
    view = runner.fleet_view(inv, cdir)
    with open_fleet(inv, probe=False) as fleet:
        f = Faults(fleet.connections, view.machines, view.peer_port)
        _, errors = each(list(view.machines), f.cleanup)
    for name, exc in errors.items():
        print(f"kubelite drill: {name}: {exc}", file=sys.stderr)
    print("drill leftovers removed" if not errors else "some machines could not be cleaned")
    return 0 if not errors else EXIT_ERROR


async def _run(drill: runner.Runner) -> dict:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    return await drill.run()


def run(args: argparse.Namespace) -> int:
    inv = load_inventory(Path(args.inventory))
    cdir = ClusterDir.at(args.dir)
    view = runner.fleet_view(inv, cdir)
    options = runner.DrillOptions(
        scenario=args.scenario, duration=args.duration, seed=args.seed,
        report_dir=(args.report or Path(f"drill-{args.scenario}-{args.seed}")).resolve(),
        op_timeout=args.op_timeout, api_clients=args.clients, store_clients=args.clients,
        list_clients=max(1, args.clients - 1), unsafe_stale_reads=args.unsafe_stale_reads)
    with open_fleet(inv, probe=False) as fleet:
        drill = runner.Runner(view, fleet.connections, options,
                              out=lambda line: print(line, flush=True))
        try:
            summary = asyncio.run(_run(drill))
        except (KeyboardInterrupt, asyncio.CancelledError):
            print("kubelite drill: interrupted; every fault was healed", file=sys.stderr)
            return EXIT_ERROR
        finally:
            _, errors = each(list(view.machines), drill.faults.cleanup)
            for name, exc in errors.items():
                print(f"kubelite drill: cleanup on {name} failed: {exc}; run "
                      "`kubelite drill --cleanup`", file=sys.stderr)
    for name, check in summary["checks"].items():
        print(f"{name:22} {'ok' if check['ok'] else 'FAILED'}  {check.get('detail', '')}"[:300])
    print(f"write unavailability: store {summary['unavailable']['store']}, "
          f"api {summary['unavailable']['api']}")
    print(f"report: {options.report_dir}/report.md")
    return 0 if summary["ok"] else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.list:
        for name, what in scenarios.SCENARIOS.items():
            print(f"{name:20} {what}")
        return 0
    try:
        inv = load_inventory(Path(args.inventory))
        _enter_netns(inv.access.netns)
        if args.cleanup:
            return cleanup(Path(args.inventory), ClusterDir.at(args.dir))
        if not args.scenario:
            parser().error("which scenario? (kubelite drill --list)")
        if args.scenario not in scenarios.SCENARIOS:
            parser().error(f"unknown scenario {args.scenario!r} (kubelite drill --list)")
        return run(args)
    except (InventoryError, runner.DrillError, scenarios.ScenarioError, FaultError,
            ssh.SshError, netns.NetnsError, OSError) as exc:
        print(f"kubelite drill: {exc}", file=sys.stderr)
    except FleetError as exc:
        print("kubelite drill: cannot reach the fleet:\n  " + "\n  ".join(exc.problems),
              file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
