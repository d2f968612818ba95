#!/usr/bin/env python3
"""Store benchmark: kubelite's store against real etcd 3.4, same load, same machine, interleaved.

Starts a 3-member etcd 3.4 cluster (Debian's /usr/bin/etcd, through tests.clusters.EtcdCluster)
and a 3-member `kubelite store` cluster (tests.kubelite_cluster.KubeliteCluster), both on free
127.0.0.1 ports, preloads 10k keys of 256-byte values into each (as the etcd anchor in
/work/shared/anchors/etcd does), then runs the issue's cases with the same load generator
(bench/bench_kv.py, a copy of the anchor's) against both, N times, interleaved:

    put c=64                      throughput and p99            target >= 1.0x etcd, p99 <= 2x etcd
    range linearizable c=16       throughput                    target >= 1.0x etcd
    watch K=10,  1 writer 100/s   p99 put sent -> all watchers  target <= etcd
    watch K=100, 1 writer 100/s   p99 put sent -> all watchers  target < 50 ms

Each repeat runs every case on both clusters back to back (the order of the two alternates
between repeats), so slow drift and noise from the shared 2-core machine spread over both.
Both clusters stay up for the whole session; the idle one's CPU is recorded too.

Per run it records the bench_kv JSON, CPU seconds (user+system, psutil) used by each cluster's
member processes during the run and their RSS afterwards, in bench/raw/<session>/*.json, and
writes the summary table to bench/RESULTS-store.md (median [min-max] over the repeats).

    .venv/bin/python bench/store_bench.py --repeats 3 --seconds 10

Bounds: every bench_kv run is limited by --seconds (+ its own 300 s cap) and a subprocess
timeout; the clusters are killed (by PID, through their handles) on exit, even on errors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from tests.clusters import EtcdCluster, wait_for_leader  # noqa: E402
from tests.kubelite_cluster import KubeliteCluster  # noqa: E402

BENCH_KV = HERE / "bench_kv.py"
COMMON = ["--value-size", "256", "--key-size", "16", "--keys", "10000"]


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    metric: str          # what the target is about
    target: str          # the words


def cases(seconds: float) -> list[Case]:
    s = str(seconds)
    return [
        Case("put c=64", ("--op", "put", "--clients", "64", "--seconds", s), "put",
             "throughput >= 1.0x etcd; p99 <= 2x etcd"),
        Case("range linearizable c=16", ("--op", "range", "--clients", "16", "--seconds", s),
             "range", "throughput >= 1.0x etcd"),
        Case("watch K=10 writer=1 rate=100",
             ("--op", "watch", "--watchers", "10", "--clients", "1", "--rate", "100",
              "--seconds", s), "watch10", "p99 send->all watchers <= etcd"),
        Case("watch K=100 writer=1 rate=100",
             ("--op", "watch", "--watchers", "100", "--clients", "1", "--rate", "100",
              "--seconds", s), "watch100", "p99 send->all watchers < 50 ms"),
    ]


# ---- clusters ------------------------------------------------------------------------------


def member_pids(cluster) -> list[int]:
    return [m.proc.pid for m in cluster.members if m.proc is not None]


def cpu_seconds(pids: list[int]) -> list[float]:
    out = []
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            out.append(t.user + t.system)
        except psutil.Error:
            out.append(float("nan"))
    return out


def rss_mib(pids: list[int]) -> list[float]:
    out = []
    for pid in pids:
        try:
            out.append(round(psutil.Process(pid).memory_info().rss / 2**20, 1))
        except psutil.Error:
            out.append(float("nan"))
    return out


def run_bench(endpoints: list[str], args: list[str], timeout: float) -> dict:
    cmd = [sys.executable, str(BENCH_KV), "--endpoints", ",".join(endpoints), "--json", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"bench_kv failed ({p.returncode}): {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# ---- summary -------------------------------------------------------------------------------


def values(runs: list[dict], case: str, kind: str, field: str) -> list[float]:
    return [r["metrics"][field] for r in runs if r["case"] == case and r["kind"] == kind
            and r["metrics"].get(field) is not None]


def metrics_of(case: Case, res: dict) -> dict:
    if res.get("op") == "watch":
        sa = res["send_to_all_watchers"]
        se = res["send_to_event"]
        return {"p99_all_ms": sa.get("p99_ms"), "p50_all_ms": sa.get("p50_ms"),
                "p99_event_ms": se.get("p99_ms"), "puts_s": res["put_throughput_ops"],
                "put_p99_ms": res["put_latency"].get("p99_ms"),
                "missing": res["events_missing"], "errors": res["put_errors"] + len(res["errors"])}
    lat = res["latency"]
    return {"ops_s": res["throughput_ops"], "p50_ms": lat.get("p50_ms"), "p99_ms": lat.get("p99_ms"),
            "errors": res["errors"]}


def med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def fmt(xs: list[float], digits: int = 1) -> str:
    if not xs:
        return "-"
    m = med(xs)
    return f"{m:,.{digits}f} [{min(xs):,.{digits}f}-{max(xs):,.{digits}f}]"


ROWS = [  # (case, field, label, digits, rule, bound): rule compares kubelite/etcd medians
    ("put c=64", "ops_s", "put c=64 throughput (ops/s)", 0, "ratio>=", 1.0),
    ("put c=64", "p99_ms", "put c=64 p99 (ms)", 1, "ratio<=", 2.0),
    ("range linearizable c=16", "ops_s", "range linearizable c=16 throughput (ops/s)", 0,
     "ratio>=", 1.0),
    ("watch K=10 writer=1 rate=100", "p99_all_ms",
     "watch 10 watchers, 100 puts/s: p99 put sent -> all watchers (ms)", 1, "ratio<=", 1.0),
    ("watch K=100 writer=1 rate=100", "p99_all_ms",
     "watch 100 watchers, 100 puts/s: p99 put sent -> all watchers (ms)", 1, "abs<", 50.0),
]

TARGET_TEXT = {
    ("put c=64", "ops_s"): ">= 1.0x etcd",
    ("put c=64", "p99_ms"): "<= 2x etcd",
    ("range linearizable c=16", "ops_s"): ">= 1.0x etcd",
    ("watch K=10 writer=1 rate=100", "p99_all_ms"): "<= etcd",
    ("watch K=100 writer=1 rate=100", "p99_all_ms"): "< 50 ms",
}


def paired_ratios(runs: list[dict], case: str, field: str) -> list[float]:
    by_rep: dict[int, dict[str, float]] = {}
    for r in runs:
        if r["case"] == case and r["metrics"].get(field) is not None:
            by_rep.setdefault(r["repeat"], {})[r["kind"]] = r["metrics"][field]
    return [d["kubelite"] / d["etcd"] for _, d in sorted(by_rep.items())
            if "kubelite" in d and "etcd" in d and d["etcd"]]


def table(runs: list[dict], info: dict) -> str:
    lines = []
    add = lines.append
    add("# kubelite store vs etcd 3.4: the issue's cases, same load generator, interleaved\n")
    add(f"- Date: {info['date']}")
    add(f"- Machine: {info['nproc']} CPUs ({info['cpu']}), kernel {info['kernel']}, "
        f"Python {info['python']}; etcd {info['etcd_version']}")
    add(f"- Command: `{info['command']}`")
    add(f"- Repeats: {info['repeats']}, {info['seconds']} s measured per run "
        f"(+1 s unmeasured warm-up for put/range); both clusters 3 members on 127.0.0.1, "
        f"10k keys x 256-byte values preloaded; clients spread round-robin over the 3 members.")
    add(f"- Raw per-run JSON: `{info['raw_dir']}`")
    add("- Cells: median [min-max] over the repeats. *ratio* = kubelite median / etcd median; "
        "*paired* = kubelite/etcd within each repeat (the two ran back to back).\n")
    add("| case | etcd | kubelite | ratio kubelite/etcd | paired ratios | target | result |")
    add("|---|---|---|---|---|---|---|")
    for case, field, label, digits, rule, bound in ROWS:
        e = values(runs, case, "etcd", field)
        k = values(runs, case, "kubelite", field)
        if not e or not k:
            add(f"| {label} | {fmt(e, digits)} | {fmt(k, digits)} | - | - | "
                f"{TARGET_TEXT[(case, field)]} | not run |")
            continue
        ratio = med(k) / med(e) if med(e) else float("nan")
        pr = paired_ratios(runs, case, field)
        if rule == "ratio>=":
            ok = ratio >= bound
        elif rule == "ratio<=":
            ok = ratio <= bound
        else:
            ok = med(k) < bound
        add(f"| {label} | {fmt(e, digits)} | {fmt(k, digits)} | {ratio:.2f} | "
            f"{', '.join(f'{x:.2f}' for x in pr)} | {TARGET_TEXT[(case, field)]} | "
            f"{'pass' if ok else 'short of target'} |")
    add("")
    add("## Details per case (medians over repeats)\n")
    add("| case | kind | ops/s or puts/s | p50 ms | p99 ms | errors / missing events | "
        "cluster CPU s per run (sum of 3) | CPU s per member | other cluster CPU s (idle) | "
        "client CPU s | RSS MiB per member (after run) |")
    add("|---|---|---|---|---|---|---|---|---|---|---|")
    for case in info["case_names"]:
        for kind in ("etcd", "kubelite"):
            rs = [r for r in runs if r["case"] == case and r["kind"] == kind]
            if not rs:
                continue
            m = [r["metrics"] for r in rs]
            if "ops_s" in m[0]:
                thr = fmt([x["ops_s"] for x in m], 0)
                p50 = fmt([x["p50_ms"] for x in m], 2)
                p99 = fmt([x["p99_ms"] for x in m], 1)
                bad = sum(x["errors"] for x in m)
            else:
                thr = fmt([x["puts_s"] for x in m], 0)
                p50 = "all: " + fmt([x["p50_all_ms"] for x in m], 2)
                p99 = "all: " + fmt([x["p99_all_ms"] for x in m], 1) + "; one: " + \
                    fmt([x["p99_event_ms"] for x in m], 1)
                bad = f"{sum(x['errors'] for x in m)} / {sum(x['missing'] for x in m)}"
            cpu = fmt([sum(r["cpu_s"]) for r in rs], 1)
            per = [round(med([r["cpu_s"][i] for r in rs]), 1) for i in range(len(rs[0]["cpu_s"]))]
            other = fmt([sum(r["other_cpu_s"]) for r in rs], 2)
            client = fmt([r["bench"].get("client_cpu_s", 0) for r in rs], 1)
            rss = rs[-1]["rss_mib"]
            add(f"| {case} | {kind} | {thr} | {p50} | {p99} | {bad} | {cpu} | {per} | {other} | "
                f"{client} | {rss} |")
    add("")
    add(f"Preload (10k puts, 16 clients): etcd {info.get('preload', {}).get('etcd')} puts/s, "
        f"kubelite {info.get('preload', {}).get('kubelite')} puts/s. "
        f"RSS after preload: etcd {info.get('rss_after_preload', {}).get('etcd')} MiB, "
        f"kubelite {info.get('rss_after_preload', {}).get('kubelite')} MiB.")
    add("")
    return "\n".join(lines)


# ---- main ----------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--kinds", default="etcd,kubelite", help="which clusters to run")
    ap.add_argument("--only", default="", help="comma list of case-name prefixes to run")
    ap.add_argument("--raw-dir", default=str(HERE / "raw"))
    ap.add_argument("--results", default=str(HERE / "RESULTS-store.md"),
                    help="Markdown output ('' to skip)")
    ap.add_argument("--tmp-dir", default=None, help="where the clusters keep their data")
    ap.add_argument("--kubelite-args", default="", help="extra `kubelite store` flags")
    a = ap.parse_args()

    kinds = [k for k in a.kinds.split(",") if k]
    todo = [c for c in cases(a.seconds)
            if not a.only or any(c.name.startswith(p) for p in a.only.split(","))]
    session = time.strftime("%Y%m%d-%H%M%S")
    raw_dir = Path(a.raw_dir) / session
    raw_dir.mkdir(parents=True, exist_ok=True)
    run_timeout = a.seconds + 120
    etcd_version = subprocess.run(["/usr/bin/etcd", "--version"], capture_output=True,
                                  text=True).stdout.split("\n")[0].replace("etcd Version: ", "")
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "etcd_version": etcd_version,
        "command": " ".join(shlex.quote(x) for x in [os.path.relpath(sys.executable, REPO)
                                                       if sys.executable.startswith(str(REPO))
                                                       else sys.executable,
                                                       os.path.relpath(__file__, REPO),
                                                       *sys.argv[1:]]),
        "repeats": a.repeats, "seconds": a.seconds,
        "raw_dir": os.path.relpath(raw_dir, REPO),
        "case_names": [c.name for c in todo],
        "preload": {}, "rss_after_preload": {},
    }
    clusters: dict[str, object] = {}
    runs: list[dict] = []
    try:
        if "etcd" in kinds:
            clusters["etcd"] = EtcdCluster(3, tmp_dir=a.tmp_dir)
        if "kubelite" in kinds:
            extra = tuple(shlex.split(a.kubelite_args))
            clusters["kubelite"] = KubeliteCluster(3, tmp_dir=a.tmp_dir, extra_args=extra)
        for kind, c in clusters.items():
            wait_for_leader(c)
            res = run_bench(c.endpoints, ["--op", "load", "--clients", "16", *COMMON],
                            run_timeout)
            if res["errors"]:
                raise RuntimeError(f"{kind} preload failed: {res['error_samples']}")
            info["preload"][kind] = res["throughput_ops"]
            info["rss_after_preload"][kind] = rss_mib(member_pids(c))
            print(f"[{kind}] preload {res['throughput_ops']} puts/s, leader m"
                  f"{c.leader_index()}, RSS {info['rss_after_preload'][kind]} MiB", flush=True)
        for rep in range(a.repeats):
            order = kinds if rep % 2 == 0 else kinds[::-1]
            for case in todo:
                for kind in order:
                    c = clusters[kind]
                    others = [o for k, o in clusters.items() if k != kind]
                    pids = member_pids(c)
                    opids = [p for o in others for p in member_pids(o)]
                    c0, o0 = cpu_seconds(pids), cpu_seconds(opids)
                    t0 = time.time()
                    res = run_bench(c.endpoints, [*case.args, *COMMON], run_timeout)
                    wall = time.time() - t0
                    c1, o1 = cpu_seconds(pids), cpu_seconds(opids)
                    rec = {
                        "case": case.name, "kind": kind, "repeat": rep,
                        "cmd": "bench_kv.py --endpoints $E " + " ".join([*case.args, *COMMON]),
                        "bench": res, "metrics": metrics_of(case, res), "wall_s": round(wall, 2),
                        "cpu_s": [round(y - x, 2) for x, y in zip(c0, c1, strict=True)],
                        "other_cpu_s": [round(y - x, 2) for x, y in zip(o0, o1, strict=True)],
                        "rss_mib": rss_mib(pids), "leader": _leader(c),
                        "ts": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    }
                    runs.append(rec)
                    fname = f"r{rep}-{case.name.replace(' ', '_').replace('=', '')}-{kind}.json"
                    (raw_dir / fname).write_text(json.dumps(rec, indent=1))
                    print(f"[{rec['ts']}] r{rep} {case.name:32s} {kind:8s} {_brief(rec)}",
                          flush=True)
    finally:
        for c in clusters.values():
            c.close()
    (raw_dir / "session.json").write_text(json.dumps(info, indent=1))
    text = table(runs, info)
    print()
    print(text)
    if a.results:
        Path(a.results).write_text(text)
    return 0


def _leader(c) -> int | None:
    try:
        return c.leader_index()
    except Exception:  # noqa: BLE001
        return None


def _brief(rec: dict) -> str:
    m = rec["metrics"]
    cpu = f"cpu {sum(rec['cpu_s']):.1f}s {rec['cpu_s']} client {rec['bench'].get('client_cpu_s')}"
    if "ops_s" in m:
        return (f"{m['ops_s']:8.1f} ops/s p50 {m['p50_ms']} p99 {m['p99_ms']} err {m['errors']}"
                f" | {cpu}")
    return (f"{m['puts_s']:.1f} puts/s all-watchers p50 {m['p50_all_ms']} p99 {m['p99_all_ms']} "
            f"missing {m['missing']} err {m['errors']} | {cpu}")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
