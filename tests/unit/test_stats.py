"""Usage: the Summary API document (pure), and the readings behind it from this machine."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agents import measure, node_status
from agents.stats import NodeUsage, PodUsage, Usage, node_usage, stats_summary

T0 = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
USAGE = Usage(cpu_nanocores=250_000_000, cpu_usage_core_nanoseconds=9_000_000_000,
              memory_working_set_bytes=2**30, memory_available=3 * 2**30,
              memory_usage=2 * 2**30, timestamp=T0)


# --- the summary document ---------------------------------------------------------------


def test_summary_has_the_kubelets_shape() -> None:
    pods = [PodUsage("web-1", "default", "uid-1", cpu_nanocores=5_000_000,
                     memory_working_set_bytes=10 * 2**20, rss_bytes=9 * 2**20,
                     cpu_usage_core_nanoseconds=70_000)]
    summary = stats_summary("node-1", USAGE, pods)
    assert summary == {
        "node": {"nodeName": "node-1",
                 "cpu": {"time": "2026-11-22T12:00:00Z", "usageNanoCores": 250_000_000,
                         "usageCoreNanoSeconds": 9_000_000_000},
                 "memory": {"time": "2026-11-22T12:00:00Z", "availableBytes": 3 * 2**30,
                            "usageBytes": 2 * 2**30, "workingSetBytes": 2**30}},
        "pods": [{"podRef": {"name": "web-1", "namespace": "default", "uid": "uid-1"},
                  "cpu": {"time": "2026-11-22T12:00:00Z", "usageNanoCores": 5_000_000,
                          "usageCoreNanoSeconds": 70_000},
                  "memory": {"time": "2026-11-22T12:00:00Z",
                             "workingSetBytes": 10 * 2**20, "rssBytes": 9 * 2**20}}]}
    assert node_usage(summary) == NodeUsage(250_000_000, 2**30)


def test_a_rate_not_measured_yet_is_left_out() -> None:
    first = Usage(None, 1, 2, 3, 4, T0)
    summary = stats_summary("n", first, [PodUsage("p", "ns", "u", None, 0, T0)])
    assert "usageNanoCores" not in summary["node"]["cpu"]
    assert summary["pods"][0]["cpu"] == {"time": "2026-11-22T12:00:00Z"}
    assert node_usage(summary) is None  # top shows such a node as unknown


@pytest.mark.parametrize("summary", [
    {}, {"node": None}, {"node": {"cpu": {}, "memory": {}}},
    {"node": {"cpu": {"usageNanoCores": "5"}, "memory": {"workingSetBytes": 1}}},
    {"node": {"cpu": {"usageNanoCores": True}, "memory": {"workingSetBytes": 1}}},
    {"node": {"cpu": {"usageNanoCores": -1}, "memory": {"workingSetBytes": 1}}},
])
def test_node_usage_rejects_malformed_summaries(summary: dict) -> None:
    assert node_usage(summary) is None


# --- readings from this machine ---------------------------------------------------------


def test_measure_reads_this_machine(tmp_path: Path) -> None:
    m = measure.measure(tmp_path / "not-created-yet")
    assert m.cpu_count == os.cpu_count()
    assert 0 < m.memory_available_bytes <= m.memory_total_bytes
    disk = shutil.disk_usage(tmp_path)
    assert m.disk_total_bytes == disk.total
    assert 0 < m.disk_available_bytes <= m.disk_total_bytes
    assert 0 < m.pids_in_use < m.pid_max
    assert m.kernel_version == platform.release()
    assert m.architecture == node_status.architecture(platform.machine())
    assert m.architecture in node_status.ARCHITECTURES.values()
    assert m.boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert m.os_image and m.hostname


def test_node_usage_sampler_gives_a_rate_from_the_second_reading() -> None:
    sampler = measure.UsageSampler()
    first = sampler.usage()
    assert first.cpu_nanocores is None
    _burn_cpu(0.2)
    second = sampler.usage()
    assert second.cpu_nanocores is not None and second.cpu_nanocores >= 0
    assert second.cpu_usage_core_nanoseconds >= first.cpu_usage_core_nanoseconds > 0
    assert 0 < second.memory_working_set_bytes <= second.memory_usage
    assert second.timestamp >= first.timestamp


def test_process_usage_of_a_busy_process_and_a_vanished_one() -> None:
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        sampler = measure.ProcessSampler()
        first = sampler.sample([child.pid])
        assert first.rss_bytes > 0
        time.sleep(0.3)
        second = sampler.sample([child.pid, child.pid])
        assert second.cpu_nanocores > 0
        assert second.cpu_core_nanoseconds >= first.cpu_core_nanoseconds
    finally:
        child.kill()
        child.wait(10)
    gone = sampler.sample([child.pid])  # reaped: ignored, not an error
    assert gone == measure.ProcessUsage(0, 0, 0)
    cpu, rss = measure.process_usage([os.getpid()])
    assert cpu >= 0 and rss > 0


def _burn_cpu(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
