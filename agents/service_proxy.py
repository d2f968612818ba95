"""The service proxy: applies Services and Endpoints to the kernel, in one of three modes.

- `nftables` (the normal case): `service_rules.render` makes the whole table's text and
  `nft -f -` swaps it in as one transaction. The last text applied is kept, so a sync
  that would change nothing runs no process at all; the first sync after a restart
  always applies, which replaces whatever an earlier run left.
- `ipvs`: chosen by `detect_proxy_mode` when the kernel has IP Virtual Server. Minimal:
  a round-robin virtual server per ClusterIP port with masquerading real servers,
  through pyroute2's AsyncIPVS, with the ClusterIPs bound to a dummy link as kube-proxy's
  kube-ipvs0. No NodePorts, no hairpin masquerade. NOT TESTED: the development and CI
  kernels have no IPVS (and no dummy links).
- `userspace` (last resort, no `nft`): an asyncio TCP relay on the node's address at each
  NodePort, round-robin over the ready endpoints. ClusterIPs cannot be intercepted this
  way and UDP is not relayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import socket
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from agents import service_rules
from agents.service_rules import ServicePort

log = logging.getLogger(__name__)

MODES = ("ipvs", "nftables", "userspace")
NFT_TIMEOUT = 30.0
IPVS_PROC = "/proc/net/ip_vs"
IPVS_LINK = "kl-ipvs0"
RELAY_CHUNK = 64 * 1024
CONNECT_TIMEOUT = 5.0

Obj = Mapping[str, Any]


class ProxyError(RuntimeError):
    """The rules could not be applied."""


def detect_proxy_mode(nft: str = "nft") -> str:
    """"ipvs" if this kernel has IPVS, else "nftables" if `nft` works here, else "userspace".

    Blocking (it may run `nft` once): call it at start-up, before the event loop, or
    through asyncio.to_thread.
    """
    if os.path.exists(IPVS_PROC):
        return "ipvs"
    binary = shutil.which(nft)
    if binary is not None:
        try:
            done = subprocess.run([binary, "list", "tables"], capture_output=True,
                                  timeout=NFT_TIMEOUT, check=False)
            if done.returncode == 0:
                return "nftables"
        except (OSError, subprocess.TimeoutExpired):
            pass
    return "userspace"


class _Backend(Protocol):
    async def sync(self, ports: list[ServicePort], text: str) -> None: ...
    async def teardown(self) -> None: ...


class ServiceProxy:
    """Keeps the kernel's service load balancing equal to the Services and Endpoints."""

    def __init__(self, mode: str = "nftables", table: str = service_rules.DEFAULT_TABLE,
                 pod_cidr: str | None = None, *, node_ip: str | None = None,
                 bridge: str | None = None, nft: str = "nft") -> None:
        if mode not in MODES:
            raise ValueError(f"proxy mode {mode!r} is not one of {MODES}")
        self.mode = mode
        self.table = table
        self.pod_cidr = pod_cidr or None
        self.bridge = bridge
        self._applied: str | None = None
        self._backend: _Backend
        if mode == "nftables":
            self._backend = NftBackend(table, nft)
        elif mode == "ipvs":
            self._backend = IpvsBackend()
        else:
            self._backend = UserspaceBackend(node_ip or "0.0.0.0")

    async def sync(self, services: Iterable[Obj], endpoints: Iterable[Obj]) -> bool:
        """Apply the objects if the result differs from the last applied; True if it did."""
        services, endpoints = list(services), list(endpoints)
        text = service_rules.render(services, endpoints, table=self.table,
                                    pod_cidr=self.pod_cidr, bridge=self.bridge)
        if text == self._applied:
            return False
        await self._backend.sync(service_rules.service_ports(services, endpoints), text)
        self._applied = text
        return True

    async def teardown(self) -> None:
        """Remove everything the proxy made (the nft table, IPVS services, listeners)."""
        await self._backend.teardown()
        self._applied = None


# -- nftables ---------------------------------------------------------------------------


class NftBackend:
    def __init__(self, table: str, nft: str = "nft") -> None:
        self.table = table
        self.nft = nft

    async def sync(self, ports: list[ServicePort], text: str) -> None:
        await run_nft(text, self.nft)

    async def teardown(self) -> None:
        await run_nft(f"add table ip {self.table}\ndelete table ip {self.table}\n", self.nft)


async def run_nft(text: str, nft: str = "nft", *, check_only: bool = False) -> None:
    """Feed `text` to `nft -f -` (with -c: only check it); ProxyError with nft's message."""
    args = ["-c", "-f", "-"] if check_only else ["-f", "-"]
    try:
        proc = await asyncio.create_subprocess_exec(
            nft, *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
    except OSError as exc:
        raise ProxyError(f"cannot run {nft}: {exc}") from None
    try:
        _, err = await asyncio.wait_for(proc.communicate(text.encode()), NFT_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ProxyError(f"{nft} did not finish within {NFT_TIMEOUT} s") from None
    if proc.returncode != 0:
        raise ProxyError(f"{nft} -f failed ({proc.returncode}): {err.decode().strip()}")


# -- IPVS (not tested here: no IPVS in the development and CI kernels) -------------------


class IpvsBackend:
    """Round-robin virtual servers per ClusterIP port; VIPs on a dummy link. UNTESTED."""

    def __init__(self) -> None:
        self._services: set[tuple[str, int, int]] = set()

    async def sync(self, ports: list[ServicePort], text: str) -> None:
        from pyroute2 import AsyncIPRoute, AsyncIPVS, IPVSDest, IPVSService

        protos = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP,
                  "sctp": socket.IPPROTO_SCTP}
        wanted = {(ip, p.port, protos[p.protocol]): p for p in ports if p.backends
                  for ip in p.cluster_ips}
        async with AsyncIPRoute() as ipr:
            if not await ipr.link_lookup(ifname=IPVS_LINK):
                await ipr.link("add", ifname=IPVS_LINK, kind="dummy")
            link = (await ipr.link_lookup(ifname=IPVS_LINK))[0]
            for ip in sorted({k[0] for k in wanted}):
                with contextlib.suppress(Exception):
                    await ipr.addr("add", index=link, address=ip, prefixlen=32)
        ipvs = AsyncIPVS()
        try:
            # Rebuild every service this proxy made: simple, and IPVS keeps the
            # connections it already balanced while a service is re-created.
            for addr, port, proto in sorted(self._services):
                with contextlib.suppress(Exception):
                    await ipvs.service("del", service=IPVSService(
                        addr=addr, port=port, protocol=proto))
            self._services.clear()
            for (addr, port, proto), p in sorted(wanted.items()):
                service = IPVSService(addr=addr, port=port, protocol=proto, sched_name="rr")
                await ipvs.service("add", service=service)
                self._services.add((addr, port, proto))
                for b in p.backends:
                    await ipvs.dest("add", service=service,
                                    dest=IPVSDest(addr=b.ip, port=b.port, fwd_method=0))
        finally:
            ipvs.close()

    async def teardown(self) -> None:
        from pyroute2 import AsyncIPRoute

        await self.sync([], "")
        async with AsyncIPRoute() as ipr:
            found = await ipr.link_lookup(ifname=IPVS_LINK)
            if found:
                await ipr.link("del", index=found[0])


# -- userspace ----------------------------------------------------------------------------


class UserspaceBackend:
    """A TCP relay per NodePort on the node's address, round-robin over endpoints."""

    def __init__(self, listen_host: str) -> None:
        self.listen_host = listen_host
        self._servers: dict[int, asyncio.base_events.Server] = {}
        self._backends: dict[int, itertools.cycle[tuple[str, int]]] = {}
        self._relays: set[asyncio.Task[None]] = set()

    async def sync(self, ports: list[ServicePort], text: str) -> None:
        wanted = {p.node_port: p for p in ports
                  if p.node_port and p.protocol == "tcp" and p.backends}
        for node_port in sorted(set(self._servers) - set(wanted)):
            server = self._servers.pop(node_port)
            server.close()
            await server.wait_closed()
            self._backends.pop(node_port, None)
        for node_port, p in sorted(wanted.items()):
            self._backends[node_port] = itertools.cycle([(b.ip, b.port) for b in p.backends])
            if node_port not in self._servers:
                self._servers[node_port] = await asyncio.start_server(
                    lambda r, w, np=node_port: self._accept(np, r, w),
                    self.listen_host, node_port, reuse_address=True)

    @property
    def ports(self) -> list[int]:
        return sorted(self._servers)

    async def teardown(self) -> None:
        await self.sync([], "")
        for task in list(self._relays):
            task.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)

    async def _accept(self, node_port: int, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._relays.add(task)
        try:
            backends = self._backends.get(node_port)
            if backends is None:
                return
            host, port = next(backends)
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), CONNECT_TIMEOUT)
            except (TimeoutError, OSError) as exc:
                log.info("nodePort %d: backend %s:%d unreachable: %s", node_port, host, port, exc)
                return
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        finally:
            writer.close()
            if task is not None:
                self._relays.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close, so request/response protocols finish cleanly."""
    try:
        while data := await reader.read(RELAY_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()
