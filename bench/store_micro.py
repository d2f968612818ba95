"""Micro-benchmarks of the store's pure parts: snapshot dump/load and response encoding.

    .venv/bin/python bench/store_micro.py

Prints the best and median of several runs; no cluster involved.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from store import codec, snapshot  # noqa: E402
from store.commands import CommandType  # noqa: E402
from store.kv_types import KeyValue  # noqa: E402
from store.state_machine import StoreState  # noqa: E402


def _put(key: bytes, value: bytes) -> tuple:
    return (int(CommandType.PUT), {"key": key, "value": value, "lease": 0, "prev_kv": False,
                                   "ignore_value": False, "ignore_lease": False})


def timed(fn, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    state = StoreState()
    filler = bytes(range(256)) * 4
    for i in range(50_000):
        state.apply(_put(b"/registry/pods/default/pod-%06d" % i, b"%06d" % i + filler[6:]))
    data = snapshot.dump(state)
    dump_best, dump_med = timed(lambda: snapshot.dump(state), 5)
    load_best, load_med = timed(lambda: snapshot.load(data), 5)
    print(f"snapshot of 50,000 1 KiB values ({len(data) / 1e6:.1f} MB): "
          f"dump best {dump_best:.3f} s median {dump_med:.3f} s; "
          f"load best {load_best:.3f} s median {load_med:.3f} s")
    items = [KeyValue(os.urandom(16), 1000 + i, 2000 + i, 3, os.urandom(256), 0)
             for i in range(100)]
    resp = {"header": {"cluster_id": 1, "member_id": 2, "revision": 5000, "raft_term": 3},
            "kvs": items, "count": 100}
    enc_best, enc_med = timed(lambda: codec.encode("RangeResponse", resp), 200)
    print(f"encode a RangeResponse of 100 KVs: best {enc_best * 1e3:.3f} ms "
          f"median {enc_med * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
