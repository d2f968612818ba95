"""What a container of a pod asks the runtime for: its argv, environment and limits (pure).

The kubelet builds a container's environment in a fixed order: service links first
(`<SVC>_SERVICE_HOST` and Docker-link variables for every Service of the pod's
namespace, when `enableServiceLinks` is not false, plus the `kubernetes` Service of
`default`), then the container's `env` in order, where `$(VAR)` refers to variables
defined before it and `$$` escapes a dollar. The command and args are expanded the same
way against the final environment.

The process runtime has no images: it runs the container's `command` (plus `args`)
on the machine. A container without a command relies on an image entrypoint that this
runtime cannot know; that is a configuration error the pod shows as
CreateContainerConfigError, as the kubelet does for references it cannot resolve.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from apiserver import quantities

Obj = dict[str, Any]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_GRACE_SECONDS = 30
_VAR = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


class ConfigError(ValueError):
    """The container cannot be started as specified (CreateContainerConfigError)."""


@dataclass(frozen=True)
class ContainerPlan:
    argv: list[str]
    env: dict[str, str]
    working_dir: str | None
    cpu_limit_millicores: int | None
    memory_limit_bytes: int | None


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: unknown references stay as written, $$ is $."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _VAR.sub(one, text)


def service_env(services: Iterable[Mapping[str, Any]], namespace: str,
                enable_links: bool) -> dict[str, str]:
    """The variables the kubelet derives from Services (ClusterIP ones only)."""
    env: dict[str, str] = {}
    for svc in sorted(services, key=lambda s: (s.get("metadata") or {}).get("name", "")):
        meta = svc.get("metadata") or {}
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            continue
        own = meta.get("namespace") == namespace
        is_kubernetes = meta.get("namespace") == "default" and meta.get("name") == "kubernetes"
        if not ((own and enable_links) or is_kubernetes):
            continue
        ports = spec.get("ports") or []
        if not ports:
            continue
        prefix = meta.get("name", "").upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = \
                    str(port.get("port"))
        proto = (ports[0].get("protocol") or "TCP").lower()
        env[f"{prefix}_PORT"] = f"{proto}://{ip}:{ports[0].get('port')}"
        for port in ports:
            p_proto = (port.get("protocol") or "TCP")
            base = f"{prefix}_PORT_{port.get('port')}_{p_proto}"
            env[base] = f"{p_proto.lower()}://{ip}:{port.get('port')}"
            env[f"{base}_PROTO"] = p_proto.lower()
            env[f"{base}_PORT"] = str(port.get("port"))
            env[f"{base}_ADDR"] = ip
    return env


def field_ref(pod: Mapping[str, Any], path: str, pod_ip: str, host_ip: str) -> str:
    """The downward API's fieldRef values the kubelet resolves itself."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return str(simple[path])
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ConfigError(f"unsupported fieldRef fieldPath {path!r}")


def resource_ref(container: Mapping[str, Any], ref: Mapping[str, Any]) -> str:
    resources = container.get("resources") or {}
    resource = ref.get("resource", "")
    kind, _, name = resource.partition(".")
    value = (resources.get(kind) or {}).get(name)
    if value is None:
        raise ConfigError(f"resourceFieldRef {resource!r} is not set on the container")
    divisor = quantities.parse_quantity(str(ref.get("divisor") or "1"))
    quantity = quantities.parse_quantity(str(value))
    if name == "cpu":
        millis = quantities.cpu_millis(quantity)
        per = max(quantities.cpu_millis(divisor), 1)
        return str(-(-millis // per))
    per = max(quantities.bytes_value(divisor), 1)
    return str(-(-quantities.bytes_value(quantity) // per))


def container_env(pod: Mapping[str, Any], container: Mapping[str, Any], *,
                  services: Iterable[Mapping[str, Any]], pod_ip: str,
                  host_ip: str) -> dict[str, str]:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    env: dict[str, str] = {"PATH": DEFAULT_PATH, "HOSTNAME": meta.get("name", "")}
    env.update(service_env(services, meta.get("namespace", ""),
                           spec.get("enableServiceLinks", True) is not False))
    if container.get("envFrom"):
        raise ConfigError("envFrom (ConfigMaps and Secrets) is not supported by the "
                          "process runtime")
    for item in container.get("env") or []:
        name = item.get("name", "")
        if "value" in item or "valueFrom" not in item:
            env[name] = expand(str(item.get("value") or ""), env)
            continue
        source = item.get("valueFrom") or {}
        if "fieldRef" in source:
            env[name] = field_ref(pod, source["fieldRef"].get("fieldPath", ""), pod_ip,
                                  host_ip)
        elif "resourceFieldRef" in source:
            env[name] = resource_ref(container, source["resourceFieldRef"])
        else:
            kind = next(iter(source), "valueFrom")
            raise ConfigError(f"env {name}: {kind} is not supported by the process "
                              f"runtime")
    return env


def container_argv(container: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    command = [str(c) for c in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    if not command:
        if not args:
            raise ConfigError(
                f"container {container.get('name')!r} has no command: the process runtime "
                f"runs a container's command on the machine and cannot use the "
                f"entrypoint of image {container.get('image')!r}")
        command, args = args, []
    return [expand(part, env) for part in command + args]


def limits(container: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(cpu millicores, memory bytes) from resources.limits; None when unlimited."""
    lim = (container.get("resources") or {}).get("limits") or {}
    cpu = quantities.cpu_millis(str(lim["cpu"])) if "cpu" in lim else None
    memory = quantities.bytes_value(str(lim["memory"])) if "memory" in lim else None
    return cpu, memory


def plan_container(pod: Mapping[str, Any], container: Mapping[str, Any], *,
                   services: Iterable[Mapping[str, Any]], pod_ip: str,
                   host_ip: str) -> ContainerPlan:
    """Everything the runtime needs for one container, or ConfigError saying why not."""
    env = container_env(pod, container, services=services, pod_ip=pod_ip, host_ip=host_ip)
    argv = container_argv(container, env)
    cpu, memory = limits(container)
    return ContainerPlan(argv, env, container.get("workingDir") or None, cpu, memory)


def grace_seconds(pod: Mapping[str, Any]) -> float:
    """How long containers get between SIGTERM and SIGKILL when the pod goes away."""
    meta = pod.get("metadata") or {}
    if meta.get("deletionGracePeriodSeconds") is not None:
        return float(meta["deletionGracePeriodSeconds"])
    spec = pod.get("spec") or {}
    value = spec.get("terminationGracePeriodSeconds")
    return float(DEFAULT_GRACE_SECONDS if value is None else value)


def container_ports(container: Mapping[str, Any]) -> dict[str, int]:
    """Named ports, for probes that name their port."""
    return {p["name"]: int(p["containerPort"]) for p in container.get("ports") or []
            if p.get("name") and p.get("containerPort")}
