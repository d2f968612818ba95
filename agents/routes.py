"""Routes between nodes' pod networks: which podCIDR goes via which node.

Flannel's host-gw backend and kube-router's route sync in two pure functions: every
other node's podCIDR is reached through that node's InternalIP (the machines share a
layer-2 network), so the desired routing table follows from the Node objects alone.
`diff_routes` compares it with the routes the agent finds on the machine (only those it
owns, recognised by their route protocol number) and says what to add, delete and
replace (same destination, other gateway: a node that came back with a new address).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

Obj = Mapping[str, Any]


def internal_ip(node: Obj) -> str | None:
    """The node's first IPv4 InternalIP, as the kubelet reports it in status.addresses."""
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") != "InternalIP":
            continue
        try:
            return str(ipaddress.IPv4Address(address.get("address") or ""))
        except ValueError:
            continue
    return None


def pod_cidr(node: Obj) -> str | None:
    """The node's IPv4 podCIDR (spec.podCIDR, else the first IPv4 of spec.podCIDRs)."""
    spec = node.get("spec") or {}
    candidates = [spec.get("podCIDR"), *(spec.get("podCIDRs") or [])]
    for text in candidates:
        if not text:
            continue
        try:
            return str(ipaddress.IPv4Network(text, strict=False))
        except ValueError:
            continue
    return None


def desired_routes(nodes: Iterable[Obj], my_node: str) -> dict[str, str]:
    """podCIDR -> gateway node InternalIP, for every other node that has both.

    Nodes being deleted still get a route: their pods may still be answering, and the
    route goes once the Node object is gone. When two nodes claim the same podCIDR
    (should not happen: node IPAM hands each its own), the one whose name sorts first
    wins, so every agent decides the same way.
    """
    routes: dict[str, str] = {}
    for node in sorted(nodes, key=lambda n: str((n.get("metadata") or {}).get("name") or "")):
        name = (node.get("metadata") or {}).get("name")
        if name == my_node:
            continue
        cidr, gateway = pod_cidr(node), internal_ip(node)
        if cidr is None or gateway is None or cidr in routes:
            continue
        routes[cidr] = gateway
    return routes


def diff_routes(desired: Mapping[str, str], actual: Mapping[str, str]
                ) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """(to_add, to_delete, to_replace): the changes that turn `actual` into `desired`.

    Both map a destination CIDR to a gateway. Keys are normalised (10.1.2.3/24 is
    10.1.2.0/24), so a differently spelt but equal destination is not churned.
    """
    want = {_cidr(k): v for k, v in desired.items()}
    have = {_cidr(k): v for k, v in actual.items()}
    to_add = {k: v for k, v in sorted(want.items()) if k not in have}
    to_delete = sorted(k for k in have if k not in want)
    to_replace = {k: v for k, v in sorted(want.items()) if k in have and have[k] != v}
    return to_add, to_delete, to_replace


def _cidr(text: str) -> str:
    return str(ipaddress.ip_network(text, strict=False))
