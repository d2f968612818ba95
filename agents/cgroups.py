"""Cgroups for containers: which hierarchy to use, and each container's limits.

Detection prefers cgroup v2 when its hierarchy offers both the cpu and the memory
controllers; otherwise it uses the cgroup v1 hierarchies that carry `cpu` and `memory`
(wherever they are mounted, alone or co-mounted as `cpu,cpuacct`); otherwise there are
no limits and `Layout.limits` says why (the agent reports it on its Node, and containers
still run, unlimited).

Every container attempt gets a cgroup of its own in each hierarchy used:

    <base>/<pod uid>/<container>-<attempt>      base = <mount>/<cgroup_root>

With `under_self` the base is placed under the cgroup the agent itself runs in, rather
than at the hierarchy's root: an agent started inside a limited cgroup (a delegated
subtree, a test runner) then keeps its containers inside its own limits. On cgroup v2
that only works where the agent's cgroup may have controlled children, since v2 forbids
processes in inner cgroups; detection says so when it cannot enable the controllers.

Limits are written before any process joins: cpu as a CFS quota over a 100 ms period
(`cpu.cfs_quota_us` / `cpu.max`, millicores x 100 us, at least 1 ms as the kubelet
clamps it) and memory as `memory.limit_in_bytes` / `memory.max`, with swap held to the
same limit (v1 memsw) or to none (v2), so that exceeding the limit is an OOM kill and
not a slow swap. An OOM kill is read back from the cgroup's `oom_kill` counter.

Parsing and decisions are plain functions of file contents; `detect`, `create`,
`remove` and the readers below them do the file-system work.
"""

from __future__ import annotations

import contextlib
import errno
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

CPU_PERIOD_US = 100_000
MIN_QUOTA_US = 1_000
V1_CONTROLLERS = ("cpu", "memory")
V2_KEY = "unified"  # the key of the single v2 hierarchy in Layout.bases
V2_NEEDED = frozenset({"cpu", "memory"})


# --- pure: parsing ----------------------------------------------------------------------

@dataclass(frozen=True)
class Mount:
    mount_point: str
    root: str  # the hierarchy's directory that appears at the mount point
    fstype: str
    super_options: frozenset[str]


def _unescape(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text: str) -> list[Mount]:
    """The cgroup and cgroup2 mounts of /proc/self/mountinfo."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        mounts.append(Mount(mount_point=_unescape(fields[4]), root=_unescape(fields[3]),
                            fstype=tail[0], super_options=frozenset(tail[2].split(","))))
    return mounts


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/<pid>/cgroup as {controller: path}; the v2 hierarchy under V2_KEY."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            paths[V2_KEY] = path
        for controller in controllers.split(","):
            if controller:
                paths[controller] = path
    return paths


def oom_kills(text: str) -> int:
    """The `oom_kill` counter of v1 memory.oom_control or v2 memory.events."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return 0


# --- pure: decisions --------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Where container cgroups go: one base directory per hierarchy used."""

    version: int  # 2, 1, or 0 for none
    reason: str = ""  # why there are no limits (version 0)
    bases: Mapping[str, Path] = field(default_factory=dict)  # "cpu"/"memory" or V2_KEY

    @property
    def limits(self) -> str:
        return f"cgroup v{self.version}" if self.version else f"none: {self.reason}"

    def dirs(self, pod_uid: str, leaf: str) -> dict[str, Path]:
        """The container's cgroup directory in each hierarchy."""
        for part in (pod_uid, leaf):
            if not part or "/" in part or part in (".", ".."):
                raise ValueError(f"bad cgroup name component {part!r}")
        return {key: base / pod_uid / leaf for key, base in self.bases.items()}


def _within(mount: Mount, own: str | None) -> str:
    """The agent's own cgroup as a path below the mount point ("" if not visible)."""
    if own is None:
        return ""
    root = mount.root.rstrip("/")
    if own != root and not own.startswith(root + "/"):
        return ""
    return own[len(root):].strip("/")


def _base(mount: Mount, own: str | None, cgroup_root: str, under_self: bool) -> Path:
    base = Path(mount.mount_point)
    if under_self and (inside := _within(mount, own)):
        base = base / inside
    return base / cgroup_root.strip("/")


def v2_base(mounts: list[Mount], own: Mapping[str, str], cgroup_root: str,
            under_self: bool) -> Path | None:
    """Where container cgroups would go on the v2 hierarchy, if one is mounted."""
    for mount in mounts:
        if mount.fstype == "cgroup2":
            return _base(mount, own.get(V2_KEY), cgroup_root, under_self)
    return None


def choose_layout(mounts: list[Mount], own: Mapping[str, str], v2_controllers: str | None,
                  cgroup_root: str, under_self: bool) -> Layout:
    """v2 if its controllers (`cgroup.controllers` where the base goes) include cpu and
    memory, else v1 if both hierarchies are mounted, else none with the reasons."""
    reasons = []
    base = v2_base(mounts, own, cgroup_root, under_self)
    if base is not None:
        available = frozenset((v2_controllers or "").split())
        if available >= V2_NEEDED:
            return Layout(2, bases={V2_KEY: base})
        missing = " ".join(sorted(V2_NEEDED - available))
        reasons.append(f"cgroup v2 at {base.parent} lacks the {missing} controller(s)")
    else:
        reasons.append("no cgroup v2 hierarchy")
    bases: dict[str, Path] = {}
    for controller in V1_CONTROLLERS:
        mount = next((m for m in mounts if m.fstype == "cgroup"
                      and controller in m.super_options), None)
        if mount is None:
            reasons.append(f"no cgroup v1 {controller} hierarchy")
        else:
            bases[controller] = _base(mount, own.get(controller), cgroup_root, under_self)
    if len(bases) == len(V1_CONTROLLERS):
        return Layout(1, bases=bases)
    return Layout(0, reason="; ".join(reasons))


def cpu_quota_us(millicores: int) -> int:
    return max(MIN_QUOTA_US, millicores * CPU_PERIOD_US // 1000)


@dataclass(frozen=True)
class LimitFile:
    key: str  # which hierarchy ("cpu", "memory" or V2_KEY)
    name: str
    value: str
    optional: bool = False  # written only where the kernel offers the file


def limit_files(version: int, cpu_millicores: int | None,
                memory_bytes: int | None) -> list[LimitFile]:
    """The files to write, in order, to limit one container."""
    files: list[LimitFile] = []
    if version == 1:
        if cpu_millicores is not None:
            files += [LimitFile("cpu", "cpu.cfs_period_us", str(CPU_PERIOD_US)),
                      LimitFile("cpu", "cpu.cfs_quota_us", str(cpu_quota_us(cpu_millicores)))]
        if memory_bytes is not None:
            # memsw must not be below the memory limit, so it is written after it.
            files += [LimitFile("memory", "memory.limit_in_bytes", str(memory_bytes)),
                      LimitFile("memory", "memory.memsw.limit_in_bytes", str(memory_bytes),
                                optional=True)]
    elif version == 2:
        if cpu_millicores is not None:
            files.append(LimitFile(V2_KEY, "cpu.max",
                                   f"{cpu_quota_us(cpu_millicores)} {CPU_PERIOD_US}"))
        if memory_bytes is not None:
            files += [LimitFile(V2_KEY, "memory.max", str(memory_bytes)),
                      LimitFile(V2_KEY, "memory.swap.max", "0", optional=True)]
    return files


# --- I/O ------------------------------------------------------------------------------

def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _enable_v2_controllers(directory: Path) -> None:
    control = directory / "cgroup.subtree_control"
    enabled = set((_read(control) or "").split())
    if not enabled >= V2_NEEDED:
        control.write_text(" ".join(f"+{c}" for c in sorted(V2_NEEDED - enabled)))


def _prepare_v2(layout: Layout, mount_point: Path) -> None:
    """Create the base and let cpu and memory reach the cgroups below it."""
    base = layout.bases[V2_KEY]
    base.mkdir(parents=True, exist_ok=True)
    chain = [base, *[p for p in base.parents if p.is_relative_to(mount_point)]]
    for directory in reversed(chain):
        _enable_v2_controllers(directory)


def detect(cgroup_root: str = "kubelite", *, under_self: bool = False,
           proc: Path = Path("/proc")) -> Layout:
    """The layout of this host, with its base directories created (none if they cannot
    be, with the error as the reason)."""
    mounts = parse_mountinfo(_read(proc / "self" / "mountinfo") or "")
    own = parse_proc_cgroup(_read(proc / "self" / "cgroup") or "")
    base = v2_base(mounts, own, cgroup_root, under_self)
    controllers = None
    if base is not None:
        # The cgroup the base goes in says what it can offer the base.
        parent = next((p for p in base.parents if p.is_dir()), base.parent)
        controllers = _read(parent / "cgroup.controllers")
    layout = choose_layout(mounts, own, controllers, cgroup_root, under_self)
    try:
        if layout.version == 2:
            mount = next(m for m in mounts if m.fstype == "cgroup2")
            _prepare_v2(layout, Path(mount.mount_point))
        for directory in layout.bases.values():
            directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return Layout(0, reason=f"cgroup v{layout.version}: cannot prepare "
                                f"{err.filename or layout.bases}: {err.strerror}")
    return layout


def create(layout: Layout, pod_uid: str, leaf: str, cpu_millicores: int | None,
           memory_bytes: int | None) -> dict[str, Path]:
    """Make the container's cgroups and write its limits; OSError leaves none behind.

    An empty cgroup left by an earlier try (one that could not be removed yet) is
    reused; one with processes in it is not.
    """
    dirs = layout.dirs(pod_uid, leaf)
    try:
        for directory in dirs.values():
            directory.parent.mkdir(parents=True, exist_ok=True)
            if layout.version == 2:
                _enable_v2_controllers(directory.parent)
            directory.mkdir(exist_ok=True)
            if member_pids({"": directory}):
                raise OSError(errno.EBUSY, "the cgroup already has processes", str(directory))
        for limit in limit_files(layout.version, cpu_millicores, memory_bytes):
            target = dirs[limit.key] / limit.name
            if limit.optional and not target.exists():
                continue
            target.write_text(limit.value)
    except OSError:
        with contextlib.suppress(OSError):
            remove(dirs.values())
        raise
    return dirs


def procs_files(dirs: Mapping[str, Path]) -> list[str]:
    return [str(d / "cgroup.procs") for d in dirs.values()]


def member_pids(dirs: Mapping[str, Path]) -> set[int]:
    pids: set[int] = set()
    for directory in dirs.values():
        for line in (_read(directory / "cgroup.procs") or "").split():
            pids.add(int(line))
    return pids


def oom_killed(version: int, dirs: Mapping[str, Path]) -> bool:
    """Whether the kernel OOM-killed a process of this container's memory cgroup."""
    directory = dirs.get(V2_KEY if version == 2 else "memory")
    if directory is None:
        return False
    name = "memory.events" if version == 2 else "memory.oom_control"
    return oom_kills(_read(directory / name) or "") > 0


def remove(dirs: Iterable[Path]) -> None:
    """Remove container cgroups (and their pod's, once empty); a cgroup that still has
    processes raises OSError(EBUSY), so callers retry once they are gone."""
    for path in list(dirs):
        try:
            path.rmdir()
        except FileNotFoundError:
            pass
        try:
            path.parent.rmdir()
        except OSError as err:
            if err.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EBUSY):
                raise
