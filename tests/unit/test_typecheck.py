"""apiserver.typecheck: Go's decoding errors for wrong JSON types, with Go's wording."""

from __future__ import annotations

import copy

import pytest

from apiserver import typecheck

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}, "creationTimestamp": None},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{
                "name": "main", "image": "busybox", "command": ["sh"],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": {"limits": {"cpu": "500m", "memory": 1024}}}]},
        },
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
    },
    "status": {},
}


def with_change(path: list, value: object) -> dict:
    obj = copy.deepcopy(DEPLOYMENT)
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return obj


def test_a_well_typed_object_passes() -> None:
    assert typecheck.check("Deployment", DEPLOYMENT) is None


def test_null_is_the_zero_value_anywhere() -> None:
    assert typecheck.check("Deployment", with_change(["spec", "replicas"], None)) is None
    assert typecheck.check("Deployment", with_change(["metadata"], None)) is None


@pytest.mark.parametrize(("path", "value", "message"), [
    (["spec", "replicas"], "three",
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of "
     "type int32"),
    (["spec", "replicas"], 1.5,
     "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas "
     "of type int32"),
    (["spec", "replicas"], 2**31,
     "json: cannot unmarshal number into Go struct field DeploymentSpec.spec.replicas of "
     "type int32"),
    (["spec", "paused"], "yes",
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of "
     "type bool"),
    (["metadata"], "x",
     "json: cannot unmarshal string into Go struct field Deployment.metadata of type "
     "v1.ObjectMeta"),
    (["metadata", "labels"], ["a"],
     "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type "
     "map[string]string"),
    (["metadata", "labels", "app"], True,
     "json: cannot unmarshal bool into Go struct field ObjectMeta.metadata.labels of type "
     "string"),
    (["spec", "template", "spec", "containers"], "main",
     "json: cannot unmarshal string into Go struct field PodSpec.spec.template.spec."
     "containers of type []v1.Container"),
])
def test_wrong_types_are_named_as_go_names_them(path: list, value: object,
                                                message: str) -> None:
    assert typecheck.check("Deployment", with_change(path, value)) == message


def test_nested_list_items_name_their_own_struct() -> None:
    obj = copy.deepcopy(DEPLOYMENT)
    obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "80"
    assert typecheck.check("Deployment", obj) == (
        "json: cannot unmarshal string into Go struct field ContainerPort.spec.template.spec."
        "containers.ports.containerPort of type int32")


def test_kinds_without_a_table_check_metadata_only() -> None:
    assert typecheck.check("Event", {"metadata": {"name": "e"}, "count": "x"}) is None
    assert typecheck.check("Event", {"metadata": {"name": 1}}) is not None


def test_int_or_string_and_quantities() -> None:
    svc = {"spec": {"ports": [{"port": 80, "targetPort": "http"}]}}
    assert typecheck.check("Service", svc) is None
    svc["spec"]["ports"][0]["targetPort"] = 8080
    assert typecheck.check("Service", svc) is None
    svc["spec"]["ports"][0]["targetPort"] = [1]
    assert "of type intstr.IntOrString" in (typecheck.check("Service", svc) or "")
    pod = {"spec": {"containers": [{"name": "m", "resources": {"requests": {"cpu": True}}}]}}
    assert "of type resource.Quantity" in (typecheck.check("Pod", pod) or "")


def test_configmap_data_values_are_strings() -> None:
    assert typecheck.check("ConfigMap", {"data": {"a": "1"}}) is None
    assert typecheck.check("ConfigMap", {"data": {"a": 1}}) == (
        "json: cannot unmarshal number into Go struct field ConfigMap.data of type string")
