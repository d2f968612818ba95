"""apiserver.discovery: bodies checked against the captures in REQUIREMENTS §2, §3 and §12."""

from __future__ import annotations

import re
from typing import Any

import pytest

from apiserver import discovery, registry

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
RW = ["get", "patch", "update"]

# Accept headers as sent (REQUIREMENTS §2.3 and the evidence traces).
ACCEPT_1_32 = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)
ACCEPT_1_27 = (
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
)
ACCEPT_LEGACY = "application/json, */*"


def _entry(body: dict[str, Any] | None, name: str) -> dict[str, Any]:
    assert body is not None
    [found] = [r for r in body["resources"] if r["name"] == name]
    return found


def test_api_versions_matches_capture() -> None:
    assert discovery.api_versions("127.0.0.1:6443") == {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}
        ],
    }


def test_api_group_list_names_every_group_with_its_preferred_version() -> None:
    body = discovery.api_group_list()
    assert (body["kind"], body["apiVersion"]) == ("APIGroupList", "v1")
    assert [g["name"] for g in body["groups"]] == [
        "apps",
        "batch",
        "policy",  # kubectl 1.20's drain evicts only when this group is listed (§8)
        "rbac.authorization.k8s.io",
        "coordination.k8s.io",
    ]
    assert body["groups"][0] == {
        "name": "apps",
        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
    }


def test_core_resource_list_matches_capture() -> None:
    body = discovery.api_resource_list("", "v1")
    assert body is not None
    assert (body["kind"], body["apiVersion"], body["groupVersion"]) == (
        "APIResourceList",
        "v1",
        "v1",
    )
    pods = _entry(body, "pods")
    assert pods == {
        "name": "pods",
        "singularName": "pod",
        "namespaced": True,
        "kind": "Pod",
        "verbs": ALL_VERBS,
        "shortNames": ["po"],
        "categories": ["all"],
        "storageVersionHash": pods["storageVersionHash"],
    }
    assert _entry(body, "pods/log") == {
        "name": "pods/log",
        "singularName": "",
        "namespaced": True,
        "kind": "Pod",
        "verbs": ["get"],
    }
    assert _entry(body, "pods/status") == {
        "name": "pods/status",
        "singularName": "",
        "namespaced": True,
        "kind": "Pod",
        "verbs": RW,
    }
    assert _entry(body, "pods/eviction") == {
        "name": "pods/eviction",
        "singularName": "",
        "namespaced": True,
        "group": "policy",
        "version": "v1",
        "kind": "Eviction",
        "verbs": ["create"],
    }
    # Same group-version as the list: Kubernetes names none (kubectl then assumes v1).
    assert _entry(body, "pods/binding") == {
        "name": "pods/binding",
        "singularName": "",
        "namespaced": True,
        "kind": "Binding",
        "verbs": ["create"],
    }
    assert _entry(body, "serviceaccounts/token") == {
        "name": "serviceaccounts/token",
        "singularName": "",
        "namespaced": True,
        "group": "authentication.k8s.io",
        "version": "v1",
        "kind": "TokenRequest",
        "verbs": ["create"],
    }
    nodes = _entry(body, "nodes")
    assert (nodes["namespaced"], nodes["kind"], nodes["shortNames"]) == (False, "Node", ["no"])
    assert "categories" not in nodes
    assert "deletecollection" not in _entry(body, "namespaces")["verbs"]
    assert _entry(body, "namespaces/finalize")["verbs"] == ["update"]
    assert _entry(body, "services")["shortNames"] == ["svc"]
    assert "shortNames" not in _entry(body, "secrets")


def test_resource_lists_are_sorted_like_kubernetes() -> None:
    body = discovery.api_resource_list("", "v1")
    assert body is not None
    assert [r["name"] for r in body["resources"]] == [
        "configmaps",
        "endpoints",
        "events",
        "namespaces",
        "namespaces/finalize",
        "namespaces/status",
        "nodes",
        "nodes/proxy",
        "nodes/status",
        "pods",
        "pods/binding",
        "pods/eviction",
        "pods/log",
        "pods/status",
        "secrets",
        "serviceaccounts",
        "serviceaccounts/token",
        "services",
        "services/status",
    ]


def test_apps_resource_list_matches_capture() -> None:
    body = discovery.api_resource_list("apps", "v1")
    assert body is not None and body["groupVersion"] == "apps/v1"
    deployments = _entry(body, "deployments")
    assert deployments == {
        "name": "deployments",
        "singularName": "deployment",
        "namespaced": True,
        "kind": "Deployment",
        "verbs": ALL_VERBS,
        "shortNames": ["deploy"],
        "categories": ["all"],
        "storageVersionHash": deployments["storageVersionHash"],
    }
    assert _entry(body, "deployments/scale") == {
        "name": "deployments/scale",
        "singularName": "",
        "namespaced": True,
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
        "verbs": RW,
    }
    assert _entry(body, "replicasets")["shortNames"] == ["rs"]
    assert _entry(body, "replicasets/scale")["kind"] == "Scale"


def test_every_listed_group_version_has_a_non_empty_resource_list() -> None:
    for group, versions in registry.groups():
        for version in versions:
            body = discovery.api_resource_list(group, version)
            assert body is not None and body["resources"], (group, version)


@pytest.mark.parametrize(
    ("group", "version"),
    [("", "v2"), ("apps", "v1beta1"), ("autoscaling", "v1"), ("nosuch.example.com", "v1")],
)
def test_unserved_group_versions_have_no_list(group: str, version: str) -> None:
    assert discovery.api_resource_list(group, version) is None


def test_storage_version_hashes_equal_a_real_clusters() -> None:
    # Values read from a Kubernetes cluster's /api/v1.
    body = discovery.api_resource_list("", "v1")
    hashes = {
        _entry(body, n)["storageVersionHash"] for n in ("services", "secrets", "serviceaccounts")
    }
    assert hashes == {"0/CO1lhkEBI=", "S6u1pOWzb84=", "pbx9ZvyFpBE="}


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (ACCEPT_1_32, "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
        (ACCEPT_1_27, "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"),
        (ACCEPT_LEGACY, None),
        ("application/json", None),
        ("", None),
        (None, None),
        # newer client-go puts a nopeer profile first; we have no peers, so it is the same
        (
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;profile=nopeer,"
            + ACCEPT_1_32,
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        ),
        ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;profile=x", None),
        ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0", None),
        ("application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList", None),
        ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json", None),
        (
            "Application/JSON; as=APIGroupDiscoveryList; v=v2; g=apidiscovery.k8s.io",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        ),
    ],
)
def test_wants_aggregated(accept: str | None, expected: str | None) -> None:
    assert discovery.wants_aggregated(accept) == expected


def test_aggregated_apis_matches_capture() -> None:
    body = discovery.api_group_discovery_list(legacy=False)
    assert (body["kind"], body["apiVersion"]) == ("APIGroupDiscoveryList", "apidiscovery.k8s.io/v2")
    assert [item["metadata"]["name"] for item in body["items"]] == [
        "apps",
        "batch",
        "policy",
        "rbac.authorization.k8s.io",
        "coordination.k8s.io",
    ]
    [apps_v1] = body["items"][0]["versions"]
    assert (apps_v1["version"], apps_v1["freshness"]) == ("v1", "Current")
    assert apps_v1["resources"][0] == {
        "resource": "deployments",
        "responseKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "scope": "Namespaced",
        "singularResource": "deployment",
        "verbs": ALL_VERBS,
        "shortNames": ["deploy"],
        "categories": ["all"],
        "subresources": [
            {
                "subresource": "scale",
                "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                "verbs": RW,
            },
            {
                "subresource": "status",
                "responseKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "verbs": RW,
            },
        ],
    }


def test_aggregated_api_is_the_core_group_alone() -> None:
    body = discovery.api_group_discovery_list(legacy=True)
    [core] = body["items"]
    assert core["metadata"] == {}  # the core group's name is ""
    [v1] = core["versions"]
    pods = next(r for r in v1["resources"] if r["resource"] == "pods")
    evict = next(s for s in pods["subresources"] if s["subresource"] == "eviction")
    assert evict["responseKind"] == {"group": "policy", "version": "v1", "kind": "Eviction"}
    nodes = next(r for r in v1["resources"] if r["resource"] == "nodes")
    assert nodes["scope"] == "Cluster"


def test_aggregated_version_follows_the_content_type() -> None:
    v2beta1 = discovery.wants_aggregated(ACCEPT_1_27)
    assert v2beta1 is not None
    body = discovery.api_group_discovery_list(legacy=False, content_type=v2beta1)
    assert body["apiVersion"] == "apidiscovery.k8s.io/v2beta1"
    with pytest.raises(ValueError):
        discovery.api_group_discovery_list(legacy=False, content_type="application/json")


def _as_client_go_sees_it(
    group: str, version: str, aggregated: dict[str, Any]
) -> list[dict[str, Any]]:
    """client-go's aggregated -> legacy conversion (discovery/aggregated_discovery.go)."""
    [item] = [i for i in aggregated["items"] if i["metadata"].get("name", "") == group]
    [v] = [v for v in item["versions"] if v["version"] == version]
    out = []
    for r in v.get("resources", []):
        kind = r["responseKind"]
        parent = {
            "name": r["resource"],
            "singularName": r["singularResource"],
            "namespaced": r["scope"] == "Namespaced",
            "group": kind["group"],
            "version": kind["version"],
            "kind": kind["kind"],
            "verbs": r["verbs"],
            "shortNames": r.get("shortNames", []),
            "categories": r.get("categories", []),
        }
        out.append(parent)
        for s in r.get("subresources", []):
            out.append(
                {
                    "name": f"{r['resource']}/{s['subresource']}",
                    "namespaced": parent["namespaced"],
                    **s["responseKind"],
                    "verbs": s["verbs"],
                }
            )
    return out


def _legacy_as_client_go_sees_it(group: str, version: str) -> list[dict[str, Any]]:
    body = discovery.api_resource_list(group, version)
    assert body is not None
    out = []
    for r in body["resources"]:
        entry = {
            "name": r["name"],
            "namespaced": r["namespaced"],
            "group": r.get("group", group),
            "version": r.get("version", version),
            "kind": r["kind"],
            "verbs": r["verbs"],
        }
        if "/" not in r["name"]:
            entry["singularName"] = r["singularName"]
            entry["shortNames"] = r.get("shortNames", [])
            entry["categories"] = r.get("categories", [])
        out.append(entry)
    return out


def test_aggregated_and_legacy_discovery_tell_clients_the_same() -> None:
    for group, versions in registry.groups():
        aggregated = discovery.api_group_discovery_list(legacy=group == "")
        for version in versions:
            assert _as_client_go_sees_it(
                group, version, aggregated
            ) == _legacy_as_client_go_sees_it(group, version)


def test_version_info_picks_kubectl_1_32_from_the_dispatcher() -> None:
    info = discovery.version_info()
    assert (info["major"], info["minor"]) == ("1", "32")
    # semver with build metadata only: a pre-release ("-x") would sort below v1.32.0
    assert re.fullmatch(r"v1\.32\.\d+(\+[0-9A-Za-z.-]+)?", info["gitVersion"])
    # the fields of Go's version.Info, all strings
    assert set(info) == {
        "major",
        "minor",
        "gitVersion",
        "gitCommit",
        "gitTreeState",
        "buildDate",
        "goVersion",
        "compiler",
        "platform",
    }
    assert all(isinstance(v, str) for v in info.values())
    assert re.fullmatch(r"[a-z0-9]+/[a-z0-9_]+", info["platform"])
    assert discovery.version_info(git_commit="abc")["gitTreeState"] == "clean"


def _fields(data: bytes) -> list[tuple[int, bytes]]:
    """Top-level length-delimited protobuf fields (all this document has)."""
    out, i = [], 0
    while i < len(data):
        key, length = data[i], data[i + 1]  # every tag and length here fits one byte
        assert key & 7 == 2 and length < 0x80
        out.append((key >> 3, data[i + 2 : i + 2 + length]))
        i += 2 + length
    return out


def test_openapi_v2_matches_the_verified_32_bytes() -> None:
    captured = "0a03322e3012150a0a4b756265726e65746573120776312e32302e3242004a00"
    assert discovery.openapi_v2_protobuf("v1.20.2").hex() == captured


def test_openapi_v2_is_a_document_with_our_version() -> None:
    doc = _fields(discovery.openapi_v2_protobuf())
    assert doc[0] == (1, b"2.0")
    assert doc[2:] == [(8, b""), (9, b"")]
    assert _fields(doc[1][1]) == [(1, b"Kubernetes"), (2, discovery.GIT_VERSION.encode())]
    assert discovery.OPENAPI_V2_CONTENT_TYPE == "application/octet-stream"
    assert discovery.OPENAPI_V3_STATUS == 404
