"""`kubelite supervise`: keep a machine's kubelite processes running where no systemd does.

    kubelite supervise start --spec /var/lib/kubelite/etc/processes.json
    kubelite supervise status --run-dir /var/lib/kubelite/run
    kubelite supervise restart --run-dir /var/lib/kubelite/run apiserver
    kubelite supervise stop --run-dir /var/lib/kubelite/run

`start` makes sure one supervisor runs for the spec: it starts `run` detached (a new
session, stdin from /dev/null, output to a log file) so that it outlives the SSH
session that started it, or, when one already runs, tells it to re-read the spec
(SIGHUP). The spec (written by provisioning) lists each process's argv, environment and
`config_hash`; on every read the supervisor starts new entries, stops removed ones and
restarts those whose entry changed (`diff`), and leaves the others alone.

Each process runs in its own session (so a stop reaches its children too), with its
output appended to `<log_dir>/<name>.log` and its PID in `<run_dir>/<name>.pid`. A
process that exits is started again after a back-off that doubles from 1 s to 30 s and
resets once it stayed up a minute (`backoff`). `<run_dir>/status.json` says what runs;
`status` reads it and checks every PID is still alive. SIGTERM (what `stop` sends)
stops every process (SIGTERM, then SIGKILL after a grace period) and the supervisor.

Only the standard library: this runs on machines from kubelite's own venv.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PID_FILE = "supervisor.pid"
STATUS_FILE = "status.json"
TICK = 0.2
BACKOFF_FIRST, BACKOFF_MAX, STABLE_AFTER = 1.0, 30.0, 60.0
STOP_GRACE = 5.0
START_WAIT = 10.0
_started: list[subprocess.Popen[bytes]] = []    # detached on purpose; kept from the collector


# --- decisions (pure) -------------------------------------------------------------------

def backoff(failures: int) -> float:
    """Delay before restart number `failures` (1-based) of a process that keeps exiting."""
    if failures <= 0:
        return 0.0
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))


def diff(running: Mapping[str, dict], wanted: Mapping[str, dict]
         ) -> tuple[list[str], list[str], list[str]]:
    """(start, stop, restart): names to start, to stop and to restart when the spec
    changes from `running` to `wanted` (entries compare whole)."""
    start = [n for n in wanted if n not in running]
    stop = [n for n in running if n not in wanted]
    restart = [n for n in wanted if n in running and running[n] != wanted[n]]
    return start, stop, restart


def load_spec(path: str | Path) -> tuple[dict[str, dict], str, str]:
    """(entries by name in order, run_dir, log_dir) from a spec file."""
    doc = json.loads(Path(path).read_text())
    entries = {p["name"]: p for p in doc["processes"]}
    return entries, doc["run_dir"], doc["log_dir"]


# --- the daemon -------------------------------------------------------------------------

@dataclass
class Child:
    entry: dict
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0
    next_start: float = 0.0
    restarts: int = 0
    last_exit: int | None = None


@dataclass
class Supervisor:
    spec_path: Path
    children: dict[str, Child] = field(default_factory=dict)
    reload: bool = True
    stopping: bool = False
    run_dir: Path = Path(".")
    log_dir: Path = Path(".")

    def start_child(self, name: str, child: Child) -> None:
        entry = child.entry
        env = {str(k): str(v) for k, v in entry.get("env", {}).items()}
        with open(self.log_dir / f"{name}.log", "ab") as log:
            try:
                child.proc = subprocess.Popen(entry["argv"], env=env, stdout=log,
                                              stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL, start_new_session=True)
            except OSError as exc:
                log.write(f"supervisor: cannot start {entry['argv'][0]}: {exc}\n".encode())
                child.failures += 1
                child.next_start = time.monotonic() + backoff(child.failures)
                return
        child.started = time.monotonic()
        (self.run_dir / f"{name}.pid").write_text(f"{child.proc.pid}\n")

    def stop_children(self, names: list[str]) -> None:
        """Stop `names` one after the other, in the order given: callers pass dependents
        first (a scheduler releases its Lease while the apiserver still answers)."""
        for name in names:
            proc = self.children[name].proc
            if proc is None:
                continue
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=5)
            _signal_group(proc, signal.SIGKILL)   # whatever it left in its session
            self.children[name].proc = None
            (self.run_dir / f"{name}.pid").unlink(missing_ok=True)

    def apply_spec(self) -> None:
        entries, run_dir, log_dir = load_spec(self.spec_path)
        self.run_dir, self.log_dir = Path(run_dir), Path(log_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        start, stop, restart = diff({n: c.entry for n, c in self.children.items()}, entries)
        order = list(self.children)
        self.stop_children(sorted(stop + restart, key=order.index, reverse=True))
        for name in stop:
            del self.children[name]
        for name in restart:
            self.children[name] = Child(entries[name])
        for name in start:
            self.children[name] = Child(entries[name])
        # keep the spec's order (store before apiserver ...)
        self.children = {n: self.children[n] for n in entries}

    def tick(self) -> bool:
        """Reap and restart; True when something changed."""
        changed = False
        now = time.monotonic()
        for name, child in self.children.items():
            if child.proc is not None and child.proc.poll() is not None:
                child.last_exit = child.proc.returncode
                _signal_group(child.proc, signal.SIGKILL)
                child.proc = None
                (self.run_dir / f"{name}.pid").unlink(missing_ok=True)
                child.failures = 1 if now - child.started > STABLE_AFTER else child.failures + 1
                child.next_start = now + backoff(child.failures)
                child.restarts += 1
                changed = True
            if child.proc is None and now >= child.next_start:
                self.start_child(name, child)
                changed = True
        return changed

    def write_status(self) -> None:
        doc = {"pid": os.getpid(), "processes": {
            n: {"pid": c.proc.pid if c.proc else None, "config_hash": c.entry.get("config_hash"),
                "restarts": c.restarts, "last_exit": c.last_exit}
            for n, c in self.children.items()}}
        tmp = self.run_dir / (STATUS_FILE + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, self.run_dir / STATUS_FILE)

    def serve(self) -> int:
        def on_hup(*_: object) -> None:
            self.reload = True

        def on_term(*_: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGHUP, on_hup)
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        while not self.stopping:
            changed = False
            if self.reload:
                self.reload = False
                try:
                    self.apply_spec()
                except (OSError, ValueError, KeyError) as exc:
                    print(f"supervisor: cannot read {self.spec_path}: {exc}", flush=True)
                changed = True
            changed = self.tick() or changed
            if changed:
                self.write_status()
            time.sleep(TICK)
        self.stop_children(list(reversed(self.children)))
        self.children = {}
        self.write_status()
        (self.run_dir / PID_FILE).unlink(missing_ok=True)
        return 0


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --- the command line -------------------------------------------------------------------

def _is_supervisor(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return b"supervis" in cmdline and stat.rsplit(")", 1)[1].split()[0] != "Z"


def running_pid(run_dir: str | Path) -> int | None:
    """The live supervisor's PID for `run_dir`, or None."""
    try:
        pid = int((Path(run_dir) / PID_FILE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _is_supervisor(pid) else None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def status(run_dir: str | Path) -> dict:
    """What runs: {"supervisor": pid|None, "processes": {name: {pid, running, ...}}}."""
    pid = running_pid(run_dir)
    try:
        doc = json.loads((Path(run_dir) / STATUS_FILE).read_text())
    except (OSError, ValueError):
        doc = {"processes": {}}
    procs = doc.get("processes", {})
    for entry in procs.values():
        entry["running"] = pid is not None and _alive(entry.get("pid"))
    return {"supervisor": pid, "processes": procs}


def start(spec: str) -> int:
    _, run_dir, log_dir = load_spec(spec)
    pid = running_pid(run_dir)
    if pid is not None:
        os.kill(pid, signal.SIGHUP)
        return 0
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / STATUS_FILE).unlink(missing_ok=True)
    with open(Path(log_dir) / "supervisor.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "provisioning.supervisor", "run",
                                 "--spec", spec], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd="/")
    _started.append(proc)
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        if running_pid(run_dir) == proc.pid and (Path(run_dir) / STATUS_FILE).exists():
            return 0
        if proc.poll() is not None:
            print(f"supervisor exited with {proc.returncode}; see {log_dir}/supervisor.log",
                  file=sys.stderr)
            return 1
        time.sleep(0.05)
    print("supervisor did not start in time", file=sys.stderr)
    return 1


def stop(run_dir: str, timeout: float = 60.0) -> int:
    pid = running_pid(run_dir)
    if pid is None:
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running_pid(run_dir) == pid and time.monotonic() < deadline:
        time.sleep(0.05)
    return 0 if running_pid(run_dir) is None else 1


def restart(run_dir: str, name: str) -> int:
    """Stop one process; the supervisor starts it again at once (its first restart)."""
    entry = status(run_dir)["processes"].get(name)
    if entry is None or not entry.get("pid"):
        print(f"no running process {name}", file=sys.stderr)
        return 1
    try:
        os.killpg(entry["pid"], signal.SIGTERM)
    except ProcessLookupError:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kubelite supervise",
                                description="Keep kubelite's processes running (no systemd).")
    sub = p.add_subparsers(dest="action", required=True)
    for action in ("run", "start"):
        sp = sub.add_parser(action)
        sp.add_argument("--spec", required=True, help="the processes' JSON spec")
    for action in ("status", "stop", "restart"):
        sp = sub.add_parser(action)
        sp.add_argument("--run-dir", required=True)
        if action == "restart":
            sp.add_argument("name")
    args = p.parse_args(argv)
    if args.action == "run":
        sup = Supervisor(Path(args.spec))
        _, run_dir, _ = load_spec(args.spec)
        sup.run_dir = Path(run_dir)
        sup.run_dir.mkdir(parents=True, exist_ok=True)
        (sup.run_dir / PID_FILE).write_text(f"{os.getpid()}\n")
        return sup.serve()
    if args.action == "start":
        return start(args.spec)
    if args.action == "status":
        print(json.dumps(status(args.run_dir), indent=2))
        return 0
    if args.action == "stop":
        return stop(args.run_dir)
    return restart(args.run_dir, args.name)


if __name__ == "__main__":
    sys.exit(main())
