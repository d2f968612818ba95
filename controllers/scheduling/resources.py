"""A pod's effective resource requests and host ports, as kube-scheduler counts them.

Units are integers throughout, so that fit checks are plain integer comparisons: cpu in
millicores (Quantity.MilliValue), everything else in base units rounded up (Value()).

The effective request (component-helpers' PodRequests) worked through once:

    containers   a: cpu 200m     b: cpu 300m          -> sum 500m
    init         i1: cpu 1 (runs alone, before them)  -> max(500m, 1) = 1
    sidecar      s: cpu 100m, restartPolicy Always    -> runs beside everything after it:
                 sum 500m + 100m = 600m; an init container after s needs its own + 100m
    overhead     cpu 50m                              -> added at the end

So `pod_requests` is max(sum of containers and sidecars, each init container plus the
sidecars started before it) + overhead, per resource. A container that requests nothing
counts 0 for fit; for scoring only, kube-scheduler counts a missing cpu request as 100m
and a missing memory request as 200Mi (`nonzero_requests`), so that many best-effort pods
do not pile onto one node.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from apiserver import quantities

CPU = "cpu"
MEMORY = "memory"
PODS = "pods"
EPHEMERAL_STORAGE = "ephemeral-storage"
DEFAULT_MILLI_CPU_REQUEST = 100  # schedutil.DefaultMilliCPURequest
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024  # schedutil.DefaultMemoryRequest
DEFAULT_HOST_IP = "0.0.0.0"  # DefaultBindAllHostIP: a host port on every address

Resources = dict[str, int]


class HostPort(NamedTuple):
    """One (hostIP, protocol, hostPort) a pod claims on its node, sanitized as Go does."""

    ip: str
    protocol: str
    port: int


@functools.lru_cache(maxsize=4096)
def _amount(name: str, raw: Any) -> int:
    """The integer a quantity counts as; memoized because pods repeat the same strings."""
    try:
        q = quantities.quantity_from_json(raw)
    except ValueError:
        return 0  # the apiserver validates quantities; a broken one must not stop the scheduler
    return quantities.cpu_millis(q) if name == CPU else quantities.bytes_value(q)


def resource_list(raw: Mapping[str, Any] | None) -> Resources:
    """A ResourceList (`{"cpu": "500m", ...}`) as integers in scheduling units."""
    if not raw:
        return {}
    try:
        return {str(name): _amount(str(name), value) for name, value in raw.items()}
    except TypeError:  # an unhashable value: not a quantity
        return {}


def is_scalar(name: str) -> bool:
    """schedutil.IsScalarResourceName: extended, hugepages and prefixed native resources."""
    return "/" in name or name.startswith(("hugepages-", "attachable-volumes-"))


def pod_requests(pod: Mapping[str, Any]) -> Resources:
    """Kubernetes' effective request of a pod: what NodeResourcesFit checks against a node."""
    return _effective(_spec(pod), default=None)


def nonzero_requests(pod: Mapping[str, Any]) -> tuple[int, int]:
    """(cpu millis, memory bytes) with the 100m / 200Mi defaults: what scoring counts."""
    requests = _effective(_spec(pod), default={CPU: DEFAULT_MILLI_CPU_REQUEST, MEMORY: DEFAULT_MEMORY_REQUEST})
    return requests.get(CPU, 0), requests.get(MEMORY, 0)


def host_ports(pod: Mapping[str, Any]) -> tuple[HostPort, ...]:
    """schedutil.GetHostPorts: the containers' ports with a hostPort, defaults filled in."""
    found: list[HostPort] = []
    for container in _dicts(_spec(pod).get("containers")):
        for port in _dicts(container.get("ports")):
            number = port.get("hostPort")
            if isinstance(number, int) and not isinstance(number, bool) and number > 0:
                found.append(HostPort(str(port.get("hostIP") or DEFAULT_HOST_IP), str(port.get("protocol") or "TCP"), number))
    return tuple(found)


def _effective(spec: Mapping[str, Any], default: Resources | None) -> Resources:
    total: Resources = {}
    for container in _dicts(spec.get("containers")):
        _add(total, _container_requests(container, default))
    init_max: Resources = {}
    sidecars: Resources = {}
    for container in _dicts(spec.get("initContainers")):
        own = _container_requests(container, default)
        if container.get("restartPolicy") == "Always":
            _add(total, own)  # a sidecar keeps running beside the regular containers
            _add(sidecars, own)
            own = dict(sidecars)
        else:
            own = dict(own)
            _add(own, sidecars)
        _max(init_max, own)
    _max(total, init_max)
    _add(total, resource_list(_mapping(spec.get("overhead"))))
    return total


def _container_requests(container: Mapping[str, Any], default: Resources | None) -> Resources:
    requests = resource_list(_mapping(_mapping(container.get("resources")).get("requests")))
    if default:
        for name, value in default.items():
            requests.setdefault(name, value)
    return requests


def _add(into: Resources, more: Mapping[str, int]) -> None:
    for name, value in more.items():
        into[name] = into.get(name, 0) + value


def _max(into: Resources, other: Mapping[str, int]) -> None:
    for name, value in other.items():
        if value > into.get(name, 0):
            into[name] = value


def _spec(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(pod.get("spec"))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _dicts(value: Any) -> Iterable[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []
