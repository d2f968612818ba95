"""agents.cgroups, the pure part: reading mountinfo and /proc/self/cgroup, choosing the
hierarchy, and what to write for a container's limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents import cgroups
from agents.cgroups import Layout, LimitFile

# Debian with the hybrid layout: v1 controllers, an empty v2 at /sys/fs/cgroup/unified.
HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_SELF = """\
9:name=systemd:/
8:pids:/
4:memory:/runner/job-7
2:cpuacct:/
1:cpu:/
0::/
"""
# systemd's unified layout: one v2 hierarchy.
UNIFIED_MOUNTINFO = """\
22 1 0:21 / / rw - ext4 /dev/vda1 rw
25 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 \
rw,nsdelegate,memory_recursiveprot
"""
UNIFIED_SELF = "0::/system.slice/kubelite-agent.service\n"
# Older distributions co-mount cpu with cpuacct; a container may see a bound subtree.
COMOUNTED_MOUNTINFO = """\
40 31 0:30 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
41 31 0:31 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
"""
COMOUNTED_SELF = "3:cpu,cpuacct:/docker/abc/inner\n2:memory:/docker/abc/inner\n"


def layout_of(mountinfo: str, own: str, controllers: str | None = None, *,
              under_self: bool = False) -> Layout:
    return cgroups.choose_layout(cgroups.parse_mountinfo(mountinfo),
                                 cgroups.parse_proc_cgroup(own), controllers, "kubelite",
                                 under_self)


def test_mountinfo_yields_cgroup_mounts_only() -> None:
    mounts = cgroups.parse_mountinfo(HYBRID_MOUNTINFO + UNIFIED_MOUNTINFO)
    assert [(m.mount_point, m.fstype) for m in mounts][:2] == [
        ("/sys/fs/cgroup/cpu", "cgroup"), ("/sys/fs/cgroup/cpuacct", "cgroup")]
    assert "tmpfs" not in {m.fstype for m in mounts} and "ext4" not in {m.fstype for m in mounts}
    assert mounts[0].super_options == frozenset({"rw", "cpu"})
    assert mounts[-1].super_options >= {"nsdelegate"}


def test_mountinfo_unescapes_mount_points() -> None:
    text = r"50 31 0:40 / /mnt/my\040cgroups rw - cgroup cgroup rw,memory"
    assert cgroups.parse_mountinfo(text)[0].mount_point == "/mnt/my cgroups"


def test_proc_cgroup_maps_each_controller_and_v2() -> None:
    own = cgroups.parse_proc_cgroup(HYBRID_SELF + COMOUNTED_SELF)
    assert own["memory"] == "/docker/abc/inner"
    assert own["cpu"] == own["cpuacct"] == "/docker/abc/inner"
    assert own["name=systemd"] == "/"
    assert own[cgroups.V2_KEY] == "/"


def test_hybrid_hosts_use_v1_since_v2_has_no_controllers() -> None:
    layout = layout_of(HYBRID_MOUNTINFO, HYBRID_SELF, controllers="")
    assert layout.version == 1 and layout.limits == "cgroup v1"
    assert layout.bases == {"cpu": Path("/sys/fs/cgroup/cpu/kubelite"),
                            "memory": Path("/sys/fs/cgroup/memory/kubelite")}


def test_under_self_nests_in_the_agents_own_cgroups() -> None:
    layout = layout_of(HYBRID_MOUNTINFO, HYBRID_SELF, controllers="", under_self=True)
    assert layout.bases == {"cpu": Path("/sys/fs/cgroup/cpu/kubelite"),
                            "memory": Path("/sys/fs/cgroup/memory/runner/job-7/kubelite")}


def test_a_bound_subtree_maps_own_paths_below_the_mount() -> None:
    layout = layout_of(COMOUNTED_MOUNTINFO, COMOUNTED_SELF, under_self=True)
    assert layout.bases == {"cpu": Path("/sys/fs/cgroup/cpu,cpuacct/inner/kubelite"),
                            "memory": Path("/sys/fs/cgroup/memory/inner/kubelite")}


def test_unified_hosts_with_cpu_and_memory_use_v2() -> None:
    layout = layout_of(UNIFIED_MOUNTINFO, UNIFIED_SELF, controllers="cpuset cpu io memory pids")
    assert layout.version == 2 and layout.limits == "cgroup v2"
    assert layout.bases == {cgroups.V2_KEY: Path("/sys/fs/cgroup/kubelite")}
    nested = layout_of(UNIFIED_MOUNTINFO, UNIFIED_SELF, controllers="cpu memory",
                       under_self=True)
    assert nested.bases == {
        cgroups.V2_KEY: Path("/sys/fs/cgroup/system.slice/kubelite-agent.service/kubelite")}


def test_without_usable_hierarchies_there_are_no_limits_and_a_reason() -> None:
    layout = layout_of(UNIFIED_MOUNTINFO, UNIFIED_SELF, controllers="cpu pids")
    assert layout.version == 0 and not layout.bases
    assert layout.limits.startswith("none: ")
    assert "lacks the memory controller" in layout.limits
    assert "no cgroup v1 cpu hierarchy" in layout.limits
    assert layout_of("", "").limits == ("none: no cgroup v2 hierarchy; no cgroup v1 cpu "
                                        "hierarchy; no cgroup v1 memory hierarchy")


def test_container_dirs_per_hierarchy_and_bad_names() -> None:
    layout = layout_of(HYBRID_MOUNTINFO, HYBRID_SELF)
    assert layout.dirs("uid-1", "web-2") == {
        "cpu": Path("/sys/fs/cgroup/cpu/kubelite/uid-1/web-2"),
        "memory": Path("/sys/fs/cgroup/memory/kubelite/uid-1/web-2")}
    for pod_uid, leaf in [("", "web-0"), ("..", "web-0"), ("uid", "a/b")]:
        with pytest.raises(ValueError):
            layout.dirs(pod_uid, leaf)


@pytest.mark.parametrize(("millicores", "quota"), [(1, 1000), (10, 1000), (250, 25000),
                                                   (1000, 100000), (2500, 250000)])
def test_cpu_quota_is_millicores_times_100_us_at_least_1_ms(millicores: int,
                                                            quota: int) -> None:
    assert cgroups.cpu_quota_us(millicores) == quota


def test_limit_files_for_v1_and_v2() -> None:
    assert cgroups.limit_files(1, 500, 64 << 20) == [
        LimitFile("cpu", "cpu.cfs_period_us", "100000"),
        LimitFile("cpu", "cpu.cfs_quota_us", "50000"),
        LimitFile("memory", "memory.limit_in_bytes", str(64 << 20)),
        LimitFile("memory", "memory.memsw.limit_in_bytes", str(64 << 20), optional=True)]
    assert cgroups.limit_files(2, 500, 64 << 20) == [
        LimitFile(cgroups.V2_KEY, "cpu.max", "50000 100000"),
        LimitFile(cgroups.V2_KEY, "memory.max", str(64 << 20)),
        LimitFile(cgroups.V2_KEY, "memory.swap.max", "0", optional=True)]
    assert cgroups.limit_files(1, None, None) == []
    assert [f.name for f in cgroups.limit_files(2, 100, None)] == ["cpu.max"]
    assert cgroups.limit_files(0, 100, 1 << 20) == []


def test_oom_kills_from_v1_oom_control_and_v2_events() -> None:
    assert cgroups.oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n") == 2
    assert cgroups.oom_kills("low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\noom_group_kill 0\n") == 1
    assert cgroups.oom_kills("oom_kill_disable 0\nunder_oom 0\n") == 0


# --- detect and create, on a file tree laid out as cgroup2 is (this kernel's cgroup2 has
# no controllers, so the real one cannot show the v2 path) ------------------------------

def v2_tree(tmp_path: Path, controllers: str) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text(controllers)
    (root / "cgroup.subtree_control").write_text("")
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text(f"25 22 0:23 / {root} rw - cgroup2 cgroup2 rw\n")
    (proc / "self" / "cgroup").write_text("0::/\n")
    return root, proc


def test_v2_detect_enables_the_controllers_down_to_each_container(tmp_path: Path) -> None:
    root, proc = v2_tree(tmp_path, "cpuset cpu io memory pids\n")
    layout = cgroups.detect("kubelite", proc=proc)
    assert layout.limits == "cgroup v2"
    assert (root / "cgroup.subtree_control").read_text() == "+cpu +memory"
    assert (root / "kubelite" / "cgroup.subtree_control").read_text() == "+cpu +memory"

    dirs = cgroups.create(layout, "uid-1", "web-0", 500, 64 << 20)
    leaf = root / "kubelite" / "uid-1" / "web-0"
    assert dirs == {cgroups.V2_KEY: leaf}
    assert (leaf.parent / "cgroup.subtree_control").read_text() == "+cpu +memory"
    assert (leaf / "cpu.max").read_text() == "50000 100000"
    assert (leaf / "memory.max").read_text() == str(64 << 20)
    assert not (leaf / "memory.swap.max").exists()  # written only where the kernel has it
    assert cgroups.procs_files(dirs) == [str(leaf / "cgroup.procs")]


def test_detect_reports_why_there_are_no_limits(tmp_path: Path) -> None:
    _, proc = v2_tree(tmp_path, "pids\n")
    assert cgroups.detect("kubelite", proc=proc).limits == (
        f"none: cgroup v2 at {tmp_path / 'cgroup'} lacks the cpu memory controller(s); "
        "no cgroup v1 cpu hierarchy; no cgroup v1 memory hierarchy")


def test_detect_reports_a_base_it_cannot_create(tmp_path: Path) -> None:
    root, proc = v2_tree(tmp_path, "cpu memory\n")
    (root / "kubelite").write_text("a file where the base should go")
    limits = cgroups.detect("kubelite", proc=proc).limits
    assert limits.startswith("none: cgroup v2: cannot prepare ")
    assert limits.endswith("File exists")
