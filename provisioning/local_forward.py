"""The operator's way into a lab fleet: a background `provisioning.netns_forward` from
127.0.0.1:<port> here to a control plane's balancer inside the lab's namespace.

The admin kubeconfig of a lab cluster names that 127.0.0.1 URL (the apiservers'
certificates include 127.0.0.1), so kubectl on this machine works unchanged. The
forward is recorded in the cluster's state by PID and start time, reused while it
runs, restarted on the same port when it died, and stopped by `down`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from provisioning.netns_forward import parse_endpoint

START_TIMEOUT = 10.0
# Started here and left running on purpose; kept so that they are not reported as
# leaked when this process's Popen objects are collected.
_children: list[subprocess.Popen[bytes]] = []


def alive(record: dict | None) -> bool:
    if not record:
        return False
    try:
        proc = psutil.Process(record["pid"])
        return proc.create_time() == record["created"] and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, KeyError):
        return False


def ensure(record: dict | None, netns: str, target: str, log_path: Path) -> dict:
    """A running forward to `target` (reusing `record` when it still runs)."""
    if alive(record) and record is not None and record.get("target") == target:
        return record
    stop(record)
    port = (record or {}).get("port", 0)
    for attempt_port in dict.fromkeys([port, 0]):
        log_path.write_text("")
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "provisioning.netns_forward", "--listen",
                 f"127.0.0.1:{attempt_port}", "--netns", netns, "--to", target],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=str(Path(__file__).resolve().parents[1]))
        _children.append(proc)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            for line in log_path.read_text().splitlines():
                if line.startswith("listening on "):
                    _, bound = parse_endpoint(line.removeprefix("listening on ").strip())
                    return {"pid": proc.pid, "created": psutil.Process(proc.pid).create_time(),
                            "port": bound, "target": target}
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)
    raise RuntimeError(f"the forward to {target} did not start:\n{log_path.read_text()[-500:]}")


def stop(record: dict | None) -> None:
    if not alive(record):
        return
    assert record is not None
    os.kill(record["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 5
    while alive(record) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(record):
        os.kill(record["pid"], signal.SIGKILL)
