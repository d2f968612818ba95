"""The Node status the agent reports: capacity, allocatable, conditions, and when to post."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents import node_status
from agents.node_status import ConditionReport, NodeMeasurements, Reserved, Threshold, Thresholds
from apiserver.quantities import bytes_value, cpu_millis

T0 = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
GI, MI, KI = 2**30, 2**20, 2**10
M = NodeMeasurements(
    cpu_count=2, memory_total_bytes=8 * GI, memory_available_bytes=6 * GI,
    disk_total_bytes=100 * GI, disk_available_bytes=60 * GI, pid_max=32768,
    pids_in_use=400, kernel_version="6.18.0", os_image="Debian GNU/Linux 12 (bookworm)",
    architecture="amd64", boot_id="boot-1", machine_id="machine-1", hostname="host-1")
ADDRESSES = node_status.node_addresses("127.0.0.5", "host-1")


def status(m: NodeMeasurements = M, *, reserved: Reserved = Reserved(),
           thresholds: Thresholds = Thresholds(), previous: list | None = None,
           ready: tuple[bool, str, str] = (True, "", ""), now: datetime = T0,
           extra: tuple[ConditionReport, ...] = ()) -> dict:
    return node_status.node_status(
        m, reserved=reserved, thresholds=thresholds, max_pods=110, addresses=ADDRESSES,
        agent_version="v1.32.0-kubelite", runtime_version="process://0.1.0",
        daemon_port=10250, previous_conditions=previous, ready=ready,
        extra_conditions=extra, now=now)


def by_type(s: dict) -> dict[str, dict]:
    return {c["type"]: c for c in s["conditions"]}


# --- parsing the flags ------------------------------------------------------------------


def test_reserved_parses_the_system_reserved_flag() -> None:
    r = Reserved.parse("cpu=100m,memory=256Mi,ephemeral-storage=1Gi")
    assert r == Reserved(cpu_millis=100, memory_bytes=256 * MI, ephemeral_storage_bytes=GI)
    assert Reserved.parse("") == Reserved()
    assert Reserved.parse(" memory = 1G ") == Reserved(memory_bytes=10**9)


@pytest.mark.parametrize("text", ["gpu=1", "cpu", "cpu=", "memory=-1Gi", "cpu=lots"])
def test_reserved_refuses_what_it_cannot_mean(text: str) -> None:
    with pytest.raises(ValueError):
        Reserved.parse(text)


def test_thresholds_default_to_the_kubelets_eviction_hard() -> None:
    t = Thresholds()
    assert t.memory_available.of(8 * GI) == 100 * MI
    assert t.nodefs_available.of(100 * GI) == 10 * GI
    assert t.pid_available.of(32768) == 1638


def test_thresholds_parse_the_eviction_hard_flag_and_keep_unnamed_defaults() -> None:
    t = Thresholds.parse("memory.available<1Gi, pid.available<1000")
    assert t.memory_available == Threshold(GI)
    assert t.pid_available.of(32768) == 1000
    assert t.nodefs_available == Thresholds().nodefs_available
    assert Thresholds.parse("nodefs.available<15%").nodefs_available.of(200) == 30
    for bad in ("imagefs.available<15%", "memory.available>1Gi", "nodefs.available<150%"):
        with pytest.raises(ValueError):
            Thresholds.parse(bad)


# --- capacity and allocatable -----------------------------------------------------------


def test_capacity_is_the_machine_in_kubernetes_quantities() -> None:
    s = status()
    assert s["capacity"] == {"cpu": "2", "memory": "8Gi", "ephemeral-storage": "100Gi",
                             "pods": "110"}
    odd = dataclasses.replace(M, memory_total_bytes=16331836 * KI)
    assert status(odd)["capacity"]["memory"] == "16331836Ki"


def test_allocatable_subtracts_reserved_and_the_hard_eviction_threshold() -> None:
    reserved = Reserved.parse("cpu=100m,memory=256Mi,ephemeral-storage=1Gi")
    s = status(reserved=reserved)
    alloc = s["allocatable"]
    assert alloc["cpu"] == "1900m"
    assert bytes_value(alloc["memory"]) == 8 * GI - 256 * MI - 100 * MI
    assert alloc["memory"] == "7836Mi"  # canonical, as the kubelet prints it
    assert bytes_value(alloc["ephemeral-storage"]) == 100 * GI - GI - 10 * GI
    assert alloc["pods"] == "110"


def test_allocatable_never_goes_below_zero() -> None:
    small = dataclasses.replace(M, memory_total_bytes=64 * MI)
    s = status(small, reserved=Reserved(cpu_millis=5000, memory_bytes=GI))
    assert s["allocatable"]["cpu"] == "0"
    assert s["allocatable"]["memory"] == "0"


@given(cpus=st.integers(1, 256), memory=st.integers(0, 2**40), disk=st.integers(0, 2**44),
       r_cpu=st.integers(0, 300_000), r_mem=st.integers(0, 2**41),
       r_disk=st.integers(0, 2**45), pct=st.integers(0, 100))
def test_allocatable_is_within_capacity_and_parses_back(cpus: int, memory: int, disk: int,
                                                        r_cpu: int, r_mem: int, r_disk: int,
                                                        pct: int) -> None:
    m = dataclasses.replace(M, cpu_count=cpus, memory_total_bytes=memory,
                            disk_total_bytes=disk)
    t = Thresholds(nodefs_available=Threshold(percentage=Decimal(pct)))
    s = status(m, reserved=Reserved(r_cpu, r_mem, r_disk), thresholds=t)
    cap, alloc = s["capacity"], s["allocatable"]
    assert cpu_millis(cap["cpu"]) == cpus * 1000
    assert bytes_value(cap["memory"]) == memory
    assert 0 <= cpu_millis(alloc["cpu"]) == max(cpus * 1000 - r_cpu, 0)
    assert 0 <= bytes_value(alloc["memory"]) <= memory
    assert 0 <= bytes_value(alloc["ephemeral-storage"]) <= disk


# --- conditions -------------------------------------------------------------------------


def test_a_healthy_machine_reports_the_kubelets_four_conditions() -> None:
    s = status()
    assert [c["type"] for c in s["conditions"]] == ["MemoryPressure", "DiskPressure",
                                                    "PIDPressure", "Ready"]
    c = by_type(s)
    assert (c["MemoryPressure"]["status"], c["MemoryPressure"]["reason"]) == \
        ("False", "KubeletHasSufficientMemory")
    assert (c["DiskPressure"]["status"], c["DiskPressure"]["reason"]) == \
        ("False", "KubeletHasNoDiskPressure")
    assert (c["PIDPressure"]["status"], c["PIDPressure"]["reason"]) == \
        ("False", "KubeletHasSufficientPID")
    assert c["Ready"] == {"type": "Ready", "status": "True", "reason": "KubeletReady",
                          "message": "kubelet is posting ready status",
                          "lastHeartbeatTime": "2026-11-22T12:00:00Z",
                          "lastTransitionTime": "2026-11-22T12:00:00Z"}


def test_pressure_follows_the_thresholds() -> None:
    starved = dataclasses.replace(M, memory_available_bytes=99 * MI,
                                  disk_available_bytes=9 * GI, pids_in_use=32768 - 1000)
    c = by_type(status(starved))
    assert (c["MemoryPressure"]["status"], c["MemoryPressure"]["reason"],
            c["MemoryPressure"]["message"]) == \
        ("True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available")
    assert (c["DiskPressure"]["status"], c["DiskPressure"]["reason"]) == \
        ("True", "KubeletHasDiskPressure")
    assert (c["PIDPressure"]["status"], c["PIDPressure"]["reason"]) == \
        ("True", "KubeletHasInsufficientPID")
    assert c["Ready"]["status"] == "True"  # pressure does not make a node unready
    # exactly at the threshold is not below it
    edge = dataclasses.replace(M, memory_available_bytes=100 * MI,
                               disk_available_bytes=10 * GI)
    c = by_type(status(edge))
    assert c["MemoryPressure"]["status"] == c["DiskPressure"]["status"] == "False"
    # a stricter threshold turns the same machine into a pressured one
    strict = Thresholds.parse("memory.available<7Gi")
    assert by_type(status(thresholds=strict))["MemoryPressure"]["status"] == "True"


def test_not_ready_carries_the_callers_message() -> None:
    c = by_type(status(ready=(False, "", "container runtime network not ready")))["Ready"]
    assert (c["status"], c["reason"], c["message"]) == \
        ("False", "KubeletNotReady", "container runtime network not ready")


def test_transition_time_is_kept_until_the_status_flips() -> None:
    first = status(now=T0)
    later = T0 + timedelta(minutes=5)
    second = status(previous=first["conditions"], now=later)
    for cond in second["conditions"]:
        assert cond["lastHeartbeatTime"] == "2026-11-22T12:05:00Z"
        assert cond["lastTransitionTime"] == "2026-11-22T12:00:00Z"
    third = status(previous=second["conditions"], now=later + timedelta(minutes=1),
                   ready=(False, "", "network down"))
    c = by_type(third)
    assert c["Ready"]["lastTransitionTime"] == "2026-11-22T12:06:00Z"
    assert c["MemoryPressure"]["lastTransitionTime"] == "2026-11-22T12:00:00Z"


def test_a_condition_the_control_plane_set_unknown_transitions_when_reported_again() -> None:
    previous = copy.deepcopy(status(now=T0)["conditions"])
    for cond in previous:  # as the node lifecycle controller leaves them
        cond.update(status="Unknown", reason="NodeStatusUnknown",
                    lastTransitionTime="2026-11-22T12:01:00Z")
    c = by_type(status(previous=previous, now=T0 + timedelta(minutes=3)))
    assert c["Ready"]["status"] == "True"
    assert c["Ready"]["lastTransitionTime"] == "2026-11-22T12:03:00Z"


def test_extra_conditions_are_reported_after_ready_but_cannot_replace_ours() -> None:
    extra = (ConditionReport("ResourceLimits", True, "CgroupLimitsEnforced", "cpu, memory"),
             ConditionReport("Ready", False, "Nope", "ignored"))
    s = status(extra=extra)
    assert [c["type"] for c in s["conditions"]][-2:] == ["Ready", "ResourceLimits"]
    assert by_type(s)["Ready"]["status"] == "True"
    assert by_type(s)["ResourceLimits"]["reason"] == "CgroupLimitsEnforced"


def test_node_info_addresses_and_endpoint() -> None:
    s = status(dataclasses.replace(M, system_uuid="ec2a-uuid"))
    assert s["nodeInfo"] == {
        "machineID": "machine-1", "systemUUID": "ec2a-uuid", "bootID": "boot-1",
        "kernelVersion": "6.18.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
        "containerRuntimeVersion": "process://0.1.0", "kubeletVersion": "v1.32.0-kubelite",
        "kubeProxyVersion": "v1.32.0-kubelite", "operatingSystem": "linux",
        "architecture": "amd64"}
    assert status()["nodeInfo"]["systemUUID"] == "machine-1"  # no DMI: the machine id
    assert s["addresses"] == [{"type": "InternalIP", "address": "127.0.0.5"},
                              {"type": "Hostname", "address": "host-1"}]
    assert s["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}


def test_labels_are_the_kubelets_defaults_then_the_extra_ones() -> None:
    arm = dataclasses.replace(M, architecture="aarch64")
    labels = node_status.node_labels("Worker-1", arm, {"zone": "a",
                                                       "kubernetes.io/os": "custom"})
    assert labels == {"beta.kubernetes.io/arch": "arm64", "beta.kubernetes.io/os": "linux",
                      "kubernetes.io/arch": "arm64", "kubernetes.io/hostname": "worker-1",
                      "kubernetes.io/os": "custom", "zone": "a"}
    assert node_status.architecture("x86_64") == "amd64"
    assert node_status.architecture("riscv64") == "riscv64"


# --- when to post -----------------------------------------------------------------------


def test_status_changed_ignores_heartbeats_only() -> None:
    first = status(now=T0)
    again = status(previous=first["conditions"], now=T0 + timedelta(seconds=10))
    assert first != again
    assert not node_status.status_changed(first, again)
    flipped = status(previous=first["conditions"], now=T0 + timedelta(seconds=20),
                     ready=(False, "", "runtime down"))
    assert node_status.status_changed(first, flipped)
    pressured = status(dataclasses.replace(M, memory_available_bytes=MI),
                       previous=first["conditions"], now=T0 + timedelta(seconds=20))
    assert node_status.status_changed(first, pressured)
    rebooted = status(dataclasses.replace(M, boot_id="boot-2"), previous=first["conditions"])
    assert node_status.status_changed(first, rebooted)
    assert node_status.status_changed(None, first)


def test_status_changed_compares_quantities_by_value() -> None:
    ours = status()
    stored = copy.deepcopy(ours)  # as the apiserver may re-serialise them
    ours["allocatable"]["ephemeral-storage"] = "94580335000"
    stored["allocatable"]["ephemeral-storage"] = "94580335k"
    stored["capacity"]["memory"] = "8192Mi"
    assert not node_status.status_changed(stored, ours)


def test_merge_status_keeps_what_others_reported() -> None:
    current = {"conditions": [{"type": "NetworkUnavailable", "status": "False"},
                              {"type": "Ready", "status": "Unknown"}],
               "images": [{"names": ["busybox"]}], "capacity": {"cpu": "1"}}
    merged = node_status.merge_status(current, status())
    types = [c["type"] for c in merged["conditions"]]
    assert types == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready",
                     "NetworkUnavailable"]
    assert by_type(merged)["Ready"]["status"] == "True"
    assert merged["images"] == current["images"]
    assert merged["capacity"]["cpu"] == "2"


def test_status_is_due_after_the_interval() -> None:
    assert node_status.status_due(None, 5.0, 60.0)
    assert not node_status.status_due(100.0, 159.9, 60.0)
    assert node_status.status_due(100.0, 160.0, 60.0)


def test_retry_delay_doubles_up_to_its_cap() -> None:
    delays = [node_status.retry_delay(n) for n in range(0, 10)]
    assert delays[:6] == [0.0, 0.2, 0.4, 0.8, 1.6, 3.2]
    assert delays[6:] == [6.4, 7.0, 7.0, 7.0]
    assert node_status.retry_delay(10_000) == 7.0
    assert node_status.retry_delay(3, first=1.0, cap=2.5) == 2.5


def test_micro_time_has_microseconds() -> None:
    assert node_status.micro_time(T0 + timedelta(microseconds=42)) == \
        "2026-11-22T12:00:00.000042Z"
