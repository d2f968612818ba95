"""`kubelite drill` on the lab (root): short runs of leader kill, pause and a minority
partition whose checks must all pass; a deliberately broken configuration (store reads
served by one member without a read barrier) that the checker must catch; and an
interrupted drill that leaves no fault behind, plus `--cleanup`.

One fleet (3 control planes + 1 worker, provisioned by `up` over SSH) serves the
module; its prefix carries a random token and its subnet is a free 10.251.x.0/24, so
parallel runs never meet. Each drill runs as the real command in a subprocess, which
moves itself into the lab's namespace; all traffic stays inside the lab.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioning import lab, lab_build, lab_plan, local_forward, up
from provisioning.cluster_dir import ClusterDir
from provisioning.inventory import load_inventory
from tests.privileges import require_root

pytestmark = pytest.mark.timeout(600)
REPO = Path(__file__).resolve().parents[2]
DURATION = "30"


@dataclass
class Fleet:
    lab_dir: Path
    plan: lab_plan.LabPlan
    inventory: Path
    cluster: Path
    base: Path

    def drill(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), cwd=REPO, env=_env(), capture_output=True,
                              text=True, timeout=timeout, check=False)

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "kubelite_cli", "drill", *args, "-i",
                str(self.inventory), "--dir", str(self.cluster)]

    def on(self, machine: str, command: str) -> subprocess.CompletedProcess[str]:
        argv = lab.exec_argv(self.lab_dir, machine, ["sh", "-c", command])
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    @property
    def control_planes(self) -> list[str]:
        return [m.name for m in self.plan.machines if m.role == lab_plan.CONTROL_PLANE]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    require_root("the lab")
    prefix = f"kd{secrets.token_hex(3)}"
    plan = lab_plan.plan(prefix, 3, 1, lab_build.free_subnet(prefix))
    base = tmp_path_factory.mktemp("drills")
    lab_dir, cluster = base / "lab", base / "cluster"
    lab_build.up(plan, lab_dir)
    cdir = ClusterDir.at(cluster)
    try:
        inventory = lab_dir / lab_build.INVENTORY_FILE
        up.up(load_inventory(inventory), cdir, out=io.StringIO())
        yield Fleet(lab_dir, plan, inventory, cluster, base)
    finally:
        local_forward.stop(cdir.load().get("forward"))
        problems = lab_build.down(lab_dir)
        assert not problems, problems


def _summary(fleet: Fleet, name: str) -> dict:
    return json.loads((fleet.base / name / "summary.json").read_text())


def _passes(fleet: Fleet, scenario: str, seed: str = "1") -> dict:
    result = fleet.drill(scenario, "--duration", DURATION, "--seed", seed,
                         "--report", str(fleet.base / scenario))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    summary = _summary(fleet, scenario)
    assert summary["ok"] and summary["ops_checked"] > 100
    assert all(check["ok"] for check in summary["checks"].values()), summary["checks"]
    assert summary["counts"].get("store_write_ok", 0) > 0
    assert summary["counts"].get("api_write_ok", 0) > 0
    for inj in summary["injections"]:
        assert inj["error"] is None, inj
        assert set(inj["resolved"]) <= set(fleet.control_planes)
    assert (fleet.base / scenario / "history.jsonl").stat().st_size > 0
    _no_drill_rules_left(fleet)
    return summary


def _no_drill_rules_left(fleet: Fleet) -> None:
    for name in fleet.control_planes:
        assert fleet.on(name, "nft list table inet kubelite-drill").returncode != 0, name


def test_leader_kill(fleet: Fleet) -> None:
    summary = _passes(fleet, "leader-kill")
    kills = summary["injections"]
    assert len(kills) >= 2 and all(k["kind"] == "kill-store" for k in kills)
    assert all(k["recovered_at"] is not None for k in kills), kills
    assert summary["unavailable"]["store"]["n"] == len(kills)


def test_pause(fleet: Fleet) -> None:
    summary = _passes(fleet, "pause")
    assert all(inj["healed_at"] is not None for inj in summary["injections"])


def test_minority_partition(fleet: Fleet) -> None:
    summary = _passes(fleet, "minority-partition")
    assert all(inj["kind"] == "split" for inj in summary["injections"])


def test_the_checker_catches_stale_reads(fleet: Fleet) -> None:
    """Reads answered by one member from its own copy (no read barrier) go stale while
    it is cut off from the majority: the history is not linearizable, and says so."""
    name = "stale-reads"
    result = fleet.drill("minority-partition", "--duration", DURATION, "--seed", "2",
                         "--unsafe-stale-reads", "--report", str(fleet.base / name))
    assert result.returncode == 1, result.stdout[-4000:] + result.stderr[-3000:]
    summary = _summary(fleet, name)
    check = summary["checks"]["linearizable"]
    assert not summary["ok"] and not check["ok"] and not check["timed_out"]
    assert check["key"].startswith("store/r")
    report = (fleet.base / name / "report.md").read_text()
    assert "## Counterexample" in report and "read store/r" in report
    _no_drill_rules_left(fleet)


def test_an_interrupted_drill_heals_and_cleanup_removes_leftovers(fleet: Fleet) -> None:
    proc = subprocess.Popen(fleet.argv("partition", "--duration", "60", "--report",
                                       str(fleet.base / "interrupted")),
                            cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "inject #1" in line or not line:
                break
        assert any("inject #1" in line for line in lines), "".join(lines)
        time.sleep(2)   # the rules are in place now
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, "".join(lines) + out
    _no_drill_rules_left(fleet)

    cp1 = fleet.control_planes[0]
    assert fleet.on(cp1, "nft add table inet kubelite-drill").returncode == 0
    cleaned = fleet.drill("--cleanup")
    assert cleaned.returncode == 0, cleaned.stderr
    _no_drill_rules_left(fleet)
