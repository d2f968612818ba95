"""Pod validation: containers, ports, resources, policies, and what a Pod update may change."""

from __future__ import annotations

import copy

from apiserver import defaults, validation


def make_pod(containers: list[dict] | None = None, **spec: object) -> dict:
    body = {"containers": containers if containers is not None else [{"name": "main", "image": "busybox"}], **spec}
    obj = {"metadata": {"name": "p", "namespace": "default"}, "spec": body}
    defaults.apply_defaults("Pod", obj)
    return obj


def lines(kind: str, obj: dict, old: dict | None = None) -> list[str]:
    return [f"{c['field']}: {c['message']}" for c in validation.validate(kind, obj, old)]


def test_valid_pod() -> None:
    assert lines("Pod", make_pod()) == []


def test_containers_are_required_as_kubectl_shows() -> None:
    causes = validation.validate("Pod", make_pod([]))
    assert causes == [{"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"}]


def test_container_names_and_images() -> None:
    containers = [{"name": "Main", "image": ""}, {"name": "side", "image": " busybox"}, {"name": "side", "image": "x"}]
    assert lines("Pod", make_pod(containers)) == [
        'spec.containers[0].name: Invalid value: "Main": a lowercase RFC 1123 label must consist of lower case '
        "alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  "
        "or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        "spec.containers[0].image: Required value",
        'spec.containers[2].name: Duplicate value: "side"',
        'spec.containers[1].image: Invalid value: " busybox": must not have leading or trailing whitespace',
    ]
    assert lines("Pod", make_pod([{"image": "x"}]))[0] == "spec.containers[0].name: Required value"


def test_ports() -> None:
    ports = [{"containerPort": 0}, {"containerPort": 70000, "protocol": "ICMP", "name": "HTTP"},
             {"containerPort": 80, "name": "web"}, {"containerPort": 81, "name": "web", "hostPort": -1}]
    assert lines("Pod", make_pod([{"name": "c", "image": "x", "ports": ports}])) == [
        "spec.containers[0].ports[0].containerPort: Required value",
        'spec.containers[0].ports[1].name: Invalid value: "HTTP": must contain only alpha-numeric characters '
        "(a-z, 0-9), and hyphens (-)",
        'spec.containers[0].ports[1].name: Invalid value: "HTTP": must contain at least one letter (a-z)',
        "spec.containers[0].ports[1].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        'spec.containers[0].ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
        'spec.containers[0].ports[3].name: Duplicate value: "web"',
        "spec.containers[0].ports[3].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive",
    ]


def test_resources() -> None:
    resources = {"limits": {"cpu": "1", "memory": "-1Gi", "example.com/gpu": "2"},
                 "requests": {"cpu": "1500m", "example.com/gpu": "1", "pods": "1", "bogus": "1", "widget/x!": "1"}}
    obj = make_pod([{"name": "c", "image": "x", "resources": resources}])
    assert lines("Pod", obj) == [
        'spec.containers[0].resources.limits[memory]: Invalid value: "-1Gi": must be greater than or equal to 0',
        "spec.containers[0].resources.requests[bogus]: Invalid value: \"bogus\": must be a standard resource type or "
        "fully qualified",
        'spec.containers[0].resources.requests[bogus]: Invalid value: "bogus": must be a standard resource for '
        "containers",
        # Pod defaulting copied the limit into requests, so it is reported twice (as in Kubernetes)
        'spec.containers[0].resources.requests[memory]: Invalid value: "-1Gi": must be greater than or equal to 0',
        'spec.containers[0].resources.requests[pods]: Invalid value: "pods": must be a standard resource for containers',
        'spec.containers[0].resources.requests[widget/x!]: Invalid value: "widget/x!": name part must consist of '
        "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
        "'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?"
        "[A-Za-z0-9]')",
        'spec.containers[0].resources.requests: Invalid value: "1500m": must be less than or equal to cpu limit of 1',
        'spec.containers[0].resources.requests: Invalid value: "1": must be equal to example.com/gpu limit of 2',
        # widget/x! is not native, so it needs a limit too
        "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources",
    ]


def test_unparsable_quantity_is_reported_on_its_field() -> None:
    obj = make_pod([{"name": "c", "image": "x", "resources": {"requests": {"cpu": "lots"}}}])
    assert lines("Pod", obj) == [
        'spec.containers[0].resources.requests[cpu]: Invalid value: "lots": quantities must match the regular '
        "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"]


def test_policies_env_node_selector_and_spec_fields() -> None:
    container = {"name": "c", "image": "x", "env": [{"name": "1BAD"}, {"value": "x"},
                                                    {"name": "OK", "valueFrom": {}}]}
    obj = make_pod([container], restartPolicy="Sometimes", dnsPolicy="Google", nodeSelector={"disk": "-ssd"},
                   activeDeadlineSeconds=0, serviceAccountName="Bad", nodeName="node_1")
    got = lines("Pod", obj)
    assert got[:3] == [
        'spec.containers[0].env[0].name: Invalid value: "1BAD": a valid environment variable name must consist of '
        "alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or "
        "'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')",
        "spec.containers[0].env[1].name: Required value",
        'spec.containers[0].env[2].valueFrom: Invalid value: "": must specify one of: `fieldRef`, '
        "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
    ]
    assert 'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"' in got
    assert ('spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", '
            '"ClusterFirst", "Default", "None"') in got
    assert any(line.startswith('spec.nodeSelector: Invalid value: "-ssd": a valid label') for line in got)
    assert "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive" in got
    assert any(line.startswith('spec.serviceAccountName: Invalid value: "Bad"') for line in got)
    assert any(line.startswith('spec.nodeName: Invalid value: "node_1"') for line in got)


def test_undefaulted_pod_fails_like_kubernetes() -> None:
    raw = {"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    assert lines("Pod", raw) == [
        "spec.terminationGracePeriodSeconds: Required value",
        "spec.containers[0].terminationMessagePolicy: Required value",
        "spec.containers[0].imagePullPolicy: Required value",
        "spec.restartPolicy: Required value",
        "spec.dnsPolicy: Required value",
    ]


def test_init_containers_volumes_and_probes() -> None:
    obj = make_pod(
        [{"name": "main", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/d"}, {"name": "cache", "mountPath": "/d"}],
          "livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2}, "readinessProbe": {}}],
        initContainers=[{"name": "main", "image": "x", "readinessProbe": {"tcpSocket": {"port": 80}}},
                        {"name": "sidecar", "image": "x", "restartPolicy": "OnFailure"}],
        volumes=[{"name": "data"}, {"name": "data", "emptyDir": {}, "hostPath": {"path": "/x"}}],
    )
    assert lines("Pod", obj) == [
        "spec.volumes[1].hostPath: Forbidden: may not specify more than 1 volume type",
        'spec.volumes[1].name: Duplicate value: "data"',
        'spec.containers[0].volumeMounts[1].name: Not found: "cache"',
        'spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/d": must be unique',
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        "spec.containers[0].readinessProbe: Required value: must specify a handler type",
        'spec.initContainers[0].name: Duplicate value: "main"',
        "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
        'spec.initContainers[1].restartPolicy: Unsupported value: "OnFailure": supported values: "Always"',
    ]


def test_host_network_ports_must_match() -> None:
    obj = make_pod([{"name": "c", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]}], hostNetwork=True)
    assert lines("Pod", obj) == [
        "spec.containers[0].ports[0].hostPort: Invalid value: 8080: must match `containerPort` when `hostNetwork` is true"]


def test_create_only_rules() -> None:
    obj = make_pod(ephemeralContainers=[{"name": "debug", "image": "x"}], nodeName="n1",
                   schedulingGates=[{"name": "example.com/wait"}])
    assert lines("Pod", obj) == ["spec.ephemeralContainers: Forbidden: cannot be set on create",
                                 "spec.nodeName: Forbidden: cannot be set until all schedulingGates have been cleared"]


def test_update_may_change_images_deadline_and_add_tolerations() -> None:
    old = make_pod(activeDeadlineSeconds=60, tolerations=[{"key": "a", "operator": "Exists"}])
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "busybox:2"
    new["spec"]["activeDeadlineSeconds"] = 30
    new["spec"]["tolerations"].append({"key": "b", "operator": "Exists"})
    assert lines("Pod", new, old) == []


def test_update_rejects_other_changes() -> None:
    old = make_pod(activeDeadlineSeconds=60, tolerations=[{"key": "a", "operator": "Exists"}])
    new = copy.deepcopy(old)
    new["spec"]["restartPolicy"] = "Never"
    new["spec"]["activeDeadlineSeconds"] = 90
    got = lines("Pod", new, old)
    assert got == ["spec.activeDeadlineSeconds: Invalid value: 90: must be less than or equal to previous value"]
    new["spec"]["activeDeadlineSeconds"] = 60
    new["spec"]["tolerations"] = []
    got = lines("Pod", new, old)
    assert got[0] == "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
    assert got[1].startswith(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
        "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n")
    assert '-\trestartPolicy: "Always"\n+\trestartPolicy: "Never"' in got[1]
    more = copy.deepcopy(old)
    more["spec"]["containers"].append({"name": "two", "image": "x", "imagePullPolicy": "Always",
                                       "terminationMessagePolicy": "File"})
    assert lines("Pod", more, old) == ["spec.containers: Forbidden: pod updates may not add or remove containers"]


def test_pod_template_validation() -> None:
    template = {"metadata": {"labels": {"app": "-x"}}, "spec": {"containers": []}}
    obj = {"metadata": {"name": "t", "namespace": "default"}, "template": template}
    defaults.apply_defaults("PodTemplate", obj)
    got = lines("PodTemplate", obj)
    assert got[0].startswith('template.labels: Invalid value: "-x": a valid label')
    assert got[1:] == ["template.spec.containers: Required value"]
