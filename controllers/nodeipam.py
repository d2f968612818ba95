"""Node IPAM: a podCIDR for every node from the cluster CIDR, never two alike.

Kubernetes' range allocator (pkg/controller/nodeipam/ipam/range_allocator.go) keeps a
bitmap of used subnets in memory, seeded from the nodes at start-up. Here the bitmap is
rebuilt from the nodes on every call, which makes the allocator a pure function and
makes release free: a deleted node's subnet is simply no longer in use the next time.

- a node that already has a podCIDR keeps it (it is immutable once set); its subnet is
  marked used when it lies in the cluster CIDR with the configured mask;
- nodes without one, oldest first, get the lowest free subnet, written with an Update
  at the resourceVersion read: if another writer (or a stale cache) got there first
  the Update fails with a conflict and the runner retries from fresh state, so two
  nodes can never be handed the same subnet by this allocator;
- when the range is exhausted the node gets none and a Warning event says so
  (reason CIDRNotAvailable, Kubernetes' words; Kubernetes files it as Normal).
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from controllers import actions, meta

Obj = dict[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

COMPONENT = "cidrAllocator"


def allocate(nodes: Iterable[Obj], cluster_cidr: str, mask: int,
             now: datetime) -> list[actions.Action]:
    """Updates that give each node without a podCIDR a free subnet of size `/mask`."""
    network = ipaddress.ip_network(cluster_cidr, strict=False)
    if not network.prefixlen <= mask <= network.max_prefixlen:
        raise ValueError(f"mask /{mask} does not fit in {cluster_cidr}")
    nodes = list(nodes)
    used = {index for node in nodes for index in _indices(node, network, mask)}
    free = _free_indices(used, 2 ** (mask - network.prefixlen))
    out: list[actions.Action] = []
    waiting = [n for n in nodes if not pod_cidrs(n) and not meta.is_deleting(n)]
    for node in sorted(waiting, key=meta.oldest_first_key):
        index = next(free, None)
        if index is None:
            out.append(actions.event(
                {"kind": "Node", "apiVersion": "v1", "name": meta.name(node),
                 "uid": meta.name(node)},
                "CIDRNotAvailable", f"Node {meta.name(node)} status is now: CIDRNotAvailable",
                now=now, component=COMPONENT,
                type=actions.WARNING))
            continue
        cidr = str(subnet(network, mask, index))
        updated = copy.deepcopy(node)
        updated.setdefault("spec", {}).update({"podCIDR": cidr, "podCIDRs": [cidr]})
        out.append(actions.Update("nodes", "v1", None, updated))
    return out


def pod_cidrs(node: Mapping[str, Any]) -> list[str]:
    """spec.podCIDRs, or the older single spec.podCIDR."""
    spec = meta.spec(node)
    cidrs = [str(c) for c in spec.get("podCIDRs") or [] if c]
    if not cidrs and spec.get("podCIDR"):
        cidrs = [str(spec["podCIDR"])]
    return cidrs


def subnet(network: Network, mask: int, index: int) -> Network:
    """The `index`-th `/mask` subnet of `network`."""
    size = 2 ** (network.max_prefixlen - mask)
    address = ipaddress.ip_address(int(network.network_address) + index * size)
    return ipaddress.ip_network(f"{address}/{mask}")


def _indices(node: Mapping[str, Any], network: Network, mask: int) -> list[int]:
    out = []
    for text in pod_cidrs(node):
        try:
            cidr = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if cidr.version != network.version or cidr.prefixlen != mask \
                or not cidr.subnet_of(network):  # type: ignore[arg-type]
            continue
        size = 2 ** (network.max_prefixlen - mask)
        out.append((int(cidr.network_address) - int(network.network_address)) // size)
    return out


def _free_indices(used: set[int], total: int) -> Iterator[int]:
    return (i for i in range(total) if i not in used)
