"""Service, Namespace, Node, ConfigMap, Secret, Endpoints, Event, Lease and RBAC validation."""

from __future__ import annotations

import base64
import copy

from apiserver import defaults, validation

LABEL_REGEX = "'[a-z0-9]([-a-z0-9]*[a-z0-9])?'"


def lines(kind: str, obj: dict, old: dict | None = None) -> list[str]:
    return [f"{c['field']}: {c['message']}" for c in validation.validate(kind, obj, old)]


def service(**spec: object) -> dict:
    obj = {"metadata": {"name": "web", "namespace": "default"}, "spec": {"selector": {"app": "web"}, **spec}}
    defaults.apply_defaults("Service", obj)
    return obj


def test_valid_services() -> None:
    assert lines("Service", service(ports=[{"port": 80}])) == []
    assert lines("Service", service(type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080},
                                                            {"name": "https", "port": 443}])) == []
    assert lines("Service", service(clusterIP="None")) == []  # headless needs no ports
    assert lines("Service", service(type="ExternalName", externalName="db.example.com.")) == []


def test_service_ports() -> None:
    assert lines("Service", service()) == ["spec.ports: Required value"]
    got = lines("Service", service(type="NodePort", ports=[
        {"port": 0, "protocol": "ICMP"}, {"name": "http", "port": 80, "nodePort": 40000},
        {"name": "http", "port": 80, "nodePort": 40000}]))
    assert got == [
        "spec.ports[0].name: Required value",
        "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        'spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
        "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
        'spec.ports[2].name: Duplicate value: "http"',
        "spec.ports[1].nodePort: Invalid value: 40000: provided port is not in the valid range. The range of "
        "valid ports is 30000-32767",
        "spec.ports[2].nodePort: Invalid value: 40000: provided port is not in the valid range. The range of "
        "valid ports is 30000-32767",
        "spec.ports[2].nodePort: Duplicate value: 40000",
        'spec.ports[2]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), '
        'Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}',
    ]
    assert lines("Service", service(ports=[{"port": 80, "nodePort": 30080}])) == [
        "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]


def test_service_type_name_and_affinity() -> None:
    got = lines("Service", service(type="Magic", ports=[{"port": 80}]))
    assert got == ['spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", '
                   '"LoadBalancer", "NodePort"']
    bad = service(ports=[{"port": 80}], sessionAffinity="Sticky", clusterIP="10.0.0.300")
    bad["metadata"]["name"] = "1web"
    got = lines("Service", bad)
    assert got[0].startswith('metadata.name: Invalid value: "1web": a DNS-1035 label must consist of')
    assert 'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"' in got
    assert ('spec.clusterIPs[0]: Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or '
            "2001:db8::ffff)") in got
    assert lines("Service", service(type="ExternalName")) == ["spec.externalName: Required value"]


def test_cluster_ip_is_immutable() -> None:
    old = service(ports=[{"port": 80}], clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"])
    new = copy.deepcopy(old)
    new["spec"]["ports"][0]["port"] = 8080
    assert lines("Service", new, old) == []
    new["spec"]["clusterIP"] = new["spec"]["clusterIPs"][0] = "10.96.0.11"
    assert lines("Service", new, old) == ['spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}: may not change once set']
    unset = copy.deepcopy(old)
    del unset["spec"]["clusterIP"], unset["spec"]["clusterIPs"]
    assert lines("Service", unset, old) == []  # the handler carries the allocated IP over


def test_namespace() -> None:
    ns = {"metadata": {"name": "shop"}}
    defaults.apply_defaults("Namespace", ns)
    assert lines("Namespace", ns) == []
    bad = {"metadata": {"name": "Shop_1"}, "spec": {"finalizers": ["bogus"]}}
    assert lines("Namespace", bad) == [
        'metadata.name: Invalid value: "Shop_1": a lowercase RFC 1123 label must consist of lower case alphanumeric '
        "characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
        f"regex used for validation is {LABEL_REGEX})",
        'spec.finalizers: Invalid value: "bogus": name is neither a standard finalizer name nor is it fully qualified',
    ]


def test_node() -> None:
    node = {"metadata": {"name": "node-1"}, "spec": {"podCIDRs": ["10.244.1.0/24"], "unschedulable": True,
                                                     "taints": [{"key": "a", "effect": "NoSchedule"}]},
            "status": {"capacity": {"cpu": "4", "memory": "8Gi"}}}
    defaults.apply_defaults("Node", node)
    assert lines("Node", node) == []
    bad = copy.deepcopy(node)
    bad["spec"]["taints"] = [{"key": "a", "effect": "Sometimes"}, {"key": "b"}]
    bad["spec"]["podCIDRs"] = ["10.244.1.0"]
    bad["status"]["capacity"]["cpu"] = "-1"
    assert lines("Node", bad) == [
        'metadata.taints[0].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", '
        '"PreferNoSchedule", "NoExecute"',
        "metadata.taints[1].effect: Required value",
        'status.capacity.cpu: Invalid value: "-1": must be greater than or equal to 0',
        'spec.podCIDRs[0]: Invalid value: "10.244.1.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
    ]
    moved = copy.deepcopy(node)
    moved["spec"]["podCIDRs"] = ["10.244.2.0/24"]
    moved["spec"]["podCIDR"] = "10.244.2.0/24"
    moved["spec"]["unschedulable"] = False
    assert lines("Node", moved, node) == [
        'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid']


def test_config_map_and_secret_keys_and_sizes() -> None:
    cm = {"metadata": {"name": "c", "namespace": "default"}, "data": {"ok.key": "v", "bad key": "v", "..x": "v"},
          "binaryData": {"ok.key": base64.b64encode(b"x").decode()}}
    assert lines("ConfigMap", cm) == [
        "data[..x]: Invalid value: \"..x\": must not start with '..'",
        'data[bad key]: Invalid value: "bad key": a valid config key must consist of alphanumeric characters, '
        "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
        "'[-._a-zA-Z0-9]+')",
        'data[ok.key]: Invalid value: "ok.key": duplicate of key present in binaryData',
    ]
    huge = {"metadata": {"name": "c", "namespace": "default"}, "data": {"a": "x" * (1024 * 1024 + 1)}}
    assert lines("ConfigMap", huge) == [": Too long: must have at most 1048576 bytes"]
    secret = {"metadata": {"name": "s", "namespace": "default"}, "type": "Opaque",
              "data": {"big": base64.b64encode(b"x" * (1024 * 1024 + 1)).decode(), "bad": "!!"}}
    assert lines("Secret", secret) == [
        'data[bad]: Invalid value: "<secret contents redacted>": illegal base64 data at input byte 0',
        "data: Too long: must have at most 1048576 bytes",
    ]


def test_secret_types_and_immutability() -> None:
    def secret(kind: str, **data: bytes) -> dict:
        obj = {"metadata": {"name": "s", "namespace": "default"}, "type": kind,
               "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}
        defaults.apply_defaults("Secret", obj)
        return obj

    assert lines("Secret", secret("kubernetes.io/tls")) == ["data[tls.crt]: Required value", "data[tls.key]: Required value"]
    assert lines("Secret", secret("kubernetes.io/service-account-token")) == [
        "metadata.annotations[kubernetes.io/service-account.name]: Required value"]
    assert lines("Secret", secret("kubernetes.io/dockerconfigjson", **{".dockerconfigjson": b'{"auths":{}}'})) == []
    assert lines("Secret", secret("kubernetes.io/basic-auth", username=b"u")) == []
    old = secret("Opaque", a=b"1")
    old["immutable"] = True
    new = secret("example.com/other", a=b"2")
    assert lines("Secret", new, old) == [
        'type: Invalid value: "example.com/other": field is immutable',
        "immutable: Forbidden: field is immutable when `immutable` is set",
        "data: Forbidden: field is immutable when `immutable` is set",
    ]


def test_endpoints() -> None:
    ok = {"metadata": {"name": "web", "namespace": "default"},
          "subsets": [{"addresses": [{"ip": "10.244.0.3", "nodeName": "node-1"}], "ports": [{"name": "http", "port": 8080}]}]}
    defaults.apply_defaults("Endpoints", ok)
    assert lines("Endpoints", ok) == []
    bad = {"metadata": {"name": "web", "namespace": "default"},
           "subsets": [{"ports": [{"port": 80, "protocol": "TCP"}]},
                       {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 70000, "protocol": "TCP"}, {"port": 1}]}]}
    assert lines("Endpoints", bad) == [
        "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`",
        'subsets[1].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
        "subsets[1].ports[0].name: Required value",
        "subsets[1].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
        "subsets[1].ports[1].name: Required value",
        "subsets[1].ports[1].protocol: Required value",
    ]


def test_events_follow_legacy_rules() -> None:
    event = {"metadata": {"name": "web-1.17a", "namespace": "shop"}, "reason": "Started", "type": "Normal",
             "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "web-1"}}
    assert lines("Event", event) == []
    node_event = {"metadata": {"name": "n.1", "namespace": "default"}, "involvedObject": {"kind": "Node", "name": "n"}}
    assert lines("Event", node_event) == []
    moved = copy.deepcopy(event)
    moved["involvedObject"]["namespace"] = "other"
    assert lines("Event", moved) == [
        'involvedObject.namespace: Invalid value: "other": does not match event.namespace']
    assert lines("Event", {"metadata": {"namespace": "shop"}}) == [
        "metadata.name: Required value: name or generateName is required",
        'involvedObject.namespace: Invalid value: "": does not match event.namespace',
    ]


def test_lease() -> None:
    lease = {"metadata": {"name": "node-1", "namespace": "kube-node-lease"},
             "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}}
    assert lines("Lease", lease) == []
    lease["spec"].update(leaseDurationSeconds=0, leaseTransitions=-1)
    assert lines("Lease", lease) == ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                                     "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"]


def test_rbac_roles() -> None:
    role = {"metadata": {"name": "reader", "namespace": "default"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
    assert lines("Role", role) == []
    role["rules"] = [{"apiGroups": [""], "resources": ["pods", "secrets"], "resourceNames": ["x"]},
                     {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]
    assert lines("Role", role) == [
        "rules[0].verbs: Required value: verbs must contain at least one value",
        "rules[0].resourceNames: Required value: resource names cannot apply to multiple resources",
        'rules[1].nonResourceURLs: Invalid value: []string{"/healthz"}: namespaced rules cannot apply to '
        "non-resource URLs",
    ]
    cluster_role = {"metadata": {"name": "system:health"}, "rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]}
    assert lines("ClusterRole", cluster_role) == []


def test_rbac_bindings() -> None:
    binding = {"metadata": {"name": "admins"}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
               "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "ops"},
                            {"kind": "ServiceAccount", "name": "bot", "namespace": "ci"}]}
    defaults.apply_defaults("ClusterRoleBinding", binding)
    assert lines("ClusterRoleBinding", binding) == []
    bad = {"metadata": {"name": "b", "namespace": "default"}, "roleRef": {"apiGroup": "x", "kind": "Thing"},
           "subjects": [{"kind": "Robot", "name": "r"}, {"kind": "ServiceAccount", "name": "Bot", "apiGroup": "v1"}]}
    got = lines("RoleBinding", bad)
    assert got[:4] == [
        'roleRef.apiGroup: Unsupported value: "x": supported values: "rbac.authorization.k8s.io"',
        'roleRef.kind: Unsupported value: "Thing": supported values: "Role", "ClusterRole"',
        "roleRef.name: Required value",
        'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"',
    ]
    assert got[-1] == 'subjects[1].apiGroup: Unsupported value: "v1": supported values: ""'
    changed = copy.deepcopy(binding)
    changed["roleRef"]["name"] = "view"
    assert lines("ClusterRoleBinding", changed, binding) == [
        'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", '
        'Name:"view"}: cannot change roleRef']
    orphan = copy.deepcopy(binding)
    orphan["subjects"] = [{"kind": "ServiceAccount", "name": "bot"}]
    assert lines("ClusterRoleBinding", orphan) == ["subjects[0].namespace: Required value"]
