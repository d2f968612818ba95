"""Questions about the cluster asked from inside the fleet, printed as JSON.

    python -m provisioning.health store --endpoints http://10.0.0.11:2379,...
    python -m provisioning.health member-add --endpoints ... --peer-url http://10.0.0.14:2380
    python -m provisioning.health readyz --url https://127.0.0.1:6443 --ca-file ca.crt

The operator's machine may not reach the fleet's addresses (the lab's machines sit in
their own network namespaces), so provisioning runs these on a control plane over SSH
with the machine's kubelite venv: the store's members, leader and progress; an
idempotent cluster/member/add (a member already listed is not added twice); and
whether an apiserver's /readyz answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import urllib.request

from store.client import StoreClient, StoreUnavailable
from store.client_types import Status


async def store_report(endpoints: list[str]) -> dict:
    async with StoreClient(endpoints, timeout=5.0) as client:
        statuses = await client.statuses()
        try:
            members = await client.member_list()
        except StoreUnavailable as exc:
            members, error = [], str(exc)
        else:
            error = None
    by_id = {m.id: m for m in members}
    rows, leader = [], None
    for s in statuses:
        if isinstance(s, Status):
            rows.append({"endpoint": s.endpoint, "id": s.member_id, "leader": s.leader,
                         "is_leader": s.member_id == s.leader and s.leader != 0,
                         "applied": s.raft_applied_index, "index": s.raft_index,
                         "revision": s.revision, "errors": list(s.errors)})
            if s.leader:
                leader = by_id[s.leader].name if s.leader in by_id else f"{s.leader:x}"
        else:
            rows.append({"endpoint": str(getattr(s, "endpoint", "")), "error": str(s)})
    return {"leader": leader, "error": error, "statuses": rows,
            "members": [{"id": m.id, "name": m.name, "peer_urls": m.peer_urls,
                         "client_urls": m.client_urls, "is_learner": m.is_learner}
                        for m in members]}


async def member_add(endpoints: list[str], peer_url: str) -> dict:
    async with StoreClient(endpoints, timeout=15.0) as client:
        for m in await client.member_list():
            if peer_url in m.peer_urls:
                return {"added": False, "id": m.id}
        added, _ = await client.member_add([peer_url])
        return {"added": True, "id": added.id}


def readyz(url: str, ca_file: str) -> dict:
    context = ssl.create_default_context(cafile=ca_file)
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/readyz", timeout=3.0,
                                    context=context) as r:
            return {"ready": r.status == 200}
    except OSError as exc:
        return {"ready": False, "error": str(exc)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m provisioning.health")
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("store")
    s.add_argument("--endpoints", required=True)
    a = sub.add_parser("member-add")
    a.add_argument("--endpoints", required=True)
    a.add_argument("--peer-url", required=True)
    r = sub.add_parser("readyz")
    r.add_argument("--url", required=True)
    r.add_argument("--ca-file", required=True)
    args = p.parse_args(argv)
    try:
        if args.what == "store":
            out = asyncio.run(store_report(args.endpoints.split(",")))
        elif args.what == "member-add":
            out = asyncio.run(member_add(args.endpoints.split(","), args.peer_url))
        else:
            out = readyz(args.url, args.ca_file)
    except Exception as exc:  # an answer the operator can read, whatever went wrong
        out = {"error": str(exc)}
        print(json.dumps(out))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
