"""kubelite's own store as a `StoreClusterHandle`: real `kubelite store` processes.

The same tests that run against real etcd run against this, so any difference in
behaviour shows up as a failing test.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import time
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
                 extra_args: tuple[str, ...] = ()) -> None:
        self.size = size
        self.extra_args = extra_args
        parent = Path(tmp_dir) if tmp_dir is not None else None
        self.dir = Path(tempfile.mkdtemp(prefix="kubelite-store-", dir=parent))
        self.secret_file = self.dir / "peer-secret"
        self.secret_file.write_text(secrets.token_hex(24))
        self.members: list[Member] = []
        self._ports: list[int] = []
        self.endpoints: list[str] = []
        self.peer_addrs: list[str] = []
        self._closed = False
        try:
            self._start_all()
        except BaseException:
            self.close()
            raise

    def _start_all(self) -> None:
        self.members = [Member(f"m{i}", self.dir / f"m{i}", self.dir / f"m{i}.log")
                        for i in range(self.size)]
        self._ports = ports.free_ports(2 * self.size)
        self.endpoints = [f"http://127.0.0.1:{p}" for p in self._ports[: self.size]]
        self.peer_addrs = [f"127.0.0.1:{p}" for p in self._ports[self.size:]]
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
        return ",".join(f"{m.name}={a}" for m, a in zip(self.members, self.peer_addrs,
                                                        strict=True))

    def _spawn(self, i: int, *extra: str) -> None:
        argv = store_argv(self.members[i].name, self.members[i].data_dir, self.endpoints[i],
                          self.peer_addrs[i], self.initial_cluster(), self.secret_file,
                          *self.extra_args, *extra)
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        self.members[i].spawn(argv, env)

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
