"""Pod IPAM: one address per pod from the node's podCIDR, remembered across restarts.

As the CNI host-local plugin does for the kubelet: the node's podCIDR (from its Node
object) is split into

    network address | gateway (first host: the bridge) | pod addresses ... | broadcast

and each pod, by uid, gets one pod address. Allocation is idempotent (the same uid gets
the same address again, which is what makes a restarted agent's `add_pod` a no-op) and
round-robin: the search starts after the last address handed out, so an address that was
just released is the last to be reused, and a new pod does not inherit connections the
kernel still tracks for the old one.

The decision (`next_free`) is a pure function; `Ipam` keeps the table in memory and
writes it as JSON to the agent's data dir on every change (temp file + rename,
so a crash leaves the old table or the new one, never half of one). Allocations that
lie outside the current podCIDR (the node was given another range) are dropped at load:
those addresses can no longer be routed to this node.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from pathlib import Path

from agents import state_files

FILE_NAME = "ipam.json"
MIN_PREFIX_ROOM = 2  # a /30 is the smallest range with a gateway and one pod address


class IpamError(RuntimeError):
    """The podCIDR is unusable, or it has no free address left."""


class RangeFull(IpamError):
    """Every pod address of the podCIDR is taken."""


def gateway(pod_cidr: str) -> ipaddress.IPv4Address:
    """The bridge's address: the first host address of the podCIDR."""
    return _network(pod_cidr).network_address + 1


def pod_range(pod_cidr: str) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    """First and last address a pod may get (after the gateway, before broadcast)."""
    net = _network(pod_cidr)
    return net.network_address + 2, net.broadcast_address - 1


def next_free(pod_cidr: str, used: Iterable[ipaddress.IPv4Address],
              last: ipaddress.IPv4Address | None = None) -> ipaddress.IPv4Address:
    """The first pod address not in `used`, searching round-robin after `last`."""
    first, final = pod_range(pod_cidr)
    taken = {int(a) for a in used}
    size = int(final) - int(first) + 1
    start = 0
    if last is not None and int(first) <= int(last) <= int(final):
        start = (int(last) - int(first) + 1) % size
    for step in range(size):
        candidate = int(first) + (start + step) % size
        if candidate not in taken:
            return ipaddress.IPv4Address(candidate)
    raise RangeFull(f"podCIDR {pod_cidr} is full: all {size} pod addresses are in use")


def _network(pod_cidr: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(pod_cidr, strict=False)
    except ValueError as exc:
        raise IpamError(f"invalid IPv4 podCIDR {pod_cidr!r}: {exc}") from None
    if net.max_prefixlen - net.prefixlen < MIN_PREFIX_ROOM:
        raise IpamError(f"podCIDR {pod_cidr} is too small (need at least a /30)")
    return net


class Ipam:
    """The pod address table of one node, persisted in `data_dir/ipam.json`."""

    def __init__(self, pod_cidr: str, data_dir: Path) -> None:
        self.pod_cidr = str(_network(pod_cidr))
        self.path = Path(data_dir) / FILE_NAME
        self._by_uid: dict[str, ipaddress.IPv4Address] = {}
        self._last: ipaddress.IPv4Address | None = None
        self._load()

    def allocate(self, pod_uid: str) -> ipaddress.IPv4Address:
        """The pod's address: the one it already has, or a new one (persisted first)."""
        if not pod_uid:
            raise IpamError("a pod uid is required")
        found = self._by_uid.get(pod_uid)
        if found is not None:
            return found
        address = next_free(self.pod_cidr, self._by_uid.values(), self._last)
        self._by_uid[pod_uid] = address
        self._last = address
        self._save()
        return address

    def release(self, pod_uid: str) -> ipaddress.IPv4Address | None:
        """Free the pod's address (None when it had none: release is idempotent)."""
        address = self._by_uid.pop(pod_uid, None)
        if address is not None:
            self._save()
        return address

    def lookup(self, pod_uid: str) -> ipaddress.IPv4Address | None:
        return self._by_uid.get(pod_uid)

    def allocations(self) -> dict[str, ipaddress.IPv4Address]:
        """A copy of the table: pod uid -> address."""
        return dict(self._by_uid)

    def _load(self) -> None:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise IpamError(f"cannot read {self.path}: {exc}") from None
        net = ipaddress.IPv4Network(self.pod_cidr)
        first, final = pod_range(self.pod_cidr)
        for uid, text in dict(raw.get("allocations") or {}).items():
            address = ipaddress.IPv4Address(text)
            if address in net and first <= address <= final:
                self._by_uid[str(uid)] = address
        last = raw.get("last")
        if last and ipaddress.IPv4Address(last) in net:
            self._last = ipaddress.IPv4Address(last)

    def _save(self) -> None:
        body = {
            "podCIDR": self.pod_cidr,
            "last": str(self._last) if self._last is not None else None,
            "allocations": {uid: str(a) for uid, a in sorted(self._by_uid.items())},
        }
        write_json_atomic(self.path, body)


def write_json_atomic(path: Path, body: object) -> None:
    """Replace the file atomically (see agents/state_files.py for why without fsync)."""
    state_files.write_json(path, body)
