"""What the node agent reports about its machine: the Node's status and labels (pure).

Measurements come in as a `NodeMeasurements` (agents/measure.py reads them with
psutil); everything here is a function of them, the agent's configuration and `now`,
so it is tested without a machine. The rules follow the kubelet's:

- capacity is the machine: cpu (whole cores, "2"), memory and ephemeral-storage (the
  filesystem of the agent's data dir) as binary quantities ("16331836Ki"), pods (the
  configured maximum);
- allocatable is what pods may use: capacity minus system-reserved minus the hard
  eviction threshold of that resource (memory.available, nodefs.available), as the
  kubelet's node allocatable is; never below zero;
- MemoryPressure, DiskPressure and PIDPressure are True while the available amount is
  below its hard eviction threshold (`Thresholds`), with the kubelet's reasons and
  messages; Ready is what the caller says (runtime and network up or not);
- every condition's lastHeartbeatTime is `now`; its lastTransitionTime is kept from
  the previous report unless its status flipped (a condition seen for the first time,
  or one the control plane set to Unknown, transitions now).

The agent writes the status only when `status_changed` (heartbeat times aside) or when
`status_interval` passed (the Lease is the frequent sign of life), and retries failed
writes after `retry_delay`: exponential, capped, so an apiserver outage costs little.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from apiserver import quantities
from apiserver.objects import timestamp

Obj = dict[str, Any]

OPERATING_SYSTEM = "linux"
# platform.machine() -> the GOARCH names Kubernetes uses in labels and nodeInfo.
ARCHITECTURES = {
    "x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
    "armv7l": "arm", "armv6l": "arm", "i686": "386", "i386": "386",
    "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
}
PRESSURE_TYPES = ("MemoryPressure", "DiskPressure", "PIDPressure")
CONDITION_ORDER = (*PRESSURE_TYPES, "Ready")

# type -> (reason, message) when False, and when True: the kubelet's words.
_PRESSURE_TEXT = {
    "MemoryPressure": (("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                       ("KubeletHasInsufficientMemory",
                        "kubelet has insufficient memory available")),
    "DiskPressure": (("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                     ("KubeletHasDiskPressure", "kubelet has disk pressure")),
    "PIDPressure": (("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    ("KubeletHasInsufficientPID", "kubelet has insufficient PID available")),
}
READY_REASON, READY_MESSAGE = "KubeletReady", "kubelet is posting ready status"
NOT_READY_REASON = "KubeletNotReady"

# --eviction-hard signal -> Thresholds field
EVICTION_SIGNALS = {"memory.available": "memory_available",
                    "nodefs.available": "nodefs_available", "pid.available": "pid_available"}

RETRY_FIRST = 0.2  # seconds; the kubelet's node lease controller starts at 200 ms
RETRY_CAP = 7.0  # ... and doubles up to 7 s


# --- inputs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeMeasurements:
    """One reading of the machine (see agents/measure.py for where each comes from)."""

    cpu_count: int
    memory_total_bytes: int
    memory_available_bytes: int
    disk_total_bytes: int  # the filesystem holding the agent's data dir
    disk_available_bytes: int
    pid_max: int  # min(kernel.pid_max, kernel.threads-max)
    pids_in_use: int  # tasks (threads) that exist now, as sysinfo(2) counts them
    kernel_version: str
    os_image: str
    architecture: str  # Kubernetes' name: amd64, arm64
    boot_id: str
    machine_id: str
    hostname: str
    system_uuid: str = ""  # DMI product UUID where readable; machine_id otherwise


@dataclass(frozen=True)
class Reserved:
    """--system-reserved: what the OS and system daemons keep from pods."""

    cpu_millis: int = 0
    memory_bytes: int = 0
    ephemeral_storage_bytes: int = 0

    @classmethod
    def parse(cls, text: str) -> Reserved:
        """`cpu=100m,memory=256Mi,ephemeral-storage=1Gi` (any subset; "" is nothing)."""
        values: dict[str, int] = {}
        for name, raw in _pairs(text, "="):
            quantity = quantities.parse_quantity(raw)
            if quantity.value < 0:
                raise ValueError(f"reserved {name} must not be negative: {raw!r}")
            if name == "cpu":
                values["cpu_millis"] = quantities.cpu_millis(quantity)
            elif name == "memory":
                values["memory_bytes"] = quantities.bytes_value(quantity)
            elif name == "ephemeral-storage":
                values["ephemeral_storage_bytes"] = quantities.bytes_value(quantity)
            else:
                raise ValueError(f"unknown reserved resource {name!r} "
                                 "(cpu, memory, ephemeral-storage)")
        return cls(**values)


@dataclass(frozen=True)
class Threshold:
    """An eviction threshold: an absolute amount, or a percentage of the capacity."""

    amount: int = 0
    percentage: Decimal | None = None

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """`100Mi`, `10%` or `1000` (pids)."""
        text = text.strip()
        if text.endswith("%"):
            percentage = Decimal(text[:-1])
            if not 0 <= percentage <= 100:
                raise ValueError(f"threshold percentage out of range: {text!r}")
            return cls(percentage=percentage)
        value = quantities.bytes_value(quantities.parse_quantity(text))
        if value < 0:
            raise ValueError(f"threshold must not be negative: {text!r}")
        return cls(amount=value)

    def of(self, capacity: int) -> int:
        """The threshold in units of `capacity` (bytes or pids), rounded down."""
        if self.percentage is None:
            return self.amount
        return int(Decimal(capacity) * self.percentage / 100)

    def __str__(self) -> str:
        return f"{self.percentage}%" if self.percentage is not None else str(self.amount)


@dataclass(frozen=True)
class Thresholds:
    """Hard eviction thresholds, signal < threshold means pressure.

    Defaults: the kubelet's evictionHard for memory.available (100Mi) and
    nodefs.available (10%). The kubelet sets none for pid.available; 5% is ours, so a
    machine running out of pids (a fork bomb, a thread leak) is reported before fork
    fails everywhere, while a busy machine (a few thousand tasks of 32768) is not.
    """

    memory_available: Threshold = field(default_factory=lambda: Threshold(100 * 2**20))
    nodefs_available: Threshold = field(default_factory=lambda: Threshold(
        percentage=Decimal(10)))
    pid_available: Threshold = field(default_factory=lambda: Threshold(percentage=Decimal(5)))

    @classmethod
    def parse(cls, text: str) -> Thresholds:
        """--eviction-hard: `memory.available<100Mi,nodefs.available<10%,pid.available<5%`;
        a signal not named keeps its default."""
        values: dict[str, Threshold] = {}
        for signal, raw in _pairs(text, "<"):
            if signal not in EVICTION_SIGNALS:
                raise ValueError(f"unknown eviction signal {signal!r} "
                                 f"({', '.join(EVICTION_SIGNALS)})")
            values[EVICTION_SIGNALS[signal]] = Threshold.parse(raw)
        return cls(**values)


class ConditionReport(NamedTuple):
    """A condition the agent reports besides the four it always does."""

    type: str
    status: bool
    reason: str
    message: str


def _pairs(text: str, separator: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition(separator)
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"expected NAME{separator}VALUE, got {item!r}")
        pairs.append((name.strip(), value.strip()))
    return pairs


# --- the status -----------------------------------------------------------------------


def node_status(m: NodeMeasurements, *, reserved: Reserved, thresholds: Thresholds,
                max_pods: int, addresses: Sequence[Mapping[str, str]], agent_version: str,
                runtime_version: str, daemon_port: int,
                previous_conditions: Sequence[Mapping[str, Any]] | None,
                ready: tuple[bool, str, str],
                extra_conditions: Sequence[ConditionReport] = (), now: datetime) -> Obj:
    """The Node `status` the agent posts (see the module docstring for the rules)."""
    return {
        "capacity": capacity(m, max_pods),
        "allocatable": allocatable(m, reserved, thresholds, max_pods),
        "conditions": conditions(m, thresholds, previous_conditions, ready,
                                 extra_conditions, now),
        "addresses": [dict(a) for a in addresses],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": daemon_port}},
        "nodeInfo": node_info(m, agent_version, runtime_version),
    }


def capacity(m: NodeMeasurements, max_pods: int) -> dict[str, str]:
    return {"cpu": str(m.cpu_count), "ephemeral-storage": binary(m.disk_total_bytes),
            "memory": binary(m.memory_total_bytes), "pods": str(max_pods)}


def allocatable(m: NodeMeasurements, reserved: Reserved, thresholds: Thresholds,
                max_pods: int) -> dict[str, str]:
    cpu = max(m.cpu_count * 1000 - reserved.cpu_millis, 0)
    memory = (m.memory_total_bytes - reserved.memory_bytes
              - thresholds.memory_available.of(m.memory_total_bytes))
    storage = (m.disk_total_bytes - reserved.ephemeral_storage_bytes
               - thresholds.nodefs_available.of(m.disk_total_bytes))
    return {"cpu": millicores(cpu), "ephemeral-storage": binary(max(storage, 0)),
            "memory": binary(max(memory, 0)), "pods": str(max_pods)}


def pressures(m: NodeMeasurements, thresholds: Thresholds) -> dict[str, bool]:
    """Condition type -> whether the signal is below its hard eviction threshold."""
    return {
        "MemoryPressure": m.memory_available_bytes
        < thresholds.memory_available.of(m.memory_total_bytes),
        "DiskPressure": m.disk_available_bytes
        < thresholds.nodefs_available.of(m.disk_total_bytes),
        "PIDPressure": m.pid_max - m.pids_in_use < thresholds.pid_available.of(m.pid_max),
    }


def conditions(m: NodeMeasurements, thresholds: Thresholds,
               previous: Sequence[Mapping[str, Any]] | None, ready: tuple[bool, str, str],
               extra: Sequence[ConditionReport], now: datetime) -> list[Obj]:
    """The pressure conditions, then Ready, then `extra`, with transition times kept."""
    before = {str(c.get("type")): c for c in previous or [] if isinstance(c, Mapping)}
    reports = []
    for kind, pressure in pressures(m, thresholds).items():
        reason, message = _PRESSURE_TEXT[kind][pressure]
        reports.append(ConditionReport(kind, pressure, reason, message))
    is_ready, reason, message = ready
    if is_ready:
        reports.append(ConditionReport("Ready", True, reason or READY_REASON,
                                       message or READY_MESSAGE))
    else:
        reports.append(ConditionReport("Ready", False, reason or NOT_READY_REASON, message))
    reports += [r for r in extra if r.type not in CONDITION_ORDER]
    return [condition(r, before.get(r.type), now) for r in reports]


def condition(report: ConditionReport, previous: Mapping[str, Any] | None,
              now: datetime) -> Obj:
    status = "True" if report.status else "False"
    stamp = timestamp(now)
    transition = stamp
    if previous is not None and previous.get("status") == status \
            and previous.get("lastTransitionTime"):
        transition = str(previous["lastTransitionTime"])
    return {"type": report.type, "status": status, "lastHeartbeatTime": stamp,
            "lastTransitionTime": transition, "reason": report.reason,
            "message": report.message}


def node_info(m: NodeMeasurements, agent_version: str, runtime_version: str) -> dict[str, str]:
    return {"machineID": m.machine_id, "systemUUID": m.system_uuid or m.machine_id,
            "bootID": m.boot_id, "kernelVersion": m.kernel_version, "osImage": m.os_image,
            "containerRuntimeVersion": runtime_version, "kubeletVersion": agent_version,
            "kubeProxyVersion": agent_version, "operatingSystem": OPERATING_SYSTEM,
            "architecture": m.architecture}


def node_addresses(internal_ip: str, hostname: str) -> list[dict[str, str]]:
    """status.addresses as the kubelet lists them: InternalIP first, then Hostname."""
    out = [{"type": "InternalIP", "address": internal_ip}] if internal_ip else []
    if hostname:
        out.append({"type": "Hostname", "address": hostname})
    return out


def node_labels(name: str, m: NodeMeasurements,
                extra_labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """The kubelet's default labels, then --node-labels (which may override them).

    kubernetes.io/hostname carries the node name: the name is the machine's hostname as
    far as the cluster is concerned (the kubelet's --hostname-override), and it stays
    unique where several nodes share a kernel hostname (network-namespace labs).
    """
    arch = architecture(m.architecture)
    return {"beta.kubernetes.io/arch": arch, "beta.kubernetes.io/os": OPERATING_SYSTEM,
            "kubernetes.io/arch": arch, "kubernetes.io/hostname": name.lower(),
            "kubernetes.io/os": OPERATING_SYSTEM, **(extra_labels or {})}


def architecture(machine: str) -> str:
    """platform.machine()'s name (or one already in Kubernetes' form) as Kubernetes names it."""
    return ARCHITECTURES.get(machine.lower(), machine.lower())


def binary(value: int) -> str:
    """Bytes as a BinarySI quantity: `16331836Ki`, or plain bytes when not whole Ki."""
    return quantities.Quantity(Decimal(value), quantities.BINARY_SI).canonical()


def millicores(millis: int) -> str:
    """CPU millicores as a quantity: `2`, `1900m`."""
    return quantities.Quantity(Decimal(millis) / 1000, quantities.DECIMAL_SI).canonical()


# --- when to write ----------------------------------------------------------------------


def status_changed(old_status: Mapping[str, Any] | None, new_status: Mapping[str, Any]) -> bool:
    """Whether posting `new_status` would tell the control plane anything new.

    Heartbeat times do not count (they always move); quantities are compared by value,
    since the apiserver may re-serialise them (`94580335000` comes back as `94580335k`).
    """
    return _comparable(old_status or {}) != _comparable(new_status)


def _comparable(status: Mapping[str, Any]) -> Obj:
    out = dict(status)
    for section in ("capacity", "allocatable"):
        if isinstance(out.get(section), Mapping):
            out[section] = {k: _quantity_value(v) for k, v in out[section].items()}
    if isinstance(out.get("conditions"), list):
        out["conditions"] = sorted(
            ({k: v for k, v in c.items() if k != "lastHeartbeatTime"}
             for c in out["conditions"] if isinstance(c, Mapping)),
            key=lambda c: str(c.get("type")))
    return out


def _quantity_value(raw: object) -> object:
    try:
        return quantities.quantity_from_json(raw).value
    except ValueError:
        return raw


def merge_status(current: Mapping[str, Any] | None, reported: Mapping[str, Any]) -> Obj:
    """The status to write: what the agent reports, over what others put in the Node.

    Fields the agent does not report (images, volumesInUse) are kept, and so are
    conditions of other types (NetworkUnavailable set by a network plugin), as the
    kubelet keeps them by editing the Node it read.
    """
    merged = {**(current or {}), **reported}
    ours = {c.get("type") for c in reported.get("conditions") or []}
    theirs = [c for c in (current or {}).get("conditions") or []
              if isinstance(c, Mapping) and c.get("type") not in ours]
    merged["conditions"] = [*(dict(c) for c in reported.get("conditions") or []),
                            *(dict(c) for c in theirs)]
    return merged


def status_due(last_posted: float | None, now: float, interval: float) -> bool:
    """Post an unchanged status once `interval` passed since the last post (monotonic)."""
    return last_posted is None or now - last_posted >= interval


def retry_delay(failures: int, first: float = RETRY_FIRST, cap: float = RETRY_CAP) -> float:
    """Seconds to wait after `failures` consecutive failed attempts (1, 2, ...):
    first, 2*first, 4*first ... at most cap."""
    if failures <= 0:
        return 0.0
    return min(first * 2.0 ** min(failures - 1, 62), cap)


def micro_time(now: datetime) -> str:
    """metav1.MicroTime (a Lease's renewTime): RFC 3339 with microseconds."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
