"""The node agent assembled: heartbeat, pods, pod network, service proxy, HTTPS port.

Start order matters and mirrors the kubelet's: register the Node (so the control plane
sees the machine and allocates its podCIDR), set up the pod network once the podCIDR is
known, recover the runtime's containers, then start the pod workers; the service proxy
and the routes to other nodes follow their informers. Stopping leaves every container
running: they outlive the agent, and the next agent adopts them.

Two network modes: `pods` (root: each pod its own network namespace on the node's
bridge, Services through nftables) and `host` (no root, e.g. loopback mode: pods share
the machine's network and no Service rules are programmed). The mode, the proxy mode
and the runtime's resource-limit support are reported on the Node as annotations, and
missing limits also as a node condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from aiohttp import web

from agents import measure, node_status, routes, server
from agents.events import pod_event
from agents.heartbeat import NodeHeartbeat
from agents.pod_manager import PodManager
from agents.pod_worker import WorkerContext
from agents.process_runtime import ProcessRuntime
from agents.stats import PodUsage, stats_summary
from apiserver.client import ApiClient
from apiserver.discovery import GIT_VERSION
from apiserver.event_recorder import EventRecorder
from apiserver.informer import Informer

log = logging.getLogger(__name__)

Obj = dict[str, Any]
ANNOTATION_NETWORK = "kubelite.io/network-mode"
ANNOTATION_PROXY = "kubelite.io/proxy-mode"
ANNOTATION_LIMITS = "kubelite.io/resource-limits"
PROXY_DEBOUNCE = 0.2  # seconds: Service and Endpoints changes coalesce into one rule set


@dataclass
class AgentOptions:
    node_name: str
    data_dir: Path
    node_ip: str
    port: int = 10250
    network: str = "auto"  # auto | pods | host
    bridge: str = "kl0"
    netns_prefix: str = "kl-"
    cgroup_root: str = "kubelite"
    nft_table: str = "kubelite"
    service_cidr: str = "10.96.0.0/12"
    reserved: node_status.Reserved = node_status.Reserved()
    thresholds: node_status.Thresholds = node_status.Thresholds()
    max_pods: int = 110
    labels: dict[str, str] | None = None
    lease_interval: float = 10.0
    status_interval: float = 60.0
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    client_ca_file: str | None = None
    pod_cidr_timeout: float = 120.0


def default_node_ip() -> str:
    """The first IPv4 address of an interface that is up and not loopback."""
    stats = psutil.net_if_stats()
    for name, addresses in sorted(psutil.net_if_addrs().items()):
        if name == "lo" or not (stats.get(name) and stats[name].isup):
            continue
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return address.address
    return "127.0.0.1"


def choose_network_mode(requested: str) -> str:
    if requested != "auto":
        return requested
    return "pods" if os.geteuid() == 0 else "host"


class Agent:
    def __init__(self, api: ApiClient, options: AgentOptions) -> None:
        self.api = api
        self.options = options
        self.network_mode = choose_network_mode(options.network)
        data = options.data_dir
        data.mkdir(parents=True, exist_ok=True)
        self.runtime = ProcessRuntime(data / "runtime", cgroup_root=options.cgroup_root)
        self.network: Any = None
        self.proxy: Any = None
        self.proxy_mode = "none"
        self.events = EventRecorder(api, name="agent-events")
        self.heartbeat: NodeHeartbeat | None = None
        self.pods: PodManager | None = None
        self.services = Informer(api, "services")
        self.endpoints = Informer(api, "endpoints")
        self.nodes = Informer(api, "nodes")
        self._proxy_dirty = asyncio.Event()
        self._routes_dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._pod_sampler = measure.ProcessSampler()
        self._usage_sampler = measure.UsageSampler()

    # --- life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        options = self.options
        await self.events.start()
        await self._make_network()
        if self.network_mode == "pods":
            from agents import service_proxy

            self.proxy_mode = await asyncio.to_thread(service_proxy.detect_proxy_mode)
        self.heartbeat = NodeHeartbeat(
            self.api, options.node_name, build_status=self._status_builder(),
            labels=options.labels or {}, annotations=self._annotations(),
            lease_interval=options.lease_interval, status_interval=options.status_interval)
        await self.heartbeat.start()
        await self.heartbeat.wait_registered(None)
        if self.network_mode == "pods":
            cidr = await self.heartbeat.wait_pod_cidr(options.pod_cidr_timeout)
            if not cidr:
                raise RuntimeError(f"node {options.node_name} got no podCIDR within "
                                   f"{options.pod_cidr_timeout:.0f} s: is the "
                                   f"controller-manager running with a cluster CIDR?")
            await self.network.setup(cidr, options.node_ip)
            self.proxy = self._make_proxy(cidr)
        await asyncio.to_thread(self._usage_sampler.usage)  # rates need a previous reading
        await self._serve()
        for informer in (self.services, self.endpoints, self.nodes):
            informer.add_handlers(lambda *_a, informer=informer: self._dirty(informer),
                                  lambda *_a, informer=informer: self._dirty(informer),
                                  lambda *_a, informer=informer: self._dirty(informer))
            await informer.start()
        for informer in (self.services, self.endpoints, self.nodes):
            await informer.wait_synced(None)
        if self.network_mode == "pods":
            self._spawn(self._proxy_loop(), "agent-service-proxy")
            self._spawn(self._routes_loop(), "agent-routes")
        ctx = WorkerContext(
            api=self.api, runtime=self.runtime, network=self.network,
            node_name=options.node_name, host_ip=options.node_ip,
            log_root=options.data_dir / "logs", pods_root=options.data_dir / "pods",
            record_event=self._record_event, services=self.services.list)
        self.pods = PodManager(ctx, known_sandboxes=self.network.list_pods)
        await self.pods.start()
        self.heartbeat.poke()
        log.info("agent %s ready: network %s, proxy %s, limits %s", options.node_name,
                 self.network_mode, self.proxy_mode, self.runtime.limits)

    async def stop(self) -> None:
        """Stop serving and watching; containers keep running for the next agent."""
        if self.pods is not None:
            await self.pods.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for informer in (self.services, self.endpoints, self.nodes):
            await informer.stop()
        if self.heartbeat is not None:
            await self.heartbeat.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.events.stop()
        await self.runtime.close()

    # --- parts ----------------------------------------------------------------------

    async def _make_network(self) -> None:
        from agents import pod_network

        options = self.options
        if self.network_mode == "pods":
            self.network = pod_network.PodNetwork(
                bridge=options.bridge, netns_prefix=options.netns_prefix,
                data_dir=options.data_dir / "network", service_cidr=options.service_cidr)
        else:
            self.network = pod_network.HostNetwork(options.node_ip)

    def _make_proxy(self, pod_cidr: str) -> Any:
        from agents import service_proxy

        return service_proxy.ServiceProxy(self.proxy_mode, table=self.options.nft_table,
                                          pod_cidr=pod_cidr, node_ip=self.options.node_ip,
                                          bridge=self.options.bridge)

    def _annotations(self) -> dict[str, str]:
        return {ANNOTATION_NETWORK: "pod-netns" if self.network_mode == "pods"
                else "host (pods share the machine's network)",
                ANNOTATION_PROXY: self.proxy_mode if self.network_mode == "pods"
                else "none (pods share the machine's network)",
                ANNOTATION_LIMITS: self.runtime.limits}

    def _status_builder(self) -> Callable[[list[Obj] | None], Obj]:
        options = self.options
        addresses = node_status.node_addresses(options.node_ip, socket.gethostname())

        def extra() -> list[node_status.ConditionReport]:
            limits = self.runtime.limits
            supported = not limits.startswith("none")
            return [node_status.ConditionReport(
                "ResourceLimits", supported,
                "CgroupLimitsEnforced" if supported else "NoCgroupControllers",
                f"container cpu and memory limits: {limits}")]

        return measure.status_builder(
            options.data_dir, reserved=options.reserved, thresholds=options.thresholds,
            max_pods=options.max_pods, addresses=addresses, agent_version=GIT_VERSION,
            runtime_version=f"{self.runtime.name}://{self.runtime.version}",
            daemon_port=options.port, readiness=self._readiness, extra_conditions=extra)

    def _readiness(self) -> tuple[bool, str, str]:
        if self.pods is None:
            return False, "KubeletNotReady", "the agent is starting"
        return True, "KubeletReady", (f"kubelite agent is posting ready status "
                                      f"(network {self.network_mode}, "
                                      f"proxy {self.proxy_mode})")

    def _record_event(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        self.events.record(pod_event(pod, type_, reason, message,
                                     node=self.options.node_name, now=datetime.now(UTC)))

    def _dirty(self, informer: Informer) -> None:
        if informer is self.nodes:
            self._routes_dirty.set()
        else:
            self._proxy_dirty.set()

    async def _proxy_loop(self) -> None:
        while True:
            await self._proxy_dirty.wait()
            await asyncio.sleep(PROXY_DEBOUNCE)
            self._proxy_dirty.clear()
            try:
                await self.proxy.sync(self.services.list(), self.endpoints.list())
            except Exception:  # noqa: BLE001 (retried on the next change or in 5 s)
                log.exception("service rules could not be applied")
                await asyncio.sleep(5.0)
                self._proxy_dirty.set()

    async def _routes_loop(self) -> None:
        while True:
            await self._routes_dirty.wait()
            self._routes_dirty.clear()
            desired = routes.desired_routes(self.nodes.list(), self.options.node_name)
            try:
                await self.network.sync_routes(desired)
            except Exception:  # noqa: BLE001 (retried)
                log.exception("routes to other nodes could not be programmed")
                await asyncio.sleep(5.0)
                self._routes_dirty.set()

    # --- the HTTPS port -------------------------------------------------------------

    async def _serve(self) -> None:
        options = self.options
        context = server.ssl_context(
            cert_file=options.tls_cert_file, key_file=options.tls_key_file,
            client_ca=options.client_ca_file, node_name=options.node_name,
            addresses=[options.node_ip], directory=options.data_dir / "pki")
        api = server.AgentApi(find_pod=self._find_pod, pods=self._pods,
                              log_location=self._log_location,
                              container_running=self._container_running,
                              summary=self._summary)
        app = server.build_app(api)
        app.middlewares.append(server.client_cert_middleware(bool(options.client_ca_file)))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        host = "0.0.0.0" if options.node_ip != "127.0.0.1" else "127.0.0.1"
        site = web.TCPSite(self._runner, host, options.port, ssl_context=context,
                           reuse_address=True)
        await site.start()

    def _pods(self) -> list[Obj]:
        return self.pods.pods() if self.pods else []

    def _find_pod(self, namespace: str, name: str) -> Obj | None:
        return next((p for p in self._pods()
                     if (p.get("metadata") or {}).get("namespace") == namespace
                     and (p.get("metadata") or {}).get("name") == name), None)

    def _attempts(self, pod: Obj, container: str) -> list[Any]:
        uid = (pod.get("metadata") or {}).get("uid", "")
        return sorted((s for s in self.runtime.list(uid) if s.name == container),
                      key=lambda s: s.attempt)

    def _log_location(self, pod: Obj, container: str, previous: bool) -> tuple[Path, int] | None:
        attempts = self._attempts(pod, container)
        index = -2 if previous else -1
        if len(attempts) < (2 if previous else 1):
            return None
        meta = pod.get("metadata") or {}
        root = self.options.data_dir / "logs" / \
            f"{meta.get('namespace')}_{meta.get('name')}_{meta.get('uid')}"
        return root / container, attempts[index].attempt

    def _container_running(self, pod: Obj, container: str) -> bool:
        attempts = self._attempts(pod, container)
        return bool(attempts) and attempts[-1].state == "running"

    async def _summary(self) -> Obj:
        usage = await asyncio.to_thread(self._usage_sampler.usage)
        pods = []
        for pod in self._pods():
            meta = pod.get("metadata") or {}
            pids = [s.pid for s in self.runtime.list(meta.get("uid", ""))
                    if s.state == "running" and s.pid]
            sample = self._pod_sampler.sample(pids)
            pods.append(PodUsage(name=meta.get("name", ""),
                                 namespace=meta.get("namespace", ""),
                                 uid=meta.get("uid", ""), cpu_nanocores=sample.cpu_nanocores,
                                 memory_working_set_bytes=sample.rss_bytes))
        return stats_summary(self.options.node_name, usage, pods)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)

        def report(done: asyncio.Task[None]) -> None:
            if not done.cancelled() and done.exception() is not None:
                log.error("agent task %s crashed", name, exc_info=done.exception())

        task.add_done_callback(report)
        self._tasks.append(task)


async def run(api: ApiClient, options: AgentOptions, stop: asyncio.Event) -> None:
    agent = Agent(api, options)
    try:
        await agent.start()
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await agent.stop()
