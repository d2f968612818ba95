"""The fleet as `up`, `join`, `status` and `down` see it: connections to every machine,
preflight, and running one function on many machines in parallel.

`open_fleet` connects to every machine at once and refuses with every unreachable
machine listed (nothing has been changed then). `preflight_problems` judges the probes
with the ports each machine will need, except those our own processes already hold
(a re-run must not trip over its own apiserver). `each` runs a function per machine
in threads and returns results and errors per machine, so one broken machine never
hides the others' outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from provisioning import preflight, ssh
from provisioning.inventory import Inventory, Machine
from provisioning.machine_config import HAPROXY, MachineConfig
from provisioning.plan import Observed, ports_in_use_by_us

log = logging.getLogger("kubelite.provisioning")
T = TypeVar("T")


class FleetError(RuntimeError):
    """Problems found before anything changed (or a step that failed): one per line."""

    def __init__(self, problems: list[str], changed: bool = False) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.changed = changed


@dataclass
class Fleet:
    inventory: Inventory
    connections: dict[str, ssh.Connection] = field(default_factory=dict)
    facts: dict[str, preflight.Facts] = field(default_factory=dict)

    @property
    def machines(self) -> dict[str, Machine]:
        return self.inventory.by_name

    def systemd(self, name: str) -> bool:
        facts = self.facts.get(name)
        return bool(facts and facts.systemd)

    def python(self, name: str) -> str:
        return self.machines[name].python

    def close(self) -> None:
        ssh.close_all(self.connections.values())
        self.connections.clear()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def targets(inv: Inventory, names: Iterable[str] | None = None) -> list[ssh.SshTarget]:
    wanted = set(names) if names is not None else None
    return [ssh.SshTarget.from_machine(m, inv.access.netns) for m in inv.machines
            if wanted is None or m.name in wanted]


def open_fleet(inv: Inventory, *, accept_new: bool = False, names: Iterable[str] | None = None,
               probe: bool = True) -> Fleet:
    """Connected (and probed) fleet, or FleetError listing every machine that failed."""
    known = Path(inv.access.known_hosts) if inv.access.known_hosts else None
    conns, errors = ssh.connect_all(targets(inv, names), known_hosts=known,
                                    accept_new=accept_new)
    if errors:
        ssh.close_all(conns.values())
        raise FleetError([str(e) for e in errors.values()])
    fleet = Fleet(inv, conns)
    if probe:
        fleet.facts = preflight.gather(conns, data_dir=inv.cluster.data_dir,
                                       python={n: fleet.python(n) for n in conns})
    return fleet


def preflight_problems(fleet: Fleet, desired: Mapping[str, MachineConfig],
                       observed: Mapping[str, Observed]) -> list[str]:
    found: list[str] = []
    inv = fleet.inventory
    for name, facts in fleet.facts.items():
        m = fleet.machines[name]
        want = desired.get(name)
        ports: set[int] = set(want.ports) if want else set()
        if want is not None and name in observed:
            ports -= ports_in_use_by_us(want, observed[name])
        found += preflight.problems(name, facts, required_ports=ports, python=m.python,
                                    sudo=m.sudo, user=m.user, data_dir=inv.cluster.data_dir,
                                    min_disk_bytes=MIN_DISK_BYTES)
        if m.is_control_plane and inv.cluster.load_balancer == "control-planes" \
                and name in fleet.connections and facts.error is None:
            found += _haproxy_problem(fleet.connections[name])
    return found


def _haproxy_problem(conn: ssh.Connection) -> list[str]:
    """The balancer runs on every control plane: HAProxy must be there."""
    result = conn.run(f"test -x {HAPROXY} || command -v haproxy", sudo=False, timeout=30)
    if result.ok:
        return []
    return [f"{conn.name}: HAProxy is missing ({HAPROXY}) — install it (Debian/Ubuntu: "
            "apt-get install haproxy), or set cluster.load_balancer to a balancer of your own"]


MIN_DISK_BYTES = 512 * 1024**2          # the venv and a store's journal fit with room


def each(names: Iterable[str], fn: Callable[[str], T], parallel: int = 16
         ) -> tuple[dict[str, T], dict[str, Exception]]:
    """fn(name) for every name in threads: (results, errors) keyed by name."""
    names = list(names)
    results: dict[str, T] = {}
    errors: dict[str, Exception] = {}

    def one(name: str) -> None:
        try:
            results[name] = fn(name)
        except Exception as exc:  # reported per machine with the others
            log.exception("%s failed", name)
            errors[name] = exc

    if names:
        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(names))),
                                thread_name_prefix="fleet") as pool:
            list(pool.map(one, names))
    return ({n: results[n] for n in names if n in results},
            {n: errors[n] for n in names if n in errors})
