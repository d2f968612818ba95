"""Free TCP ports on 127.0.0.1 for test servers, never handed out twice.

Three things can take a port away from a test cluster, and each has its guard:

- another listener already on it: we bind the port before handing it out;
- the kernel's outgoing connections, which take local ports from the ephemeral range
  (`net.ipv4.ip_local_port_range`) and could grab a member's port while that member is
  killed and before it restarts: we pick only below that range;
- another test run on the same machine picking the same port: each port handed out is
  reserved by an abstract Unix socket named after it, held until released or until the
  process dies (the kernel frees it even after SIGKILL), and a port whose reservation
  another process holds is skipped.

Within one run a port is never handed out again, even after release, so a late packet
or a slow-dying process from an earlier test can never reach a later one.
"""

from __future__ import annotations

import atexit
import random
import socket
import threading

_LOW = 20000
# Ports in use by convention here: the etcd anchor scripts (23791-3, 23801-3).
_AVOID = range(23700, 23900)
_MAX_TRIES = 2000

_lock = threading.Lock()
_handed_out: set[int] = set()
_reservations: dict[int, socket.socket] = {}


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _reserve(port: int) -> socket.socket | None:
    """Claim `port` machine-wide for this process; None if another process holds it."""
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        claim.bind(f"\0kubelite-test-port-{port}")
    except OSError:
        claim.close()
        return None
    return claim


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, reserved for this process."""
    high = _ephemeral_low()
    rng = random.SystemRandom()
    with _lock:
        for _ in range(_MAX_TRIES):
            port = rng.randrange(_LOW, high)
            if port in _handed_out or port in _AVOID:
                continue
            claim = _reserve(port)
            if claim is None:
                continue
            if not _bindable(port):
                claim.close()
                continue
            _handed_out.add(port)
            _reservations[port] = claim
            return port
    raise RuntimeError(f"no free port in [{_LOW}, {high}) after {_MAX_TRIES} tries")


def free_ports(count: int) -> list[int]:
    return [free_port() for _ in range(count)]


def release(ports: list[int]) -> None:
    """Drop the machine-wide reservation; the ports stay used for the rest of this run."""
    with _lock:
        for port in ports:
            claim = _reservations.pop(port, None)
            if claim is not None:
                claim.close()


def release_all() -> None:
    """Give back every reservation this process still holds (at the end of a run)."""
    release(list(_reservations))


atexit.register(release_all)
