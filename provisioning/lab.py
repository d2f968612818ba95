"""`kubelite lab`: a local fleet of SSH-reachable "machines" made of namespaces (root).

    kubelite lab up --control-planes 3 --workers 2 [--dir DIR] [--prefix lab] [--subnet 10.250.0]
    kubelite lab status [--dir DIR]
    kubelite lab exec MACHINE [--dir DIR] -- CMD...
    kubelite lab down [--dir DIR]

`up` creates <prefix>-ctl (the lab's bridge) and one network namespace per machine,
each with its own address <subnet>.(10+i), hostname, /etc, /var, /run, /tmp, PID space
and real sshd, and writes DIR/inventory.yaml: the SSH targets provisioning works on.
How: provisioning.lab_build; the layout: provisioning.lab_plan. The machines are
reachable only from inside <prefix>-ctl: from a program through provisioning.lab_ssh,
from a shell with `kubelite lab exec <prefix>-ctl -- ssh ...`, or as one port on this
host's 127.0.0.1 with `python -m provisioning.netns_forward`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from provisioning import lab_build, lab_plan, netns
from provisioning.lab_build import LabError

DEFAULT_DIR = ".kubelite-lab"
DEFAULT_PREFIX = "lab"

# --- status and exec ------------------------------------------------------------------

def status(directory: Path, probe: bool = True) -> list[dict]:
    """One row per machine: name, role, address, whether its init runs and (with
    `probe`, root only) whether its sshd answers."""
    state = lab_build.load_state(directory.resolve())
    if state is None:
        return []
    rows = []
    dialer = None
    if probe and netns.exists(state["ctl_netns"]):
        dialer = netns.NetnsDialer(netns.netns_path(state["ctl_netns"]))
    try:
        for r in state["machines"]:
            running = lab_build.alive(r.get("init_pid"), r.get("init_created"))
            ssh = None
            if dialer is not None:
                ssh = running and lab_build.ssh_answers(dialer, r["address"])
            rows.append({"name": r["name"], "role": r["role"], "address": r["address"],
                         "running": running, "ssh": ssh, "pid": r.get("init_pid")})
    finally:
        if dialer is not None:
            dialer.shutdown()
    return rows


def render_table(rows: list[dict]) -> str:
    header = ("NAME", "ROLE", "ADDRESS", "STATE", "SSH", "PID")
    lines = [header]
    for r in rows:
        ssh = "-" if r["ssh"] is None else ("up" if r["ssh"] else "down")
        lines.append((r["name"], r["role"], r["address"],
                      "running" if r["running"] else "stopped", ssh, str(r["pid"] or "-")))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def exec_argv(directory: Path, machine: str, argv: list[str]) -> list[str]:
    """The command line that runs argv "on" a machine (all its namespaces), or in the
    ctl namespace when `machine` names it."""
    state = lab_build.load_state(directory.resolve())
    if state is None:
        raise LabError(f"no lab in {directory.resolve()}")
    nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
    if machine == state["ctl_netns"]:
        return [nsenter, f"--net={netns.netns_path(machine)}", "--", *argv]
    for r in state["machines"]:
        if r["name"] == machine:
            if not lab_build.alive(r.get("init_pid"), r.get("init_created")):
                raise LabError(f"{machine} is not running")
            return [nsenter, "-t", str(r["init_pid"]), "-n", "-m", "-u", "-i", "-p",
                    "--wd=/", "--", *argv]
    names = [state["ctl_netns"], *(r["name"] for r in state["machines"])]
    raise LabError(f"no machine {machine!r} in this lab (have: {', '.join(names)})")


# --- command line ---------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubelite lab",
        description="A local fleet of machines made of network namespaces, each with its "
                    "own address, hostname, /etc, /var and sshd (needs root).")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--dir", type=Path, default=Path(DEFAULT_DIR),
                       help=f"the lab's state directory (default: ./{DEFAULT_DIR})")
        return p

    p = with_dir(sub.add_parser("up", help="create the machines and start their sshd"))
    p.add_argument("--control-planes", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--prefix", default=DEFAULT_PREFIX,
                   help="names: <prefix>-ctl, <prefix>-cp1.., <prefix>-w1.. (default: lab)")
    p.add_argument("--subnet", default=lab_plan.DEFAULT_SUBNET,
                   help="first three octets of the lab's /24 (default: 10.250.0), or "
                        "`auto`: a free 10.251.x chosen from the prefix")
    p.add_argument("--share", action="append", default=[], metavar="DIR",
                   help="also show this host directory in every machine (needed for "
                        "anything under /tmp or /run); repeatable")
    p.add_argument("--ready-timeout", type=float, default=lab_build.READY_TIMEOUT)
    with_dir(sub.add_parser("down", help="stop the machines and remove everything"))
    with_dir(sub.add_parser("status", help="show the machines"))
    p = with_dir(sub.add_parser("exec", help="run a command on a machine"))
    p.add_argument("machine", help="a machine name, or the ctl namespace's name")
    p.add_argument("cmd", nargs="*", help="after `--`: the command and its arguments")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in argv:  # everything after the first `--` is the command for `exec`
        at = argv.index("--")
        argv, command = argv[:at], argv[at + 1:]
    args = _parser().parse_args(argv)
    if command and args.command != "exec":
        _parser().error("`--` is only for `exec`")
    directory: Path = args.dir.resolve()
    try:
        if args.command == "up":
            subnet = args.subnet
            if subnet == "auto":
                lab_build.preflight()
                subnet = lab_build.free_subnet(lab_plan.check_prefix(args.prefix))
            plan = lab_plan.plan(args.prefix, args.control_planes, args.workers, subnet)
            lab_build.up(plan, directory, shares=args.share, ready_timeout=args.ready_timeout)
            print(render_table(status(directory)))
            print(f"\ninventory: {directory / lab_build.INVENTORY_FILE}\n"
                  f"ssh key:   {directory / lab_build.KEY_FILE}\n"
                  f"machines are reachable from namespace {plan.ctl_netns}, e.g. "
                  f"kubelite lab exec {plan.machines[0].name} -- hostname")
            return 0
        if args.command == "down":
            if os.geteuid() != 0:
                raise LabError("`lab down` needs root")
            problems = lab_build.down(directory)
            for problem in problems:
                print(f"kubelite lab: {problem}", file=sys.stderr)
            return 1 if problems else 0
        if args.command == "status":
            rows = status(directory, probe=os.geteuid() == 0)
            if not rows:
                print(f"no lab in {directory}")
                return 1
            print(render_table(rows))
            return 0 if all(r["running"] and r["ssh"] is not False for r in rows) else 1
        cmd = [*args.cmd, *command]
        if not cmd:
            raise LabError("nothing to run: kubelite lab exec MACHINE -- CMD...")
        if os.geteuid() != 0:
            raise LabError("`lab exec` needs root")
        return subprocess.run(exec_argv(directory, args.machine, cmd), check=False).returncode
    except (LabError, lab_plan.PlanError, netns.NetnsError) as exc:
        print(f"kubelite lab: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
