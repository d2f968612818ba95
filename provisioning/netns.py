"""Named network namespaces, and sockets made inside them by a process that stays outside.

A named namespace is a file under /run/netns that a bind mount keeps alive (what
`ip netns add` makes). Two facts shape this module:

- The bind mount exists only in the mount namespace that made it. A namespace created
  by a process that runs under `ip netns exec` (which unshares mounts) is invisible to
  everyone else. `create` and `remove` therefore run `ip netns` in the mount namespace
  of PID 1 of our PID namespace: the machine's root mount namespace normally, and a lab
  machine's own private one when called on a lab machine, where /run/netns is private.
- A socket belongs to the network namespace it was *created* in, whatever thread or
  namespace later uses it. Python 3.11 has no `os.setns`, so `setns(2)` is called
  through ctypes, and only on dedicated threads: `setns` moves the calling thread, not
  the process. `NetnsDialer` is a thread pool whose threads all live in one namespace;
  it creates (and connects or binds) sockets there and hands them to the caller, who
  uses them from anywhere, e.g. from an asyncio loop in the root namespace.

A thread inside a namespace keeps it alive after `ip netns del` (as does an open
socket), so shut a dialer down before expecting its namespace to be gone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import os
import shutil
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
IP_TIMEOUT = 10.0
DEFAULT_WORKERS = 4
DEFAULT_BACKLOG = 128

_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(RuntimeError):
    """A namespace could not be created, removed or entered."""


def netns_path(name: str) -> str:
    """The file that names namespace `name` (what `ip netns` and nsenter --net take)."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"invalid network namespace name {name!r}")
    return os.path.join(NETNS_DIR, name)


def exists(name: str) -> bool:
    return os.path.exists(netns_path(name))


def list_with_prefix(prefix: str) -> list[str]:
    """Names of the namespaces whose name starts with `prefix`, sorted."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(prefix))


def ip_argv() -> list[str]:
    """The argv prefix that runs `ip` in the mount namespace owning /run/netns."""
    ip = shutil.which("ip") or "/usr/sbin/ip"
    if not os.path.exists(ip):
        raise NetnsError("the `ip` command (iproute2) is missing")
    try:
        same = os.readlink("/proc/self/ns/mnt") == os.readlink("/proc/1/ns/mnt")
    except OSError:
        same = True  # cannot look at PID 1 (not root): use our own mount namespace
    if same:
        return [ip]
    nsenter = shutil.which("nsenter") or "/usr/bin/nsenter"
    return [nsenter, "--mount=/proc/1/ns/mnt", "--", ip]


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ip_argv(), *args], capture_output=True, text=True,
                          timeout=IP_TIMEOUT, check=False)


def create(name: str, *, loopback_up: bool = True) -> str:
    """Create namespace `name` unless it exists, bring its `lo` up; return its path.

    Idempotent, also against a concurrent creator of the same name.
    """
    path = netns_path(name)
    if not os.path.exists(path):
        proc = _ip("netns", "add", name)
        if proc.returncode != 0 and not os.path.exists(path):
            raise NetnsError(f"ip netns add {name}: {proc.stderr.strip()}")
    if loopback_up:
        proc = _ip("-n", name, "link", "set", "lo", "up")
        if proc.returncode != 0:
            raise NetnsError(f"ip -n {name} link set lo up: {proc.stderr.strip()}")
    return path


def remove(name: str) -> None:
    """Delete namespace `name` if it exists (its links go with it). Idempotent.

    The namespace itself lives on, nameless, while a process, thread or socket is in it.
    """
    if not exists(name):
        return
    proc = _ip("netns", "del", name)
    if proc.returncode != 0 and exists(name):
        raise NetnsError(f"ip netns del {name}: {proc.stderr.strip()}")


def setns_thread_initializer(path: str) -> None:
    """Move the calling thread into the network namespace named by file `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _connect(host: str, port: int, timeout: float | None) -> socket.socket:
    return socket.create_connection((host, port), timeout=timeout)


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=backlog)


def _close_if_made(future: concurrent.futures.Future[socket.socket]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


class NetnsDialer(ThreadPoolExecutor):
    """A thread pool living in one network namespace, making sockets there.

    Sockets it returns stay in that namespace for their whole life. Use as a context
    manager, or call `shutdown()`: its threads keep the namespace alive.
    """

    def __init__(self, path: str, max_workers: int = DEFAULT_WORKERS) -> None:
        if not os.path.exists(path):
            raise NetnsError(f"network namespace {path} does not exist")
        self.path = path
        super().__init__(max_workers=max_workers,
                         thread_name_prefix=f"netns-{os.path.basename(path)}",
                         initializer=setns_thread_initializer, initargs=(path,))

    def connect(self, host: str, port: int, timeout: float | None = 10.0) -> socket.socket:
        """A blocking socket connected from inside the namespace (e.g. for paramiko)."""
        sock = self.submit(_connect, host, port, timeout).result()
        sock.settimeout(timeout)
        return sock

    async def connect_socket(self, host: str, port: int, timeout: float = 10.0) -> socket.socket:
        """A non-blocking socket created and connected inside the namespace."""
        future = self.submit(_connect, host, port, timeout)
        try:
            sock = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            # The connect may still finish on its thread: close what it makes.
            future.add_done_callback(_close_if_made)
            raise
        sock.setblocking(False)
        return sock

    async def open_connection(
        self, host: str, port: int, timeout: float = 10.0, limit: int = 2**16
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """asyncio streams over a connection made inside the namespace."""
        sock = await self.connect_socket(host, port, timeout)
        try:
            return await asyncio.open_connection(sock=sock, limit=limit)
        except BaseException:
            sock.close()
            raise

    def listen_socket(self, host: str, port: int, backlog: int = DEFAULT_BACKLOG) -> socket.socket:
        """A listening socket bound inside the namespace; port 0 picks a free port.

        Serve it from anywhere, e.g. `asyncio.start_server(handler, sock=s)`.
        """
        return self.submit(_listen, host, port, backlog).result()
