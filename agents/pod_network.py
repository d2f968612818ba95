"""Pod networking on one machine: a bridge, a veth per pod, routes to the other nodes.

The layout is the CNI `bridge` + `host-local` plugins with flannel's host-gw routes,
programmed with pyroute2 from the agent's own network namespace:

    agent netns:  kl0 bridge, <gateway>/<podCIDR len>   (first address of the podCIDR)
                  klv<id> ── veth ──┐                   (one per pod, port of kl0)
                  <other podCIDR> via <other node's InternalIP> proto 0x4b
    pod netns <prefix><id> (/run/netns):   lo up, eth0 <pod ip>/<len>, default via gateway

`<id>` is 12 hex digits of the pod uid's SHA-256: short enough for a 15-character link
name, the same on every call, so a restarted agent finds what it made before. Every step
of `add_pod` checks what exists first and only makes what is missing, so calling it again
(after a crash half way, or on restart) converges instead of duplicating; `remove_pod`
undoes each step and tolerates any of them being gone already.

What is where:
- pod addresses come from `ipam.Ipam` (persisted in the data dir); which uid owns which
  namespace and link is kept in `pods.json` next to it, written before anything is made
  and dropped after everything is gone, so no namespace is left that nothing knows of;
- routes the agent owns carry route protocol 0x4b: `sync_routes` reads, changes and
  deletes only those, never a route someone else made;
- pod namespaces are made by `ip netns add` and removed by `pyroute2.netns.remove`
  (unmount and unlink); the agent must run in the machine's root mount namespace, as
  `/run/netns` bind mounts made anywhere else are invisible to everyone else;
- netlink from the event loop uses `AsyncIPRoute` only; for a pod namespace, its socket
  is made by a short-lived thread that enters the namespace with setns(2). Nothing here
  forks the agent: pyroute2's netns helpers fork the (threaded) process and run Python in
  the child, with a two-second deadline that a loaded machine misses.

Sysctls set by `setup`: `net.ipv4.ip_forward=1` (pods reach other nodes through this
one), and `net.bridge.bridge-nf-call-iptables` to a chosen value, 0 by default: with 1
(the kernel's default in every new namespace) bridged pod traffic passes the nat hooks
twice, which sends every new connection to the same backend of a Service and delays
hairpin traffic by a SYN retry; with 0 the Service rules masquerade hairpin traffic
instead (see service_rules).

`HostNetwork` has the same methods for machines where pods share the node's network
(loopback mode, no root): every pod gets the node's address and nothing is programmed.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import functools
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import socket
import threading
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyroute2 import AsyncIPRoute, netns
from pyroute2.netlink import NETLINK_ROUTE
from pyroute2.netlink.exceptions import NetlinkError

from agents import ipam, routes

log = logging.getLogger(__name__)

ROUTE_PROTO = 0x4B  # marks the routes this agent owns ("K")
NETNS_DIR = "/run/netns"
POD_IFNAME = "eth0"
SHORT_ID_LEN = 12
IFNAME_MAX = 15
RECORDS_FILE = "pods.json"
SYSCTL_DIR = "/proc/sys"
CLONE_NEWNET = 0x40000000
IP_BINARY = shutil.which("ip") or "/usr/sbin/ip"
IP_TIMEOUT = 30.0


class PodNetworkError(RuntimeError):
    """The pod network could not be set up as asked."""


@dataclass(frozen=True)
class PodAddress:
    """Where a pod is on the network; netns_path is None when it uses the node's."""

    ip: str
    gateway: str | None
    netns_name: str | None
    netns_path: str | None
    host_veth: str | None


def short_id(pod_uid: str) -> str:
    """12 hex digits derived from the uid, the same on every call and every machine."""
    return hashlib.sha256(pod_uid.encode()).hexdigest()[:SHORT_ID_LEN]


def bridge_mac(gateway: str) -> str:
    """A fixed, locally administered MAC for the bridge: 0a:4b and the gateway address."""
    return ":".join(f"{b:02x}" for b in (0x0A, 0x4B, *ipaddress.IPv4Address(gateway).packed))


class PodNetwork:
    """Bridge, pod namespaces and node routes of this machine (needs CAP_NET_ADMIN)."""

    def __init__(self, *, data_dir: Path, bridge: str = "kl0", netns_prefix: str = "kl-",
                 veth_prefix: str = "klv", service_cidr: str | None = None,
                 bridge_nf_call_iptables: int = 0, mtu: int | None = None) -> None:
        if not 0 < len(bridge) <= IFNAME_MAX:
            raise ValueError(f"bridge name {bridge!r} must be 1..{IFNAME_MAX} characters")
        if len(veth_prefix) + SHORT_ID_LEN > IFNAME_MAX:
            raise ValueError(f"veth prefix {veth_prefix!r} leaves no room for the pod id")
        if not netns_prefix or "/" in netns_prefix:
            raise ValueError(f"bad netns prefix {netns_prefix!r}")
        self.data_dir = Path(data_dir)
        self.bridge = bridge
        self.netns_prefix = netns_prefix
        self.veth_prefix = veth_prefix
        self.service_cidr = str(ipaddress.IPv4Network(service_cidr)) if service_cidr else None
        self.bridge_nf_call_iptables = bridge_nf_call_iptables
        self.mtu = mtu
        self.node_ip: str | None = None
        self._ipam: ipam.Ipam | None = None
        self._records_path = self.data_dir / RECORDS_FILE
        self._records: dict[str, dict[str, str]] = self._load_records()
        # One lock per pod uid while anyone uses it (pod workers may overlap on restart).
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = \
            weakref.WeakValueDictionary()

    # -- names ---------------------------------------------------------------------

    def netns_name(self, pod_uid: str) -> str:
        return f"{self.netns_prefix}{short_id(pod_uid)}"

    def host_veth(self, pod_uid: str) -> str:
        return f"{self.veth_prefix}{short_id(pod_uid)}"

    # -- node ----------------------------------------------------------------------

    async def setup(self, pod_cidr: str, node_ip: str) -> None:
        """Bridge up with the gateway address, sysctls set; safe to repeat."""
        self._ipam = ipam.Ipam(pod_cidr, self.data_dir)
        self.node_ip = node_ip
        net = ipaddress.IPv4Network(self._ipam.pod_cidr)
        gateway = str(ipam.gateway(pod_cidr))
        await asyncio.to_thread(self._write_sysctls)
        async with AsyncIPRoute() as ipr:
            index = await _lookup(ipr, self.bridge)
            if index is None:
                await ipr.link("add", ifname=self.bridge, kind="bridge")
                index = await _require(ipr, self.bridge)
            await _ensure_only_address(ipr, index, gateway, net.prefixlen)
            # A bridge without an address of its own set takes the lowest MAC of its
            # ports, so pods joining would change the gateway's MAC under the others.
            settings: dict[str, Any] = {"address": bridge_mac(gateway), "state": "up"}
            if self.mtu:
                settings["mtu"] = self.mtu
            await ipr.link("set", index=index, **settings)
            if self.service_cidr:
                # Lets the node itself reach ClusterIPs when it has no default route;
                # the nat output hook rewrites the destination before the packet leaves.
                await ipr.route("replace", dst=self.service_cidr, oif=index,
                                proto=ROUTE_PROTO)

    def _write_sysctls(self) -> None:
        _write_sysctl("net/ipv4/ip_forward", "1", required=True)
        _write_sysctl("net/bridge/bridge-nf-call-iptables", str(self.bridge_nf_call_iptables),
                      required=False)

    # -- pods ----------------------------------------------------------------------

    async def add_pod(self, pod_uid: str, namespace: str, name: str) -> PodAddress:
        """The pod's namespace, veth, address and default route; idempotent."""
        allocator = self._require_setup()
        async with self._lock(pod_uid):
            ns_name, veth = self.netns_name(pod_uid), self.host_veth(pod_uid)
            self._remember(pod_uid, namespace, name, ns_name, veth)
            ip = str(allocator.allocate(pod_uid))
            gateway = str(ipam.gateway(allocator.pod_cidr))
            prefixlen = ipaddress.IPv4Network(allocator.pod_cidr).prefixlen
            ns_path = os.path.join(NETNS_DIR, ns_name)
            if not os.path.exists(ns_path):
                await _create_netns(ns_name)
            async with AsyncIPRoute() as ipr:
                bridge = await _require(ipr, self.bridge)
                index = await _lookup(ipr, veth)
                if index is None:
                    await ipr.link("add", ifname=veth, kind="veth",
                                   peer={"ifname": POD_IFNAME, "net_ns_fd": ns_path})
                    index = await _require(ipr, veth)
                settings: dict[str, Any] = {"master": bridge, "state": "up"}
                if self.mtu:
                    settings["mtu"] = self.mtu
                await ipr.link("set", index=index, **settings)
            async with _netns_ipr(ns_path) as pod:
                lo = await _require(pod, "lo")
                await pod.link("set", index=lo, state="up")
                eth = await _require(pod, POD_IFNAME)
                await _ensure_only_address(pod, eth, ip, prefixlen)
                await pod.link("set", index=eth, state="up")
                await pod.route("replace", dst="0.0.0.0/0", gateway=gateway)
            return PodAddress(ip=ip, gateway=gateway, netns_name=ns_name, netns_path=ns_path,
                              host_veth=veth)

    async def remove_pod(self, pod_uid: str) -> None:
        """Delete the pod's veth and namespace and free its address; idempotent."""
        async with self._lock(pod_uid):
            record = self._records.get(pod_uid, {})
            ns_name = record.get("netns", self.netns_name(pod_uid))
            veth = record.get("veth", self.host_veth(pod_uid))
            async with AsyncIPRoute() as ipr:
                await _delete_link(ipr, veth)
            await asyncio.to_thread(_remove_netns, ns_name)
            if self._ipam is not None:
                self._ipam.release(pod_uid)
            elif (self.data_dir / ipam.FILE_NAME).exists():
                _release_offline(self.data_dir, pod_uid)
            self._forget(pod_uid)

    async def list_pods(self) -> list[str]:
        """Uids of every pod with something here (namespace, record or address)."""
        uids = set(self._records)
        if self._ipam is not None:
            uids.update(self._ipam.allocations())
        return sorted(uids)

    # -- routes --------------------------------------------------------------------

    async def sync_routes(self, desired: dict[str, str]) -> None:
        """Make this agent's routes to other podCIDRs exactly `desired` (cidr -> node IP)."""
        async with AsyncIPRoute() as ipr:
            actual = await _owned_gateway_routes(ipr)
            to_add, to_delete, to_replace = routes.diff_routes(desired, actual)
            for dst in to_delete:
                await _delete_route(ipr, dst)
            for dst, gateway in {**to_add, **to_replace}.items():
                await ipr.route("replace", dst=dst, gateway=gateway, proto=ROUTE_PROTO)

    async def owned_routes(self) -> dict[str, str]:
        """The routes this agent owns: destination -> gateway ("" for device routes)."""
        async with AsyncIPRoute() as ipr:
            return {dst: gw for dst, gw in await _owned_routes(ipr)}

    # -- teardown ------------------------------------------------------------------

    async def teardown(self) -> None:
        """Remove every pod namespace with our prefix, our routes, the bridge, our files."""
        for uid in list(self._records):
            await self.remove_pod(uid)
        async with AsyncIPRoute() as ipr:
            for name in sorted(os.listdir(NETNS_DIR)) if os.path.isdir(NETNS_DIR) else []:
                if name.startswith(self.netns_prefix):
                    await asyncio.to_thread(_remove_netns, name)
            for dst, _ in await _owned_routes(ipr):
                await _delete_route(ipr, dst)
            await _delete_link(ipr, self.bridge)
            async for link in await ipr.link("dump"):
                ifname = link.get("ifname") or ""
                if self._is_pod_veth(ifname):
                    await _delete_link(ipr, ifname)
        for path in (self._records_path, self.data_dir / ipam.FILE_NAME):
            path.unlink(missing_ok=True)
        self._records.clear()
        self._ipam = None

    # -- internals -----------------------------------------------------------------

    def _is_pod_veth(self, ifname: str) -> bool:
        suffix = ifname[len(self.veth_prefix):]
        return (ifname.startswith(self.veth_prefix) and len(suffix) == SHORT_ID_LEN
                and all(c in "0123456789abcdef" for c in suffix))

    def _require_setup(self) -> ipam.Ipam:
        if self._ipam is None:
            raise PodNetworkError("setup(pod_cidr, node_ip) must run before pods are added")
        return self._ipam

    def _lock(self, pod_uid: str) -> asyncio.Lock:
        lock = self._locks.get(pod_uid)
        if lock is None:
            lock = self._locks[pod_uid] = asyncio.Lock()
        return lock

    def _remember(self, uid: str, namespace: str, name: str, ns_name: str, veth: str) -> None:
        for other, record in self._records.items():
            if other != uid and record.get("netns") == ns_name:
                raise PodNetworkError(f"pods {other} and {uid} hash to the same id {ns_name}")
        record = {"namespace": namespace, "name": name, "netns": ns_name, "veth": veth}
        if self._records.get(uid) != record:
            self._records[uid] = record
            ipam.write_json_atomic(self._records_path, self._records)

    def _forget(self, uid: str) -> None:
        if self._records.pop(uid, None) is not None:
            ipam.write_json_atomic(self._records_path, self._records)

    def _load_records(self) -> dict[str, dict[str, str]]:
        try:
            return dict(json.loads(self._records_path.read_text()))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise PodNetworkError(f"cannot read {self._records_path}: {exc}") from None


class HostNetwork:
    """Pods on the node's own network: the same interface as PodNetwork, no kernel work."""

    def __init__(self, node_ip: str | None = None) -> None:
        self.node_ip = node_ip
        self._pods: set[str] = set()

    async def setup(self, pod_cidr: str, node_ip: str) -> None:
        self.node_ip = node_ip

    async def add_pod(self, pod_uid: str, namespace: str, name: str) -> PodAddress:
        if self.node_ip is None:
            raise PodNetworkError("setup(pod_cidr, node_ip) must run before pods are added")
        self._pods.add(pod_uid)
        return PodAddress(ip=self.node_ip, gateway=None, netns_name=None, netns_path=None,
                          host_veth=None)

    async def remove_pod(self, pod_uid: str) -> None:
        self._pods.discard(pod_uid)

    async def sync_routes(self, desired: dict[str, str]) -> None:
        return None

    async def list_pods(self) -> list[str]:
        return sorted(self._pods)

    async def teardown(self) -> None:
        self._pods.clear()


# -- netlink steps, each tolerant of finding its work already done ----------------------


@asynccontextmanager
async def _netns_ipr(ns_path: str) -> AsyncIterator[AsyncIPRoute]:
    """An AsyncIPRoute whose socket lives in the namespace at ns_path (never creates it)."""
    sock = await asyncio.to_thread(_socket_in_netns, ns_path)
    ipr = AsyncIPRoute(use_socket=sock)
    try:
        yield ipr
    finally:
        ipr.close()
        sock.close()


def _socket_in_netns(ns_path: str) -> socket.socket:
    """A netlink socket made inside another network namespace, without forking.

    A socket keeps the namespace it was created in. A thread of its own enters the
    namespace (setns only moves the calling thread), makes the socket and ends, so no
    thread that runs anything else is ever left in the pod's namespace. pyroute2's own
    way forks a child instead, which in a process with many threads can stall, and
    gives up after a fixed two seconds on a loaded machine.
    """
    result: dict[str, Any] = {}

    def enter_and_open() -> None:
        try:
            fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc().setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({ns_path}): {os.strerror(err)}")
            finally:
                os.close(fd)
            result["socket"] = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM,
                                             NETLINK_ROUTE)
        except BaseException as exc:  # handed to the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=enter_and_open, name="netns-socket", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["socket"]


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


async def _create_netns(name: str) -> None:
    """`ip netns add`: a namespace bind-mounted at /run/netns/<name>, as iproute2 makes it.

    A child process that execs at once, unlike pyroute2.netns.create, which forks this
    (threaded) process and runs Python in the child.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            IP_BINARY, "netns", "add", name, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise PodNetworkError(f"cannot run {IP_BINARY}: {exc}") from None
    try:
        _, err = await asyncio.wait_for(proc.communicate(), IP_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise PodNetworkError(f"ip netns add {name} did not finish in {IP_TIMEOUT} s") from None
    if proc.returncode != 0:
        raise PodNetworkError(f"ip netns add {name} failed: {err.decode().strip()}")


async def _lookup(ipr: AsyncIPRoute, ifname: str) -> int | None:
    found = await ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


async def _require(ipr: AsyncIPRoute, ifname: str) -> int:
    index = await _lookup(ipr, ifname)
    if index is None:
        raise PodNetworkError(f"link {ifname} is missing")
    return index


async def _ensure_only_address(ipr: AsyncIPRoute, index: int, address: str,
                               prefixlen: int) -> None:
    """`address/prefixlen` on the link, and no other IPv4 address (a changed podCIDR)."""
    present = False
    stale = []
    async for msg in await ipr.addr("dump", family=socket.AF_INET):
        if msg.get("index") != index:
            continue
        if msg.get("address") == address and msg.get("prefixlen") == prefixlen:
            present = True
        else:
            stale.append((msg.get("address"), msg.get("prefixlen")))
    for old, length in stale:
        await ipr.addr("del", index=index, address=old, prefixlen=length)
    if not present:
        await ipr.addr("add", index=index, address=address, prefixlen=prefixlen)


async def _delete_link(ipr: AsyncIPRoute, ifname: str) -> None:
    index = await _lookup(ipr, ifname)
    if index is None:
        return
    try:
        await ipr.link("del", index=index)
    except NetlinkError as exc:
        if exc.code != errno.ENODEV:
            raise


async def _owned_routes(ipr: AsyncIPRoute) -> list[tuple[str, str]]:
    """(destination, gateway or "") of every IPv4 main-table route with our protocol."""
    found = []
    async for msg in await ipr.route("dump", family=socket.AF_INET):
        if msg.get("proto") != ROUTE_PROTO or msg.get("table") != 254:
            continue
        found.append((f"{msg.get('dst') or '0.0.0.0'}/{msg.get('dst_len')}",
                      msg.get("gateway") or ""))
    return found


async def _owned_gateway_routes(ipr: AsyncIPRoute) -> dict[str, str]:
    return {dst: gw for dst, gw in await _owned_routes(ipr) if gw}


async def _delete_route(ipr: AsyncIPRoute, dst: str) -> None:
    try:
        await ipr.route("del", dst=dst, proto=ROUTE_PROTO)
    except NetlinkError as exc:
        if exc.code != errno.ESRCH:
            raise


def _remove_netns(name: str) -> None:
    path = os.path.join(NETNS_DIR, name)
    if os.path.lexists(path):
        netns.remove(name)


def _release_offline(data_dir: Path, pod_uid: str) -> None:
    """Free an address recorded by an earlier run when setup has not run yet."""
    path = data_dir / ipam.FILE_NAME
    raw = json.loads(path.read_text())
    allocations = dict(raw.get("allocations") or {})
    if allocations.pop(pod_uid, None) is not None:
        raw["allocations"] = allocations
        ipam.write_json_atomic(path, raw)


def _write_sysctl(name: str, value: str, *, required: bool) -> None:
    path = Path(SYSCTL_DIR) / name
    try:
        if path.read_text().strip() != value:
            path.write_text(value + "\n")
    except FileNotFoundError:
        if required:
            raise PodNetworkError(f"sysctl {name} is missing") from None
        log.info("sysctl %s is missing; leaving it", name)
