"""Reading the machine: capacity, identity and usage, with psutil and /proc.

The rest of the agent sees plain values: `measure()` gives a `NodeMeasurements` for the
Node's status (agents/node_status.py), `usage()` a `stats.Usage` for the Summary API,
`process_usage(pids)` a pod's cpu rate and resident memory. Nothing here blocks for
long (no `cpu_percent(interval=...)` sleeps): a rate is the difference between this
reading and the previous one, which a sampler remembers, so callers on the event loop
may call these directly or through `asyncio.to_thread`.

Where the numbers come from, and why:

- cpu_count: logical CPUs (cAdvisor's NumCores, what the kubelet reports);
- memory: /proc/meminfo via psutil; "available" is MemAvailable, the kernel's estimate
  of what can be had without swapping (what memory.available eviction watches);
- disk: statvfs of the data dir (or its nearest existing parent): the filesystem pods'
  logs and scratch space land on, the kubelet's nodefs; "available" excludes blocks
  reserved for root, as df shows;
- pids: the kubelet's rlimit stats: min(kernel.pid_max, kernel.threads-max) against the
  number of tasks (threads) in /proc/loadavg, sysinfo(2)'s procs;
- node cpu: non-idle time from /proc/stat (user, nice, system, irq, softirq; guest
  time is already inside user, steal is not ours), so usageCoreNanoSeconds only grows.
"""

from __future__ import annotations

import platform
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from agents import node_status
from agents.node_status import ConditionReport, NodeMeasurements, Reserved, Thresholds
from agents.stats import Usage

PROC = Path("/proc")
MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
OS_RELEASE_FILES = (Path("/etc/os-release"), Path("/usr/lib/os-release"))
PRODUCT_UUID = Path("/sys/class/dmi/id/product_uuid")
STALE_AFTER = 600.0  # seconds: a process sample unused this long is forgotten
NANO = 1_000_000_000


def measure(data_dir: str | Path) -> NodeMeasurements:
    """One reading of the machine for the Node's status."""
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(_existing(Path(data_dir))))
    return NodeMeasurements(
        cpu_count=psutil.cpu_count(logical=True) or 1,
        memory_total_bytes=int(memory.total),
        memory_available_bytes=int(memory.available),
        disk_total_bytes=int(disk.total),
        disk_available_bytes=int(disk.free),
        pid_max=pid_limit(),
        pids_in_use=tasks_in_use(),
        kernel_version=platform.release(),
        os_image=os_image(),
        architecture=node_status.architecture(platform.machine()),
        boot_id=_read(PROC / "sys/kernel/random/boot_id"),
        machine_id=next((t for t in map(_read, MACHINE_ID_FILES) if t), ""),
        hostname=socket.gethostname(),
        system_uuid=_read(PRODUCT_UUID).lower(),
    )


def pid_limit() -> int:
    """How many tasks the kernel allows at once: min(pid_max, threads-max)."""
    limits = [int(t) for t in (_read(PROC / "sys/kernel/pid_max"),
                               _read(PROC / "sys/kernel/threads-max")) if t.isdigit()]
    return min(limits) if limits else 32768


def tasks_in_use() -> int:
    """Tasks (threads) that exist now: the denominator of /proc/loadavg's 4th field."""
    fields = _read(PROC / "loadavg").split()
    if len(fields) >= 4 and "/" in fields[3]:
        return int(fields[3].split("/")[1])
    return len(psutil.pids())


def os_image() -> str:
    """PRETTY_NAME from os-release ("Debian GNU/Linux 12 (bookworm)"), as the kubelet."""
    for path in OS_RELEASE_FILES:
        for line in _read(path).splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "PRETTY_NAME":
                words = shlex.split(value, posix=True)
                return " ".join(words) if words else value
    return "Linux"


def _existing(path: Path) -> Path:
    """The path itself, or its nearest existing parent (a data dir not created yet)."""
    path = path.absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


# --- usage ----------------------------------------------------------------------------


class UsageSampler:
    """The machine's usage; remembers the previous cpu reading to give a rate."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._previous: tuple[float, int] | None = None  # (monotonic, busy core-ns)

    def usage(self) -> Usage:
        busy = busy_core_nanoseconds(psutil.cpu_times())
        now = time.monotonic()
        memory = psutil.virtual_memory()
        with self._lock:
            previous, self._previous = self._previous, (now, busy)
        rate = None
        if previous is not None and now > previous[0]:
            rate = max(int((busy - previous[1]) / (now - previous[0])), 0)
        return Usage(
            cpu_nanocores=rate, cpu_usage_core_nanoseconds=busy,
            memory_working_set_bytes=int(memory.total - memory.available),
            memory_available=int(memory.available),
            memory_usage=int(memory.total - memory.free),
            timestamp=datetime.now(UTC))


def busy_core_nanoseconds(times: Any) -> int:
    """Non-idle cpu time of all cores from psutil.cpu_times(), in nanoseconds."""
    seconds = sum(getattr(times, name, 0.0)
                  for name in ("user", "nice", "system", "irq", "softirq"))
    return int(seconds * NANO)


class ProcessUsage(NamedTuple):
    cpu_nanocores: int
    rss_bytes: int
    cpu_core_nanoseconds: int  # cpu time the processes spent so far


class ProcessSampler:
    """Cpu rate and resident memory of groups of processes (a pod's).

    A process is known by (pid, start time), so a reused pid starts afresh. Its rate is
    the cpu time since the previous sample over the time between; for a process seen
    the first time, its cpu time over its lifetime so far. Processes that vanished
    between listing and reading are skipped.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[int, float], tuple[float, float]] = {}  # -> (monotonic, cpu s)

    def sample(self, pids: Iterable[int]) -> ProcessUsage:
        now, wall = time.monotonic(), time.time()
        rate = 0.0
        rss = 0
        cpu_total = 0.0
        for pid in set(pids):
            reading = _process_reading(pid)
            if reading is None:
                continue
            created, cpu, resident = reading
            rss += resident
            cpu_total += cpu
            key = (pid, created)
            with self._lock:
                previous = self._seen.get(key)
                self._seen[key] = (now, cpu)
            if previous is not None and now > previous[0]:
                rate += max(cpu - previous[1], 0.0) / (now - previous[0])
            elif wall > created:
                rate += cpu / (wall - created)
        self._forget_stale(now)
        return ProcessUsage(int(rate * NANO), rss, int(cpu_total * NANO))

    def _forget_stale(self, now: float) -> None:
        with self._lock:
            for key in [k for k, (at, _) in self._seen.items() if now - at > STALE_AFTER]:
                del self._seen[key]


def _process_reading(pid: int) -> tuple[float, float, int] | None:
    """(start time, cpu seconds, rss bytes) of a live process, or None."""
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            times = process.cpu_times()
            return (process.create_time(), times.user + times.system,
                    int(process.memory_info().rss))
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


_node_sampler = UsageSampler()
_process_sampler = ProcessSampler()


def usage() -> Usage:
    """The machine's usage now; cpu_nanocores is the rate since the previous call."""
    return _node_sampler.usage()


def process_usage(pids: Iterable[int]) -> tuple[int, int]:
    """(cpu nanocores, rss bytes) of these processes, vanished ones ignored."""
    sampled = _process_sampler.sample(pids)
    return sampled.cpu_nanocores, sampled.rss_bytes


# --- the agent's status source --------------------------------------------------------


def status_builder(
    data_dir: str | Path, *, reserved: Reserved, thresholds: Thresholds, max_pods: int,
    addresses: Sequence[Mapping[str, str]], agent_version: str, runtime_version: str,
    daemon_port: int, readiness: Callable[[], tuple[bool, str, str]] = lambda: (True, "", ""),
    extra_conditions: Callable[[], Sequence[ConditionReport]] = lambda: (),
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Callable[[list[dict[str, Any]] | None], dict[str, Any]]:
    """The `build_status` NodeHeartbeat calls: measure now, then build the status."""

    def build(previous_conditions: list[dict[str, Any]] | None) -> dict[str, Any]:
        return node_status.node_status(
            measure(data_dir), reserved=reserved, thresholds=thresholds, max_pods=max_pods,
            addresses=addresses, agent_version=agent_version, runtime_version=runtime_version,
            daemon_port=daemon_port, previous_conditions=previous_conditions,
            ready=readiness(), extra_conditions=extra_conditions(), now=clock())

    return build
