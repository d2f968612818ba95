"""A kubelite store cluster whose members live in their own network namespaces.

Loopback cannot be partitioned, so partition tests run each member in a namespace of
its own and cut real links. Each member has two interfaces, so that a partition can cut
Raft traffic while the test still talks to the member it cut off, as a client on the
same side of the break would:

    root netns:  <P>pb  bridge, no address ............ peer network   10.A.B.0/25
                 <P>cb  bridge, 10.A.B.129/25 ......... client network 10.A.B.128/25
                 unreachable 10.A.B.0/24 (guard route)
    <P>m<i>:     peer0   10.A.B.(11+i)/25   <- veth -> <P>p<i>, port of <P>pb
                 client0 10.A.B.(141+i)/25  <- veth -> <P>c<i>, port of <P>cb

`partition(i)` sets member i's port on the peer bridge down (packets to and from it
are silently dropped, as with a pulled cable); `heal(i)` sets it up again.

Staying on this machine: the member namespaces have only their two /25 routes and no
default route, so a packet for anything else fails with ENETUNREACH before it exists.
The root namespace gets an address only on the client network; the guard route makes
any other address of the /24 (and all of it once the bridge is gone) unreachable
instead of going out of the default route. The /24 is chosen per run from 10.213.0.0/16
among subnets that no route or address of the root namespace touches.

Names carry a per-run prefix <P> = klt<pid % 10000><letter>, and teardown removes
exactly what setup created, in reverse order, by name. Member processes are started by
`ip netns exec` (which execs, so the PID is the member's) and killed by PID before their
namespace is deleted. Needs root; without it, setup raises `NetnsUnavailable`.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import string
import subprocess
from pathlib import Path

from tests.kubelite_cluster import KubeliteCluster

IP_TIMEOUT = 10.0
CLIENT_PORT = 2379
PEER_PORT = 2380
SUBNET_POOL = ipaddress.ip_network("10.213.0.0/16")
SUBNET_TRIES = 64
MAX_MEMBERS = 100
_ROUTE_TYPES = {"unicast", "local", "broadcast", "multicast", "anycast", "unreachable",
                "blackhole", "prohibit", "throw", "nat"}
_cluster_count = 0


class NetnsUnavailable(RuntimeError):
    """The namespaces could not be set up (not root, no `ip`, a name taken, ...)."""


def _ip_binary() -> str:
    found = shutil.which("ip") or ("/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else None)
    if found is None:
        raise NetnsUnavailable("the `ip` command (iproute2) is missing")
    return found


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([_ip_binary(), *args], capture_output=True, text=True,
                          timeout=IP_TIMEOUT, check=False)
    if check and proc.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


def _root_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 destination and address the root namespace knows, except default."""
    found = []
    routes = ip("-o", "-4", "route", "show", "table", "all").stdout.splitlines()
    for line in routes:
        words = line.split()
        if not words:
            continue
        dst = words[1] if words[0] in _ROUTE_TYPES and len(words) > 1 else words[0]
        if dst != "default":
            found.append(ipaddress.ip_network(dst, strict=False))
    for line in ip("-o", "-4", "addr", "show").stdout.splitlines():
        words = line.split()
        if "inet" in words:
            found.append(ipaddress.ip_network(words[words.index("inet") + 1], strict=False))
    return found


def _pick_subnet() -> ipaddress.IPv4Network:
    taken = _root_networks()
    candidates = list(SUBNET_POOL.subnets(new_prefix=24))
    start = (os.getpid() * 7 + _cluster_count * 13) % len(candidates)
    for k in range(SUBNET_TRIES):
        net = candidates[(start + k) % len(candidates)]
        if not any(net.overlaps(other) for other in taken):
            return net
    raise NetnsUnavailable(f"no free /24 in {SUBNET_POOL} after {SUBNET_TRIES} tries")


def _name_taken(name: str) -> bool:
    if os.path.exists(f"/run/netns/{name}"):
        return True
    return ip("link", "show", "dev", name, check=False).returncode == 0


class NetnsNetwork:
    """The namespaces, links and routes of one cluster; `down()` undoes exactly them."""

    def __init__(self) -> None:
        global _cluster_count
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root (this test runs as root "
                                   "on the dev machine and in CI)")
        _cluster_count += 1
        self.prefix = self._pick_prefix()
        self.subnet = _pick_subnet()
        self._undo: list[list[str]] = []  # `ip` argv lists, run in reverse by down()
        self.members = 0
        hosts = list(self.subnet.hosts())
        self._peer_base = hosts[10]        # .11 is member 0's peer address
        self._client_base = hosts[140]     # .141 is member 0's client address
        self.gateway = str(hosts[128])     # .129, the root namespace on the client network
        try:
            self._bridges()
        except BaseException:
            self.down()
            raise

    def _pick_prefix(self) -> str:
        for letter in string.ascii_lowercase:
            prefix = f"klt{os.getpid() % 10000}{letter}"
            if not any(_name_taken(f"{prefix}{s}") for s in ("pb", "cb", "m0", "p0", "c0")):
                return prefix
        raise NetnsUnavailable(f"every klt{os.getpid() % 10000}[a-z] prefix is taken")

    def _do(self, args: list[str], undo: list[str] | None) -> None:
        ip(*args)
        if undo is not None:
            self._undo.append(undo)

    def _bridges(self) -> None:
        p, net = self.prefix, self.subnet
        # The guard first: from here on no address of the /24 can leave the machine.
        self._do(["route", "add", "unreachable", str(net)],
                 ["route", "del", "unreachable", str(net)])
        for bridge in (f"{p}pb", f"{p}cb"):
            self._do(["link", "add", bridge, "type", "bridge"], ["link", "del", bridge])
        self._do(["addr", "add", f"{self.gateway}/25", "dev", f"{p}cb"], None)
        for bridge in (f"{p}pb", f"{p}cb"):
            self._do(["link", "set", bridge, "up"], None)

    def namespace(self, i: int) -> str:
        return f"{self.prefix}m{i}"

    def peer_ip(self, i: int) -> str:
        return str(self._peer_base + i)

    def client_ip(self, i: int) -> str:
        return str(self._client_base + i)

    def add_member(self) -> int:
        """A namespace for the next member, wired to both bridges; its index."""
        i = self.members
        if i >= MAX_MEMBERS:
            raise NetnsUnavailable(f"at most {MAX_MEMBERS} members")
        p, ns = self.prefix, self.namespace(i)
        self._do(["netns", "add", ns], ["netns", "del", ns])
        self.members += 1
        for kind, inner, address, bridge in (
                ("p", "peer0", self.peer_ip(i), f"{p}pb"),
                ("c", "client0", self.client_ip(i), f"{p}cb")):
            outer = f"{p}{kind}{i}"
            # Deleting the namespace deletes the pair; the explicit undo is for a
            # namespace that could not be deleted.
            self._do(["link", "add", outer, "type", "veth", "peer", "name", inner,
                      "netns", ns], ["link", "del", outer])
            self._do(["link", "set", outer, "master", bridge, "up"], None)
            self._do(["-n", ns, "addr", "add", f"{address}/25", "dev", inner], None)
            self._do(["-n", ns, "link", "set", inner, "up"], None)
        self._do(["-n", ns, "link", "set", "lo", "up"], None)
        self._check_no_way_out(ns)
        return i

    def _check_no_way_out(self, ns: str) -> None:
        routes = ip("-n", ns, "-4", "route", "show").stdout
        if "default" in routes:
            raise NetnsUnavailable(f"{ns} has a default route: {routes!r}")
        probe = ip("-n", ns, "route", "get", "192.0.2.1", check=False)
        if probe.returncode == 0:
            raise NetnsUnavailable(f"{ns} can route off the machine: {probe.stdout!r}")

    def exec_argv(self, i: int, argv: list[str]) -> list[str]:
        return [_ip_binary(), "netns", "exec", self.namespace(i), *argv]

    def partition(self, i: int) -> None:
        """Cut member i off the peer network (it still reaches and serves clients)."""
        ip("link", "set", f"{self.prefix}p{i}", "down")

    def heal(self, i: int) -> None:
        ip("link", "set", f"{self.prefix}p{i}", "up")

    def down(self) -> None:
        """Undo everything, newest first; a step that fails does not stop the others."""
        problems = []
        while self._undo:
            args = self._undo.pop()
            if args[0] == "link" and args[1] == "del" and not _name_taken(args[2]):
                continue  # went away with its namespace
            proc = ip(*args, check=False)
            if proc.returncode != 0:
                problems.append(f"ip {' '.join(args)}: {proc.stderr.strip()}")
        if problems:
            raise RuntimeError("network teardown incomplete: " + "; ".join(problems))


class NetnsKubeliteCluster(KubeliteCluster):
    """`KubeliteCluster` with member i in namespace <P>m<i>; see the module docstring."""

    kind = "kubelite-netns"

    def __init__(self, size: int = 3, tmp_dir: Path | str | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.net: NetnsNetwork | None = None
        super().__init__(size=size, tmp_dir=tmp_dir, extra_args=extra_args)

    def _allocate(self, first: int, count: int) -> list[tuple[str, str]]:
        if self.net is None:
            self.net = NetnsNetwork()
        addresses = []
        for _ in range(count):
            i = self.net.add_member()
            addresses.append((f"http://{self.net.client_ip(i)}:{CLIENT_PORT}",
                              f"{self.net.peer_ip(i)}:{PEER_PORT}"))
        return addresses

    def _command(self, i: int, argv: list[str]) -> list[str]:
        assert self.net is not None
        return self.net.exec_argv(i, argv)

    def partition(self, i: int) -> None:
        assert self.net is not None
        self.net.partition(i)

    def heal(self, i: int) -> None:
        assert self.net is not None
        self.net.heal(i)

    def close(self) -> None:
        try:
            super().close()  # members are killed (by PID) before their namespaces go
        finally:
            if self.net is not None:
                self.net.down()
