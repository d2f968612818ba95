"""Time `kubelite up` on the lab, from nothing to every node Ready (root).

    sudo .venv/bin/python bench/provisioning_bench.py [--sizes 3x2,3x10] [--runs 1]
        [--output bench/RESULTS-provisioning.md]

For each size: a fresh lab (unique prefix, free subnet), then `kubelite up` through the
command line exactly as an operator runs it (timed: first run, with a warm bundle
cache), then `up` again (timed: the "no change" path), then `down` and the lab's removal.
The bundle is built once before the first size so that every run measures provisioning,
not pip; its build time is reported on its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
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

from provisioning import bundle, lab_build, lab_plan  # noqa: E402


def kubelite(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "kubelite_cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    return time.monotonic() - started, proc


def one(cps: int, workers: int) -> dict:
    prefix = f"kb{secrets.token_hex(3)}"
    plan = lab_plan.plan(prefix, cps, workers, lab_build.free_subnet(prefix))
    with tempfile.TemporaryDirectory(prefix="kubelite-bench-") as tmp:
        lab_dir, cluster = Path(tmp) / "lab", Path(tmp) / "cluster"
        lab_build.up(plan, lab_dir)
        args = ["-i", str(lab_dir / lab_build.INVENTORY_FILE), "--dir", str(cluster)]
        try:
            first, proc = kubelite("up", *args)
            if proc.returncode != 0:
                raise SystemExit(f"up failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
            again, proc = kubelite("up", *args)
            assert "no change" in proc.stdout, proc.stdout
            gone, proc = kubelite("down", *args)
            assert proc.returncode == 0, proc.stderr
        finally:
            lab_build.down(lab_dir)
    return {"size": f"{cps}+{workers}", "up": first, "again": again, "down": gone}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="3x2,3x10")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--output", default=str(REPO / "bench" / "RESULTS-provisioning.md"))
    args = p.parse_args()
    started = time.monotonic()
    built = bundle.build()
    bundle_time = time.monotonic() - started
    rows = []
    for size in args.sizes.split(","):
        cps, workers = (int(x) for x in size.split("x"))
        for _ in range(args.runs):
            row = one(cps, workers)
            print(row, flush=True)
            rows.append(row)
    lines = [
        "# `kubelite up` on the lab",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python "
        f"{platform.python_version()}; {dt.date.today().isoformat()}.",
        f"Command: `sudo .venv/bin/python bench/provisioning_bench.py --sizes {args.sizes} "
        f"--runs {args.runs}`.",
        "",
        "`up`: from fresh machines (nothing installed) to every node Ready, through the CLI",
        "over real SSH; `up again`: the same inventory a second time (reports no change);",
        f"`down`: everything removed. Bundle ({len(built.wheels)} wheels) built beforehand "
        f"in {bundle_time:.1f} s (cached by hash afterwards).",
        "",
        "| machines (cp+workers) | up (s) | up again (s) | down (s) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['size']} | {r['up']:.1f} | {r['again']:.1f} | {r['down']:.1f} |"
              for r in rows]
    Path(args.output).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
