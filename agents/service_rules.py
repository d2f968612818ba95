"""Service load balancing as one nftables table, rendered from Services and Endpoints.

The nftables mode of kube-proxy (pkg/proxy/nftables), cut down to what kubelite needs,
as a pure function from core/v1 objects to the text that `nft -f -` loads:

    add table ip kubelite            # the whole table is replaced in one transaction:
    delete table ip kubelite         # add (so delete cannot fail), delete, define anew
    table ip kubelite {
        chain nat-prerouting  { nat hook prerouting: traffic from pods and other nodes
                                jump services }
        chain nat-output      { nat hook output: traffic from this node; jump services }
        chain nat-postrouting { nat hook postrouting: masquerade marked packets and
                                hairpin traffic }
        chain services        { ip daddr . l4proto . dport vmap { clusterIP . tcp . 80 :
                                jump svc-<ns>/<name>/<proto>/<port>, ... }
                                fib daddr type local (not 127/8) -> jump nodeports }
        chain nodeports       { l4proto . dport vmap { tcp . 30080 : jump ext-... } }
        chain ext-...         { set the masquerade mark; jump svc-... }
        chain svc-...         { numgen random mod N vmap { 0 : jump ep-..., ... } }
        chain ep-...          { dnat to <endpoint ip>:<port> }
        chain filter-input/forward/output { ct state new: jump no-endpoints }
        chain no-endpoints    { reject what points at a service with no ready endpoint }
    }

Why each part:
- Random choice per new connection (`numgen random`), as kube-proxy: each connection is
  one conntrack entry, DNAT'ed once; replies are un-NATed by conntrack.
- Hairpin: a pod reaching a service whose backend is on this node has its reply
  bridged straight back inside the pod network, bypassing the un-DNAT on the node, unless
  the request was also source-NATed to the bridge's address. The agent turns
  `bridge-nf-call-iptables` off (with it on, bridged traffic runs the nat chains twice and
  breaks the random balancing), so the rule `ct status dnat ip saddr <podCIDR> ip daddr
  <podCIDR> masquerade` does that job.
- NodePort traffic from other machines is masqueraded (a mark set in `ext-...`), so the
  backend, possibly on a third node, replies through the node that did the DNAT.
- A service port without ready endpoints is rejected (TCP reset, ICMP port unreachable
  otherwise) instead of timing out, as kube-proxy does; headless services and
  ExternalName services get no rules at all.

Only IPv4 (table family `ip`). Output is sorted and stable, so an unchanged cluster
renders byte-identical text and the caller can skip the reload by comparing strings.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Obj = Mapping[str, Any]

DEFAULT_TABLE = "kubelite"
MASQUERADE_MARK = 0x4000
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
NODEPORT_TYPES = ("NodePort", "LoadBalancer")
FILTER_PRIORITY = -10  # before the default filter chains, after nat prerouting (dstnat)


@dataclass(frozen=True, order=True)
class Backend:
    ip: str
    port: int


@dataclass(frozen=True, order=True)
class ServicePort:
    """One (Service, port) with what is needed to program it."""

    namespace: str
    name: str
    protocol: str  # nft spelling: tcp, udp, sctp
    port: int
    cluster_ips: tuple[str, ...]
    node_port: int | None
    backends: tuple[Backend, ...]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}/{self.protocol}/{self.port}"


def service_ports(services: Iterable[Obj], endpoints: Iterable[Obj]) -> list[ServicePort]:
    """Every programmable Service port, with its ready IPv4 backends, sorted."""
    by_key = {(_meta(e, "namespace"), _meta(e, "name")): e for e in endpoints}
    out: list[ServicePort] = []
    for service in services:
        spec = service.get("spec") or {}
        if spec.get("type") == "ExternalName":
            continue
        cluster_ips = _cluster_ips(spec)
        if not cluster_ips:
            continue  # headless ("None") or not yet allocated
        ns, name = _meta(service, "namespace"), _meta(service, "name")
        eps = by_key.get((ns, name))
        for port in spec.get("ports") or []:
            protocol = PROTOCOLS.get(str(port.get("protocol") or "TCP"))
            number = _int(port.get("port"))
            if protocol is None or number is None:
                continue
            node_port = _int(port.get("nodePort")) if spec.get("type") in NODEPORT_TYPES else None
            out.append(ServicePort(
                namespace=ns, name=name, protocol=protocol, port=number,
                cluster_ips=cluster_ips, node_port=node_port,
                backends=_backends(eps, str(port.get("name") or ""), protocol),
            ))
    unique = {p.key: p for p in sorted(out, reverse=True)}  # a repeated port: first wins
    return sorted(unique.values())


def render(services: Iterable[Obj], endpoints: Iterable[Obj], *, table: str = DEFAULT_TABLE,
           pod_cidr: str | None = None, bridge: str | None = None,
           mark: int = MASQUERADE_MARK) -> str:
    """The complete `nft -f` text that replaces `table` with rules for these objects.

    `pod_cidr` (this node's) turns on the hairpin masquerade; `bridge`, when given, limits
    it to packets leaving through the pod bridge, the only way back into the pod network.
    """
    ports = service_ports(services, endpoints)
    live = [p for p in ports if p.backends]
    dead = [p for p in ports if not p.backends]
    lines = [f"add table ip {table}", f"delete table ip {table}", f"table ip {table} {{"]
    lines += _chain("nat-prerouting", "type nat hook prerouting priority dstnat; policy accept;",
                    ["jump services"])
    lines += _chain("nat-output", "type nat hook output priority -100; policy accept;",
                    ["jump services"])
    post = [f"meta mark & {mark:#x} == {mark:#x} masquerade"]
    if pod_cidr:
        cidr = ipaddress.IPv4Network(pod_cidr, strict=False)
        oif = f'oifname "{bridge}" ' if bridge else ""
        post.append(f"{oif}ct status dnat ip saddr {cidr} ip daddr {cidr} masquerade")
    lines += _chain("nat-postrouting", "type nat hook postrouting priority srcnat; policy accept;",
                    post)
    lines += _chain("services", None, _services_rules(live))
    lines += _chain("nodeports", None, _vmap("meta l4proto . th dport", sorted(
        (f"{p.protocol} . {p.node_port}", f"jump {_ext(p)}") for p in live if p.node_port)))
    for hook in ("input", "forward", "output"):
        lines += _chain(f"filter-{hook}",
                        f"type filter hook {hook} priority {FILTER_PRIORITY}; policy accept;",
                        ["ct state new jump no-endpoints"])
    lines += _chain("no-endpoints", None, _reject_rules(dead))
    for p in live:
        if p.node_port:
            lines += _chain(_ext(p), None, [f"meta mark set meta mark | {mark:#x}",
                                             f"jump {_svc(p)}"])
        lines += _chain(_svc(p), None, [_balance(p)])
        for b in p.backends:
            lines += _chain(_ep(p, b), None, [f"meta l4proto {p.protocol} dnat to {b.ip}:{b.port}"])
    lines.append("}")
    return "\n".join(lines) + "\n"


def _services_rules(live: list[ServicePort]) -> list[str]:
    entries = sorted((f"{ip} . {p.protocol} . {p.port}", f"jump {_svc(p)}")
                     for p in live for ip in p.cluster_ips)
    rules = _vmap("ip daddr . meta l4proto . th dport", entries)
    # Last, so a ClusterIP that happens to be local is still handled as a ClusterIP.
    rules.append("fib daddr type local ip daddr != 127.0.0.0/8 jump nodeports")
    return rules


def _reject_rules(dead: list[ServicePort]) -> list[str]:
    rules = []
    for p in dead:
        verdict = "reject with tcp reset" if p.protocol == "tcp" else "reject"
        for ip in p.cluster_ips:
            rules.append(f"ip daddr {ip} {p.protocol} dport {p.port} {verdict}")
        if p.node_port:
            rules.append(f"fib daddr type local ip daddr != 127.0.0.0/8 "
                         f"{p.protocol} dport {p.node_port} {verdict}")
    return rules


def _balance(p: ServicePort) -> str:
    if len(p.backends) == 1:
        return f"jump {_ep(p, p.backends[0])}"
    targets = ", ".join(f"{i} : jump {_ep(p, b)}" for i, b in enumerate(p.backends))
    return f"numgen random mod {len(p.backends)} vmap {{ {targets} }}"


def _vmap(selector: str, entries: list[tuple[str, str]]) -> list[str]:
    unique: dict[str, str] = {}
    for key, verdict in entries:
        unique.setdefault(key, verdict)  # a clash (two services, one address) is an error in nft
    if not unique:
        return []  # nft rejects an empty anonymous map
    body = ", ".join(f"{k} : {v}" for k, v in unique.items())
    return [f"{selector} vmap {{ {body} }}"]


def _chain(name: str, base: str | None, rules: list[str]) -> list[str]:
    out = [f"\tchain {name} {{"]
    if base:
        out.append(f"\t\t{base}")
    out += [f"\t\t{r}" for r in rules]
    out.append("\t}")
    return out


def _svc(p: ServicePort) -> str:
    return f"svc-{p.key}"


def _ext(p: ServicePort) -> str:
    return f"ext-{p.key}"


def _ep(p: ServicePort, b: Backend) -> str:
    return f"ep-{p.key}__{b.ip}/{b.port}"


def _backends(endpoints: Obj | None, port_name: str, protocol: str) -> tuple[Backend, ...]:
    """Ready IPv4 addresses of the Endpoints, with the port named like the Service port."""
    found: set[Backend] = set()
    for subset in (endpoints or {}).get("subsets") or []:
        number = None
        for port in subset.get("ports") or []:
            same_proto = PROTOCOLS.get(str(port.get("protocol") or "TCP")) == protocol
            if same_proto and str(port.get("name") or "") == port_name:
                number = _int(port.get("port"))
        if number is None:
            continue
        for address in subset.get("addresses") or []:
            ip = _ipv4(address.get("ip"))
            if ip is not None:
                found.add(Backend(ip, number))
    return tuple(sorted(found, key=lambda b: (ipaddress.IPv4Address(b.ip), b.port)))


def _cluster_ips(spec: Obj) -> tuple[str, ...]:
    candidates = [spec.get("clusterIP"), *(spec.get("clusterIPs") or [])]
    ips = {ip for ip in (_ipv4(c) for c in candidates) if ip is not None}
    return tuple(sorted(ips, key=ipaddress.IPv4Address))


def _ipv4(text: object) -> str | None:
    if not isinstance(text, str) or not text or text == "None":
        return None
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        return None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 < value < 65536:
        return value
    if isinstance(value, str) and value.isdigit() and 0 < int(value) < 65536:
        return int(value)
    return None


def _meta(obj: Obj, field: str) -> str:
    value = (obj.get("metadata") or {}).get(field)
    return str(value) if value else ("default" if field == "namespace" else "")
