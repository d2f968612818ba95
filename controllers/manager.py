"""`kubelite controller-manager`: the reconciling controllers, one active instance at a time.

Start-up, in kube-controller-manager's order: connect to the apiservers the kubeconfig
(or --server) names; start the shared informers and wait for their first lists; then
campaign for the `kube-controller-manager` Lease in kube-system. Informers run in the
standby too, so a takeover acts on warm caches within moments.

While this instance leads (one term of leader_election.LeaderElector), every
controller runs its workers, and every write goes through the term's FencedClient,
wrapped in a fresh Runner and event recorder: a write from a term that is over is
refused rather than sent. When the lease is lost the term's tasks are cancelled, the
controllers' per-term memory (expectations, manage errors) is dropped, and the
instance campaigns again. SIGTERM/SIGINT end the process after releasing the Lease,
so the standby takes over at its next retry instead of after a lease duration.

Controllers (--controllers, Kubernetes' names, `*` for all, `-name` to leave one out):
replicaset, deployment, job, endpoints, nodelifecycle, nodeipam, garbagecollector,
serviceaccount, serviceaccount-token (this one only with
--service-account-private-key-file).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from apiserver.auth import kubeconfig
from apiserver.client import ApiClient
from apiserver.event_recorder import EventRecorder
from controllers import election_config
from controllers.context import Context, Options
from controllers.handlers import Router
from controllers.informers import Informers
from controllers.leader_election import LeaderElector, default_identity
from controllers.runner import Runner, Writer
from controllers.sync_cluster import (
    NodeIpamSync,
    NodeLifecycleSync,
    ServiceAccountSync,
    TokenSync,
    minter,
)
from controllers.sync_garbage import GarbageSync
from controllers.sync_workloads import DeploymentSync, EndpointsSync, JobSync, ReplicaSetSync

log = logging.getLogger("controller-manager")

LEASE_NAME = "kube-controller-manager"
SYNC_TIMEOUT = 120.0
TOKEN_TTL = 365 * 24 * 3600.0
ALL_CONTROLLERS = ("replicaset", "deployment", "job", "endpoints", "nodelifecycle",
                   "nodeipam", "garbagecollector", "serviceaccount", "serviceaccount-token")
_CONCURRENCY_FLAGS = {"replicaset": "replicaset", "deployment": "deployment", "job": "job",
                      "endpoint": "endpoints", "serviceaccount-token": "serviceaccount-token",
                      "gc": "garbagecollector"}


def _duration(text: str) -> float:
    """A Go duration flag ("50s", "5m", "1m30s") in seconds."""
    try:
        return election_config.parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "t", "yes"):
        return True
    if text.lower() in ("false", "0", "f", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")


def build_parser() -> argparse.ArgumentParser:
    duration = _duration
    p = argparse.ArgumentParser(prog="kubelite controller-manager",
                                description="Run the reconciling controllers.")
    p.add_argument("--kubeconfig", required=True, help="credentials and apiserver URLs")
    p.add_argument("--server", action="append", default=[],
                   help="apiserver URL (repeat, or comma-separate); overrides the kubeconfig's")
    p.add_argument("--identity", help="leader-election identity (default hostname_uuid)")
    election_config.add_flags(p, LEASE_NAME)
    p.add_argument("--controllers", default="*",
                   help="comma-separated controllers to run: * for all, -name to disable one")
    p.add_argument("--node-monitor-grace-period", type=duration, default=50.0,
                   metavar="DURATION", help="heartbeat age after which a node is Unknown (50s)")
    p.add_argument("--node-monitor-period", type=duration, default=5.0, metavar="DURATION",
                   help="how often every node's health is checked (5s)")
    p.add_argument("--pod-eviction-timeout", type=duration, default=300.0, metavar="DURATION",
                   help="eviction delay for pods that do not tolerate the node's taint (5m)")
    p.add_argument("--allocate-node-cidrs", type=_bool, default=True,
                   metavar="BOOL", help="give each node a podCIDR from --cluster-cidr (true)")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16")
    p.add_argument("--node-cidr-mask-size", type=int, default=24)
    p.add_argument("--service-account-private-key-file",
                   help="key that signs service-account tokens (enables the token controller)")
    p.add_argument("--root-ca-file", help="CA put into token Secrets as ca.crt "
                                          "(default: the kubeconfig's CA)")
    p.add_argument("--gc-sweep-period", type=duration, default=20.0, metavar="DURATION",
                   help="how often the garbage collector sweeps every object (20s)")
    for flag, default in (("replicaset", 5), ("deployment", 5), ("job", 5), ("endpoint", 5),
                          ("serviceaccount-token", 5), ("gc", 1)):
        p.add_argument(f"--concurrent-{flag}-syncs", type=int, default=default, metavar="N")
    p.add_argument("--log-level", default="info",
                   choices=("debug", "info", "warning", "error"))
    return p


def enabled_controllers(spec: str) -> list[str]:
    """Kubernetes' --controllers: `*` is every controller, `-x` removes x, `x` adds it."""
    items = [s.strip() for s in spec.split(",") if s.strip()]
    chosen: set[str] = set(ALL_CONTROLLERS) if "*" in items else set()
    for item in items:
        name = item.lstrip("-")
        if item != "*" and name not in ALL_CONTROLLERS:
            raise ValueError(f"unknown controller {name!r}")
        if item.startswith("-"):
            chosen.discard(name)
        elif item != "*":
            chosen.add(name)
    return [c for c in ALL_CONTROLLERS if c in chosen]


def options_from_args(args: argparse.Namespace) -> Options:
    concurrency = {name: getattr(args, f"concurrent_{flag.replace('-', '_')}_syncs")
                   for flag, name in _CONCURRENCY_FLAGS.items()}
    return Options(node_monitor_grace_period=timedelta(seconds=args.node_monitor_grace_period),
                   node_monitor_period=timedelta(seconds=args.node_monitor_period),
                   pod_eviction_timeout=timedelta(seconds=args.pod_eviction_timeout),
                   allocate_node_cidrs=args.allocate_node_cidrs,
                   cluster_cidr=args.cluster_cidr, node_cidr_mask_size=args.node_cidr_mask_size,
                   gc_period=args.gc_sweep_period, concurrency=concurrency)


class ControllerManager:
    """The informers, the syncs and their controllers; `lead(writer)` is one term."""

    def __init__(self, api: ApiClient, options: Options, names: Sequence[str], *,
                 token_key_file: str | None = None, root_ca: bytes = b"") -> None:
        self.api = api
        self.informers = Informers(api)
        self.ctx = Context(api, self.informers, Runner(api, api), options)
        builders: dict[str, Any] = {
            "replicaset": ReplicaSetSync, "deployment": DeploymentSync, "job": JobSync,
            "endpoints": EndpointsSync, "nodelifecycle": NodeLifecycleSync,
            "nodeipam": NodeIpamSync, "garbagecollector": GarbageSync,
            "serviceaccount": ServiceAccountSync,
        }
        self.syncs: list[Any] = [builders[n](self.ctx) for n in names if n in builders]
        if "serviceaccount-token" in names:
            if token_key_file:
                self.syncs.append(TokenSync(self.ctx, minter(token_key_file, TOKEN_TTL),
                                            root_ca))
            else:
                log.warning("serviceaccount-token controller disabled: "
                            "no --service-account-private-key-file")
        self.controllers = {s.controller.name: s.controller for s in self.syncs}
        Router(self.informers, self.controllers).wire()
        self.terms = 0

    async def start(self, timeout: float = SYNC_TIMEOUT) -> None:
        await self.informers.start()
        await self.informers.wait_synced(timeout)
        log.info("informers synced: %s", ", ".join(
            f"{name}={len(i.keys())}" for name, i in self.informers.all().items()))

    async def lead(self, writer: Writer) -> None:
        """Run every controller until cancelled (the term ends)."""
        self.terms += 1
        recorder = EventRecorder(writer, name="controller-manager-events")
        await recorder.start()
        self.ctx.runner = Runner(self.api, writer, recorder)
        started = []
        try:
            for sync in self.syncs:
                sync.reset()
                await sync.controller.start()
                started.append(sync.controller)
            log.info("leading (term %d): %s", self.terms, ", ".join(self.controllers))
            await asyncio.Event().wait()
        finally:
            for controller in started:
                await controller.stop()
            await recorder.stop()
            log.info("term %d over: controllers stopped", self.terms)

    async def stop(self) -> None:
        await self.informers.stop()


async def run(args: argparse.Namespace) -> int:
    config = kubeconfig.load_kubeconfig(args.kubeconfig)
    servers = [u for s in args.server for u in s.split(",") if u] or list(config.servers)
    root_ca = _read(args.root_ca_file) if args.root_ca_file else (config.ca_data or b"")
    api = ApiClient(servers, ssl=kubeconfig.ssl_context(config), token=config.token,
                    user_agent="kubelite-controller-manager")
    identity = args.identity or default_identity()
    async with api:
        manager = ControllerManager(api, options_from_args(args),
                                    enabled_controllers(args.controllers),
                                    token_key_file=args.service_account_private_key_file,
                                    root_ca=root_ca)
        try:
            await manager.start()
            if not args.leader_elect:
                await manager.lead(api)
                return 0
            election = election_config.from_args(args, identity)
            log.info("%s: campaigning for lease %s/%s", identity, election.namespace,
                     election.name)
            await LeaderElector(api, election).run(manager.lead)
        finally:
            await manager.stop()
    return 0


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def main(argv: Sequence[str]) -> int:
    """Entry point; `argv` may start with the sub-command name (controllers.main passes it)."""
    argv = list(argv)
    if argv[:1] == ["controller-manager"]:
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        enabled_controllers(args.controllers)
        if args.leader_elect:
            election_config.from_args(args, "check")
    except ValueError as err:
        print(f"kubelite controller-manager: {err}")
        return 2
    return asyncio.run(_until_signalled(run(args)))


async def _until_signalled(work: Any) -> int:
    """Run `work`; SIGTERM or SIGINT cancels it (the Lease is released on the way out)."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return int(await task)
    except asyncio.CancelledError:
        log.info("signalled: stopped")
        return 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):
                loop.remove_signal_handler(sig)
