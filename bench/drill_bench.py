"""Every drill scenario on a fresh lab fleet: write unavailability and operations checked.

    sudo .venv/bin/python bench/drill_bench.py [--duration 40] [--scenarios a,b] [--seed 1]
        [--out bench/RESULTS-drills.md] [--keep-dir DIR]

Builds a lab of 3 control planes and 2 workers, provisions it with `kubelite up`, runs
`kubelite drill SCENARIO` for each scenario in turn (the real command, in a subprocess)
and writes a table: median and worst time from a fault to the first successful write,
through the load balancers (api) and straight to the store, the operations checked for
linearizability, and whether every check passed. The raw reports stay in --keep-dir.
Traffic stays inside the lab; everything is removed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from provisioning import lab_build, lab_plan, local_forward, up  # noqa: E402
from provisioning.cluster_dir import ClusterDir  # noqa: E402
from provisioning.drills import scenarios  # noqa: E402
from provisioning.inventory import load_inventory  # noqa: E402

DURATIONS = {"worker-loss": 130.0, "rolling-restart": 60.0}


def run(scenario: str, inventory: Path, cluster: Path, report: Path, duration: float,
        seed: int) -> dict:
    argv = [sys.executable, "-m", "kubelite_cli", "drill", scenario, "-i", str(inventory),
            "--dir", str(cluster), "--duration", str(duration), "--seed", str(seed),
            "--report", str(report)]
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=duration + 400, check=False)
    (report.parent / f"{scenario}.log").write_text(proc.stdout + proc.stderr)
    try:
        summary = json.loads((report / "summary.json").read_text())
    except (OSError, ValueError):
        summary = {"ok": False, "error": (proc.stderr or proc.stdout).strip()[-300:]}
    summary["exit"] = proc.returncode
    summary["wall"] = round(time.monotonic() - started, 1)
    return summary


def row(scenario: str, s: dict) -> str:
    if "checks" not in s:
        last = (s.get("error") or "").strip().splitlines()[-1:] or [""]
        return f"| {scenario} | - | - | - | - | - | did not finish: {last[0][:120]} |"
    u = s["unavailable"]
    failed = [k for k, c in s["checks"].items() if not c["ok"]]

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    return (f"| {scenario} | {len(s['injections'])} | {fmt(u['store']['median'])} / "
            f"{fmt(u['store']['worst'])} | {fmt(u['api']['median'])} / "
            f"{fmt(u['api']['worst'])} | {s['ops_checked']} | "
            f"{'0' if s['checks']['no_lost_writes']['ok'] else 'SOME'} | "
            f"{'all pass' if not failed else 'FAILED: ' + ', '.join(failed)} |")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--duration", type=float, default=40.0)
    p.add_argument("--scenarios", default=",".join(scenarios.SCENARIOS))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS-drills.md")
    p.add_argument("--keep-dir", type=Path, default=None)
    args = p.parse_args()
    base = (args.keep_dir or Path(tempfile.mkdtemp(prefix="drill-bench-"))).resolve()
    base.mkdir(parents=True, exist_ok=True)
    prefix = f"db{secrets.token_hex(2)}"
    plan = lab_plan.plan(prefix, 3, 2, lab_build.free_subnet(prefix))
    lab_dir, cluster = base / "lab", base / "cluster"
    lab_build.up(plan, lab_dir)
    cdir = ClusterDir.at(cluster)
    results: dict[str, dict] = {}
    try:
        inventory = lab_dir / lab_build.INVENTORY_FILE
        up.up(load_inventory(inventory), cdir, out=io.StringIO())
        for scenario in args.scenarios.split(","):
            duration = DURATIONS.get(scenario, args.duration)
            print(f"{scenario} ({duration:g} s) ...", flush=True)
            results[scenario] = run(scenario, inventory, cluster, base / scenario, duration,
                                    args.seed)
            print(f"  {row(scenario, results[scenario])}", flush=True)
    finally:
        local_forward.stop(cdir.load().get("forward"))
        problems = lab_build.down(lab_dir)
        if problems:
            print("lab down:", problems, file=sys.stderr)
    lines = [
        "# `kubelite drill` on the lab", "",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python "
        f"{platform.python_version()}; {dt.date.today().isoformat()}.",
        f"Command: `sudo .venv/bin/python bench/drill_bench.py --duration {args.duration:g} "
        f"--seed {args.seed}` (lab: 3 control planes + 2 workers; each scenario on the same "
        "fleet, in this order).", "",
        "Write unavailability: time from a fault (once its command returned) to the first "
        "successful write sent after it, median / worst over the run's faults, in seconds. "
        "Lost writes: acknowledged writes missing from the final state.", "",
        "| scenario | faults | store writes (s) | api writes (s) | ops checked | lost writes "
        "| checks |",
        "|---|---|---|---|---|---|---|",
        *(row(s, r) for s, r in results.items()), "",
        f"Raw reports: {base} (summary.json, report.md, availability.png per scenario).", ""]
    args.out.write_text("\n".join(lines))
    print(args.out.read_text())
    return 0 if all(r.get("ok") for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
