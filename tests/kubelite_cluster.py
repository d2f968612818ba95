"""kubelite's own store as a `StoreClusterHandle`: real `kubelite store` processes.

The same tests that run against real etcd run against this, so any difference in
behaviour shows up as a failing test.

Beyond the handle, fault tests use: `kill_all` (every member SIGKILLed before any is
waited for), `add_member` / `mark_removed` to follow cluster/member/add and remove,
`run_cli` for `kubelite store backup|restore`, and `before_start`, which prepares the
members' data dirs (e.g. restores a backup into them) before the first start.
Subclasses place members elsewhere by overriding `_allocate` (addresses) and `_command`
(how a member's argv is run), as `tests.netns_cluster` does.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests import ports
from tests.clusters import (
    LOG_TAIL_LINES,
    READY_TIMEOUT,
    ClusterStartError,
    Member,
    answers,
    healthy,
    leader_index_by_status,
    tail,
)

REPO = Path(__file__).resolve().parent.parent
CLI_TIMEOUT = 120.0


def store_argv(name: str, data_dir: Path, client_url: str, peer_addr: str,
               initial_cluster: str, secret_file: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "store.main",
        "--name", name,
        "--data-dir", str(data_dir),
        "--listen-client-urls", client_url,
        "--listen-peer-urls", peer_addr,
        "--initial-cluster", initial_cluster,
        "--peer-secret-file", str(secret_file),
        *extra,
    ]  # fmt: skip


class KubeliteCluster:
    """A fresh cluster of `size` kubelite store members on free 127.0.0.1 ports."""

    kind = "kubelite"

    def __init__(self, size: int = 3, tmp_dir: Path | str | None = None,
                 extra_args: tuple[str, ...] = (),
                 before_start: Callable[[KubeliteCluster], None] | None = None) -> None:
        self.size = size
        self.extra_args = extra_args
        self.before_start = before_start
        parent = Path(tmp_dir) if tmp_dir is not None else None
        self.dir = Path(tempfile.mkdtemp(prefix="kubelite-store-", dir=parent))
        self.secret_file = self.dir / "peer-secret"
        self.secret_file.write_text(secrets.token_hex(24))
        self.members: list[Member] = []
        self._ports: list[int] = []
        self.endpoints: list[str] = []
        self.peer_addrs: list[str] = []
        self.removed: set[int] = set()  # members taken out by cluster/member/remove
        self._joined: set[int] = set()  # members added to a running cluster
        self._started: set[int] = set()  # members started at least once
        self._closed = False
        try:
            self._start_all()
        except BaseException:
            self.close()
            raise

    def _allocate(self, first: int, count: int) -> list[tuple[str, str]]:
        """(client URL, peer address) for members first .. first+count-1."""
        new_ports = ports.free_ports(2 * count)
        self._ports.extend(new_ports)
        return [(f"http://127.0.0.1:{new_ports[k]}", f"127.0.0.1:{new_ports[count + k]}")
                for k in range(count)]

    def _command(self, i: int, argv: list[str]) -> list[str]:
        """How member i's argv is run (a subclass may run it inside a namespace)."""
        return argv

    def _start_all(self) -> None:
        self.members = [Member(f"m{i}", self.dir / f"m{i}", self.dir / f"m{i}.log")
                        for i in range(self.size)]
        addresses = self._allocate(0, self.size)
        self.endpoints = [client for client, _ in addresses]
        self.peer_addrs = [peer for _, peer in addresses]
        if self.before_start is not None:
            self.before_start(self)
        for i in range(self.size):
            self._spawn(i)
        deadline = time.monotonic() + READY_TIMEOUT
        while not all(healthy(e) for e in self.endpoints):
            if time.monotonic() >= deadline:
                raise ClusterStartError(
                    f"kubelite cluster not healthy within {READY_TIMEOUT:.0f} s\n"
                    + self.log_tails())
            for i, m in enumerate(self.members):
                if not m.running:
                    raise ClusterStartError(f"kubelite member {i} exited\n" + self.log_tails())
            time.sleep(0.1)

    def initial_cluster(self) -> str:
        """NAME=PEER of the members in the cluster: the first `size`, and those added
        later once started; not those removed. What a (re)starting member is told."""
        return ",".join(f"{m.name}={a}" for i, (m, a) in
                        enumerate(zip(self.members, self.peer_addrs, strict=True))
                        if i not in self.removed and (i < self.size or i in self._started))

    def _spawn(self, i: int, *extra: str) -> None:
        self._started.add(i)
        state = ("--initial-cluster-state", "existing") if i in self._joined else ()
        argv = store_argv(self.members[i].name, self.members[i].data_dir, self.endpoints[i],
                          self.peer_addrs[i], self.initial_cluster(), self.secret_file,
                          *state, *self.extra_args, *extra)
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        self.members[i].spawn(self._command(i, argv), env)

    # Membership and tools -------------------------------------------------------------

    def add_member(self) -> int:
        """Give a new member its name, addresses and data dir; return its index.

        Nothing starts: call cluster/member/add with `peer_url(i)` first, then
        `start(i)`, which passes `--initial-cluster-state existing` and lists the
        members in the cluster (see `initial_cluster`) in `--initial-cluster`.
        """
        i = len(self.members)
        self.members.append(Member(f"m{i}", self.dir / f"m{i}", self.dir / f"m{i}.log"))
        ((client, peer),) = self._allocate(i, 1)
        self.endpoints.append(client)
        self.peer_addrs.append(peer)
        self._joined.add(i)
        return i

    def peer_url(self, i: int) -> str:
        return f"http://{self.peer_addrs[i]}"

    def mark_removed(self, i: int) -> None:
        """Member i was removed through cluster/member/remove: leave it out from now on."""
        self.removed.add(i)

    def live(self) -> list[int]:
        """Indexes of members not removed."""
        return [i for i in range(len(self.members)) if i not in self.removed]

    def kill_all(self) -> None:
        """SIGKILL every running member first, then reap them: a whole-cluster crash."""
        for member in self.members:
            member.signal(signal.SIGKILL)
        for member in self.members:
            member.kill()

    def run_cli(self, *args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run `kubelite ARGS...` (e.g. "store", "backup", ...) to completion."""
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        return subprocess.run([sys.executable, "-m", "kubelite_cli", *args], env=env,
                              cwd=self.dir, capture_output=True, text=True, timeout=timeout,
                              check=False)

    # StoreClusterHandle ---------------------------------------------------------------

    def kill(self, i: int) -> None:
        self.members[i].kill()

    def stop(self, i: int) -> None:
        self.members[i].stop()

    def start(self, i: int) -> None:
        self._spawn(i)
        member = self.members[i]
        deadline = time.monotonic() + READY_TIMEOUT
        while not answers(self.endpoints[i]):
            if not member.running or time.monotonic() >= deadline:
                member.kill()
                raise ClusterStartError(f"kubelite member {i} did not answer\n"
                                        + self.log_tails())
            time.sleep(0.1)

    def pause(self, i: int) -> None:
        self.members[i].pause()

    def resume(self, i: int) -> None:
        self.members[i].resume()

    def leader_index(self) -> int:
        return leader_index_by_status(
            self.endpoints, skip=lambda i: not self.members[i].running or self.members[i].paused)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for member in self.members:
            member.kill()
        ports.release(self._ports)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tails(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(f"--- {m.log_path} ---\n{tail(m.log_path, lines)}"
                         for m in self.members)

    def __enter__(self) -> KubeliteCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
