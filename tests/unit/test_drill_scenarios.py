"""The drill's pure parts: schedules from a seed, nft scripts and shell lines for the
faults, and the report's numbers and rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.drills import faults, report, scenarios
from provisioning.drills.history import Op
from provisioning.machine_config import Layout

CPS = ["x-cp1", "x-cp2", "x-cp3"]
WORKERS = ["x-w1", "x-w2"]


@pytest.mark.parametrize("name", [s for s in scenarios.SCENARIOS if s != "worker-loss"])
def test_every_scenario_plans_within_the_run_and_replays_from_its_seed(name: str) -> None:
    first = scenarios.plan(name, 60, CPS, WORKERS, seed=11)
    again = scenarios.plan(name, 60, list(reversed(CPS)), WORKERS, seed=11)
    assert first == again and first
    for inj in first:
        assert inj.at >= scenarios.WARMUP
        assert inj.kind in scenarios.KINDS
        end = inj.heal_at if inj.heal_at is not None else inj.at
        assert end <= 60 - scenarios.QUIET
        for t in inj.targets:
            assert t == scenarios.LEADER or t in CPS
    starts = [i.at for i in first]
    assert starts == sorted(starts)


def test_faults_never_overlap_in_a_random_schedule() -> None:
    for seed in range(20):
        plan = scenarios.plan("random", 120, CPS, WORKERS, seed=seed)
        for a, b in zip(plan, plan[1:], strict=False):
            assert (a.heal_at or a.at) < b.at


def test_seeds_change_the_random_mix() -> None:
    plans = {tuple(scenarios.plan("random", 120, CPS, seed=s)) for s in range(5)}
    assert len(plans) > 1


def test_partition_isolates_the_leader_then_splits_off_a_minority() -> None:
    plan = scenarios.plan("partition", 60, CPS + ["x-cp4", "x-cp5"], seed=3)
    assert plan[0].kind == "isolate" and plan[0].targets == (scenarios.LEADER,)
    assert plan[1].kind == "split" and len(plan[1].targets) == 2     # 2 of 5


@pytest.mark.parametrize(("name", "cps", "workers", "duration", "why"), [
    ("partition", CPS[:2], [], 60, "at least 3 control planes"),
    ("worker-loss", CPS, ["x-w1"], 120, "at least 2 workers"),
    ("worker-loss", CPS, WORKERS, 40, "at least 69"),
    ("leader-kill", CPS, [], 8, "too short"),
    ("no-such", CPS, [], 60, "unknown scenario"),
])
def test_impossible_runs_are_refused_with_the_reason(name: str, cps: list[str],
                                                     workers: list[str], duration: float,
                                                     why: str) -> None:
    with pytest.raises(scenarios.ScenarioError, match=why):
        scenarios.plan(name, duration, cps, workers)


@given(st.integers(0, 10_000), st.floats(20, 300))
@settings(max_examples=50, deadline=None)
def test_random_schedules_fit_any_duration(seed: int, duration: float) -> None:
    try:
        plan = scenarios.plan("random", duration, CPS, seed=seed)
    except scenarios.ScenarioError:
        return
    assert all((i.heal_at or i.at) <= duration - scenarios.QUIET for i in plan)


# --- nft scripts and shell lines ---------------------------------------------------------

def test_drop_rules_live_in_the_drill_table_and_expire_by_themselves() -> None:
    script = faults.drop_script("f1", ["10.0.0.12", "10.0.0.13"], ttl=40)
    assert "add table inet kubelite-drill" in script
    assert "{ 10.0.0.12 timeout 41s, 10.0.0.13 timeout 41s }" in script
    assert "ip saddr @f1_peers drop" in script and "ip daddr @f1_peers drop" in script
    heal = faults.heal_script("f1", faults.CHAINS["drop"])
    # chains before the set: a set still in use cannot be deleted
    assert heal.index("delete chain inet kubelite-drill f1_out") < \
        heal.index("delete set inet kubelite-drill f1_peers")


def test_loss_and_delay_rules() -> None:
    assert "numgen random mod 100 < 20 drop" in faults.loss_script("f2", ["10.0.0.2"], 20, 9)
    with pytest.raises(ValueError):
        faults.loss_script("f2", ["10.0.0.2"], 100, 9)
    delay = faults.delay_script("f3", ["10.0.0.2"], 2380, 41000, 9)
    mark = f"meta mark != {faults.PROXY_MARK:#x}"
    assert f"tcp dport 2380 {mark} redirect to :41000" in delay
    assert f"tcp dport 2380 {mark} reject with tcp reset" in delay


def test_a_lost_machine_still_answers_ssh() -> None:
    script = faults.cut_off_script("f4", ["10.0.0.1"], 9)
    lines = script.splitlines()
    accept = lines.index("add rule inet kubelite-drill f4_in tcp dport 22 accept")
    drop = lines.index("add rule inet kubelite-drill f4_in ip saddr @f4_peers drop")
    assert accept < drop


def test_process_commands_use_pid_files_or_systemd() -> None:
    layout = Layout("/var/lib/kubelite", "/var/lib/kubelite/venv")
    plain = faults.MachineRef("m1", "10.0.0.1", "control-plane", layout)
    assert faults.pid_command(plain, "store") == \
        "cat /var/lib/kubelite/run/store.pid 2>/dev/null"
    assert "kill -STOP" in faults.signal_command(plain, "store", "STOP")
    managed = faults.MachineRef("m1", "10.0.0.1", "control-plane", layout, systemd=True)
    assert "systemctl show -p MainPID --value kubelite-store.service" in \
        faults.pid_command(managed, "store")
    cleanup = faults.cleanup_command(plain)
    assert "nft delete table inet kubelite-drill" in cleanup
    assert "provisioning.supervisor start" in cleanup and "kill -CONT" in cleanup


# --- report -------------------------------------------------------------------------------

def _ops() -> list[Op]:
    return [
        Op(1, "write", "store/r0", 1, 100.1, 100.2, "ok"),
        Op(1, "write", "store/r0", 2, 101.0, None, "unknown"),
        Op(2, "write", "store/r0", 3, 101.5, 103.0, "ok"),
        Op(3, "read", "api/r0", None, 101.6, 101.7, "fail"),
        Op(3, "write", "api/r0", 4, 101.8, 102.1, "ok"),
    ]


def test_buckets_count_outcomes_per_second_and_path() -> None:
    rows = report.buckets(_ops(), t0=100.0, end=103.5)
    assert rows[0]["store_ok_write"] == 1
    assert rows[1]["store_unknown"] == 1 and rows[1]["api_fail"] == 1
    assert rows[2]["api_ok_write"] == 1 and rows[3]["store_ok_write"] == 1


def test_unavailability_is_the_time_to_the_first_write_sent_after_the_fault() -> None:
    unav = report.unavailability(_ops(), [{"id": 1, "kind": "kill-store", "at": 1.0}], 100.0)
    assert unav == [{"id": 1, "kind": "kill-store", "at": 1.0, "api_write_s": 1.1,
                     "store_write_s": 2.0}]
    assert report.spread([2.0, None, 0.5, 1.0]) == {"median": 1.0, "worst": 2.0, "n": 3}
    assert report.spread([None]) == {"median": None, "worst": None, "n": 0}


def test_the_report_files_say_what_failed(tmp_path: Path) -> None:
    summary = {"scenario": "pause", "seed": 4, "duration": 30, "ok": False, "ops": 5,
               "ops_checked": 5, "checks": {"linearizable": {"ok": False, "detail": "r0"},
                                            "members_agree": {"ok": True, "detail": ""}},
               "injections": [{"id": 1, "kind": "pause-store", "at": 1.0,
                               "resolved": ["x-cp1"], "healed_at": 5.0}],
               "unavailability": [{"id": 1, "store_write_s": 2.0, "api_write_s": None}],
               "unavailable": {"store": report.spread([2.0]), "api": report.spread([])}}
    rows = report.buckets(_ops(), 100.0, 103.5)
    doc = report.write(tmp_path, summary, rows=rows, windows=[(1.0, 5.0, "#1 pause")],
                       watch_events=[[[1, "k", "PUT"]]], counterexample_text="p1 read r0")
    text = (tmp_path / "report.md").read_text()
    assert "FAILED" in text and "| linearizable | FAILED | r0 |" in text
    assert "| 1 | 1.0 | pause-store | x-cp1 | 5.0 | 2.0 | None |" in text
    assert "p1 read r0" in text
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["ok"] is False and saved["plot"] == doc["plot"]
    assert json.loads((tmp_path / "injections.json").read_text())[0]["kind"] == "pause-store"
    if doc["plot"]:
        assert (tmp_path / "availability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
