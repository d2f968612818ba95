"""PATCH bodies, starting from what real kubectl 1.32 sent (tests/unit/data/kubectl-patches.json)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from apiserver import patches
from apiserver.patches import PatchError, apply_patch

CAPTURED = json.loads((Path(__file__).parent / "data" / "kubectl-patches.json").read_text())[
    "requests"
]
SMP = patches.STRATEGIC_MERGE_PATCH
MERGE = patches.MERGE_PATCH
JSONP = patches.JSON_PATCH
APPLY = patches.APPLY_PATCH


def captured(name: str) -> bytes:
    return CAPTURED[name]["body"].encode()


def live_deployment() -> dict[str, Any]:
    """The object `kubectl apply -f web.yaml` created, as the server stored it."""
    obj = json.loads(captured("apply-create"))
    obj["metadata"].update(uid="u-web", resourceVersion="11", generation=1)
    obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP"
    obj["status"] = {"replicas": 2, "observedGeneration": 1}
    return obj


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]


def smp(original: dict[str, Any], patch: Any, kind: str = "Deployment") -> dict[str, Any]:
    return apply_patch(SMP, original, json.dumps(patch).encode(), kind)


def test_second_apply_keeps_image_and_ports_of_the_live_containers() -> None:
    live = live_deployment()
    before = copy.deepcopy(live)
    out = apply_patch(SMP, live, captured("apply-second-run"), "Deployment")
    assert live == before  # inputs are never changed
    assert out["spec"]["replicas"] == 4
    main, side2 = containers(out)
    assert main == {
        "command": ["sh", "-c", "echo started v2; sleep 3600"],
        "env": [{"name": "B", "value": "2"}],  # A removed by {"$patch": "delete"}
        "image": "busybox",  # not in the patch: kept
        "name": "main",
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
    }
    assert side2 == {"image": "nginx", "name": "side2"}  # side deleted, side2 added in order
    annotation = out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert '"replicas":4' in annotation
    assert out["metadata"]["uid"] == "u-web" and out["status"] == live["status"]
    assert "$setElementOrder/containers" not in json.dumps(out)


def test_the_apply_patch_quoted_in_the_requirements() -> None:
    live = live_deployment()
    del containers(live)[1]
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}},
        "spec": {
            "replicas": 4,
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "main"}],
                    "containers": [
                        {"command": ["sh", "-c", "echo started v2; sleep 3600"], "name": "main"}
                    ],
                }
            },
        },
    }
    (main,) = containers(smp(live, patch))
    assert main["image"] == "busybox" and main["ports"][0]["containerPort"] == 8080
    assert main["command"][2] == "echo started v2; sleep 3600"


def test_the_same_patch_as_a_json_merge_patch_would_drop_the_image() -> None:
    out = apply_patch(MERGE, live_deployment(), captured("apply-second-run"), "Deployment")
    assert "image" not in containers(out)[0]  # why apply must not be treated as merge patch


def test_rollout_restart_adds_the_template_annotation_only() -> None:
    live = live_deployment()
    out = apply_patch(SMP, live, captured("rollout-restart"), "Deployment")
    assert out["spec"]["template"]["metadata"] == {
        "labels": {"app": "web"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-22T15:19:41Z"},
    }
    assert containers(out) == containers(live)


def test_set_image_changes_one_container_and_keeps_the_order() -> None:
    out = apply_patch(SMP, live_deployment(), captured("set-image"), "Deployment")
    assert [(c["name"], c["image"]) for c in containers(out)] == [
        ("main", "busybox:1.36"),
        ("side", "nginx"),
    ]
    assert containers(out)[0]["ports"][0]["containerPort"] == 8080


def test_cordon_and_uncordon() -> None:
    node = {"kind": "Node", "metadata": {"name": "node-1"}, "spec": {"podCIDR": "10.244.0.0/24"}}
    cordoned = apply_patch(SMP, node, captured("cordon"), "Node")
    assert cordoned["spec"] == {"podCIDR": "10.244.0.0/24", "unschedulable": True}
    uncordoned = apply_patch(SMP, cordoned, b'{"spec":{"unschedulable":null}}', "Node")
    assert uncordoned["spec"] == {"podCIDR": "10.244.0.0/24"}  # null removes the key


def test_label_annotate_and_unlabel_are_merge_patches() -> None:
    out = apply_patch(MERGE, live_deployment(), captured("label"), "Deployment")
    assert out["metadata"]["labels"] == {"app": "web", "tier": "fe"}
    out = apply_patch(MERGE, out, captured("annotate"), "Deployment")
    assert out["metadata"]["annotations"]["note"] == "x"
    assert len(out["metadata"]["annotations"]) == 2
    out = apply_patch(MERGE, out, captured("unlabel"), "Deployment")
    assert out["metadata"]["labels"] == {"tier": "fe"}


def test_scale_patch_on_the_scale_subresource() -> None:
    scale = {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "web"}}
    scale |= {"spec": {"replicas": 2}, "status": {"replicas": 2, "selector": "app=web"}}
    out = apply_patch(MERGE, scale, captured("scale"), "Scale")
    assert out["spec"] == {"replicas": 5} and out["status"] == scale["status"]


def test_merge_patch_follows_rfc_7386() -> None:
    original = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    patch = b'{"a": {"b": null, "c": [3], "e": {"f": null, "g": 1}}, "d": {"h": 1}}'
    assert apply_patch(MERGE + "; charset=utf-8", original, patch, "ConfigMap") == {
        "a": {"c": [3], "e": {"g": 1}},
        "d": {"h": 1},
    }


def test_json_patch_operations() -> None:
    out = apply_patch(JSONP, live_deployment(), captured("json-patch"), "Deployment")
    assert out["spec"]["replicas"] == 3
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "add", "path": "/metadata/labels/tier", "value": "fe"},
        {"op": "remove", "path": "/spec/template/spec/containers/1"},
        {"op": "copy", "from": "/metadata/name", "path": "/metadata/annotations/copied"},
        {"op": "move", "from": "/spec/selector", "path": "/spec/moved"},
    ]
    out = apply_patch(JSONP, live_deployment(), json.dumps(ops).encode(), "Deployment")
    assert out["metadata"]["labels"]["tier"] == "fe" and len(containers(out)) == 1
    assert out["metadata"]["annotations"]["copied"] == "web"
    assert "selector" not in out["spec"] and out["spec"]["moved"] == {"matchLabels": {"app": "web"}}


@pytest.mark.parametrize(
    ("ops", "code", "text"),
    [
        ([{"op": "test", "path": "/spec/replicas", "value": 9}], 422, "test operation failed"),
        ([{"op": "remove", "path": "/spec/nosuch"}], 422, "could not be applied"),
        ([{"op": "add", "path": "/no/such/parent", "value": 1}], 422, "could not be applied"),
        ([{"op": "frobnicate", "path": "/spec"}], 400, "invalid JSON patch"),
        ([{"path": "/spec"}], 400, "invalid JSON patch"),
        ({"op": "add"}, 400, "expected a list of operations"),
        ([{"op": "replace", "path": "", "value": [1]}], 422, "did not produce an object"),
    ],
)
def test_json_patch_failures_are_clear(ops: Any, code: int, text: str) -> None:
    with pytest.raises(PatchError) as err:
        apply_patch(JSONP, live_deployment(), json.dumps(ops).encode(), "Deployment")
    assert err.value.code == code and text in err.value.message


def test_server_side_apply_creates_then_merges_without_removing() -> None:
    body = captured("server-side-apply")
    created = apply_patch(APPLY, {}, body, "Deployment")
    assert created == json.loads(body)
    live = live_deployment()
    yaml_body = (
        b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 7\n"
    )
    yaml_body += (
        b"  template:\n    spec:\n      containers:\n      - {name: side, image: nginx:2}\n"
    )
    out = apply_patch(APPLY, live, yaml_body, "Deployment")
    assert out["spec"]["replicas"] == 7 and out["status"] == live["status"]
    assert [(c["name"], c["image"]) for c in containers(out)] == [
        ("main", "busybox"),
        ("side", "nginx:2"),
    ]


@pytest.mark.parametrize(
    ("content_type", "body", "code"),
    [
        (SMP, b"{not json", 400),
        (SMP, b"[1, 2]", 400),
        (MERGE, b'"text"', 400),
        (JSONP, b"{", 400),
        (APPLY, b"- a list\n", 400),
        (APPLY, b"a: [unclosed\n", 400),
        ("application/xml", b"<x/>", 415),
    ],
)
def test_unreadable_bodies(content_type: str, body: bytes, code: int) -> None:
    with pytest.raises(PatchError) as err:
        apply_patch(content_type, {"metadata": {"name": "x"}}, body, "Pod")
    assert err.value.code == code


def pod(*names: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": n, "image": n} for n in names], **spec},
    }


def test_an_added_container_goes_first_without_set_element_order() -> None:
    # As in Kubernetes (see "Notes on the strategic merge patch" in the kubectl patch docs).
    out = smp(pod("a", "b"), {"spec": {"containers": [{"name": "c", "image": "c"}]}}, "Pod")
    assert [c["name"] for c in out["spec"]["containers"]] == ["c", "a", "b"]
    order = {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}
    out = smp(
        pod("a", "b"), {"spec": {**order, "containers": [{"name": "c", "image": "c"}]}}, "Pod"
    )
    assert [c["name"] for c in out["spec"]["containers"]] == ["a", "b", "c"]


def test_set_element_order_keeps_server_only_items_in_place() -> None:
    live = pod("a", "b", "d")
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "c"}],
            "containers": [{"name": "c", "image": "c"}, {"name": "a", "$patch": "delete"}],
        }
    }
    assert [c["name"] for c in smp(live, patch, "Pod")["spec"]["containers"]] == ["b", "d", "c"]
    bad = {"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "z"}]}}
    with pytest.raises(PatchError, match="doesn't match"):
        smp(live, bad, "Pod")


def test_lists_merge_by_their_declared_keys() -> None:
    live = pod("main", initContainers=[{"name": "init", "image": "x"}])
    c = live["spec"]["containers"][0]
    c["ports"] = [{"containerPort": 80, "name": "http"}, {"containerPort": 81}]
    c["volumeMounts"] = [{"mountPath": "/a", "name": "v1"}]
    live["spec"]["volumes"] = [{"name": "v1", "emptyDir": {}}]
    live["spec"]["tolerations"] = [{"key": "a", "operator": "Exists"}]
    live["spec"]["hostAliases"] = [{"ip": "1.2.3.4", "hostnames": ["a"]}]
    live["metadata"]["ownerReferences"] = [{"uid": "u1", "name": "rs1", "kind": "ReplicaSet"}]
    patch = {
        "metadata": {"ownerReferences": [{"uid": "u1", "controller": True}]},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "volumeMounts": [{"mountPath": "/a", "readOnly": True}],
                }
            ],
            "initContainers": [{"name": "init", "image": "y"}],
            "volumes": [
                {"name": "v1", "$retainKeys": ["name", "configMap"], "configMap": {"name": "c"}}
            ],
            "tolerations": [{"key": "b", "operator": "Exists"}],
            "hostAliases": [{"ip": "1.2.3.4", "hostnames": ["b"]}],
        },
    }
    out = smp(live, patch, "Pod")
    main = out["spec"]["containers"][0]
    assert main["ports"] == [
        {"containerPort": 80, "name": "http", "protocol": "TCP"},
        {"containerPort": 81},
    ]
    assert main["volumeMounts"] == [{"mountPath": "/a", "name": "v1", "readOnly": True}]
    assert out["spec"]["initContainers"] == [{"name": "init", "image": "y"}]
    assert out["spec"]["volumes"] == [
        {"name": "v1", "configMap": {"name": "c"}}
    ]  # emptyDir cleared
    assert out["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]  # atomic: replaced
    assert out["spec"]["hostAliases"] == [{"ip": "1.2.3.4", "hostnames": ["b"]}]
    assert out["metadata"]["ownerReferences"] == [
        {"uid": "u1", "name": "rs1", "kind": "ReplicaSet", "controller": True}
    ]


def test_service_ports_by_port_and_conditions_by_type() -> None:
    svc = {
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 9090}]},
    }
    out = smp(svc, {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443}]}}, "Service")
    assert out["spec"]["ports"] == [
        {"port": 80, "targetPort": 8080, "name": "http"},
        {"port": 443},
        {"port": 9090},
    ]
    status = {
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "Initialized", "status": "True"},
            ]
        }
    }
    out = smp(
        {"metadata": {"name": "p"}} | status,
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        "Pod",
    )
    assert out["status"]["conditions"] == [
        {"type": "Ready", "status": "True"},
        {"type": "Initialized", "status": "True"},
    ]


def test_finalizers_merge_as_an_ordered_set() -> None:
    live = {"metadata": {"name": "x", "finalizers": ["a", "b"]}}
    assert smp(live, {"metadata": {"finalizers": ["c", "a"]}}, "ConfigMap")["metadata"][
        "finalizers"
    ] == [
        "c",
        "a",
        "b",
    ]
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}
    assert smp(live, patch, "ConfigMap")["metadata"]["finalizers"] == ["b"]
    ns = {"metadata": {"name": "n"}, "spec": {"finalizers": ["kubernetes"]}}
    assert smp(ns, {"spec": {"finalizers": ["x"]}}, "Namespace")["spec"]["finalizers"] == ["x"]


def test_map_and_list_directives() -> None:
    live = live_deployment()
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
    live["spec"]["strategy"] = strategy
    recreate = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert smp(live, recreate)["spec"]["strategy"] == {"type": "Recreate"}
    replaced = smp(live, {"spec": {"selector": {"$patch": "replace", "matchLabels": {"x": "y"}}}})
    assert replaced["spec"]["selector"] == {"matchLabels": {"x": "y"}}
    deleted = smp(live, {"spec": {"template": {"metadata": {"$patch": "delete"}}}})
    assert deleted["spec"]["template"]["metadata"] == {}
    only = {
        "spec": {
            "template": {
                "spec": {"containers": [{"$patch": "replace"}, {"name": "solo", "image": "i"}]}
            }
        }
    }
    assert containers(smp(live, only)) == [{"name": "solo", "image": "i"}]
    with pytest.raises(PatchError, match="unknown patch type: merge"):
        smp(live, {"spec": {"$patch": "merge"}})
    with pytest.raises(PatchError, match="retainKeys"):
        smp(live, {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}})


def test_type_changes_and_nulls_inside_new_values() -> None:
    live = {"metadata": {"name": "c"}, "data": {"a": "1"}}
    out = smp(live, {"data": ["now", "a", "list"], "extra": {"keep": 1, "drop": None}}, "ConfigMap")
    assert out["data"] == ["now", "a", "list"] and out["extra"] == {"keep": 1}
    with pytest.raises(PatchError) as err:
        smp({"metadata": {"finalizers": []}}, {"metadata": {"finalizers": [["nested"]]}}, "Pod")
    assert err.value.code == 422 and "lists of lists" in err.value.message
    with pytest.raises(PatchError, match="not identical"):
        smp({"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": [1]}}, "Pod")
