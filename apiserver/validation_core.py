"""Service, Namespace, Node, ConfigMap, Secret, Endpoints, Event and Lease validation.

Follows pkg/apis/core/validation (and coordination for Lease). Two rules that live in
Kubernetes' registries rather than its validation are here because the handler has
no better place for them: a Service's nodePort must be in the node-port range
(30000-32767, the allocator's message), and its cluster IP may not change once set.
"""

from __future__ import annotations

import base64
import binascii
import json

from apiserver import quantities
from apiserver import validation_containers as containers
from apiserver import validation_errors as fe
from apiserver import validation_meta as meta_validation

Cause = fe.Cause
MAX_SECRET_SIZE = 1024 * 1024
NODE_PORT_RANGE = (30000, 32767)
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def validate_service(obj: dict, old: dict | None) -> list[Cause]:
    spec = fe.dict_of(obj.get("spec"))
    kind = fe.str_of(spec.get("type"))
    ports = fe.dicts_of(spec.get("ports"))
    cluster_ips = _cluster_ips(spec)
    headless = cluster_ips == ["None"]
    causes: list[Cause] = []
    if not ports and not headless and kind != "ExternalName":
        causes.append(fe.required("spec.ports"))
    if kind in ("LoadBalancer", "NodePort") and headless:
        causes.append(fe.invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services"))
    if kind == "ExternalName":
        if cluster_ips:
            causes.append(fe.forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        cname = fe.str_of(spec.get("externalName")).removesuffix(".")
        if cname:
            causes += [fe.invalid("spec.externalName", cname, m) for m in fe.dns1123_subdomain_errors(cname)]
        else:
            causes.append(fe.required("spec.externalName"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        causes += _service_port(port, len(ports) > 1, names, f"spec.ports[{i}]")
    if spec.get("selector") is not None:
        causes += meta_validation.validate_labels(spec.get("selector"), "spec.selector")
    affinity = fe.str_of(spec.get("sessionAffinity"))
    if not affinity:
        causes.append(fe.required("spec.sessionAffinity"))
    elif affinity not in ("ClientIP", "None"):
        causes.append(fe.not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    for i, ip in enumerate(cluster_ips):
        if not (i == 0 and ip == "None"):
            causes += fe.ip_errors(f"spec.clusterIPs[{i}]", ip)
    for i, ip in enumerate(fe.list_of(spec.get("externalIPs"))):
        causes += fe.ip_errors(f"spec.externalIPs[{i}]", fe.str_of(ip))
    if not kind:
        causes.append(fe.required("spec.type"))
    elif kind not in _SERVICE_TYPES:
        causes.append(fe.not_supported("spec.type", kind, _SERVICE_TYPES))
    causes += _node_ports(kind, ports)
    causes += _traffic_policies(spec, kind)
    if old is not None:
        old_ips = _cluster_ips(fe.dict_of(old.get("spec")))
        if cluster_ips and old_ips and "ExternalName" not in (kind, fe.str_of(fe.dict_of(old.get("spec")).get("type"))):
            for i, ip in enumerate(old_ips[: len(cluster_ips)]):
                if ip != cluster_ips[i]:
                    causes.append(fe.invalid(f"spec.clusterIPs[{i}]", fe.go_string_slice(cluster_ips), "may not change once set"))
    return causes


def _cluster_ips(spec: dict) -> list[str]:
    ips = [fe.str_of(ip) for ip in fe.list_of(spec.get("clusterIPs"))]
    single = fe.str_of(spec.get("clusterIP"))
    return ips or ([single] if single else [])


def _service_port(port: dict, require_name: bool, names: set[str], path: str) -> list[Cause]:
    causes: list[Cause] = []
    name = fe.str_of(port.get("name"))
    if require_name and not name:
        causes.append(fe.required(f"{path}.name"))
    elif name:
        causes += [fe.invalid(f"{path}.name", name, m) for m in fe.dns1123_label_errors(name)]
        if name in names:
            causes.append(fe.duplicate(f"{path}.name", name))
        names.add(name)
    number = port.get("port") if isinstance(port.get("port"), int) else 0
    causes += [fe.invalid(f"{path}.port", number, m) for m in fe.port_num_errors(number)]
    protocol = fe.str_of(port.get("protocol"))
    if not protocol:
        causes.append(fe.required(f"{path}.protocol"))
    elif protocol not in _PROTOCOLS:
        causes.append(fe.not_supported(f"{path}.protocol", protocol, _PROTOCOLS))
    causes += containers.port_num_or_name(port.get("targetPort"), f"{path}.targetPort")
    return causes


def _node_ports(kind: str, ports: list[dict]) -> list[Cause]:
    causes: list[Cause] = []
    seen_node_ports: set[tuple[str, int]] = set()
    seen_ports: set[tuple[str, int]] = set()
    lo, hi = NODE_PORT_RANGE
    for i, port in enumerate(ports):
        protocol, node_port = fe.str_of(port.get("protocol")), port.get("nodePort") or 0
        if node_port:
            if kind == "ClusterIP":
                causes.append(fe.forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'"))
            elif isinstance(node_port, int) and not lo <= node_port <= hi:
                causes.append(fe.invalid(f"spec.ports[{i}].nodePort", node_port,
                                         f"provided port is not in the valid range. The range of valid ports is {lo}-{hi}"))
            if (protocol, node_port) in seen_node_ports:
                causes.append(fe.duplicate(f"spec.ports[{i}].nodePort", node_port))
            seen_node_ports.add((protocol, node_port))
        number = port.get("port") if isinstance(port.get("port"), int) else 0
        if (protocol, number) in seen_ports:
            key = (f'core.ServicePort{{Name:"", Protocol:{fe.go_quote(protocol)}, AppProtocol:(*string)(nil), Port:{number}, '
                   'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}')
            causes.append(fe.duplicate(f"spec.ports[{i}]", fe.GoText(key)))
        seen_ports.add((protocol, number))
    return causes


def _traffic_policies(spec: dict, kind: str) -> list[Cause]:
    causes: list[Cause] = []
    external = fe.str_of(spec.get("externalTrafficPolicy"))
    if kind in ("NodePort", "LoadBalancer") or (kind == "ClusterIP" and fe.list_of(spec.get("externalIPs"))):
        if not external:
            causes.append(fe.required("spec.externalTrafficPolicy"))
        elif external not in ("Cluster", "Local"):
            causes.append(fe.not_supported("spec.externalTrafficPolicy", external, ("Cluster", "Local")))
    elif external:
        causes.append(fe.invalid("spec.externalTrafficPolicy", external, "may only be set for externally-accessible services"))
    internal = spec.get("internalTrafficPolicy")
    if internal is None and kind in ("ClusterIP", "NodePort", "LoadBalancer"):
        causes.append(fe.required("spec.internalTrafficPolicy"))
    elif internal is not None and internal not in ("Cluster", "Local"):
        causes.append(fe.not_supported("spec.internalTrafficPolicy", fe.str_of(internal), ("Cluster", "Local")))
    return causes


def validate_namespace(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    for name in fe.list_of(fe.dict_of(obj.get("spec")).get("finalizers")):
        text = fe.str_of(name)
        causes += [fe.invalid("spec.finalizers", text, m) for m in fe.label_key_errors(text)]
        causes += meta_validation.kube_finalizer_errors(text, "spec.finalizers")
    return causes if old is None else []


def validate_node(obj: dict, old: dict | None) -> list[Cause]:
    spec, status = fe.dict_of(obj.get("spec")), fe.dict_of(obj.get("status"))
    causes = _taints(spec.get("taints"))
    for section in ("capacity", "allocatable"):
        for name, raw in sorted(fe.dict_of(status.get(section)).items()):
            causes += _quantity_value(name, raw, f"status.{section}.{name}")
    cidrs = [fe.str_of(c) for c in fe.list_of(spec.get("podCIDRs"))]
    for i, cidr in enumerate(cidrs):
        causes += fe.cidr_errors(f"spec.podCIDRs[{i}]", cidr)
    if len(set(cidrs)) != len(cidrs) or len(cidrs) > 2:
        causes.append(fe.invalid("spec.podCIDRs", fe.go_string_slice(cidrs), "may specify no more than one CIDR for each IP family"))
    if old is not None:
        old_spec = fe.dict_of(old.get("spec"))
        old_cidrs = [fe.str_of(c) for c in fe.list_of(old_spec.get("podCIDRs"))]
        if old_cidrs and old_cidrs != cidrs:
            causes.append(fe.forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'))
        old_provider = fe.str_of(old_spec.get("providerID"))
        if old_provider and old_provider != fe.str_of(spec.get("providerID")):
            causes.append(fe.forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid'))
    return causes


def _taints(taints: object) -> list[Cause]:
    # Kubernetes reports node taints under "metadata.taints" (its path starts from metadata).
    causes: list[Cause] = []
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(fe.dicts_of(taints)):
        at = f"metadata.taints[{i}]"
        key, value, effect = (fe.str_of(taint.get(k)) for k in ("key", "value", "effect"))
        causes += [fe.invalid(f"{at}.key", key, m) for m in fe.label_key_errors(key)]
        msgs = fe.label_value_errors(value)
        if msgs:
            causes.append(fe.invalid(f"{at}.value", value, ";".join(msgs)))
        if not effect:
            causes.append(fe.required(f"{at}.effect"))
        elif effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            causes.append(fe.not_supported(f"{at}.effect", effect, ("NoSchedule", "PreferNoSchedule", "NoExecute")))
        if (effect, key) in seen:
            rendered = fe.GoText(f"core.Taint{{Key:{fe.go_quote(key)}, Value:{fe.go_quote(value)}, Effect:{fe.go_quote(effect)}, TimeAdded:<nil>}}")
            duplicate = fe.duplicate(at, rendered)
            duplicate["message"] += ": taints must be unique by key and effect pair"
            causes.append(duplicate)
        seen.add((effect, key))
    return causes


def _quantity_value(name: str, raw: object, path: str) -> list[Cause]:
    try:
        q = quantities.quantity_from_json(raw)
    except ValueError as exc:
        return [fe.invalid(path, fe.str_of(raw), str(exc))]
    return [fe.invalid(path, str(q), fe.IS_NEGATIVE)] if q.value < 0 else []


def validate_config_map(obj: dict, old: dict | None) -> list[Cause]:
    data, binary = fe.dict_of(obj.get("data")), fe.dict_of(obj.get("binaryData"))
    causes: list[Cause] = []
    total = 0
    for key, value in sorted(data.items()):
        causes += [fe.invalid(f"data[{key}]", key, m) for m in fe.config_map_key_errors(key)]
        if key in binary:
            causes.append(fe.invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        total += len(fe.str_of(value).encode())
    for key, value in sorted(binary.items()):
        causes += [fe.invalid(f"binaryData[{key}]", key, m) for m in fe.config_map_key_errors(key)]
        decoded, _ = _decode(value)
        total += len(decoded)
    if total > MAX_SECRET_SIZE:
        causes.append(fe.too_long("", MAX_SECRET_SIZE))
    return causes + _immutable_data(obj, old, ("data", "binaryData"))


def validate_secret(obj: dict, old: dict | None) -> list[Cause]:
    data = fe.dict_of(obj.get("data"))
    causes: list[Cause] = []
    total = 0
    decoded: dict[str, bytes] = {}
    for key, value in sorted(data.items()):
        causes += [fe.invalid(f"data[{key}]", key, m) for m in fe.config_map_key_errors(key)]
        raw, error = _decode(value)
        if error:
            causes.append(fe.invalid(f"data[{key}]", "<secret contents redacted>", error))
        decoded[key] = raw
        total += len(raw)
    if total > MAX_SECRET_SIZE:
        causes.append(fe.too_long("data", MAX_SECRET_SIZE))
    causes += _secret_type(fe.str_of(obj.get("type")), decoded, fe.dict_of(fe.dict_of(obj.get("metadata")).get("annotations")))
    if old is not None:
        causes += fe.immutable("type", fe.str_of(obj.get("type")) or "Opaque", fe.str_of(old.get("type")) or "Opaque")
    return causes + _immutable_data(obj, old, ("data",))


def _secret_type(kind: str, data: dict[str, bytes], annotations: dict) -> list[Cause]:
    if kind == "kubernetes.io/service-account-token":
        if not annotations.get("kubernetes.io/service-account.name"):
            return [fe.required("metadata.annotations[kubernetes.io/service-account.name]")]
    elif kind in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if kind == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in data:
            return [fe.required(f"data[{key}]")]
        try:
            if not isinstance(json.loads(data[key] or b"null"), dict):
                raise ValueError("json: cannot unmarshal into Go value of type map[string]interface {}")
        except ValueError as exc:
            return [fe.invalid(f"data[{key}]", "<secret contents redacted>", str(exc))]
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            return [fe.required("data[username]"), fe.required("data[password]")]
    elif kind == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            return [fe.required("data[ssh-privatekey]")]
    elif kind == "kubernetes.io/tls":
        return [fe.required(f"data[{key}]") for key in ("tls.crt", "tls.key") if key not in data]
    return []


def _immutable_data(obj: dict, old: dict | None, fields: tuple[str, ...]) -> list[Cause]:
    if old is None or old.get("immutable") is not True:
        return []
    causes: list[Cause] = []
    if obj.get("immutable") is not True:
        causes.append(fe.forbidden("immutable", "field is immutable when `immutable` is set"))
    for name in fields:
        if (obj.get(name) or {}) != (old.get(name) or {}):
            causes.append(fe.forbidden(name, "field is immutable when `immutable` is set"))
    return causes


def _decode(value: object) -> tuple[bytes, str]:
    text = fe.str_of(value)
    try:
        return base64.b64decode(text, validate=True), ""
    except (binascii.Error, ValueError):
        bad = next((i for i, ch in enumerate(text) if ch not in _B64), len(text))
        return b"", f"illegal base64 data at input byte {bad}"


_B64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def validate_endpoints(obj: dict, old: dict | None) -> list[Cause]:
    causes: list[Cause] = []
    for i, subset in enumerate(fe.dicts_of(obj.get("subsets"))):
        at = f"subsets[{i}]"
        if not fe.list_of(subset.get("addresses")) and not fe.list_of(subset.get("notReadyAddresses")):
            causes.append(fe.required(at, "must specify `addresses` or `notReadyAddresses`"))
        for group in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(fe.dicts_of(subset.get(group))):
                causes += _endpoint_address(address, f"{at}.{group}[{j}]")
        ports = fe.dicts_of(subset.get("ports"))
        for j, port in enumerate(ports):
            pat = f"{at}.ports[{j}]"
            name = fe.str_of(port.get("name"))
            if len(ports) > 1 and not name:
                causes.append(fe.required(f"{pat}.name"))
            elif name:
                causes += [fe.invalid(f"{pat}.name", name, m) for m in fe.dns1123_label_errors(name)]
            number = port.get("port") if isinstance(port.get("port"), int) else 0
            causes += [fe.invalid(f"{pat}.port", number, m) for m in fe.port_num_errors(number)]
            protocol = fe.str_of(port.get("protocol"))
            if not protocol:
                causes.append(fe.required(f"{pat}.protocol"))
            elif protocol not in _PROTOCOLS:
                causes.append(fe.not_supported(f"{pat}.protocol", protocol, _PROTOCOLS))
    return causes


def _endpoint_address(address: dict, path: str) -> list[Cause]:
    ip = fe.str_of(address.get("ip"))
    causes = fe.ip_errors(f"{path}.ip", ip)
    hostname = fe.str_of(address.get("hostname"))
    if hostname:
        causes += [fe.invalid(f"{path}.hostname", hostname, m) for m in fe.dns1123_label_errors(hostname)]
    if address.get("nodeName") is not None:
        node = fe.str_of(address.get("nodeName"))
        causes += [fe.invalid(f"{path}.nodeName", node, m) for m in fe.name_is_dns_subdomain(node, False)]
    parsed = fe.parse_ip(ip)
    if parsed is None:
        return causes + [fe.invalid(f"{path}.ip", ip, "must be a valid IP address")]
    if parsed.is_unspecified:
        causes.append(fe.invalid(f"{path}.ip", ip, f"may not be unspecified ({ip})"))
    if parsed.is_loopback:
        causes.append(fe.invalid(f"{path}.ip", ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if parsed.is_link_local and not parsed.is_multicast:
        causes.append(fe.invalid(f"{path}.ip", ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if parsed.is_multicast and (str(parsed).startswith("224.0.0.") or str(parsed).startswith("ff02:")):
        causes.append(fe.invalid(f"{path}.ip", ip, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
    return causes


def validate_event(obj: dict, old: dict | None) -> list[Cause]:
    """legacyValidateEvent: what core/v1 checks of an Event (no ObjectMeta rules)."""
    namespace = fe.str_of(fe.dict_of(obj.get("metadata")).get("namespace"))
    involved_ns = fe.str_of(fe.dict_of(obj.get("involvedObject")).get("namespace"))
    causes: list[Cause] = []
    if not obj.get("eventTime"):
        mismatch = namespace not in ("", "default") if not involved_ns else namespace != involved_ns
    else:
        mismatch = not involved_ns and namespace not in ("default", "kube-system")
        controller = fe.str_of(obj.get("reportingComponent"))
        if not controller:
            causes.append(fe.required("reportingController"))
        causes += [fe.invalid("reportingController", controller, m) for m in fe.label_key_errors(controller)]
        for field, limit in (("reportingInstance", 128), ("action", 128), ("reason", 128)):
            text = fe.str_of(obj.get(field))
            if not text:
                causes.append(fe.required(field))
            if len(text) > limit:
                causes.append(fe.invalid(field, "", f"can have at most {limit} characters"))
        if len(fe.str_of(obj.get("message"))) > 1024:
            causes.append(fe.invalid("message", "", "can have at most 1024 characters"))
    if mismatch:
        causes.insert(0, fe.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    causes += [fe.invalid("namespace", namespace, m) for m in fe.dns1123_subdomain_errors(namespace)]
    return causes


def validate_lease(obj: dict, old: dict | None) -> list[Cause]:
    spec = fe.dict_of(obj.get("spec"))
    causes: list[Cause] = []
    duration, transitions = spec.get("leaseDurationSeconds"), spec.get("leaseTransitions")
    if isinstance(duration, int) and duration <= 0:
        causes.append(fe.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    if isinstance(transitions, int) and transitions < 0:
        causes.append(fe.invalid("spec.leaseTransitions", transitions, fe.IS_NEGATIVE))
    return causes
