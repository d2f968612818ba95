"""Endpoints reconcile: for a Service with a selector, its pods' addresses and ports.

Kubernetes' endpoints controller (pkg/controller/endpoint) as a function of the Service,
the pods of its namespace and the Endpoints object it finds:

- a Service without a selector is left alone: its Endpoints belong to whoever wrote
  them; a Service that is gone (`service=None`) has its Endpoints deleted;
- every selected pod with an IP becomes an address: `ip`, `nodeName`, `targetRef`
  (and `hostname` when the pod's subdomain is the Service's name). Ready pods (or all,
  with publishNotReadyAddresses) go in `addresses`; pods not ready but not finished go
  in `notReadyAddresses`; terminating pods are left out;
- ports come from each Service port's targetPort: a number is used as is, a name is
  looked up among the pod's container ports with the same protocol (a pod without it
  simply lacks that port, as FindPort does);
- addresses that share the same set of ports are packed into one subset
  (RepackSubsets); addresses are sorted by IP then uid, ports by name, port and protocol,
  subsets by their ports, so the same pods always produce the same object;
- the object is created when missing and updated (PUT at the resourceVersion read)
  only when subsets or labels differ.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from apiserver import selectors
from controllers import actions, meta, podutil

Obj = dict[str, Any]

RESOURCE = "endpoints"
API_VERSION = "v1"
HEADLESS_LABEL = "service.kubernetes.io/headless"


def reconcile(service: Obj | None, pods: Iterable[Obj],
              existing_endpoints: Obj | None) -> list[actions.Action]:
    """The write (if any) that makes the Service's Endpoints match its pods."""
    if service is None:
        if existing_endpoints is None:
            return []
        return [actions.Delete(RESOURCE, API_VERSION, meta.namespace(existing_endpoints),
                               meta.name(existing_endpoints),
                               uid_precondition=meta.uid(existing_endpoints) or None)]
    raw_selector = meta.spec(service).get("selector")
    if not raw_selector:
        return []
    selector = selectors.selector_from_set(raw_selector)
    ns = meta.namespace(service)
    selected = [p for p in meta.same_namespace(pods, ns) if selector.matches(meta.labels(p))]
    subsets = build_subsets(service, selected)
    labels = desired_labels(service)
    if existing_endpoints is None:
        obj = {"apiVersion": "v1", "kind": "Endpoints",
               "metadata": {"name": meta.name(service), "namespace": ns},
               "subsets": subsets}
        if labels:
            obj["metadata"]["labels"] = labels
        return [actions.Create(RESOURCE, API_VERSION, ns, obj)]
    if (existing_endpoints.get("subsets") or []) == subsets \
            and meta.labels(existing_endpoints) == labels:
        return []
    updated = copy.deepcopy(existing_endpoints)
    updated["subsets"] = subsets
    if labels:
        updated["metadata"]["labels"] = labels
    else:
        updated["metadata"].pop("labels", None)
    return [actions.Update(RESOURCE, API_VERSION, ns, updated)]


def desired_labels(service: Mapping[str, Any]) -> dict[str, str]:
    """The Service's labels, plus the headless marker for clusterIP: None."""
    labels = meta.labels(service)
    labels.pop(HEADLESS_LABEL, None)
    if meta.spec(service).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    return labels


def build_subsets(service: Mapping[str, Any], pods: Iterable[Obj]) -> list[Obj]:
    """Subsets for `pods` (already selected), packed and sorted."""
    spec = meta.spec(service)
    publish_unready = bool(spec.get("publishNotReadyAddresses"))
    service_ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    headless = spec.get("clusterIP") == "None"
    # (ready?, address key) -> address, and its set of ports
    entries: dict[tuple[bool, str, str], tuple[Obj, set[tuple[str, int, str]]]] = {}
    for pod in pods:
        address_ip = podutil.ip(pod)
        if not address_ip or (meta.is_deleting(pod) and not publish_unready):
            continue
        ready = publish_unready or podutil.is_ready(pod)
        if not ready and podutil.is_terminal(pod):
            continue
        ports = set()
        for service_port in service_ports:
            port = find_port(pod, service_port)
            if port is not None:
                ports.add((str(service_port.get("name") or ""), port,
                           str(service_port.get("protocol") or "TCP")))
        if (service_ports and not ports) or (not service_ports and not headless):
            continue
        address = _address(service, pod, address_ip)
        entries[(ready, address_ip, meta.uid(pod))] = (address, ports)
    return _repack(entries, service_ports)


def find_port(pod: Mapping[str, Any], service_port: Mapping[str, Any]) -> int | None:
    """FindPort: the container port a Service port's targetPort means for this pod."""
    target = service_port.get("targetPort")
    if target is None or target == "" or target == 0:
        target = service_port.get("port")
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    protocol = service_port.get("protocol") or "TCP"
    for container in meta.spec(pod).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return meta.as_int(port.get("containerPort"))
    return None


def _address(service: Mapping[str, Any], pod: Obj, address_ip: str) -> Obj:
    address: Obj = {"ip": address_ip}
    pod_spec = meta.spec(pod)
    if pod_spec.get("hostname") and pod_spec.get("subdomain") == meta.name(service):
        address["hostname"] = pod_spec["hostname"]
    if podutil.node_name(pod):
        address["nodeName"] = podutil.node_name(pod)
    address["targetRef"] = {"kind": "Pod", "namespace": meta.namespace(pod),
                            "name": meta.name(pod), "uid": meta.uid(pod)}
    return address


def _repack(entries: Mapping[tuple[bool, str, str], tuple[Obj, set[tuple[str, int, str]]]],
            service_ports: list[Obj]) -> list[Obj]:
    """RepackSubsets: one subset per distinct port set; sorted for a stable result."""
    app_protocols = {str(p.get("name") or ""): p.get("appProtocol") for p in service_ports}
    groups: dict[tuple[tuple[str, int, str], ...], dict[str, list[tuple[str, str, Obj]]]] = {}
    for (ready, address_ip, uid), (address, ports) in entries.items():
        key = tuple(sorted(ports))
        bucket = groups.setdefault(key, {"addresses": [], "notReadyAddresses": []})
        bucket["addresses" if ready else "notReadyAddresses"].append((address_ip, uid, address))
    subsets = []
    for ports_key in sorted(groups):
        subset: Obj = {}
        for field in ("addresses", "notReadyAddresses"):
            if groups[ports_key][field]:
                subset[field] = [a for _, _, a in sorted(groups[ports_key][field],
                                                         key=lambda e: (e[0], e[1]))]
        if ports_key:
            subset["ports"] = [_port(name, number, protocol, app_protocols.get(name))
                               for name, number, protocol in ports_key]
        subsets.append(subset)
    return subsets


def _port(name: str, number: int, protocol: str, app_protocol: object) -> Obj:
    port: Obj = {"port": number, "protocol": protocol}
    if name:
        port = {"name": name, **port}
    if app_protocol:
        port["appProtocol"] = app_protocol
    return port
