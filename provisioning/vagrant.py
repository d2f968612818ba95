"""A Vagrant fleet as an inventory: `kubelite up --vagrant DIR` provisions the VMs that
DIR's Vagrantfile runs, like any other machines.

What each machine becomes, and where each fact comes from:
- which machines exist and whether they run: `vagrant status` (python-vagrant
  `status()`). Every machine must be running; otherwise the error names the others and
  says to run `vagrant up` first, since provisioning half a fleet builds a cluster with
  the wrong members;
- role and address: the Vagrantfile's own machine table. kubelite's Vagrantfile writes
  it as JSON to the path in KUBELITE_VAGRANT_FLEET whenever Vagrant loads it, so the
  same `vagrant status` call yields it. A machine missing from the table gets its role
  from its name (cp*/control* or w*/worker*);
- the address is the machine's private_network IP, not the HostName of
  `vagrant ssh-config`: that one is the provider's management NIC (libvirt's DHCP
  network, or VirtualBox's NAT port on 127.0.0.1:2222) which other machines cannot
  reach, while the private address is both where kubelite dials SSH (port 22) and
  what the node is known by;
- user and key: `vagrant ssh-config` (python-vagrant `conf()`): User, IdentityFile,
  with sudo, as Vagrant boxes log in as an unprivileged user with password-less sudo.

The decisions (`machines_from`, `parse_fleet`, `role_from_name`) are pure and tested on
python-vagrant's results as recorded from the real tool; `inventory_from_vagrant` only
gathers them.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from provisioning.inventory import (
    CONTROL_PLANE,
    WORKER,
    Access,
    ClusterSettings,
    Inventory,
    InventoryError,
    Machine,
    raise_if_invalid,
)

FLEET_ENV = "KUBELITE_VAGRANT_FLEET"
RUNNING = "running"
SSH_PORT = 22
DEFAULT_USER = "vagrant"
_ROLE_PREFIXES = ((CONTROL_PLANE, ("cp", "control")), (WORKER, ("w", "worker")))


class VagrantError(InventoryError):
    """The Vagrant fleet cannot be used as an inventory (yet)."""

    def __init__(self, message: str) -> None:
        super().__init__([message])


class StatusLike(Protocol):
    """What python-vagrant's Status namedtuple carries."""

    @property
    def name(self) -> str: ...
    @property
    def state(self) -> str | None: ...
    @property
    def provider(self) -> str | None: ...


class VagrantLike(Protocol):
    """The part of python-vagrant's Vagrant this module uses."""

    env: Mapping[str, str] | None

    def status(self, vm_name: str | None = None) -> Sequence[StatusLike]: ...
    def conf(self, ssh_config: str | None = None, vm_name: str | None = None) -> dict[str, str]: ...


# --- pure -----------------------------------------------------------------------------

def parse_fleet(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(private address by machine, role by machine) from the Vagrantfile's table:
    {"machines": [{"name", "role", "ip", ...}]}."""
    try:
        entries = json.loads(text)["machines"]
        ips = {str(e["name"]): str(e["ip"]) for e in entries}
        roles = {str(e["name"]): str(e["role"]) for e in entries if "role" in e}
    except (ValueError, KeyError, TypeError) as exc:
        raise VagrantError(f"the Vagrantfile's machine table is not readable: {exc}") from None
    return ips, roles


def role_from_name(name: str) -> str | None:
    """control-plane for cp1/control-2, worker for w1/worker3; None otherwise."""
    for role, prefixes in _ROLE_PREFIXES:
        for prefix in prefixes:
            rest = name[len(prefix):]
            if name.startswith(prefix) and (rest == "" or rest.lstrip("-_").isdigit()):
                return role
    return None


def error_exit(output: bytes | str | None) -> str:
    """The message of an `error-exit` line of vagrant's --machine-readable output, which
    is where vagrant reports a failure in that mode (stdout, not stderr)."""
    text = output.decode(errors="replace") if isinstance(output, bytes) else output or ""
    for line in text.splitlines():
        parts = line.split(",", 4)
        if len(parts) == 5 and parts[2] == "error-exit":
            message = parts[4].replace("%!(VAGRANT_COMMA)", ",").replace("\\n", " ")
            return " ".join(message.split())
    return ""


def not_running(statuses: Sequence[StatusLike]) -> list[StatusLike]:
    return [s for s in statuses if s.state != RUNNING]


def describe_stopped(statuses: Sequence[StatusLike], directory: str) -> str:
    listed = ", ".join(f"{s.name} ({s.state or 'unknown'})" for s in statuses)
    return (f"Vagrant machines not running: {listed}; run `vagrant up` in {directory} "
            "first")


def machines_from(statuses: Sequence[StatusLike], confs: Mapping[str, Mapping[str, str]],
                  private_ips: Mapping[str, str],
                  roles: Mapping[str, str] | None = None, *,
                  directory: str = ".") -> list[Machine]:
    """One Machine per Vagrant machine, in the Vagrantfile's order. `confs` are
    python-vagrant's parsed `vagrant ssh-config` per machine; `private_ips` and `roles`
    come from the Vagrantfile's table. Raises VagrantError naming every machine that
    is not running, or that lacks what kubelite needs."""
    if not statuses:
        raise VagrantError(f"the Vagrantfile in {directory} defines no machines")
    stopped = not_running(statuses)
    if stopped:
        raise VagrantError(describe_stopped(stopped, directory))
    roles = roles or {}
    machines, problems = [], []
    for s in statuses:
        conf, ip = confs.get(s.name), private_ips.get(s.name)
        role = roles.get(s.name) or role_from_name(s.name)
        if conf is None:
            problems.append(f"{s.name}: no `vagrant ssh-config` for it")
        if ip is None:
            problems.append(f"{s.name}: no private_network address known (kubelite's "
                            f"Vagrantfile publishes them through {FLEET_ENV})")
        if role is None:
            problems.append(f"{s.name}: cannot tell its role: name control planes cp1.. "
                            "and workers w1..")
        if conf is None or ip is None or role is None:
            continue
        machines.append(Machine(
            name=s.name, address=ip, port=SSH_PORT, user=conf.get("User") or DEFAULT_USER,
            key=conf.get("IdentityFile"), role=role, sudo=True))
    if problems:
        raise VagrantError("; ".join(problems))
    return machines


# --- I/O ------------------------------------------------------------------------------

def inventory_from_vagrant(directory: str | os.PathLike[str], *,
                           vagrant: VagrantLike | None = None,
                           env: Mapping[str, str] | None = None,
                           cluster: ClusterSettings | None = None) -> Inventory:
    """The running fleet of `directory`'s Vagrantfile as an Inventory. `vagrant`: a
    python-vagrant Vagrant to use (default: one for `directory` with `env`, or this
    process's environment); `cluster`: settings beyond the machines."""
    where = str(Path(directory).resolve())
    if not (Path(where) / "Vagrantfile").is_file():
        raise VagrantError(f"no Vagrantfile in {where}")
    with tempfile.TemporaryFile() as stderr:
        v = vagrant if vagrant is not None else _vagrant(where, env, stderr)
        with tempfile.TemporaryDirectory(prefix="kubelite-vagrant-") as tmp:
            fleet_file = Path(tmp) / "fleet.json"
            with _extra_env(v, {FLEET_ENV: str(fleet_file)}):
                statuses = _call(v.status, "vagrant status", where, stderr)
            fleet = fleet_file.read_text() if fleet_file.is_file() else '{"machines": []}'
        private_ips, roles = parse_fleet(fleet)
        stopped = not_running(statuses)
        if stopped:          # before ssh-config, which fails on a machine that is not up
            raise VagrantError(describe_stopped(stopped, where))
        confs = {s.name: _call(lambda name=s.name: v.conf(vm_name=name),
                               f"vagrant ssh-config {s.name}", where, stderr)
                 for s in statuses}
    machines = machines_from(statuses, confs, private_ips, roles, directory=where)
    inv = Inventory(tuple(machines), cluster or ClusterSettings(), Access())
    return raise_if_invalid(inv, source=f"{where}/Vagrantfile", check_keys=False)


def _vagrant(root: str, env: Mapping[str, str] | None, stderr: Any) -> VagrantLike:
    import vagrant as python_vagrant  # imported late: it logs a warning without vagrant

    return python_vagrant.Vagrant(root=root, env=dict(env) if env is not None else None,
                                  err_cm=lambda: contextlib.nullcontext(stderr))


@contextlib.contextmanager
def _extra_env(v: VagrantLike, extra: Mapping[str, str]) -> Iterator[None]:
    """Run the next vagrant calls of `v` with `extra` added to its environment."""
    before = v.env
    v.env = {**(before if before is not None else os.environ), **extra}
    try:
        yield
    finally:
        v.env = before


def _call(fn: Any, what: str, where: str, stderr: Any) -> Any:
    """fn(), with python-vagrant's failures turned into VagrantError carrying the end of
    what vagrant printed on stderr."""
    stderr.seek(0)
    stderr.truncate()
    try:
        return fn()
    except RuntimeError as exc:          # python-vagrant: no vagrant executable
        raise VagrantError(f"{what}: {exc} (install Debian's vagrant package)") from None
    except subprocess.CalledProcessError as exc:
        stderr.seek(0)
        detail = error_exit(exc.output) or " ".join(
            stderr.read().decode(errors="replace").split()[-60:])
        raise VagrantError(f"{what} failed in {where} (exit {exc.returncode})"
                           + (f": {detail}" if detail else "")) from None
