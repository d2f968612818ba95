"""The drill's report: availability over time, unavailability per fault, the verdicts.

    DIR/summary.json       scenario, seed, counts, every check's verdict, ok
    DIR/injections.json    what was injected when (seconds after the workload started)
    DIR/history.jsonl      every operation (re-checkable with provisioning.drills)
    DIR/watch.json         the events each watcher received
    DIR/availability.png   ok requests and errors per second, fault windows shaded
    DIR/report.md          the same for a reader, with the counterexample's timeline

The numbers are pure functions of the history and the injection log (times are
monotonic seconds; `t0` is the workload's start): `buckets` counts outcomes per
second and per path ("api": through the load balancers, "store": straight to the
store), and `unavailability` is, for each fault, the time from its injection to the
first successful write sent after it, per path. The plot uses matplotlib when it is
installed (it is only needed where the report is drawn, never on the machines); without
it the PNG is skipped and summary.json says so.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from provisioning.drills.history import Op

PATHS = ("api", "store")


def path_of(op: Op) -> str:
    return "api" if op.key.startswith("api/") else "store"


# --- numbers (pure) ---------------------------------------------------------------------

def buckets(ops: Iterable[Op], t0: float, end: float, width: float = 1.0
            ) -> list[dict[str, Any]]:
    """Per `width` seconds from t0: ok reads and writes, fails and unknowns, per path.
    An op counts in the bucket of its completion (unknowns: of their invocation)."""
    n = max(1, int((end - t0) / width) + 1)
    rows = [{"t": round(i * width, 3), **{f"{p}_{c}": 0 for p in PATHS
                                         for c in ("ok_write", "ok_read", "fail", "unknown")}}
            for i in range(n)]
    for op in ops:
        when = op.complete if op.complete is not None else op.invoke
        i = int((when - t0) / width)
        if not 0 <= i < n:
            continue
        p = path_of(op)
        if op.status == "ok":
            rows[i][f"{p}_ok_{'write' if op.is_write else 'read'}"] += 1
        else:
            rows[i][f"{p}_{op.status}"] += 1
    return rows


def first_write_after(ops: Sequence[Op], at: float, path: str) -> float | None:
    """Seconds from `at` to the completion of the first ok write sent at or after it."""
    done = [op.complete for op in ops if op.is_write and op.status == "ok"
            and op.invoke >= at and path_of(op) == path and op.complete is not None]
    return round(min(done) - at, 3) if done else None


def unavailability(ops: Sequence[Op], injections: Sequence[Mapping[str, Any]], t0: float
                   ) -> list[dict[str, Any]]:
    """Per injection (with its `at`, seconds after t0): write unavailability per path."""
    out = []
    for inj in injections:
        if inj.get("at") is None:
            continue
        at = t0 + float(inj["at"])
        row = {"id": inj.get("id"), "kind": inj.get("kind"), "at": inj["at"]}
        for p in PATHS:
            row[f"{p}_write_s"] = first_write_after(ops, at, p)
        out.append(row)
    return out


def spread(values: Iterable[float | None]) -> dict[str, float | None]:
    """Median and worst of the measured values (None: nothing measured)."""
    got = [v for v in values if v is not None]
    if not got:
        return {"median": None, "worst": None, "n": 0}
    return {"median": round(statistics.median(got), 3), "worst": round(max(got), 3),
            "n": len(got)}


def counts(ops: Iterable[Op]) -> dict[str, int]:
    out: dict[str, int] = {}
    for op in ops:
        k = f"{path_of(op)}_{op.kind}_{op.status}"
        out[k] = out.get(k, 0) + 1
    return dict(sorted(out.items()))


# --- rendering --------------------------------------------------------------------------

def plot(rows: Sequence[Mapping[str, Any]], windows: Sequence[tuple[float, float, str]],
         path: Path, title: str) -> bool:
    """Draw the availability PNG; False (and nothing written) without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(len(PATHS), 1, figsize=(11, 6), sharex=True)
    t = [r["t"] for r in rows]
    for ax, p in zip(axes, PATHS, strict=True):
        ax.plot(t, [r[f"{p}_ok_write"] for r in rows], label="ok writes/s", color="tab:green")
        ax.plot(t, [r[f"{p}_ok_read"] for r in rows], label="ok reads/s", color="tab:blue")
        ax.plot(t, [r[f"{p}_fail"] for r in rows], label="failed/s", color="tab:orange")
        ax.plot(t, [r[f"{p}_unknown"] for r in rows], label="unknown/s", color="tab:red")
        for start, end, label in windows:
            ax.axvspan(start, max(end, start + 0.3), color="grey", alpha=0.25)
            ax.text(start, ax.get_ylim()[1] * 0.92, label, fontsize=7, rotation=90,
                    va="top")
        ax.set_ylabel(f"{p} requests/s")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_title(title)
    axes[-1].set_xlabel("seconds after the workload started (shaded: faults)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def markdown(summary: Mapping[str, Any], counterexample_text: str | None) -> str:
    lines = [f"# Drill `{summary['scenario']}` (seed {summary['seed']}): "
             f"{'PASSED' if summary['ok'] else 'FAILED'}", "",
             f"Duration {summary['duration']} s, {summary['ops']} operations "
             f"({summary['ops_checked']} checked for linearizability).", "",
             "## Checks", "", "| check | result | detail |", "|---|---|---|"]
    for name, check in summary["checks"].items():
        detail = str(check.get("detail", ""))[:200].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {name} | {'ok' if check['ok'] else 'FAILED'} | {detail} |")
    lines += ["", "## Faults", "", "| # | at (s) | kind | targets | healed (s) | "
              "store write unavailable (s) | api write unavailable (s) |",
              "|---|---|---|---|---|---|---|"]
    unav = {u["id"]: u for u in summary.get("unavailability", [])}
    for inj in summary.get("injections", []):
        u = unav.get(inj.get("id"), {})
        lines.append(f"| {inj.get('id')} | {inj.get('at')} | {inj.get('kind')} | "
                     f"{','.join(inj.get('resolved') or inj.get('targets') or [])} | "
                     f"{inj.get('healed_at', '-')} | {u.get('store_write_s', '-')} | "
                     f"{u.get('api_write_s', '-')} |")
    lines += ["", f"Write unavailability: store {summary['unavailable']['store']}, "
              f"api {summary['unavailable']['api']}.", ""]
    if counterexample_text:
        lines += ["## Counterexample", "", "```", counterexample_text, "```", ""]
    if summary.get("plot"):
        lines += ["![availability](availability.png)", ""]
    return "\n".join(lines)


def write(directory: Path, summary: Mapping[str, Any], *, rows: Sequence[Mapping[str, Any]],
          windows: Sequence[tuple[float, float, str]], watch_events: Any,
          counterexample_text: str | None) -> dict[str, Any]:
    """Write every file of the report; returns the summary as written."""
    directory.mkdir(parents=True, exist_ok=True)
    doc = dict(summary)
    title = f"kubelite drill {summary['scenario']} (seed {summary['seed']})"
    doc["plot"] = "availability.png" if plot(rows, windows, directory / "availability.png",
                                             title) else None
    (directory / "injections.json").write_text(
        json.dumps(summary.get("injections", []), indent=2) + "\n")
    (directory / "watch.json").write_text(json.dumps(watch_events) + "\n")
    (directory / "availability.json").write_text(json.dumps(list(rows)) + "\n")
    (directory / "summary.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    (directory / "report.md").write_text(markdown(doc, counterexample_text))
    return doc
