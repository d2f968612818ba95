"""The lab's life cycle: create its machines (`up`) and remove them again (`down`).

Layout and files are decided in provisioning.lab_plan; this module makes them real.
Each machine is a network namespace with a veth into a bridge that lives in a separate
namespace (<prefix>-ctl), so no link joins the lab to the root namespace and no machine
has a route out. Its sshd runs as PID 1 of fresh mount, UTS, IPC and PID namespaces
(`ip netns exec M unshare ... --fork --kill-child`), after a boot script gave it a
hostname, overlays on /etc and /var (writes land in DIR/<machine>/), private tmpfs on
/run and /tmp and the shared directories bound back. What runs over SSH therefore sees
its machine's files and processes only, and SIGKILL to that PID 1 is a power cut.

Everything `up` creates is written to DIR/lab.json *before* it is created (and struck
off again if creating it fails, because then the name is someone else's), so `down`
removes exactly that: processes by PID and start time, namespaces by name, the guard
route, the files. It works after a partial or failed `up`, and `up` rolls itself back
on failure.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provisioning import lab_plan, netns
from provisioning.lab_plan import LabPlan, Machine

SSHD = "/usr/sbin/sshd"
STATE_FILE = "lab.json"
INVENTORY_FILE = "inventory.yaml"
KEY_FILE = "id_ed25519"
KNOWN_HOSTS_FILE = "known_hosts"
MACHINE_CONFIG_DIR = "/etc/ssh/lab"     # where a machine sees its sshd files
READY_TIMEOUT = 30.0
EXIT_TIMEOUT = 10.0
POLL = 0.05
IP_TIMEOUT = 10.0
UNREACHABLE_PROBE = "192.0.2.1"       # TEST-NET-1: any address outside the lab will do

# Launchers started by this process, kept so that down() reaps them (no zombies, and no
# "still running" warning when a Popen is collected).
_children: dict[int, subprocess.Popen[bytes]] = {}


class LabError(RuntimeError):
    """The lab cannot be created, or an operation on it failed; the message says why."""


# --- checks ---------------------------------------------------------------------------

def preflight(sshd: str = SSHD) -> None:
    """Refuse early, with the fix in the message, when this host cannot run a lab."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (it creates network namespaces, mounts and "
                       "routes); run it as root, e.g. with sudo")
    for tool in ("ip", "unshare", "nsenter", "mount"):
        if shutil.which(tool) is None:
            raise LabError(f"`{tool}` is missing (packages iproute2 / util-linux / mount)")
    if not os.access(sshd, os.X_OK):
        raise LabError(f"{sshd} is missing: lab machines run Debian's openssh-server; "
                       "run scripts/setup.sh as root, which installs it")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*netns.ip_argv(), *args], capture_output=True, text=True,
                          timeout=IP_TIMEOUT, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


def root_networks() -> list[ipaddress.IPv4Network]:
    routes = _ip("-o", "-4", "route", "show", "table", "all").stdout.splitlines()
    addrs = _ip("-o", "-4", "addr", "show").stdout.splitlines()
    return lab_plan.root_networks(routes, addrs)


def free_subnet(prefix: str, base: str = "10.251", tries: int = 32) -> str:
    """A /24 under base.0.0/16, derived from the prefix, that the root namespace does not
    use yet (so parallel labs with their own prefixes get their own subnets)."""
    taken = root_networks()
    for attempt in range(tries):
        subnet = lab_plan.subnet_for(prefix, base, attempt)
        if not lab_plan.subnet_taken(subnet, taken):
            return subnet
    raise LabError(f"no free /24 under {base}.0.0/16 for prefix {prefix} after {tries} tries")


def check_free(plan: LabPlan) -> None:
    """Refuse a lab whose namespace names or subnet something else already uses."""
    taken = [n for n in plan.netns_names if netns.exists(n)]
    if taken:
        raise LabError(f"network namespaces already exist: {', '.join(taken)} (another "
                       "lab? pick another --prefix, or `kubelite lab down` it)")
    if lab_plan.subnet_taken(plan.subnet, root_networks()):
        raise LabError(f"{plan.cidr} is already routed or addressed in the root namespace; "
                       "pick another --subnet")


# --- state ----------------------------------------------------------------------------

def state_path(directory: Path) -> Path:
    return directory / STATE_FILE


def load_state(directory: Path) -> dict | None:
    try:
        return json.loads(state_path(directory).read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise LabError(f"{state_path(directory)} is damaged ({exc}); remove the lab's "
                       "namespaces by hand (`ip netns list`)") from exc


def _save(directory: Path, state: dict) -> None:
    tmp = directory / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, state_path(directory))


def plan_of(state: dict) -> LabPlan:
    machines = tuple(Machine(m["name"], m["role"], m["index"], m["address"])
                     for m in state["machines"])
    return LabPlan(state["prefix"], state["subnet"], machines)


def _identity(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def alive(pid: int | None, created: float | None) -> bool:
    """The recorded process still runs (same PID and start time, not a zombie)."""
    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        return proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# --- up -------------------------------------------------------------------------------

def _keypair(comment: str) -> tuple[bytes, str]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} {comment}\n"


def _write(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(path, mode)


def _claim(directory: Path, state: dict, key: str, value: str, argv: list[str],
           taken: str) -> None:
    """Record `value` under state[key], then create it with `ip argv`. Recorded first so
    that down() removes it even if we die right after creating it; un-recorded if the
    creation fails, because then it is someone else's (never adopt, never delete it)."""
    state[key].append(value)
    _save(directory, state)
    proc = _ip(*argv, check=False)
    if proc.returncode != 0:
        state[key].remove(value)
        _save(directory, state)
        raise LabError(f"{taken}: {proc.stderr.strip()}")


def _add_netns(directory: Path, state: dict, name: str) -> None:
    _claim(directory, state, "netns", name, ["netns", "add", name],
           f"network namespace {name} cannot be created (taken meanwhile?)")
    _ip("-n", name, "link", "set", "lo", "up")


def _network(directory: Path, plan: LabPlan, state: dict) -> None:
    ctl = plan.ctl_netns
    # The guard first: from now on no lab address can leave through the default route.
    _claim(directory, state, "guard_routes", plan.cidr,
           ["route", "add", "unreachable", plan.cidr],
           f"{plan.cidr} is taken (its guard route cannot be added); pick another --subnet")
    _add_netns(directory, state, ctl)
    _ip("-n", ctl, "link", "add", lab_plan.BRIDGE, "type", "bridge")
    _ip("-n", ctl, "addr", "add", f"{plan.gateway}/24", "dev", lab_plan.BRIDGE)
    _ip("-n", ctl, "link", "set", lab_plan.BRIDGE, "up")
    for m in plan.machines:
        _add_netns(directory, state, m.name)
        _ip("-n", ctl, "link", "add", m.port_name, "type", "veth", "peer", "name", "eth0",
            "netns", m.name)
        _ip("-n", ctl, "link", "set", m.port_name, "master", lab_plan.BRIDGE, "up")
        _ip("-n", m.name, "addr", "add", f"{m.address}/24", "dev", "eth0")
        _ip("-n", m.name, "link", "set", "eth0", "up")
    for name in plan.netns_names:
        probe = _ip("-n", name, "route", "get", UNREACHABLE_PROBE, check=False)
        if probe.returncode == 0:
            raise LabError(f"{name} can route beyond the lab: {probe.stdout.strip()}")


def _machine_files(directory: Path, plan: LabPlan, m: Machine, authorized: str,
                   shares: list[str], sshd: str) -> tuple[Path, str]:
    """Write one machine's state directory; return it and its public host key."""
    d = directory / m.name
    if d.exists():
        shutil.rmtree(d)
    config = d / "etc-upper" / MACHINE_CONFIG_DIR.removeprefix("/etc/")
    private, public = _keypair(m.name)
    _write(config / "ssh_host_ed25519_key", private, 0o600)
    _write(config / "ssh_host_ed25519_key.pub", public)
    _write(config / "authorized_keys", authorized)
    _write(config / "sshd_config", lab_plan.sshd_config(MACHINE_CONFIG_DIR))
    _write(d / "etc-upper" / "hostname", m.name + "\n")
    _write(d / "etc-upper" / "hosts", lab_plan.etc_hosts(plan))
    for sub in ("etc-work", "var-upper", "var-work"):
        (d / sub).mkdir(parents=True)
    _write(d / "boot.sh", lab_plan.boot_script(m.name, str(d), shares, sshd,
                                               f"{MACHINE_CONFIG_DIR}/sshd_config"))
    return d, public


def _init_pid(m: Machine, launcher: int, log: Path, deadline: float) -> int:
    """The machine's PID 1, as seen here: the one child that unshare forks."""
    path = f"/proc/{launcher}/task/{launcher}/children"
    while time.monotonic() < deadline:
        try:
            children = Path(path).read_text().split()
            exited = psutil.Process(launcher).status() == psutil.STATUS_ZOMBIE
        except (OSError, psutil.Error):
            children, exited = [], True
        if children:
            return int(children[0])
        if exited:
            raise LabError(f"{m.name} stopped while booting:\n{_log_tail(log)}")
        time.sleep(POLL)
    raise LabError(f"{m.name}: the launcher {launcher} did not start the machine's init")


def _boot(directory: Path, m: Machine, machine_dir: Path, state: dict,
          deadline: float) -> None:
    log = open(machine_dir / "boot.log", "ab")  # noqa: SIM115 (the child keeps it)
    with log:
        proc = subprocess.Popen(
            [*netns.ip_argv(), "netns", "exec", m.name, "unshare", "--mount", "--uts", "--ipc",
             "--pid", "--fork", "--kill-child=SIGKILL", "--mount-proc",
             "/bin/sh", str(machine_dir / "boot.sh")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    _children[proc.pid] = proc
    record = next(r for r in state["machines"] if r["name"] == m.name)
    record.update(launcher_pid=proc.pid, launcher_created=_identity(proc.pid))
    _save(directory, state)
    init = _init_pid(m, proc.pid, machine_dir / "boot.log", deadline)
    record.update(init_pid=init, init_created=_identity(init))
    _save(directory, state)


def ssh_answers(dialer: netns.NetnsDialer, address: str) -> bool:
    try:
        with dialer.connect(address, lab_plan.SSH_PORT, timeout=2.0) as s:
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_ready(directory: Path, plan: LabPlan, state: dict, deadline: float) -> None:
    records = {r["name"]: r for r in state["machines"]}
    with netns.NetnsDialer(netns.netns_path(plan.ctl_netns)) as dialer:
        for m in plan.machines:
            r = records[m.name]
            while not ssh_answers(dialer, m.address):
                if not alive(r["init_pid"], r["init_created"]):
                    raise LabError(f"{m.name} stopped while booting:\n"
                                   f"{_log_tail(directory / m.name / 'boot.log')}")
                if time.monotonic() > deadline:
                    raise LabError(f"sshd on {m.name} did not answer in time:\n"
                                   f"{_log_tail(directory / m.name / 'boot.log')}")
                time.sleep(POLL)


def default_shares() -> list[str]:
    """This code and its Python environment, which every machine must see."""
    return [str(Path(__file__).resolve().parents[1]), sys.prefix]


def up(plan: LabPlan, directory: Path, *, shares: list[str] | None = None, sshd: str = SSHD,
       ready_timeout: float = READY_TIMEOUT) -> dict:
    """Create the lab and wait until every sshd answers; return the recorded state.

    On any failure everything created so far is removed again and the error raised.
    """
    preflight(sshd)
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    if load_state(directory) is not None:
        raise LabError(f"{directory} already holds a lab; `kubelite lab down --dir "
                       f"{directory}` first")
    check_free(plan)
    bound = lab_plan.shares_for([*default_shares(), *(shares or [])])
    state: dict = {
        "prefix": plan.prefix, "subnet": plan.subnet, "ctl_netns": plan.ctl_netns,
        "dir": str(directory), "guard_routes": [], "netns": [], "shares": bound,
        "files": [], "ready": False,
        "machines": [{"name": m.name, "role": m.role, "index": m.index,
                      "address": m.address, "launcher_pid": None, "launcher_created": None,
                      "init_pid": None, "init_created": None} for m in plan.machines],
    }
    _save(directory, state)
    try:
        _network(directory, plan, state)
        key_path, known_path = directory / KEY_FILE, directory / KNOWN_HOSTS_FILE
        inventory_path = directory / INVENTORY_FILE
        state["files"] = [str(p) for p in (key_path, key_path.with_suffix(".pub"),
                                           known_path, inventory_path)]
        _save(directory, state)
        private, public = _keypair(f"kubelite-lab-{plan.prefix}")
        _write(key_path, private, 0o600)
        _write(key_path.with_suffix(".pub"), public)
        deadline = time.monotonic() + ready_timeout
        host_keys = {}
        for m in plan.machines:
            machine_dir, host_keys[m.name] = _machine_files(directory, plan, m, public,
                                                            bound, sshd)
            _boot(directory, m, machine_dir, state, deadline)
        _wait_ready(directory, plan, state, deadline)
        _write(known_path, lab_plan.known_hosts(plan, host_keys))
        _write(inventory_path, lab_plan.render_inventory(plan, str(key_path), str(known_path)))
        state["ready"] = True
        _save(directory, state)
        return state
    except BaseException as exc:
        for problem in down(directory):
            exc.add_note(f"cleanup: {problem}")
        raise


# --- down -----------------------------------------------------------------------------

def _wait_gone(pid: int | None, created: float | None, deadline: float) -> None:
    while alive(pid, created) and time.monotonic() < deadline:
        time.sleep(POLL)


def _stop_machine(record: dict, deadline: float) -> None:
    """Power the machine off: SIGKILL its init (the kernel kills the rest of its PID
    namespace, and unshare reaps it and exits); SIGKILL unshare only if it lingers."""
    for role in ("init", "launcher"):
        pid, created = record.get(f"{role}_pid"), record.get(f"{role}_created")
        if alive(pid, created):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _wait_gone(pid, created, deadline)
    child = _children.pop(record.get("launcher_pid") or -1, None)
    if child is not None:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _children[child.pid] = child


def _netns_pids(name: str) -> list[int]:
    proc = _ip("netns", "pids", name, check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def down(directory: Path) -> list[str]:
    """Remove everything the lab in `directory` recorded; return what could not be
    removed (empty when all went). Idempotent; the state file stays while anything is
    left, so that a second `down` can retry."""
    directory = directory.resolve()
    state = load_state(directory)
    if state is None:
        return []
    problems: list[str] = []
    deadline = time.monotonic() + EXIT_TIMEOUT
    spared = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    for record in state["machines"]:
        _stop_machine(record, deadline)
        if alive(record.get("init_pid"), record.get("init_created")):
            problems.append(f"{record['name']}: init {record['init_pid']} still runs")
    for name in reversed(state["netns"]):
        if not netns.exists(name):
            continue
        # Processes entered into the lab's namespaces from outside (`lab exec`, tests)
        # belong to the lab as well; they would keep the namespace alive.
        for pid in set(_netns_pids(name)) - spared:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            netns.remove(name)
        except netns.NetnsError as exc:
            problems.append(str(exc))
    for cidr in state.get("guard_routes", []):
        proc = _ip("route", "del", "unreachable", cidr, check=False)
        if proc.returncode != 0 and "No such process" not in proc.stderr:
            problems.append(f"guard route {cidr}: {proc.stderr.strip()}")
    if problems:
        return problems
    for record in state["machines"]:
        shutil.rmtree(directory / record["name"], ignore_errors=True)
    for path in state.get("files", []):
        Path(path).unlink(missing_ok=True)
    state_path(directory).unlink(missing_ok=True)
    try:
        directory.rmdir()
    except OSError:
        pass  # holds files that are not the lab's
    return []
