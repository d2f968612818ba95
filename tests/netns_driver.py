"""Runs PodNetwork and ServiceProxy inside a "machine" network namespace, driven by JSON.

Python 3.11 cannot move one thread of the test process into another network namespace
for a whole asyncio program, so each test machine runs this module in its own process,
started as `nsenter --net=/run/netns/<machine> python -m tests.netns_driver` (nsenter
without --mount keeps the root mount namespace, where the pod namespaces must be made).

One JSON command per stdin line, one JSON reply per stdout line:

    {"op": "init", "data_dir": ..., "netns_prefix": ..., ...}   -> {"ok": true, "result": null}
    {"op": "setup", "pod_cidr": ..., "node_ip": ...}
    {"op": "add_pod", "uid": ..., "namespace": ..., "name": ...} -> PodAddress as a dict
    {"op": "add_pods", "pods": [{"uid": ..., "namespace": ..., "name": ...}, ...]}
    {"op": "remove_pod", "uid": ...}      {"op": "list_pods"}     {"op": "teardown"}
    {"op": "sync_routes", "desired": {cidr: gateway}}            {"op": "owned_routes"}
    {"op": "detect_proxy_mode"}  {"op": "proxy_init", "table": ..., "pod_cidr": ...}
    {"op": "proxy_sync", "services": [...], "endpoints": [...]}  -> true if applied
    {"op": "proxy_teardown"}

A failing command answers {"ok": false, "error": "..."} and the driver keeps going; EOF on
stdin ends it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from agents.pod_network import PodNetwork
from agents.service_proxy import ServiceProxy, detect_proxy_mode


class Driver:
    def __init__(self) -> None:
        self.network: PodNetwork | None = None
        self.proxy: ServiceProxy | None = None

    async def handle(self, cmd: dict[str, Any]) -> Any:
        op = cmd["op"]
        if op == "init":
            self.network = PodNetwork(
                data_dir=Path(cmd["data_dir"]), bridge=cmd.get("bridge", "kl0"),
                netns_prefix=cmd["netns_prefix"], veth_prefix=cmd.get("veth_prefix", "klv"),
                service_cidr=cmd.get("service_cidr"))
            return None
        if op == "detect_proxy_mode":
            return await asyncio.to_thread(detect_proxy_mode)
        if op == "proxy_init":
            self.proxy = ServiceProxy("nftables", table=cmd["table"], pod_cidr=cmd["pod_cidr"],
                                      bridge=cmd.get("bridge"))
            return None
        if op == "proxy_sync":
            assert self.proxy is not None
            return await self.proxy.sync(cmd["services"], cmd["endpoints"])
        if op == "proxy_teardown":
            assert self.proxy is not None
            return await self.proxy.teardown()
        net = self.network
        assert net is not None, "init first"
        if op == "setup":
            return await net.setup(cmd["pod_cidr"], cmd["node_ip"])
        if op == "add_pod":
            address = await net.add_pod(cmd["uid"], cmd["namespace"], cmd["name"])
            return dataclasses.asdict(address)
        if op == "add_pods":  # concurrently, as the agent's pod workers would
            addresses = await asyncio.gather(*(
                net.add_pod(p["uid"], p["namespace"], p["name"]) for p in cmd["pods"]))
            return [dataclasses.asdict(a) for a in addresses]
        if op == "remove_pod":
            return await net.remove_pod(cmd["uid"])
        if op == "list_pods":
            return await net.list_pods()
        if op == "sync_routes":
            return await net.sync_routes(cmd["desired"])
        if op == "owned_routes":
            return await net.owned_routes()
        if op == "teardown":
            return await net.teardown()
        raise ValueError(f"unknown op {op!r}")


async def main() -> None:
    driver = Driver()
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        try:
            reply = {"ok": True, "result": await driver.handle(json.loads(line))}
        except Exception as exc:  # reported to the test, which decides
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                     "trace": traceback.format_exc()}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
