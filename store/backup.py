"""`kubelite store backup` and `kubelite store restore`.

A backup is a consistent snapshot of the replicated state (taken after a read barrier,
so it holds every write acknowledged before the backup started) followed by its
SHA-256, streamed from any member through `/v3/maintenance/snapshot`. Restoring writes
a fresh data directory per member; start every member of the new cluster from a
restore of the same file. The restored data keeps keys, history and leases, not the old
cluster's member list.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import sys

import aiohttp
import orjson

from store import membership, snapshot
from store.raft_node import write_restored_data_dir
from store.state_machine import StoreState

DIGEST_SIZE = 32


def verify(data: bytes) -> bytes:
    """Split a backup into its state bytes, checking the trailing SHA-256."""
    if len(data) <= DIGEST_SIZE:
        raise ValueError("backup file is truncated")
    body, digest = data[:-DIGEST_SIZE], data[-DIGEST_SIZE:]
    if hashlib.sha256(body).digest() != digest:
        raise ValueError("backup file is corrupt: SHA-256 does not match")
    return body


async def fetch_backup(endpoints: list[str], timeout: float) -> bytes:
    """Stream a snapshot from the first member that answers."""
    last_error: Exception | None = None
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        for endpoint in endpoints:
            url = endpoint.rstrip("/") + "/v3/maintenance/snapshot"
            try:
                async with session.post(url, data=b"{}") as resp:
                    if resp.status != 200:
                        last_error = RuntimeError(f"{endpoint}: HTTP {resp.status}: "
                                                  f"{(await resp.text())[:200]}")
                        continue
                    parts = []
                    async for line in resp.content:
                        if not line.strip():
                            continue
                        message = orjson.loads(line)
                        if "error" in message:
                            raise RuntimeError(f"{endpoint}: {message['error']}")
                        blob = message.get("result", {}).get("blob")
                        if blob:
                            parts.append(base64.b64decode(blob))
                    return b"".join(parts)
            except (aiohttp.ClientError, TimeoutError) as exc:
                last_error = exc
    raise RuntimeError(f"no member could send a snapshot: {last_error}")


def _backup(args: argparse.Namespace) -> int:
    endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    data = asyncio.run(fetch_backup(endpoints, args.timeout))
    body = verify(data)
    state = snapshot.load(body)
    tmp = args.file + ".part"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, args.file)
    print(f"saved backup to {args.file}: revision {state.revision}, {len(data)} bytes")
    return 0


def _restore(args: argparse.Namespace) -> int:
    with open(args.file, "rb") as f:
        body = verify(f.read())
    state = snapshot.load(body)
    members = membership.parse_initial_cluster(args.initial_cluster)
    if args.name not in {m.name for m in members}:
        raise SystemExit(f"kubelite store restore: --initial-cluster must name {args.name}")
    # The new cluster is made of the members named here, not of those of the cluster the
    # backup came from (as after etcdctl snapshot restore): its first leader records them
    # from --initial-cluster, and each publishes its name and client URLs.
    body = snapshot.dump(StoreState(kv=state.kv, leases=state.leases))
    write_restored_data_dir(args.data_dir, [m.peer_addr for m in members], body)
    print(f"restored revision {state.revision} into {args.data_dir}; start the member with "
          f"the same --name and --initial-cluster")
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="kubelite store",
                                description="Back up or restore the store's data.")
    sub = p.add_subparsers(dest="action", required=True)
    b = sub.add_parser("backup", help="save a consistent snapshot of a running cluster")
    b.add_argument("--endpoints", required=True, help="client URLs, comma separated")
    b.add_argument("--timeout", type=float, default=60.0, help="seconds for the whole backup")
    b.add_argument("file", help="where to write the backup")
    r = sub.add_parser("restore", help="seed a member's empty data dir from a backup")
    r.add_argument("file", help="a file written by 'kubelite store backup'")
    r.add_argument("--data-dir", required=True, help="the new member's (empty) data dir")
    r.add_argument("--name", required=True, help="the member's name")
    r.add_argument("--initial-cluster", required=True,
                   help="NAME=HOST:PORT,... of the new cluster (same on every member)")
    args = p.parse_args(argv)
    try:
        return _backup(args) if args.action == "backup" else _restore(args)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"kubelite store {args.action}: {exc}", file=sys.stderr)
        return 1
