"""`kubelite agent`: the node agent (kubelet and kube-proxy in one process).

    kubelite agent --kubeconfig node.kubeconfig --node-name w1 --data-dir /var/lib/kubelite/agent

It talks only to the apiserver, with the node's own credentials (a user
`system:node:<name>` in group `system:nodes`), so that the apiserver keeps it to its own
Node, Lease and pods. `--cleanup` stops every container this data directory's agent
started and removes its pod network, then exits (used when a machine leaves the fleet).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from pathlib import Path

from agents import agent as agent_module
from agents import node_status


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubelite agent",
        description="Run the node agent: register this machine as a Node, heartbeat, run "
                    "the pods bound to it as processes, program pod networking and "
                    "Service load balancing.")
    p.add_argument("--kubeconfig", required=True,
                   help="kubeconfig with the node's credentials (user system:node:NAME)")
    p.add_argument("--node-name", default=socket.gethostname(),
                   help="the Node's name (default: the hostname)")
    p.add_argument("--data-dir", default="/var/lib/kubelite/agent", type=Path,
                   help="state kept across restarts: containers, logs, IP allocations")
    p.add_argument("--node-ip", default="",
                   help="the address other machines reach this one at (default: the first "
                        "IPv4 address of an interface that is up)")
    p.add_argument("--port", type=int, default=10250,
                   help="HTTPS port for logs and stats, proxied by the apiserver")
    p.add_argument("--network", choices=("auto", "pods", "host"), default="auto",
                   help="pods: a network namespace per pod (needs root); host: pods share "
                        "the machine's network; auto: pods when running as root")
    p.add_argument("--bridge", default="kl0", help="the pod bridge's name")
    p.add_argument("--netns-prefix", default="kl-",
                   help="prefix of the pods' network namespace names")
    p.add_argument("--cgroup-root", default="kubelite",
                   help="cgroup directory (under each controller) holding pods' cgroups")
    p.add_argument("--service-cidr", default="10.96.0.0/12",
                   help="the cluster's Service range (routed to the pod bridge so that "
                        "the node itself reaches ClusterIPs)")
    p.add_argument("--nft-table", default="kubelite",
                   help="nftables table holding the Service rules")
    p.add_argument("--system-reserved", default="",
                   help="resources kept for the system, e.g. cpu=100m,memory=256Mi")
    p.add_argument("--eviction-hard", default="",
                   help="pressure thresholds, e.g. memory.available<100Mi,nodefs.available<10%%")
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--node-labels", default="",
                   help="extra labels for the Node: key=value,key2=value2")
    p.add_argument("--lease-interval", type=float, default=10.0,
                   help="seconds between renewals of the node's Lease")
    p.add_argument("--status-interval", type=float, default=60.0,
                   help="seconds between node status posts when nothing changed")
    p.add_argument("--tls-cert-file", help="serving certificate (default: self-signed)")
    p.add_argument("--tls-private-key-file", help="its key")
    p.add_argument("--client-ca-file",
                   help="require client certificates signed by this CA (the apiserver's)")
    p.add_argument("--pod-cidr-timeout", type=float, default=120.0,
                   help="seconds to wait for the control plane to give this node a podCIDR")
    p.add_argument("--cleanup", action="store_true",
                   help="stop every container and remove the pod network, then exit")
    p.add_argument("--log-level", default="info",
                   choices=("debug", "info", "warning", "error"))
    return p


def _labels(text: str) -> dict[str, str]:
    labels = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--node-labels: {item!r} is not key=value")
        labels[key] = value
    return labels


def options_from(args: argparse.Namespace) -> agent_module.AgentOptions:
    return agent_module.AgentOptions(
        node_name=args.node_name, data_dir=args.data_dir,
        node_ip=args.node_ip or agent_module.default_node_ip(), port=args.port,
        network=args.network, bridge=args.bridge, netns_prefix=args.netns_prefix,
        cgroup_root=args.cgroup_root, nft_table=args.nft_table,
        service_cidr=args.service_cidr,
        reserved=node_status.Reserved.parse(args.system_reserved),
        thresholds=node_status.Thresholds.parse(args.eviction_hard),
        max_pods=args.max_pods, labels=_labels(args.node_labels),
        lease_interval=args.lease_interval, status_interval=args.status_interval,
        tls_cert_file=args.tls_cert_file, tls_key_file=args.tls_private_key_file,
        client_ca_file=args.client_ca_file, pod_cidr_timeout=args.pod_cidr_timeout)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        options = options_from(args)
    except ValueError as exc:
        print(f"kubelite agent: {exc}", file=sys.stderr)
        return 2
    if args.cleanup:
        return asyncio.run(_cleanup(options))
    return asyncio.run(_run(args.kubeconfig, options))


async def _run(kubeconfig: str, options: agent_module.AgentOptions) -> int:
    from apiserver.client import ApiClient

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with ApiClient.from_kubeconfig(kubeconfig) as api:
        try:
            await agent_module.run(api, options, stop)
        except RuntimeError as exc:
            logging.getLogger("agent").error("%s", exc)
            return 1
    return 0


async def _cleanup(options: agent_module.AgentOptions) -> int:
    from agents import pod_network
    from agents.process_runtime import ProcessRuntime

    runtime = ProcessRuntime(options.data_dir / "runtime", cgroup_root=options.cgroup_root)
    for status in await runtime.recover():
        if status.state == "running":
            await runtime.stop(status.id, 10.0)
        await runtime.remove(status.id)
    await runtime.close()
    for base in runtime.cgroups.bases.values():  # the agent's own cgroup directories
        with contextlib.suppress(OSError):
            base.rmdir()
    if agent_module.choose_network_mode(options.network) == "pods":
        from agents import service_proxy

        network = pod_network.PodNetwork(bridge=options.bridge,
                                         netns_prefix=options.netns_prefix,
                                         data_dir=options.data_dir / "network")
        await network.teardown()
        await service_proxy.ServiceProxy("nftables", table=options.nft_table,
                                         pod_cidr="", node_ip=options.node_ip,
                                         bridge=options.bridge).teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
