#!/usr/bin/env python3
"""Profile a 3-member kubelite store cluster under one of the benchmark loads, with py-spy.

Starts a KubeliteCluster (127.0.0.1, free ports), preloads 10k keys x 256 bytes, starts
bench/bench_kv.py with the chosen load, and after a short ramp-up samples the leader and one
follower with `py-spy record --nonblocking --threads` (collapsed stacks), twice at once: all
active samples, and `--gil` (only the thread holding the GIL). Then prints, per process and
thread, where the samples went (leaf functions, and inclusive "buckets" such as aiohttp, JSON
codec, pickle, zlib, Fernet, state machine). Output files go to --out (default
bench/profiles/<load>-<time>/). Everything is bounded: the load runs --seconds + ramp-up, py-spy
--duration, and the cluster is killed by PID on exit.

    .venv/bin/python bench/profile_store.py --load put --seconds 10
    .venv/bin/python bench/profile_store.py --load range --seconds 10
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from tests.clusters import wait_for_leader  # noqa: E402
from tests.kubelite_cluster import KubeliteCluster  # noqa: E402

PY_SPY = str(Path(sys.executable).parent / "py-spy")
COMMON = ["--value-size", "256", "--key-size", "16", "--keys", "10000"]
LOADS = {
    "put": ["--op", "put", "--clients", "64"],
    "range": ["--op", "range", "--clients", "16"],
    "watch10": ["--op", "watch", "--watchers", "10", "--clients", "1", "--rate", "100"],
    "watch100": ["--op", "watch", "--watchers", "100", "--clients", "1", "--rate", "100"],
}

# Inclusive buckets: a sample counts in a bucket if any frame matches (first match wins
# per bucket, a sample can be in several buckets).
BUCKETS = [
    ("aiohttp (http parse/write, handler dispatch)", r"aiohttp/"),
    ("asyncio event loop machinery", r"asyncio/"),
    ("store.server handlers", r"store/server\.py"),
    ("store.codec (JSON decode/encode)", r"store/codec|orjson"),
    ("Proposer / raft_node glue", r"store/raft_node\.py"),
    ("state machine apply (StoreState/MVCC)", r"store/state_machine\.py|store/mvcc\.py"),
    ("watch hub / streams", r"store/watch_"),
    ("pysyncobj total", r"pysyncobj/"),
    ("pysyncobj transport send (pickle+zlib+encrypt)", r"tcp_connection\.py.*\bsend\b|send \(pysyncobj/tcp_connection"),
    ("pysyncobj receive/decrypt/unpickle", r"__processParseMessage|processParseMessage|decrypt"),
    ("pickle", r"pickle"),
    ("zlib", r"zlib|compress"),
    ("Fernet encrypt/decrypt (cryptography)", r"fernet|cryptography"),
    ("poll/select wait", r"\bpoll \(|select \("),
]


def thread_cpu(pid: int) -> dict[int, tuple[float, float]]:
    """{thread id: (user s, system s)} of a process (main thread's id == pid)."""
    import psutil

    return {t.id: (t.user_time, t.system_time) for t in psutil.Process(pid).threads()}


def leader_and_follower(c: KubeliteCluster) -> tuple[int, int]:
    leader = wait_for_leader(c)
    follower = next(i for i in range(len(c.members)) if i != leader)
    return leader, follower


def parse_collapsed(path: Path) -> list[tuple[list[str], int]]:
    out = []
    for line in path.read_text().splitlines():
        line = line.rstrip()
        if not line:
            continue
        stack, _, n = line.rpartition(" ")
        out.append((stack.split(";"), int(n)))
    return out


def short(frame: str) -> str:
    m = re.match(r"(.*) \((.*?):(\d+)\)$", frame)
    if not m:
        return frame
    func, file, _ = m.groups()
    file = re.sub(r".*/site-packages/", "", file)
    file = re.sub(r".*/(lib/python3\.\d+)/", "", file)
    file = re.sub(r".*/work/main/", "", file)
    return f"{func} ({file})"


def thread_of(stack: list[str]) -> str:
    head = stack[0]
    if "thread" in head.lower() or head.startswith("process"):
        return head
    return "?"


def summarize(path: Path, seconds: float, rate: int, top: int = 18) -> str:
    rows = parse_collapsed(path)
    total = sum(n for _, n in rows)
    lines = [f"### {path.name}: {total} samples ({total / (seconds * rate):.2f} cores-equivalent "
             f"of active Python at {rate} Hz over {seconds:.0f} s)"]
    by_thread: dict[str, list] = collections.defaultdict(list)
    for stack, n in rows:
        by_thread[_thread_name(stack)].append((stack, n))
    for thread, trows in sorted(by_thread.items(), key=lambda kv: -sum(n for _, n in kv[1])):
        tn = sum(n for _, n in trows)
        lines.append(f"\n**{thread}**: {tn} samples = {100 * tn / max(total, 1):.1f}% of this "
                     f"process's samples\n")
        leaf: collections.Counter = collections.Counter()
        incl: collections.Counter = collections.Counter()
        for stack, n in trows:
            frames = [short(f) for f in stack[1:]] or ["?"]
            leaf[frames[-1]] += n
            for f in set(frames):
                incl[f] += n
        lines.append("| top self (leaf) frames | % of thread |\n|---|---|")
        for f, n in leaf.most_common(top):
            lines.append(f"| `{f}` | {100 * n / tn:.1f} |")
        lines.append("\n| bucket (inclusive) | % of thread |\n|---|---|")
        for name, pat in BUCKETS:
            rx = re.compile(pat)
            n = sum(c for stack, c in trows if any(rx.search(fr) for fr in stack[1:]))
            if n:
                lines.append(f"| {name} | {100 * n / tn:.1f} |")
    return "\n".join(lines)


def _thread_name(stack: list[str]) -> str:
    head = stack[0]
    # py-spy --threads puts "thread (0x7f..)" or 'process 123:"python -m store.main"' first
    if head.startswith("process"):
        head = stack[1] if len(stack) > 1 else head
    return head


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--load", choices=sorted(LOADS), default="put")
    ap.add_argument("--seconds", type=float, default=10.0, help="py-spy duration")
    ap.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    ap.add_argument("--out", default=None)
    ap.add_argument("--kubelite-args", default="")
    a = ap.parse_args()
    out = Path(a.out) if a.out else HERE / "profiles" / f"{a.load}-{time.strftime('%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    c = KubeliteCluster(3, extra_args=tuple(a.kubelite_args.split()))
    spies: list[subprocess.Popen] = []
    load = None
    try:
        subprocess.run([sys.executable, str(HERE / "bench_kv.py"), "--endpoints",
                        ",".join(c.endpoints), "--op", "load", "--clients", "16", "--json",
                        *COMMON], check=True, capture_output=True, timeout=300)
        leader, follower = leader_and_follower(c)
        load = subprocess.Popen([sys.executable, str(HERE / "bench_kv.py"), "--endpoints",
                                 ",".join(c.endpoints), *LOADS[a.load], "--seconds",
                                 str(a.seconds + 4), "--json", *COMMON],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2.5)
        targets = {"leader": c.members[leader].proc.pid, "follower": c.members[follower].proc.pid}
        cpu0 = {role: thread_cpu(pid) for role, pid in targets.items()}
        t_cpu0 = time.monotonic()
        files = {}
        for role, pid in targets.items():
            for gil in (False, True):
                f = out / f"{role}{'-gil' if gil else ''}.txt"
                files[(role, gil)] = f
                cmd = [PY_SPY, "record", "--pid", str(pid), "--duration", str(int(a.seconds)),
                       "--rate", str(a.rate), "--format", "raw", "--threads", "--nonblocking",
                       "-o", str(f)]
                if gil:
                    cmd.append("--gil")
                spies.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
        for p in spies:
            p.wait(timeout=a.seconds + 60)
        cpu1 = {role: thread_cpu(pid) for role, pid in targets.items()}
        t_cpu = time.monotonic() - t_cpu0
        res_out, _ = load.communicate(timeout=a.seconds + 60)
        bench = json.loads(res_out.strip().splitlines()[-1])
        (out / "bench.json").write_text(json.dumps(bench, indent=1))
        report = [f"# profile: load {a.load}, leader m{leader} pid {targets['leader']}, "
                  f"follower m{follower} pid {targets['follower']}",
                  f"bench: {json.dumps({k: bench.get(k) for k in ('throughput_ops', 'put_throughput_ops')})}"
                  f" latency {json.dumps(bench.get('latency') or bench.get('send_to_all_watchers'))}",
                  ""]
        report.append(f"Per-thread CPU (psutil, user+system) over {t_cpu:.1f} s, in cores:")
        for role in targets:
            parts = []
            for tid, (u1, s1) in sorted(cpu1[role].items()):
                u0, s0 = cpu0[role].get(tid, (0.0, 0.0))
                used = (u1 - u0) + (s1 - s0)
                if used > 0.01:
                    parts.append(f"tid {tid}: {used / t_cpu:.2f} (user {(u1 - u0) / t_cpu:.2f}, "
                                 f"sys {(s1 - s0) / t_cpu:.2f})")
            report.append(f"- {role} (pid {targets[role]}): " + "; ".join(parts))
        report.append("")
        for (role, gil), f in files.items():
            if f.exists():
                report.append(f"## {role} {'(GIL holder only)' if gil else '(all active samples)'}")
                report.append(summarize(f, a.seconds, a.rate))
                report.append("")
        text = "\n".join(report)
        (out / "summary.md").write_text(text)
        print(text)
    finally:
        for p in spies:
            if p.poll() is None:
                p.kill()
        if load is not None and load.poll() is None:
            load.kill()
        c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
