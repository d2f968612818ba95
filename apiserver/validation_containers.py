"""Container validation: names, images, ports, env, mounts, probes and resources.

Follows validateContainers / validateInitContainers / validateContainerCommon and
validateResourceRequirements in pkg/apis/core/validation. Resource quantities are
compared exactly (apiserver.quantities); a quantity that does not parse is reported
here as an invalid value (Kubernetes refuses it earlier, while decoding, with the same
"quantities must match the regular expression ..." text).
"""

from __future__ import annotations

from apiserver import quantities
from apiserver import validation_errors as fe

Cause = fe.Cause
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
_ENV_FIELD_PATHS = (
    "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
    "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
)
_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
_STANDARD_RESOURCES = frozenset({
    "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.ephemeral-storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods", "resourcequotas", "services",
    "replicationcontrollers", "secrets", "configmaps", "persistentvolumeclaims", "storage",
    "requests.storage", "services.nodeports", "services.loadbalancers",
})
_INIT_ONLY = "may not be set for init containers without restartPolicy=Always"


def validate_containers(containers: list[dict], volumes: set[str], path: str) -> list[Cause]:
    if not containers:
        return [fe.required(path)]
    causes: list[Cause] = []
    names: set[str] = set()
    for i, container in enumerate(containers):
        at = f"{path}[{i}]"
        causes += _common(container, volumes, at)
        name = fe.str_of(container.get("name"))
        if name in names:
            causes.append(fe.duplicate(f"{at}.name", name))
        names.add(name)
        causes += _lifecycle_and_probes(container, at)
        if container.get("restartPolicy") is not None:
            causes.append(fe.forbidden(f"{at}.restartPolicy", "may not be set for non-init containers"))
    return causes


def validate_init_containers(containers: list[dict], regular: list[dict], volumes: set[str], path: str) -> list[Cause]:
    causes: list[Cause] = []
    names = {fe.str_of(c.get("name")) for c in regular}
    for i, container in enumerate(containers):
        at = f"{path}[{i}]"
        causes += _common(container, volumes, at)
        policy = container.get("restartPolicy")
        if policy is not None and policy != "Always":
            causes.append(fe.not_supported(f"{at}.restartPolicy", fe.str_of(policy), ("Always",)))
        name = fe.str_of(container.get("name"))
        if name in names:
            causes.append(fe.duplicate(f"{at}.name", name))
        elif name:
            names.add(name)
        if policy == "Always":
            causes += _lifecycle_and_probes(container, at)
        else:
            for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if container.get(key) is not None:
                    causes.append(fe.forbidden(f"{at}.{key}", _INIT_ONLY))
    return causes


def _common(container: dict, volumes: set[str], path: str) -> list[Cause]:
    """validateContainerCommon."""
    causes: list[Cause] = []
    name = fe.str_of(container.get("name"))
    if not name:
        causes.append(fe.required(f"{path}.name"))
    else:
        causes += [fe.invalid(f"{path}.name", name, m) for m in fe.dns1123_label_errors(name)]
    if not fe.str_of(container.get("image")):
        causes.append(fe.required(f"{path}.image"))
    causes += _enum(container.get("terminationMessagePolicy"), _MESSAGE_POLICIES, f"{path}.terminationMessagePolicy")
    causes += _ports(container.get("ports"), f"{path}.ports")
    causes += _env(container.get("env"), f"{path}.env")
    causes += _mounts(container.get("volumeMounts"), volumes, f"{path}.volumeMounts")
    causes += _enum(container.get("imagePullPolicy"), _PULL_POLICIES, f"{path}.imagePullPolicy")
    causes += validate_resources(fe.dict_of(container.get("resources")), f"{path}.resources")
    context = fe.dict_of(container.get("securityContext"))
    for key in ("runAsUser", "runAsGroup"):
        value = context.get(key)
        if isinstance(value, int) and not 0 <= value <= 0xFFFFFFFF:
            causes.append(fe.invalid(f"{path}.securityContext.{key}", value, fe.inclusive_range_error(0, 0xFFFFFFFF)))
    return causes


def _enum(value: object, allowed: tuple[str, ...], path: str) -> list[Cause]:
    text = fe.str_of(value)
    if not text:
        return [fe.required(path)]
    return [] if text in allowed else [fe.not_supported(path, text, allowed)]


def _ports(ports: object, path: str) -> list[Cause]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, port in enumerate(fe.dicts_of(ports)):
        at = f"{path}[{i}]"
        name = fe.str_of(port.get("name"))
        if name:
            msgs = fe.port_name_errors(name)
            if msgs:
                causes += [fe.invalid(f"{at}.name", name, m) for m in msgs]
            elif name in names:
                causes.append(fe.duplicate(f"{at}.name", name))
            else:
                names.add(name)
        number = port.get("containerPort") or 0
        if number == 0:
            causes.append(fe.required(f"{at}.containerPort"))
        elif isinstance(number, int):
            causes += [fe.invalid(f"{at}.containerPort", number, m) for m in fe.port_num_errors(number)]
        host = port.get("hostPort") or 0
        if isinstance(host, int) and host != 0:
            causes += [fe.invalid(f"{at}.hostPort", host, m) for m in fe.port_num_errors(host)]
        causes += _enum(port.get("protocol"), _PROTOCOLS, f"{at}.protocol")
    return causes


def _env(env: object, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, var in enumerate(fe.dicts_of(env)):
        at = f"{path}[{i}]"
        name = fe.str_of(var.get("name"))
        if not name:
            causes.append(fe.required(f"{at}.name"))
        else:
            causes += [fe.invalid(f"{at}.name", name, m) for m in fe.env_var_name_errors(name)]
        value_from = var.get("valueFrom")
        if not isinstance(value_from, dict):
            continue
        sources = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef") if value_from.get(k) is not None]
        field_ref = fe.dict_of(value_from.get("fieldRef"))
        if "fieldRef" in sources:
            causes += _field_ref(field_ref, f"{at}.valueFrom.fieldRef")
        for key in ("configMapKeyRef", "secretKeyRef"):
            if key in sources:
                causes += _key_ref(fe.dict_of(value_from.get(key)), f"{at}.valueFrom.{key}")
        if not sources:
            causes.append(fe.invalid(f"{at}.valueFrom", "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
        elif fe.str_of(var.get("value")):
            causes.append(fe.invalid(f"{at}.valueFrom", "", "may not be specified when `value` is not empty"))
        elif len(sources) > 1:
            causes.append(fe.invalid(f"{at}.valueFrom", "", "may not have more than one field specified at a time"))
    return causes


def _field_ref(ref: dict, path: str) -> list[Cause]:
    if not fe.str_of(ref.get("apiVersion")):
        return [fe.required(f"{path}.apiVersion")]
    field_path = fe.str_of(ref.get("fieldPath"))
    if not field_path:
        return [fe.required(f"{path}.fieldPath")]
    base, bracket, subscript = field_path.partition("[")
    if bracket and subscript.endswith("]"):
        key = subscript[:-1].strip("'\"")
        if base == "metadata.annotations":
            return [fe.invalid(path, key.lower(), m) for m in fe.label_key_errors(key.lower())]
        if base == "metadata.labels":
            return [fe.invalid(path, key, m) for m in fe.label_key_errors(key)]
        return [fe.invalid(path, base, "does not support subscript")]
    if field_path not in _ENV_FIELD_PATHS:
        return [fe.not_supported(f"{path}.fieldPath", field_path, _ENV_FIELD_PATHS)]
    return []


def _key_ref(ref: dict, path: str) -> list[Cause]:
    name = fe.str_of(ref.get("name"))
    causes = [fe.invalid(f"{path}.name", name, m) for m in fe.name_is_dns_subdomain(name, False)]
    key = fe.str_of(ref.get("key"))
    if not key:
        causes.append(fe.required(f"{path}.key"))
    else:
        causes += [fe.invalid(f"{path}.key", key, m) for m in fe.config_map_key_errors(key)]
    return causes


def _mounts(mounts: object, volumes: set[str], path: str) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, mount in enumerate(fe.dicts_of(mounts)):
        at = f"{path}[{i}]"
        name, mount_path = fe.str_of(mount.get("name")), fe.str_of(mount.get("mountPath"))
        if not name:
            causes.append(fe.required(f"{at}.name"))
        if name not in volumes:
            causes.append(fe.not_found(f"{at}.name", name))
        if not mount_path:
            causes.append(fe.required(f"{at}.mountPath"))
        if mount_path in seen:
            causes.append(fe.invalid(f"{at}.mountPath", mount_path, "must be unique"))
        seen.add(mount_path)
    return causes


def _lifecycle_and_probes(container: dict, path: str) -> list[Cause]:
    causes: list[Cause] = []
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if lifecycle.get(hook) is not None:
                causes += _handler(fe.dict_of(lifecycle.get(hook)), f"{path}.lifecycle.{hook}", ("exec", "httpGet", "tcpSocket", "sleep"))
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(kind)
        if not isinstance(probe, dict):
            continue
        at = f"{path}.{kind}"
        causes += _handler(probe, at, ("exec", "httpGet", "tcpSocket", "grpc"))
        for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
            causes += fe.nonnegative(f"{at}.{key}", probe.get(key))
        grace = probe.get("terminationGracePeriodSeconds")
        if kind == "readinessProbe" and grace is not None:
            causes.append(fe.invalid(f"{at}.terminationGracePeriodSeconds", grace, "must not be set for readinessProbes"))
        elif isinstance(grace, int) and grace <= 0:
            causes.append(fe.invalid(f"{at}.terminationGracePeriodSeconds", grace, "must be greater than 0"))
        if kind != "readinessProbe" and probe.get("successThreshold", 0) != 1:
            causes.append(fe.invalid(f"{at}.successThreshold", probe.get("successThreshold", 0), "must be 1"))
    return causes


def _handler(handler: dict, path: str, kinds: tuple[str, ...]) -> list[Cause]:
    present = [k for k in kinds if handler.get(k) is not None]
    if not present:
        return [fe.required(path, "must specify a handler type")]
    causes = [fe.forbidden(f"{path}.{k}", "may not specify more than 1 handler type") for k in present[1:]]
    first, action = present[0], fe.dict_of(handler.get(present[0]))
    if first == "exec" and not fe.list_of(action.get("command")):
        causes.append(fe.required(f"{path}.exec.command"))
    if first == "httpGet":
        if not fe.str_of(action.get("path")):
            causes.append(fe.required(f"{path}.httpGet.path"))
        scheme = fe.str_of(action.get("scheme"))
        if scheme not in ("HTTP", "HTTPS"):
            causes.append(fe.not_supported(f"{path}.httpGet.scheme", scheme, ("HTTP", "HTTPS")))
    if first in ("httpGet", "tcpSocket", "grpc"):
        causes += port_num_or_name(action.get("port"), f"{path}.{first}.port")
    return causes


def port_num_or_name(port: object, path: str) -> list[Cause]:
    """ValidatePortNumOrName for an IntOrString."""
    if isinstance(port, str):
        return [fe.invalid(path, port, m) for m in fe.port_name_errors(port)]
    number = port if isinstance(port, int) and not isinstance(port, bool) else 0
    return [fe.invalid(path, number, m) for m in fe.port_num_errors(number)]


def validate_resources(resources: dict, path: str) -> list[Cause]:
    """validateResourceRequirements with the container resource-name rules."""
    causes: list[Cause] = []
    parsed: dict[str, dict[str, quantities.Quantity]] = {"limits": {}, "requests": {}}
    for section in ("limits", "requests"):
        for name, raw in sorted(fe.dict_of(resources.get(section)).items()):
            at = f"{path}.{section}[{name}]"
            causes += _resource_name(name, at)
            try:
                q = quantities.quantity_from_json(raw)
            except ValueError as exc:
                causes.append(fe.invalid(at, fe.str_of(raw), str(exc)))
                continue
            parsed[section][name] = q
            if q.value < 0:
                causes.append(fe.invalid(at, str(q), fe.IS_NEGATIVE))
            if _is_extended(name) and quantities.cpu_millis(q) % 1000 != 0:
                causes.append(fe.invalid(at, fe.GoText(str(q)), "must be an integer"))
    limits = parsed["limits"]
    for name, request in parsed["requests"].items():
        overcommit = _is_native(name) and not name.startswith("hugepages-")
        limit = limits.get(name)
        if limit is None:
            if not overcommit:
                causes.append(fe.required(f"{path}.limits", "Limit must be set for non overcommitable resources"))
        elif request != limit and not overcommit:
            causes.append(fe.invalid(f"{path}.requests", str(request), f"must be equal to {name} limit of {limit}"))
        elif request > limit:
            causes.append(fe.invalid(f"{path}.requests", str(request), f"must be less than or equal to {name} limit of {limit}"))
    return causes


def _is_native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _is_extended(name: str) -> bool:
    if _is_native(name) or name.startswith("requests."):
        return False
    return not fe.label_key_errors("requests." + name)


def _resource_name(name: str, path: str) -> list[Cause]:
    """validateContainerResourceName."""
    msgs = fe.label_key_errors(name)
    if msgs:
        return [fe.invalid(path, name, m) for m in msgs]
    causes: list[Cause] = []
    if "/" not in name:
        if name not in _STANDARD_RESOURCES and not name.startswith(("hugepages-", "requests.hugepages-", "limits.hugepages-")):
            causes.append(fe.invalid(path, name, "must be a standard resource type or fully qualified"))
        if name not in _CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            causes.append(fe.invalid(path, name, "must be a standard resource for containers"))
    elif not _is_native(name) and not _is_extended(name):
        causes.append(fe.invalid(path, name, "doesn't follow extended resource name standard"))
    return causes
