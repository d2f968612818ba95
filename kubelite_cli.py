"""The `kubelite` command: one entry point, one sub-command per process.

This module only dispatches. `kubelite <sub-command> [args...]` imports the package
module named in `SUBCOMMANDS` when (and only when) that sub-command is asked for, and
calls its `main(argv)`, which returns the exit code:

- a module that serves one sub-command gets the arguments after it:
  `kubelite store --name m1` calls `store.main.main(["--name", "m1"])`;
- a module that serves several gets the sub-command name first, to dispatch on:
  `kubelite up -i fleet.yaml` calls `provisioning.main.main(["up", "-i", "fleet.yaml"])`.

Importing lazily keeps `kubelite agent` from loading the store, and lets each package
ship its `main` when it is ready; until then the sub-command says it is not available.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple


class Subcommand(NamedTuple):
    module: str
    summary: str
    pass_name: bool = False  # the module serves several sub-commands: argv[0] names one


SUBCOMMANDS: dict[str, Subcommand] = {
    "store": Subcommand("store.main", "run one member of the replicated key-value store"),
    "apiserver": Subcommand("apiserver.main", "serve the Kubernetes-style REST API"),
    "kubeconfig": Subcommand(
        "apiserver.kubeconfig_cli", "write a kubeconfig for kubectl and kubelite's clients"
    ),
    "scheduler": Subcommand(
        "controllers.main", "bind pending pods to nodes (leader-elected)", pass_name=True
    ),
    "controller-manager": Subcommand(
        "controllers.main", "run the reconciling controllers (leader-elected)", pass_name=True
    ),
    "agent": Subcommand("agents.main", "run the node agent: pods, networking, heartbeats"),
    "top": Subcommand("agents.top", "show nodes' cpu and memory usage (top nodes)"),
    "up": Subcommand(
        "provisioning.main", "provision a fleet over SSH from an inventory", pass_name=True
    ),
    "down": Subcommand("provisioning.main", "tear a provisioned fleet down", pass_name=True),
    "status": Subcommand("provisioning.main", "show the health of a fleet", pass_name=True),
    "join": Subcommand("provisioning.main", "add a machine to a running fleet", pass_name=True),
    "drill": Subcommand(
        "provisioning.drills.main", "inject faults into a fleet and check the history"
    ),
    "certs": Subcommand(
        "provisioning.main", "show certificate expiry, renew certificates", pass_name=True
    ),
    "snapshot": Subcommand(
        "provisioning.main", "save, list and restore store backups", pass_name=True
    ),
    "supervise": Subcommand(
        "provisioning.supervisor", "keep a machine's kubelite processes running (no systemd)"
    ),
    "lab": Subcommand(
        "provisioning.lab", "create or remove the local network-namespace lab"
    ),
}

EXIT_USAGE = 2


def usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = [
        "usage: kubelite <sub-command> [args...]",
        "",
        "A Kubernetes-style cluster stack. Sub-commands:",
        "",
    ]
    lines += [f"  {name:<{width}}  {sub.summary}" for name, sub in SUBCOMMANDS.items()]
    lines += ["", "Run `kubelite <sub-command> --help` for its options."]
    return "\n".join(lines)


def _load(module_name: str) -> Callable[[list[str]], int | None] | None:
    """Import `module_name` and return its `main`, or None if that part is not built yet.

    Only a missing module itself (or its package) counts as "not available": an import
    error raised from inside an existing module is a real bug and propagates.
    """
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            return None
        raise
    return getattr(module, "main", None)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(usage(), file=sys.stderr)
        return EXIT_USAGE
    if args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = args[0], args[1:]
    sub = SUBCOMMANDS.get(name)
    if sub is None:
        print(f"kubelite: unknown sub-command {name!r}\n\n{usage()}", file=sys.stderr)
        return EXIT_USAGE
    entry = _load(sub.module)
    if entry is None:
        print(
            f"kubelite: sub-command {name!r} is not available yet "
            f"({sub.module}.main(argv) does not exist in this build)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    result = entry([name, *rest] if sub.pass_name else rest)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
