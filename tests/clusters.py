"""Store clusters for integration tests: one handle, several implementations.

Integration tests are written once against `StoreClusterHandle` and run against every
kind in `tests.conftest.STORE_KINDS`: real etcd 3.4 (Debian's /usr/bin/etcd), which
sets the behaviour to match, and kubelite's own store. A handle owns real processes on
127.0.0.1 and lets a test break them the way machines break: kill (crash), stop
(orderly shutdown), pause (a hung process: its sockets stay open but nothing answers),
and start again on the same data directory.

Every process a handle starts is tracked by PID, signalled only through that PID, and
ended by `close()`, which the fixtures call even when the test fails. Members are also
started with PR_SET_PDEATHSIG, so they die with the test process if it is killed.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from tests import http, ports

ETCD_BINARY = os.environ.get("KUBELITE_TEST_ETCD", "/usr/bin/etcd")
READY_TIMEOUT = 30.0
STOP_GRACE = 10.0
PROBE_TIMEOUT = 1.0
START_ATTEMPTS = 3  # fresh ports each time, only when a port turned out to be taken
LOG_TAIL_LINES = 20


class StoreClusterHandle(Protocol):
    kind: str  # "etcd" or "kubelite"
    endpoints: list[str]  # client URLs, "http://127.0.0.1:PORT", in member order

    def kill(self, i: int) -> None:
        """SIGKILL member i."""

    def stop(self, i: int) -> None:
        """SIGTERM member i, SIGKILL after 10 s."""

    def start(self, i: int) -> None:
        """(Re)start member i on its data dir; return once it answers."""

    def pause(self, i: int) -> None:
        """SIGSTOP member i."""

    def resume(self, i: int) -> None:
        """SIGCONT member i."""

    def leader_index(self) -> int:
        """Index of the member that reports itself leader; NoLeaderError if none does."""

    def close(self) -> None:
        """Stop everything the handle started and remove its directory."""


class ClusterStartError(RuntimeError):
    pass


class NoLeaderError(RuntimeError):
    """No reachable member reports itself leader (an election may be under way)."""


# --- helpers shared by every kind -------------------------------------------------------


def wait_until(
    predicate: Callable[[], bool], timeout: float, interval: float = 0.1, what: str = "condition"
) -> None:
    """Poll `predicate` until it is true; raise TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.1f} s")
        time.sleep(interval)


def wait_for_leader(cluster: StoreClusterHandle, timeout: float = 15.0) -> int:
    """Index of the leader, waiting (bounded) for an election to finish."""
    found: list[int] = []

    def has_leader() -> bool:
        try:
            found.append(cluster.leader_index())
        except NoLeaderError:
            return False
        return True

    wait_until(has_leader, timeout, interval=0.1, what="a leader")
    return found[-1]


def status(endpoint: str, timeout: float = PROBE_TIMEOUT) -> dict | None:
    """The member's /v3/maintenance/status reply, or None if it does not answer."""
    try:
        code, _, body = http.post_json(endpoint, "/v3/maintenance/status", {}, timeout=timeout)
    except OSError:
        return None
    if code != 200:
        return None
    return json.loads(body)


def leader_index_by_status(endpoints: list[str], skip: Callable[[int], bool]) -> int:
    """The member whose status names itself leader (`leader` == `header.member_id`)."""
    for i, endpoint in enumerate(endpoints):
        if skip(i):
            continue
        reply = status(endpoint)
        if reply is None:
            continue
        member_id = reply.get("header", {}).get("member_id")
        if member_id and reply.get("leader") == member_id:
            return i
    raise NoLeaderError("no member reports itself leader")


def answers(endpoint: str) -> bool:
    """True once the member serves: /health is true, or a serializable range succeeds.

    /health needs a leader (and so a quorum); the serializable range lets a member count
    as up while its peers are still down.
    """
    try:
        code, _, body = http.get(endpoint, "/health", timeout=PROBE_TIMEOUT)
        if code == 200 and json.loads(body).get("health") == "true":
            return True
        code, _, _ = http.post_json(
            endpoint,
            "/v3/kv/range",
            {"key": http.b64("health"), "serializable": True},
            timeout=PROBE_TIMEOUT,
        )
    except (OSError, ValueError):
        return False
    return code == 200


def healthy(endpoint: str) -> bool:
    try:
        code, _, body = http.get(endpoint, "/health", timeout=PROBE_TIMEOUT)
        return code == 200 and json.loads(body).get("health") == "true"
    except (OSError, ValueError):
        return False


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} unreadable)"
    return "\n".join(text.splitlines()[-lines:])


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the test process goes away."""
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


class Member:
    """One child process with its data directory and log file; restartable."""

    def __init__(self, name: str, data_dir: Path, log_path: Path) -> None:
        self.name = name
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def spawn(self, argv: list[str], env: dict[str, str]) -> None:
        if self.running:
            raise RuntimeError(f"member {self.name} is already running")
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start {time.strftime('%H:%M:%S')}: {' '.join(argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.paused = False

    def signal(self, signum: int) -> None:
        # The Popen object is not reaped until we wait on it, so the PID cannot have been
        # reused by another process: signalling through it only ever hits our child.
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signum)

    def kill(self) -> None:
        if self.proc is None:
            return
        self.signal(signal.SIGKILL)
        self.proc.wait()
        self.paused = False

    def stop(self, grace: float = STOP_GRACE) -> None:
        if self.proc is None:
            return
        self.signal(signal.SIGTERM)
        if self.paused:
            self.signal(signal.SIGCONT)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self.paused = False

    def pause(self) -> None:
        if not self.running:
            raise RuntimeError(f"member {self.name} is not running")
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        self.paused = False


# --- real etcd --------------------------------------------------------------------------


class EtcdCluster:
    """A fresh etcd 3.4 cluster of `size` members on free 127.0.0.1 ports.

    Member i is named m<i>, keeps its data in <dir>/m<i> and logs to <dir>/m<i>.log.
    The cluster token is unique per cluster, so members of two clusters can never join
    each other even if a port were reused.
    """

    kind = "etcd"

    def __init__(
        self,
        size: int = 3,
        tmp_dir: Path | str | None = None,
        *,
        etcd: str = ETCD_BINARY,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        if not (os.path.isfile(etcd) and os.access(etcd, os.X_OK)):
            raise FileNotFoundError(
                f"{etcd} not found: real etcd 3.4 (Debian's etcd-server) is needed for "
                "integration tests; run scripts/setup.sh as root"
            )
        self.size = size
        self.etcd = etcd
        self.extra_args = extra_args
        parent = Path(tmp_dir) if tmp_dir is not None else None
        self.dir = Path(tempfile.mkdtemp(prefix="etcd-", dir=parent))
        self.token = f"kubelite-test-{os.getpid()}-{os.urandom(6).hex()}"
        self.members: list[Member] = []
        self._ports: list[int] = []
        self.endpoints: list[str] = []
        self.peer_urls: list[str] = []
        self._closed = False
        try:
            self._start_with_retries()
        except BaseException:
            self.close()
            raise

    # Starting -------------------------------------------------------------------------

    def _start_with_retries(self) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._start_all(attempt)
                return
            except ClusterStartError as err:
                if attempt == START_ATTEMPTS or "address already in use" not in str(err):
                    raise
            # Another process took one of the ports between the check and etcd's bind.
            for member in self.members:
                member.kill()
            ports.release(self._ports)

    def _start_all(self, attempt: int) -> None:
        """Start every member and wait until all are healthy (one leader, quorum)."""
        base = self.dir / f"try{attempt}" if attempt > 1 else self.dir
        base.mkdir(exist_ok=True)
        self.members = [
            Member(f"m{i}", base / f"m{i}", base / f"m{i}.log") for i in range(self.size)
        ]
        self._ports = ports.free_ports(2 * self.size)
        client_ports, peer_ports = self._ports[: self.size], self._ports[self.size :]
        self.endpoints = [f"http://127.0.0.1:{p}" for p in client_ports]
        self.peer_urls = [f"http://127.0.0.1:{p}" for p in peer_ports]
        for i in range(self.size):
            self._spawn(i, state="new")
        deadline = time.monotonic() + READY_TIMEOUT
        while not all(healthy(e) for e in self.endpoints):
            if time.monotonic() >= deadline:
                raise ClusterStartError(
                    f"etcd cluster not healthy within {READY_TIMEOUT:.0f} s\n" + self.log_tails()
                )
            for i, m in enumerate(self.members):
                if not m.running:
                    raise ClusterStartError(
                        f"etcd member {i} exited with {m.proc.returncode if m.proc else '?'}\n"
                        + self.log_tails()
                    )
            time.sleep(0.1)

    def _spawn(self, i: int, state: str) -> None:
        initial_cluster = ",".join(
            f"{m.name}={url}" for m, url in zip(self.members, self.peer_urls, strict=True)
        )
        argv = [
            self.etcd,
            "--name", self.members[i].name,
            "--data-dir", str(self.members[i].data_dir),
            "--listen-client-urls", self.endpoints[i],
            "--advertise-client-urls", self.endpoints[i],
            "--listen-peer-urls", self.peer_urls[i],
            "--initial-advertise-peer-urls", self.peer_urls[i],
            "--initial-cluster", initial_cluster,
            "--initial-cluster-token", self.token,
            "--initial-cluster-state", state,
            "--logger", "zap",
            "--log-outputs", "stderr",
            *self.extra_args,
        ]  # fmt: skip
        # etcd also reads ETCD_* variables as flags; keep any from the host out.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        self.members[i].spawn(argv, env)

    # StoreClusterHandle ---------------------------------------------------------------

    def kill(self, i: int) -> None:
        self.members[i].kill()

    def stop(self, i: int) -> None:
        self.members[i].stop()

    def start(self, i: int) -> None:
        self._spawn(i, state="existing")
        member = self.members[i]
        deadline = time.monotonic() + READY_TIMEOUT
        while not answers(self.endpoints[i]):
            if not member.running or time.monotonic() >= deadline:
                member.kill()
                raise ClusterStartError(
                    f"etcd member {i} did not answer within {READY_TIMEOUT:.0f} s\n"
                    + self.log_tails()
                )
            time.sleep(0.1)

    def pause(self, i: int) -> None:
        self.members[i].pause()

    def resume(self, i: int) -> None:
        self.members[i].resume()

    def leader_index(self) -> int:
        return leader_index_by_status(
            self.endpoints, skip=lambda i: not self.members[i].running or self.members[i].paused
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # SIGKILL, not SIGTERM: the data is thrown away, and a terminating etcd leader
        # first tries to hand over leadership (up to 7 s when a peer is down).
        for member in self.members:
            member.kill()
        ports.release(self._ports)
        shutil.rmtree(self.dir, ignore_errors=True)

    # Diagnostics ----------------------------------------------------------------------

    def log_tails(self, lines: int = LOG_TAIL_LINES) -> str:
        parts = []
        for m in self.members:
            parts.append(f"--- {m.log_path} (last {lines} lines) ---\n{tail(m.log_path, lines)}")
        return "\n".join(parts)

    def __enter__(self) -> EtcdCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
