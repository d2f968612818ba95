"""Member identity: names, peer addresses and the 64-bit IDs etcd clients expect.

A member's ID is derived from its peer address alone, so every member (and an operator
adding one through cluster/member/add) computes the same ID without asking anyone.
The cluster ID is derived from the initial members, so every member of one cluster
reports the same `cluster_id` in its headers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class InitialMember:
    name: str
    peer_addr: str  # "host:port", as pysyncobj names nodes


def peer_addr(url: str) -> str:
    """'http://10.0.0.1:2380' or '10.0.0.1:2380' -> '10.0.0.1:2380'."""
    text = url.strip()
    if "://" in text:
        parts = urlsplit(text)
        if not parts.hostname or not parts.port:
            raise ValueError(f"peer URL {url!r} needs a host and a port")
        host = parts.hostname
        return f"[{host}]:{parts.port}" if ":" in host else f"{host}:{parts.port}"
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"peer address {url!r} is not HOST:PORT")
    return text


def peer_url(addr: str) -> str:
    """The URL form of a peer address, as member/list reports it."""
    return addr if "://" in addr else f"http://{addr}"


def parse_initial_cluster(text: str) -> list[InitialMember]:
    """Parse etcd's `--initial-cluster` syntax: 'n1=IP:PORT,n2=http://IP:PORT'."""
    members: list[InitialMember] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise ValueError(f"--initial-cluster entry {item!r} is not NAME=HOST:PORT")
        members.append(InitialMember(name, peer_addr(url)))
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise ValueError("--initial-cluster names a member twice")
    addrs = [m.peer_addr for m in members]
    if len(set(addrs)) != len(addrs):
        raise ValueError("--initial-cluster lists a peer address twice")
    return members


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def member_id(addr: str) -> int:
    """The member's uint64 ID, derived from its peer address (never 0)."""
    return _hash64("member:" + peer_addr(addr)) or 1


def cluster_id(members: list[InitialMember], token: str = "") -> int:
    """The cluster's uint64 ID, the same on every member started with the same flags."""
    ids = sorted(member_id(m.peer_addr) for m in members)
    return _hash64("cluster:" + token + ":" + ",".join(map(str, ids))) or 1
