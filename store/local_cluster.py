"""A local store cluster on this machine, for trying kubelite out.

    python -m store.local_cluster up [--members 3] [--dir .kubelite-local]
    python -m store.local_cluster demo
    python -m store.local_cluster down

`up` starts the members on 127.0.0.1 ports as background processes, records their PIDs
in the directory, and waits until the cluster has a leader; `down` stops exactly those
PIDs. `demo` shows the API a client sees: put, get, a transaction, a lease, a watch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from store.client import StoreClient

STATE_FILE = "cluster.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def up(directory: Path, size: int) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    state_path = directory / STATE_FILE
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if all(alive(m["pid"]) for m in state["members"]):
            return state
        down(directory)
    secret = directory / "peer-secret"
    secret.write_text(secrets.token_hex(24))
    secret.chmod(0o600)
    ports = [(free_port(), free_port()) for _ in range(size)]
    initial = ",".join(f"m{i}=127.0.0.1:{p}" for i, (_, p) in enumerate(ports))
    members = []
    for i, (client, peer) in enumerate(ports):
        log = open(directory / f"m{i}.log", "ab")  # noqa: SIM115 (the child keeps it)
        argv = [sys.executable, "-m", "store.main", "--name", f"m{i}",
                "--data-dir", str(directory / f"m{i}"),
                "--listen-client-urls", f"http://127.0.0.1:{client}",
                "--listen-peer-urls", f"127.0.0.1:{peer}", "--initial-cluster", initial,
                "--peer-secret-file", str(secret)]
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        members.append({"name": f"m{i}", "pid": proc.pid,
                        "endpoint": f"http://127.0.0.1:{client}",
                        "log": str(directory / f"m{i}.log")})
    state = {"members": members}
    state_path.write_text(json.dumps(state, indent=2))
    asyncio.run(_wait_healthy([m["endpoint"] for m in members], 30.0))
    return state


async def _wait_healthy(endpoints: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with StoreClient(endpoints, timeout=2.0) as client:
        while True:
            try:
                status = await client.status(endpoints[0])
                if status.leader:
                    await client.range(b"health-check")
                    return
            except Exception:  # noqa: BLE001 (still starting; retried until the deadline)
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the local cluster did not become healthy; see the logs")
            await asyncio.sleep(0.2)


def down(directory: Path) -> None:
    state_path = directory / STATE_FILE
    if not state_path.exists():
        return
    state = json.loads(state_path.read_text())
    stop_pids([member["pid"] for member in state["members"]])
    state_path.unlink()


def stop_pids(pids: list[int], grace: float = 10.0) -> None:
    """SIGTERM the processes this tool recorded, SIGKILL those still there after `grace`."""
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for pid in pids:
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


async def demo(endpoints: list[str]) -> None:
    """Walk through the API: every line printed is a real round trip to the cluster."""
    async with StoreClient(endpoints) as client:
        put = await client.put(b"/demo/greeting", b"hello")
        print(f"put /demo/greeting=hello            -> revision {put.revision}")
        got = await client.get(b"/demo/greeting")
        print(f"get /demo/greeting                  -> {got.value!r} "
              f"(version {got.version}, mod_revision {got.mod_revision})")
        watch = client.watch(b"/demo/", b"/demo0", start_revision=put.revision)
        lease_id, ttl = await client.lease_grant(30)
        await client.put(b"/demo/session", b"alive", lease=lease_id)
        print(f"lease {lease_id:x} granted for {ttl}s, /demo/session attached")
        seen = 0
        async for batch in watch:
            for event in batch.events:
                kind = "DELETE" if event.type else "PUT"
                print(f"watch event: {kind} {event.kv.key.decode()} at revision "
                      f"{event.kv.mod_revision}")
                seen += 1
            if seen >= 2:
                break
        await client.lease_revoke(lease_id)
        gone = await client.get(b"/demo/session")
        print(f"lease revoked; /demo/session is {'gone' if gone is None else 'still there'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m store.local_cluster",
                                description="Run a local kubelite store cluster.")
    p.add_argument("action", choices=("up", "down", "demo"))
    p.add_argument("--dir", default=".kubelite-local", help="state, data and logs")
    p.add_argument("--members", type=int, default=3, choices=(1, 3, 5))
    args = p.parse_args(argv)
    directory = Path(args.dir).resolve()
    if args.action == "down":
        down(directory)
        print("stopped")
        return 0
    if args.action == "up":
        state = up(directory, args.members)
        endpoints = [m["endpoint"] for m in state["members"]]
        print("kubelite store cluster is up:")
        for m in state["members"]:
            print(f"  {m['name']}  {m['endpoint']}  pid {m['pid']}  log {m['log']}")
        print(f"\ntry: curl -s -X POST {endpoints[0]}/v3/kv/range -d '{{\"key\":\"AA==\","
              f"\"range_end\":\"AA==\"}}'")
        return 0
    state = json.loads((directory / STATE_FILE).read_text())
    asyncio.run(demo([m["endpoint"] for m in state["members"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
