"""Faults injected into a live fleet over SSH, and always taken back.

Everything runs as a shell command on the machine itself, so the lab's namespace
machines and real hosts are treated alike:

- processes are found by what runs them: the supervisor's pid files
  (`<data_dir>/run/<name>.pid`) or systemd's MainPID, and signalled by that PID only
  (SIGKILL a store member, SIGSTOP/SIGCONT to pause one);
- a process is held down by stopping its supervisor with SIGSTOP first, so nothing
  restarts it until SIGCONT (under systemd: `systemctl stop`/`start`);
- network faults are nftables rules in one table, `inet kubelite-drill`, installed with
  `nft -f` on the machine: drops between control planes (partitions), `numgen random`
  drops (loss), and, since this kernel has no netem, a delaying TCP proxy
  (provisioning/drills/delay_proxy.py) that a `redirect` rule puts in front of the
  store's peer port; a `reject with tcp reset` rule ends the peer connections that
  already exist, so the members reconnect through it. `tc netem` is probed and the
  result noted in the report, but the proxy is used on every kernel: it delays only
  the peer traffic (netem on the interface would delay clients and SSH too), and one
  path is then the one CI exercises. NFQUEUE would need a third-party binding.

Each fault owns its chains and one address set (`f<id>_peers`) in that table, so faults
heal one by one. The set's elements carry an nft timeout: should the drill itself die
(SIGKILL, power cut), its rules stop matching on their own a little after the planned
heal. Process faults get the same safety net from a detached `sleep; kill -CONT` on the
machine. And `kubelite drill --cleanup` heals everything at once: it removes the table,
stops delay proxies, resumes stopped kubelite processes and restarts a supervisor that
is gone.

The nft scripts and shell lines are built by pure functions (tested without a fleet);
`Faults` only sends them.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from provisioning import ssh, units
from provisioning.machine_config import Layout

TABLE = "kubelite-drill"
PROXY_MARK = 0x6B6C            # the delay proxy's own sockets: never redirected again
SAFETY_MARGIN = 30.0           # rules expire this long after their planned heal
COMMAND_TIMEOUT = 30.0
DRILL_DIR = "drill"            # under the data dir: the proxy's script, pid and log
q = shlex.quote


class FaultError(RuntimeError):
    """A fault could not be injected or healed; the message names the machine."""


@dataclass(frozen=True)
class MachineRef:
    """A machine as the drill acts on it."""

    name: str
    address: str
    role: str
    layout: Layout
    systemd: bool = False
    python: str = "python3"

    @property
    def drill_dir(self) -> str:
        return f"{self.layout.data_dir}/{DRILL_DIR}"


# --- nft scripts (pure) -----------------------------------------------------------------

def _chain(fid: str, suffix: str, hook: str, kind: str = "filter", priority: int = -5) -> str:
    return (f"add chain inet {TABLE} {fid}_{suffix} {{ type {kind} hook {hook} priority "
            f"{priority} ; policy accept ; }}")


def _set(fid: str, addresses: Sequence[str], ttl: float) -> list[str]:
    elements = ", ".join(f"{a} timeout {int(ttl) + 1}s" for a in sorted(set(addresses)))
    return [f"add table inet {TABLE}",
            f"add set inet {TABLE} {fid}_peers {{ type ipv4_addr ; flags timeout ; }}",
            f"add element inet {TABLE} {fid}_peers {{ {elements} }}"]


def drop_script(fid: str, peers: Sequence[str], ttl: float) -> str:
    """Drop everything to and from `peers` (a partition, seen from one side)."""
    return "\n".join([
        *_set(fid, peers, ttl),
        _chain(fid, "in", "input"),
        f"add rule inet {TABLE} {fid}_in ip saddr @{fid}_peers drop",
        _chain(fid, "out", "output"),
        f"add rule inet {TABLE} {fid}_out ip daddr @{fid}_peers drop",
    ]) + "\n"


def loss_script(fid: str, peers: Sequence[str], percent: int, ttl: float) -> str:
    """Drop `percent` % of the packets arriving from `peers` (each side does its own)."""
    if not 0 < percent < 100:
        raise ValueError(f"loss percent {percent} is not within 1..99")
    return "\n".join([
        *_set(fid, peers, ttl),
        _chain(fid, "in", "input"),
        f"add rule inet {TABLE} {fid}_in ip saddr @{fid}_peers numgen random mod 100 < "
        f"{percent} drop",
    ]) + "\n"


def cut_off_script(fid: str, others: Sequence[str], ttl: float, ssh_port: int = 22) -> str:
    """The machine answers nothing but SSH (so the drill can bring it back)."""
    return "\n".join([
        *_set(fid, others, ttl),
        _chain(fid, "in", "input"),
        f"add rule inet {TABLE} {fid}_in tcp dport {ssh_port} accept",
        f"add rule inet {TABLE} {fid}_in ip saddr @{fid}_peers drop",
        _chain(fid, "out", "output"),
        f"add rule inet {TABLE} {fid}_out tcp sport {ssh_port} accept",
        f"add rule inet {TABLE} {fid}_out ip daddr @{fid}_peers drop",
    ]) + "\n"


def delay_script(fid: str, peers: Sequence[str], peer_port: int, proxy_port: int,
                 ttl: float) -> str:
    """New connections to the peers' Raft port go through the local delay proxy; the
    ones that exist already are reset (they reconnect through it)."""
    match = f"ip daddr @{fid}_peers tcp dport {peer_port} meta mark != {PROXY_MARK:#x}"
    return "\n".join([
        *_set(fid, peers, ttl),
        _chain(fid, "nat", "output", "nat", -100),
        f"add rule inet {TABLE} {fid}_nat {match} redirect to :{proxy_port}",
        _chain(fid, "out", "output"),
        f"add rule inet {TABLE} {fid}_out {match} reject with tcp reset",
    ]) + "\n"


def heal_script(fid: str, chains: Iterable[str]) -> str:
    """Remove one fault's chains, then its set (a set in use cannot be deleted)."""
    lines = []
    for suffix in chains:
        lines += [f"flush chain inet {TABLE} {fid}_{suffix}",
                  f"delete chain inet {TABLE} {fid}_{suffix}"]
    lines.append(f"delete set inet {TABLE} {fid}_peers")
    return "\n".join(lines) + "\n"


CHAINS = {"drop": ("in", "out"), "loss": ("in",), "cut-off": ("in", "out"),
          "delay": ("nat", "out")}


# --- shell lines (pure) -----------------------------------------------------------------

def pid_command(m: MachineRef, process: str) -> str:
    """Prints the PID of `process` on the machine (nothing when it does not run)."""
    if m.systemd:
        return (f"p=$(systemctl show -p MainPID --value {q(units.unit_name(process))}); "
                "[ \"$p\" != 0 ] && echo $p")
    return f"cat {q(m.layout.run)}/{q(process)}.pid 2>/dev/null"


def signal_command(m: MachineRef, process: str, sig: str) -> str:
    """Signal `process` by its PID; prints the PID; fails when it does not run."""
    return (f"p=$({pid_command(m, process)}) && [ -n \"$p\" ] && kill -{sig} \"$p\" && "
            "echo \"$p\"")


def _later(seconds: float, command: str) -> str:
    """Run `command` on the machine after `seconds`, detached from this SSH session."""
    inner = f"sleep {int(seconds) + 1}; {command}"
    return (f"setsid sh -c {q(inner)} >/dev/null 2>&1 </dev/null &")


def supervisor_pid_command(m: MachineRef) -> str:
    return f"cat {q(m.layout.run)}/supervisor.pid 2>/dev/null"


def supervisor_start_command(m: MachineRef) -> str:
    return (f"cd / && {q(m.layout.python)} -m provisioning.supervisor start --spec "
            f"{q(m.layout.spec)}")


def resume_all_command(m: MachineRef) -> str:
    """SIGCONT the supervisor and every process it runs (harmless when none stopped)."""
    return (f"for f in {q(m.layout.run)}/*.pid; do [ -f \"$f\" ] && "
            "kill -CONT \"$(cat \"$f\")\" 2>/dev/null; done; true")


def kill_all_command(m: MachineRef) -> str:
    """SIGKILL the supervisor, then every process group it started (its children run
    in sessions of their own, so killing the supervisor alone leaves them running)."""
    if m.systemd:
        return (f"for u in {units.UNIT_DIR}/{units.PREFIX}*.service; do [ -e \"$u\" ] && "
                "systemctl kill -s KILL \"$(basename \"$u\")\"; "
                "systemctl stop \"$(basename \"$u\")\"; done; true")
    run = q(m.layout.run)
    return (f"s=$(cat {run}/supervisor.pid 2>/dev/null); [ -n \"$s\" ] && kill -KILL \"$s\"; "
            f"for f in {run}/*.pid; do [ -f \"$f\" ] || continue; "
            "[ \"$(basename \"$f\")\" = supervisor.pid ] && continue; "
            "p=$(cat \"$f\"); kill -KILL -- \"-$p\" 2>/dev/null || kill -KILL \"$p\" "
            "2>/dev/null; done; true")


def start_all_command(m: MachineRef) -> str:
    if m.systemd:
        return (f"for u in {units.UNIT_DIR}/{units.PREFIX}*.service; do [ -e \"$u\" ] && "
                "systemctl start \"$(basename \"$u\")\"; done; true")
    return supervisor_start_command(m)


def proxy_start_command(m: MachineRef, delay: float, lifetime: float) -> str:
    d = q(m.drill_dir)
    return (f"mkdir -p {d} && setsid {q(m.layout.python)} {d}/delay_proxy.py "
            f"--listen 127.0.0.1:0 --delay {delay} --mark {PROXY_MARK} "
            f"--state-file {d}/delay_proxy.json --max-seconds {int(lifetime) + 1} "
            f">>{d}/delay_proxy.log 2>&1 </dev/null &")


def proxy_stop_command(m: MachineRef) -> str:
    """Stop the delay proxy by the PID it recorded, if that process is still it."""
    d = q(m.drill_dir)
    return (f"f={d}/delay_proxy.json; [ -f \"$f\" ] || exit 0; "
            "p=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p' \"$f\"); "
            "[ -n \"$p\" ] && grep -q delay_proxy /proc/$p/cmdline 2>/dev/null && "
            "kill -TERM \"$p\"; rm -f \"$f\"; true")


def cleanup_command(m: MachineRef) -> str:
    """Heal whatever a drill may have left on the machine (idempotent)."""
    parts = [f"nft list table inet {TABLE} >/dev/null 2>&1 && nft delete table inet {TABLE}",
             proxy_stop_command(m).replace("exit 0", "true"), resume_all_command(m)]
    if m.systemd:
        parts.append(start_all_command(m))
    else:
        parts.append(f"[ -f {q(m.layout.spec)} ] && {{ {supervisor_pid_command(m)} >/dev/null "
                     f"&& kill -0 \"$({supervisor_pid_command(m)})\" 2>/dev/null || "
                     f"{supervisor_start_command(m)}; }}")
    return "; ".join(f"{{ {p}; }}" for p in parts) + "; true"


# --- the injector -----------------------------------------------------------------------

class Faults:
    """Injects and heals faults on the machines it has connections to."""

    def __init__(self, conns: Mapping[str, ssh.Connection], machines: Mapping[str, MachineRef],
                 peer_port: int) -> None:
        self.conns = conns
        self.machines = machines
        self.peer_port = peer_port
        self._next = 0

    def _run(self, name: str, command: str, *, check: bool = True,
             timeout: float = COMMAND_TIMEOUT, input: bytes | None = None) -> ssh.Result:
        try:
            result = self.conns[name].run(command, timeout=timeout, input=input)
        except ssh.SshError as exc:
            raise FaultError(str(exc)) from exc
        if check and not result.ok:
            raise FaultError(f"{name}: `{command[:80]}` exited {result.code}: "
                             f"{result.stderr.strip()[-300:]}")
        return result

    def new_id(self) -> str:
        self._next += 1
        return f"f{self._next}"

    # processes

    def signal(self, name: str, process: str, sig: str) -> int:
        """Send `sig` to `process` on machine `name`; its PID."""
        out = self._run(name, signal_command(self.machines[name], process, sig)).stdout
        return int(out.split()[-1])

    def pid(self, name: str, process: str) -> int | None:
        out = self._run(name, pid_command(self.machines[name], process), check=False).stdout
        return int(out.split()[-1]) if out.split() and out.split()[-1].isdigit() else None

    def pause(self, name: str, process: str, hold: float) -> int:
        """SIGSTOP, with a SIGCONT scheduled on the machine as a safety net."""
        pid = self.signal(name, process, "STOP")
        self._run(name, _later(hold + SAFETY_MARGIN, f"kill -CONT {pid}"))
        return pid

    def resume(self, name: str, pid: int) -> None:
        self._run(name, f"kill -CONT {pid}", check=False)

    def hold_down(self, name: str, process: str, hold: float) -> None:
        """Stop `process` so that nothing restarts it until `release`."""
        m = self.machines[name]
        if m.systemd:
            self._run(name, f"systemctl kill -s KILL {q(units.unit_name(process))}; "
                            f"systemctl stop {q(units.unit_name(process))}")
            self._run(name, _later(hold + SAFETY_MARGIN,
                                   f"systemctl start {q(units.unit_name(process))}"))
            return
        sup = self._run(name, supervisor_pid_command(m)).stdout.split()
        if not sup:
            raise FaultError(f"{name}: no supervisor runs there")
        self._run(name, f"kill -STOP {sup[0]}")
        self._run(name, _later(hold + SAFETY_MARGIN, f"kill -CONT {sup[0]}"))
        self.signal(name, process, "KILL")

    def release(self, name: str, process: str) -> None:
        m = self.machines[name]
        if m.systemd:
            self._run(name, f"systemctl start {q(units.unit_name(process))}")
        else:
            self._run(name, f"kill -CONT $({supervisor_pid_command(m)})", check=False)

    def kill_machine(self, name: str, others: Sequence[str], hold: float) -> str:
        """All of the machine's kubelite processes die and it stops answering (but SSH);
        returns the id of its network fault."""
        m = self.machines[name]
        fid = self.new_id()
        client = self._run(name, "echo ${SSH_CLIENT%% *}", check=False).stdout.strip()
        peers = [*others, *([client] if client.count(".") == 3 else [])]
        self._nft(name, cut_off_script(fid, peers, hold + SAFETY_MARGIN))
        self._run(name, kill_all_command(m))
        self._run(name, _later(hold + SAFETY_MARGIN, start_all_command(m)))
        return fid

    def start_machine(self, name: str, fid: str) -> None:
        self.heal(name, fid, "cut-off")
        self._run(name, start_all_command(self.machines[name]), timeout=60)

    def restart_machine(self, name: str) -> None:
        """A graceful restart of every kubelite process (rolling restarts)."""
        m = self.machines[name]
        if m.systemd:
            self._run(name, f"for u in {units.UNIT_DIR}/{units.PREFIX}*.service; do "
                            "[ -e \"$u\" ] && systemctl restart \"$(basename \"$u\")\"; done",
                      timeout=120)
            return
        self._run(name, f"cd / && {q(m.layout.python)} -m provisioning.supervisor stop "
                        f"--run-dir {q(m.layout.run)}", timeout=120)
        self._run(name, supervisor_start_command(m), timeout=60)

    # network

    def _nft(self, name: str, script: str) -> None:
        self._run(name, "nft -f -", input=script.encode())

    def drop(self, name: str, peers: Sequence[str], ttl: float) -> str:
        fid = self.new_id()
        self._nft(name, drop_script(fid, peers, ttl + SAFETY_MARGIN))
        return fid

    def loss(self, name: str, peers: Sequence[str], percent: int, ttl: float) -> str:
        fid = self.new_id()
        self._nft(name, loss_script(fid, peers, percent, ttl + SAFETY_MARGIN))
        return fid

    def netem_available(self, name: str) -> bool:
        """Whether the machine's kernel has netem (probed on lo, removed at once)."""
        probe = ("tc qdisc add dev lo root handle 1: netem delay 1ms 2>/dev/null && "
                 "tc qdisc del dev lo root && echo yes")
        return self._run(name, probe, check=False).stdout.strip() == "yes"

    def delay(self, name: str, peers: Sequence[str], seconds: float, ttl: float) -> str:
        """Delay this machine's connections to the peers' Raft port (both directions)."""
        m = self.machines[name]
        fid = self.new_id()
        script = Path(__file__).with_name("delay_proxy.py").read_bytes()
        self._run(name, f"mkdir -p {q(m.drill_dir)}")
        self.conns[name].put(script, f"{m.drill_dir}/delay_proxy.py", 0o644)
        self._run(name, proxy_stop_command(m))
        self._run(name, proxy_start_command(m, seconds, ttl + SAFETY_MARGIN))
        port = self._proxy_port(name)
        self._nft(name, delay_script(fid, peers, self.peer_port, port, ttl + SAFETY_MARGIN))
        return fid

    def _proxy_port(self, name: str, timeout: float = 10.0) -> int:
        m = self.machines[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self._run(name, f"cat {q(m.drill_dir)}/delay_proxy.json 2>/dev/null",
                            check=False).stdout
            try:
                return int(json.loads(out)["port"])
            except (ValueError, KeyError, TypeError):
                time.sleep(0.2)
        log = self._run(name, f"tail -5 {q(m.drill_dir)}/delay_proxy.log", check=False).stdout
        raise FaultError(f"{name}: the delay proxy did not start: {log.strip()}")

    def heal(self, name: str, fid: str, kind: str) -> None:
        self._nft(name, heal_script(fid, CHAINS[kind]))
        if kind == "delay":
            self._run(name, proxy_stop_command(self.machines[name]))

    def cleanup(self, name: str) -> None:
        self._run(name, cleanup_command(self.machines[name]), timeout=60)
