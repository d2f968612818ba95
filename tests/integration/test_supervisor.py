"""The supervisor for real: detached start, restart after a crash, reload of a changed
spec, and stop that leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provisioning import supervisor

pytestmark = pytest.mark.timeout(60)
REPO = Path(__file__).resolve().parents[2]


def write_spec(tmp: Path, processes: dict[str, list[str]]) -> Path:
    spec = tmp / "processes.json"
    doc = {"run_dir": str(tmp / "run"), "log_dir": str(tmp / "log"),
           "processes": [{"name": n, "argv": argv, "env": {"PATH": os.environ["PATH"]},
                          "config_hash": str(hash(tuple(argv)))}
                         for n, argv in processes.items()]}
    spec.write_text(json.dumps(doc))
    return spec


def pids(run: Path) -> dict[str, int]:
    return {n: e["pid"] for n, e in supervisor.status(run)["processes"].items()
            if e["running"]}


def wait_pids(run: Path, ok: Callable[[dict[str, int]], bool],
              timeout: float = 15.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pids(run)
        if ok(found):
            return found
        time.sleep(0.05)
    raise AssertionError(f"processes not as expected in time: {pids(run)}")


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.chdir(REPO)
    yield tmp_path
    pid = supervisor.running_pid(tmp_path / "run")
    if pid is not None:
        os.kill(pid, signal.SIGKILL)


def test_supervisor_lifecycle(tmp: Path) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    spec = write_spec(tmp, {"a": sleeper, "b": sleeper})
    run = tmp / "run"
    assert supervisor.start(str(spec)) == 0
    first = wait_pids(run, lambda p: len(p) == 2)
    sup_pid = supervisor.running_pid(run)
    assert sup_pid is not None and sup_pid != os.getpid()

    os.kill(first["a"], signal.SIGKILL)                 # a crash: started again
    again = wait_pids(run, lambda p: p.get("a") not in (None, first["a"]))
    assert again["b"] == first["b"]
    assert supervisor.status(run)["processes"]["a"]["restarts"] == 1

    spec = write_spec(tmp, {"b": sleeper + ["changed"], "c": sleeper})   # reload
    assert supervisor.start(str(spec)) == 0
    assert supervisor.running_pid(run) == sup_pid
    after = wait_pids(run, lambda p: set(p) == {"b", "c"} and p["b"] != first["b"])
    old = [again["a"], first["b"]]

    assert supervisor.stop(str(run)) == 0
    assert supervisor.running_pid(run) is None
    for pid in [*old, *after.values()]:
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    assert (tmp / "log" / "a.log").exists()
