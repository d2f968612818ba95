"""Preflight: find every reason the fleet cannot be provisioned, before changing anything.

One probe per machine, a POSIX `sh` script run over SSH, prints raw facts one per
line (`key value`): Python's version, the listening TCP ports (read from
/proc/net/tcp{,6}, so no privilege or tool is needed), its clock, whether sudo works,
free space on the data directory's filesystem, systemd as PID 1, architecture, kernel
and the tools the agent needs. It does not need Python, so a machine without it is
reported as such rather than as a failed probe. Everything else is decided here on the
operator's side by pure functions: `parse_probe` turns the output into `Facts`, and
`problems` turns facts into messages that name the machine and what to do.

Clock skew is measured with round-trip correction: the probe prints its clock at its
start and its end; the end stamp was taken at some moment between (send + remote
run time) and (receive) on our clock, so its midpoint is the estimate and half that
interval is the uncertainty, which excludes the probe's own run time. A skew is a
problem only when it exceeds the limit by more than that uncertainty.

`gather` runs the probes on all connections in parallel; a probe that fails becomes a
fact (`Facts.error`) so that `all_problems` still reports every machine at once.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from provisioning import ssh

DEFAULT_DATA_DIR = "/var/lib/kubelite"
MIN_PYTHON = (3, 11)
MAX_SKEW = 2.0
MIN_DISK_BYTES = 2 * 1024**3
PROBE_TIMEOUT = 60.0
REQUIRED_TOOLS = ("ip", "nsenter", "nft")
PACKAGES = {"ip": "iproute2", "nsenter": "util-linux", "nft": "nftables",
            "python3": "python3"}
_LISTEN = "0A"                 # TCP_LISTEN in /proc/net/tcp's `st` column


@dataclass(frozen=True)
class Facts:
    """What the probe found on one machine (None where it could not tell)."""

    error: str | None = None                    # the probe itself failed
    python: tuple[int, ...] | None = None
    python_path: str | None = None
    uid: int | None = None
    arch: str | None = None
    kernel: str | None = None
    os_name: str | None = None
    pid1: str | None = None
    systemd: bool = False
    tools: dict[str, str] = field(default_factory=dict)
    listening: frozenset[int] = frozenset()
    disk_path: str | None = None
    disk_mount: str | None = None
    disk_free_bytes: int | None = None
    sudo: str = "unchecked"                     # "ok", "failed" or "unchecked"
    clock_skew: float | None = None             # remote minus ours, seconds
    skew_uncertainty: float | None = None


# --- the probe --------------------------------------------------------------------------


def probe_script(*, data_dir: str = DEFAULT_DATA_DIR, python: str = "python3",
                 check_sudo: bool = False, tools: Sequence[str] = REQUIRED_TOOLS) -> str:
    """The sh script whose output parse_probe reads."""
    q = shlex.quote
    lines = [
        'echo "start $(date +%s.%N)"',
        f"py={q(python)}",
        'if command -v "$py" >/dev/null 2>&1; then',
        '  echo "python_path $(command -v "$py")"',
        '  echo "python $("$py" -c \'import sys; print(*sys.version_info[:3], sep=".")\' '
        '2>/dev/null)"',
        "fi",
        'echo "uid $(id -u)"',
        'echo "arch $(uname -m)"',
        'echo "kernel $(uname -r)"',
        'echo "pid1 $(cat /proc/1/comm 2>/dev/null)"',
        '[ -d /run/systemd/system ] && echo "systemd yes"',
        '(. /etc/os-release 2>/dev/null && echo "os $PRETTY_NAME")',
        f"for t in {' '.join(q(t) for t in tools)}; do",
        '  p=$(command -v "$t" 2>/dev/null) && echo "tool $t $p"',
        "done",
        f"d={q(data_dir)}; n=0",
        'while [ ! -e "$d" ] && [ $n -lt 64 ]; do d=$(dirname "$d"); n=$((n+1)); done',
        'echo "df $d $(df -Pk "$d" 2>/dev/null | tail -n 1)"',
        "for f in /proc/net/tcp /proc/net/tcp6; do",
        '  [ -r "$f" ] || continue',
        '  while read -r sl addr rem st rest; do',
        f'    [ "$st" = {_LISTEN} ] && echo "listen $addr"',
        '  done < "$f"',
        "done",
    ]
    if check_sudo:
        lines.append('if [ "$(id -u)" != 0 ]; then '
                     'if sudo -n true >/dev/null 2>&1; then echo "sudo ok"; '
                     'else echo "sudo failed"; fi; fi')
    lines.append('echo "end $(date +%s.%N)"')
    return "\n".join(lines) + "\n"


def clock_skew(sent: float, received: float, remote_start: float,
               remote_end: float) -> tuple[float, float]:
    """(remote clock minus ours, uncertainty) from one round trip; see the module doc."""
    round_trip = max(0.0, received - sent)
    remote_run = min(max(0.0, remote_end - remote_start), round_trip)
    earliest = sent + remote_run
    midpoint = (earliest + received) / 2
    return remote_end - midpoint, (received - earliest) / 2


def _stamp(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        head = text.split(".")[0]     # a date(1) without %N prints "1700000000.N"
        return float(head) if head.isdigit() else None


def _port(local: str) -> int | None:
    _, _, port = local.rpartition(":")
    try:
        return int(port, 16)
    except ValueError:
        return None


def parse_probe(output: str, *, sent: float, received: float,
                check_sudo: bool = False) -> Facts:
    """Facts from the probe's output; `sent`/`received` bracket it on our clock."""
    values: dict[str, str] = {}
    tools: dict[str, str] = {}
    listening: set[int] = set()
    for line in output.splitlines():
        key, _, value = line.strip().partition(" ")
        value = value.strip()
        if key == "tool":
            name, _, path = value.partition(" ")
            tools[name] = path
        elif key == "listen":
            port = _port(value)
            if port is not None:
                listening.add(port)
        elif key:
            values[key] = value
    if "start" not in values or "end" not in values:
        return Facts(error="the probe did not run to its end:\n" + output[-500:])
    start, end = _stamp(values["start"]), _stamp(values["end"])
    skew = uncertainty = None
    if start is not None and end is not None:
        skew, uncertainty = clock_skew(sent, received, start, end)
    python = None
    if values.get("python"):
        parts = values["python"].split(".")
        if all(p.isdigit() for p in parts):
            python = tuple(int(p) for p in parts)
    disk_path = disk_mount = None
    disk_free = None
    df = values.get("df", "").split()
    # "<dir> <filesystem> <1024-blocks> <used> <available> <capacity> <mounted on>"
    if len(df) >= 7 and df[4].isdigit():
        disk_path, disk_free, disk_mount = df[0], int(df[4]) * 1024, df[6]
    uid = values.get("uid", "")
    sudo = "unchecked"
    if check_sudo:
        sudo = values.get("sudo", "ok" if uid == "0" else "failed")
    return Facts(
        python=python, python_path=values.get("python_path"),
        uid=int(uid) if uid.isdigit() else None,
        arch=values.get("arch") or None, kernel=values.get("kernel") or None,
        os_name=values.get("os") or None, pid1=values.get("pid1") or None,
        systemd=values.get("systemd") == "yes", tools=tools,
        listening=frozenset(listening), disk_path=disk_path, disk_mount=disk_mount,
        disk_free_bytes=disk_free, sudo=sudo, clock_skew=skew, skew_uncertainty=uncertainty)


# --- judging facts (pure) ---------------------------------------------------------------


def _gib(n: int) -> str:
    return f"{n / 1024**3:.1f} GiB"


def problems(machine_name: str, facts: Facts, *, required_ports: Iterable[int] = (),
             min_python: tuple[int, int] = MIN_PYTHON, max_skew: float = MAX_SKEW,
             min_disk_bytes: int = MIN_DISK_BYTES, python: str = "python3",
             required_tools: Sequence[str] = REQUIRED_TOOLS, sudo: bool = False,
             user: str = "root", require_systemd: bool = False,
             data_dir: str = DEFAULT_DATA_DIR) -> list[str]:
    """Every problem on one machine, each naming it and saying what to do."""
    m = machine_name
    if facts.error is not None:
        return [f"{m}: the preflight probe failed: {facts.error}"]
    found = []
    want = ".".join(map(str, min_python))
    if facts.python is None:
        found.append(f"{m}: {python} is missing — install Python {want} or newer "
                     f"(Debian/Ubuntu: apt-get install python3), or set the machine's "
                     f"`python:` in the inventory")
    elif facts.python[:2] < min_python:
        have = ".".join(map(str, facts.python))
        found.append(f"{m}: Python {have} ({facts.python_path}) is too old; kubelite needs "
                     f"{want} or newer — install a newer one and set `python:` in the "
                     "inventory")
    for port in sorted(set(required_ports) & facts.listening):
        found.append(f"{m}: port {port} is already in use — stop what listens there "
                     f"(see `ss -ltnp 'sport = :{port}'`) or choose another port in the "
                     "cluster settings")
    if facts.clock_skew is None:
        found.append(f"{m}: its clock could not be read (`date +%s` failed)")
    else:
        margin = facts.skew_uncertainty or 0.0
        if abs(facts.clock_skew) - margin > max_skew:
            side = "ahead of" if facts.clock_skew > 0 else "behind"
            found.append(f"{m}: its clock is {abs(facts.clock_skew):.1f} s {side} this "
                         f"machine's (±{margin:.2f} s); more than {max_skew:g} s breaks "
                         "leases and certificate checks — enable NTP (timedatectl "
                         "set-ntp true, or chrony)")
    if facts.uid not in (None, 0):
        if not sudo:
            found.append(f"{m}: {user} is not root and the inventory does not allow sudo "
                         "— set `sudo: true` for it (with passwordless sudo) or connect "
                         "as root")
        elif facts.sudo == "failed":
            found.append(f"{m}: `sudo -n true` failed for {user} — allow it passwordless "
                         f"sudo (a NOPASSWD line in /etc/sudoers.d/) or connect as root")
    if facts.disk_free_bytes is None:
        found.append(f"{m}: free space for {data_dir} could not be read (df failed)")
    elif facts.disk_free_bytes < min_disk_bytes:
        found.append(f"{m}: only {_gib(facts.disk_free_bytes)} free on {facts.disk_mount} "
                     f"(which will hold {data_dir}); needs at least {_gib(min_disk_bytes)} "
                     "— free space there or choose another data_dir")
    for tool in required_tools:
        if tool not in facts.tools:
            package = PACKAGES.get(tool, tool)
            found.append(f"{m}: `{tool}` is missing — install it (Debian/Ubuntu: "
                         f"apt-get install {package})")
    if require_systemd and not facts.systemd:
        found.append(f"{m}: systemd is not PID 1 (PID 1 is {facts.pid1}); services cannot "
                     "be installed as units — run without systemd units")
    return found


class Target(Protocol):
    @property
    def user(self) -> str: ...

    @property
    def sudo(self) -> bool: ...


def all_problems(facts: Mapping[str, Facts],
                 required_ports: Mapping[str, Iterable[int]] | Iterable[int] = (),
                 targets: Mapping[str, Target] | None = None, **limits: object) -> list[str]:
    """Every problem on every machine, machine by machine in `facts`' order.

    `required_ports` is one list for all machines or a list per machine name; `targets`
    (e.g. the ssh.SshTarget per name) says who connects and whether sudo is allowed.
    """
    found: list[str] = []
    for name, f in facts.items():
        ports = (required_ports.get(name, ()) if isinstance(required_ports, Mapping)
                 else required_ports)
        extra: dict[str, object] = dict(limits)
        if targets is not None and name in targets:
            extra.setdefault("sudo", targets[name].sudo)
            extra.setdefault("user", targets[name].user)
        found += problems(name, f, required_ports=ports, **extra)  # type: ignore[arg-type]
    return found


# --- running the probes -----------------------------------------------------------------


def probe(connection: ssh.Connection, *, data_dir: str = DEFAULT_DATA_DIR,
          python: str = "python3", timeout: float = PROBE_TIMEOUT,
          clock: Callable[[], float] = time.time) -> Facts:
    """Run the probe on one machine (no sudo: it only reads)."""
    check_sudo = connection.target.needs_sudo
    script = probe_script(data_dir=data_dir, python=python, check_sudo=check_sudo)
    try:
        sent = clock()
        result = connection.run(f"sh -c {shlex.quote(script)}", sudo=False, timeout=timeout)
        received = clock()
    except ssh.SshError as exc:
        return Facts(error=str(exc))
    return parse_probe(result.stdout, sent=sent, received=received, check_sudo=check_sudo)


def gather(connections: Mapping[str, ssh.Connection], *, data_dir: str = DEFAULT_DATA_DIR,
           python: str | Mapping[str, str] = "python3", timeout: float = PROBE_TIMEOUT,
           parallel: int = ssh.DEFAULT_PARALLEL,
           clock: Callable[[], float] = time.time) -> dict[str, Facts]:
    """Facts from every machine, probed in parallel, in `connections`' order."""
    def one(name: str) -> Facts:
        py = python if isinstance(python, str) else python.get(name, "python3")
        return probe(connections[name], data_dir=data_dir, python=py, timeout=timeout,
                     clock=clock)

    names = list(connections)
    with ThreadPoolExecutor(max_workers=max(1, parallel),
                            thread_name_prefix="preflight") as pool:
        return dict(zip(names, pool.map(one, names), strict=True))
