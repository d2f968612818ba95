"""What `up` must do on one machine: the difference between what it should run and what
it reports, decided without touching it.

A machine reports (`Observed`, gathered by provisioning/remote.py) the bundle its venv
was installed from, the sha256 of every file kubelite wrote, and its processes with the
`config_hash` each was started with and whether it still runs. `plan(desired, observed,
bundle)` returns the `MachinePlan`: install the bundle, write these files, start,
restart or stop these processes. An empty plan means "no change", which is what a second
`up` on a healthy fleet must find everywhere.

A new bundle restarts everything (processes run from the venv being replaced); a
changed file restarts only the processes whose config_hash covers it, which the
supervisor (or systemd) does when handed the new spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from provisioning.machine_config import MachineConfig


@dataclass(frozen=True)
class ProcessState:
    running: bool
    config_hash: str | None = None
    pid: int | None = None
    restarts: int = 0


@dataclass(frozen=True)
class Observed:
    bundle: str | None = None                                 # None: nothing installed
    files: Mapping[str, str] = field(default_factory=dict)  # path -> sha256 (present ones)
    processes: Mapping[str, ProcessState] = field(default_factory=dict)
    manager_running: bool = False                             # supervisor (or systemd units)

    @property
    def installed(self) -> bool:
        return self.bundle is not None or bool(self.files) or bool(self.processes)


@dataclass(frozen=True)
class MachinePlan:
    machine: str
    install: bool = False
    write: tuple[str, ...] = ()
    start: tuple[str, ...] = ()
    restart: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.install or self.write or self.start or self.restart or self.stop)

    def describe(self) -> str:
        if self.empty:
            return "no change"
        parts = []
        if self.install:
            parts.append("install kubelite")
        if self.write:
            parts.append(f"write {len(self.write)} file{'s' if len(self.write) != 1 else ''}")
        for verb, names in (("start", self.start), ("restart", self.restart),
                            ("stop", self.stop)):
            if names:
                parts.append(f"{verb} {', '.join(names)}")
        return "; ".join(parts)


def plan(desired: MachineConfig, observed: Observed, bundle: str) -> MachinePlan:
    install = observed.bundle != bundle
    write = tuple(path for path, spec in desired.files.items()
                  if observed.files.get(path) != spec.digest)
    start, restart = [], []
    for proc in desired.processes:
        state = observed.processes.get(proc.name)
        if state is None or not state.running:
            start.append(proc.name)
        elif install or state.config_hash != proc.config_hash:
            restart.append(proc.name)
    wanted = {p.name for p in desired.processes}
    stop = tuple(n for n, s in observed.processes.items() if n not in wanted and s.running)
    return MachinePlan(desired.name, install, write, tuple(start), tuple(restart), stop)


def ports_in_use_by_us(desired: MachineConfig, observed: Observed) -> set[int]:
    """Ports that our own running processes hold: not a preflight problem on a re-run."""
    ours = set()
    for proc in desired.processes:
        state = observed.processes.get(proc.name)
        if state is not None and state.running:
            ours.update(proc.ports)
    return ours
