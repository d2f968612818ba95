"""apiserver.registry: the served resources as Kubernetes 1.32 names them, and storage keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apiserver import registry
from apiserver.registry import RESOURCES, Resource

# plural -> (apiVersion, kind, namespaced, shortNames, categories, subresources), written
# out from a real 1.32 cluster's discovery so that a slip in RESOURCES shows up here.
EXPECTED = {
    "configmaps": ("v1", "ConfigMap", True, ("cm",), (), ()),
    "endpoints": ("v1", "Endpoints", True, ("ep",), (), ()),
    "events": ("v1", "Event", True, ("ev",), (), ()),
    "namespaces": ("v1", "Namespace", False, ("ns",), (), ("finalize", "status")),
    "nodes": ("v1", "Node", False, ("no",), (), ("proxy", "status")),
    "pods": ("v1", "Pod", True, ("po",), ("all",), ("binding", "eviction", "log", "status")),
    "secrets": ("v1", "Secret", True, (), (), ()),
    "serviceaccounts": ("v1", "ServiceAccount", True, ("sa",), (), ("token",)),
    "services": ("v1", "Service", True, ("svc",), ("all",), ("status",)),
    "deployments": ("apps/v1", "Deployment", True, ("deploy",), ("all",), ("scale", "status")),
    "replicasets": ("apps/v1", "ReplicaSet", True, ("rs",), ("all",), ("scale", "status")),
    "jobs": ("batch/v1", "Job", True, (), ("all",), ("status",)),
    "poddisruptionbudgets": ("policy/v1", "PodDisruptionBudget", True, ("pdb",), (), ("status",)),
    "clusterrolebindings": (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        False,
        (),
        (),
        (),
    ),
    "clusterroles": ("rbac.authorization.k8s.io/v1", "ClusterRole", False, (), (), ()),
    "rolebindings": ("rbac.authorization.k8s.io/v1", "RoleBinding", True, (), (), ()),
    "roles": ("rbac.authorization.k8s.io/v1", "Role", True, (), (), ()),
    "leases": ("coordination.k8s.io/v1", "Lease", True, (), (), ()),
}

POD = registry.lookup("", "v1", "pods")
NODE = registry.lookup("", "v1", "nodes")
DEPLOYMENT = registry.lookup("apps", "v1", "deployments")


def _ids(r: Resource) -> str:
    return r.group_resource


def test_the_served_set_is_exactly_the_expected_one() -> None:
    assert [r.plural for r in RESOURCES] == list(EXPECTED)


@pytest.mark.parametrize("resource", RESOURCES, ids=_ids)
def test_every_resource_is_found_by_url_parts_and_by_kind(resource: Resource) -> None:
    api_version, kind, namespaced, short_names, categories, subresources = EXPECTED[resource.plural]
    group, _, version = api_version.rpartition("/")
    assert registry.lookup(group, version, resource.plural) is resource
    assert registry.by_kind(api_version, kind) is resource
    assert resource.api_version == api_version
    assert (resource.kind, resource.namespaced) == (kind, namespaced)
    assert (resource.short_names, resource.categories) == (short_names, categories)
    assert resource.subresources == subresources
    assert resource.list_kind == kind + "List"
    assert resource.singular == resource.plural.removesuffix("s") or resource.plural == "endpoints"


def test_misses_are_none_not_near_matches() -> None:
    assert registry.lookup("apps", "v1", "pods") is None  # right plural, wrong group
    assert registry.lookup("", "v1", "deployments") is None
    assert registry.lookup("", "v2", "pods") is None
    assert registry.lookup("", "v1", "pod") is None  # singular is not a URL form
    assert registry.lookup("", "v1", "po") is None  # nor is a short name
    assert registry.by_kind("apps/v1", "Pod") is None
    assert registry.by_kind("v1", "Deployment") is None
    assert registry.by_kind("apps/v1beta1", "Deployment") is None


def test_names_kubernetes_messages_use() -> None:
    assert POD is not None and DEPLOYMENT is not None
    assert (POD.api_version, POD.list_kind, POD.group_resource) == ("v1", "PodList", "pods")
    assert DEPLOYMENT.group_resource == "deployments.apps"
    assert DEPLOYMENT.list_kind == "DeploymentList"
    rbac = registry.lookup("rbac.authorization.k8s.io", "v1", "clusterroles")
    assert rbac is not None and rbac.group_resource == "clusterroles.rbac.authorization.k8s.io"


def test_names_are_unambiguous() -> None:
    # Plurals key storage; short names and singulars are what kubectl resolves.
    plurals = [r.plural for r in RESOURCES]
    assert len(set(plurals)) == len(plurals)
    names = [n for r in RESOURCES for n in (*r.short_names, r.singular)]
    assert len(set(names)) == len(names)
    assert not set(names) & set(plurals) - {"endpoints"}  # endpoints is its own singular
    assert len({(r.api_version, r.kind) for r in RESOURCES}) == len(RESOURCES)


def test_category_all_is_what_kubectl_get_all_lists() -> None:
    assert {r.plural for r in RESOURCES if "all" in r.categories} == {
        "pods",
        "services",
        "deployments",
        "replicasets",
        "jobs",
    }


def test_verbs_match_kubernetes() -> None:
    full = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
    for r in RESOURCES:
        expected = (
            tuple(v for v in full if v != "deletecollection") if r.plural == "namespaces" else full
        )
        assert r.verbs == expected, r.plural


def test_subresources_answer_their_own_kinds() -> None:
    assert POD is not None and DEPLOYMENT is not None and NODE is not None
    sa = registry.lookup("", "v1", "serviceaccounts")
    ns = registry.lookup("", "v1", "namespaces")
    assert sa is not None and ns is not None

    def sub(r: Resource, name: str) -> tuple[str, str, tuple[str, ...]]:
        s = registry.subresource(r, name)
        assert s is not None and s.name == name
        return s.api_version, s.kind, s.verbs

    assert sub(POD, "eviction") == ("policy/v1", "Eviction", ("create",))
    assert sub(POD, "binding") == ("v1", "Binding", ("create",))
    assert sub(POD, "log") == ("v1", "Pod", ("get",))
    assert sub(POD, "status") == ("v1", "Pod", ("get", "patch", "update"))
    assert sub(DEPLOYMENT, "scale") == ("autoscaling/v1", "Scale", ("get", "patch", "update"))
    assert sub(DEPLOYMENT, "status") == ("apps/v1", "Deployment", ("get", "patch", "update"))
    assert sub(sa, "token") == ("authentication.k8s.io/v1", "TokenRequest", ("create",))
    assert sub(ns, "finalize") == ("v1", "Namespace", ("update",))
    assert sub(NODE, "status") == ("v1", "Node", ("get", "patch", "update"))
    assert registry.subresource(POD, "scale") is None
    assert registry.subresource(NODE, "log") is None
    for r in RESOURCES:  # every name used has a definition
        assert [s.name for s in registry.subresources_of(r)] == list(r.subresources)


def test_groups_in_kubernetes_discovery_order() -> None:
    assert registry.groups() == [
        ("", ["v1"]),
        ("apps", ["v1"]),
        ("batch", ["v1"]),
        ("policy", ["v1"]),
        ("rbac.authorization.k8s.io", ["v1"]),
        ("coordination.k8s.io", ["v1"]),
    ]


def test_resources_are_in_discovery_order_and_no_group_version_is_empty() -> None:
    # kubectl 1.32's legacy discovery fails `api-resources` on an empty group-version.
    order = [g for g, _ in registry.groups()]
    assert list(RESOURCES) == sorted(RESOURCES, key=lambda r: (order.index(r.group), r.plural))
    for group, versions in registry.groups():
        for version in versions:
            assert registry.resources_in(group, version)


def test_storage_keys() -> None:
    assert POD is not None and NODE is not None and DEPLOYMENT is not None
    assert registry.storage_key(POD, "default", "web-1") == "/registry/pods/default/web-1"
    assert registry.storage_key(NODE, None, "node-1") == "/registry/nodes/node-1"
    assert registry.storage_key(NODE, "", "node-1") == "/registry/nodes/node-1"
    assert registry.storage_key(DEPLOYMENT, "ns", "web") == "/registry/deployments/ns/web"
    assert registry.storage_prefix(POD) == "/registry/pods/"
    assert registry.storage_prefix(POD, "default") == "/registry/pods/default/"
    assert registry.storage_prefix(NODE) == "/registry/nodes/"


@pytest.mark.parametrize(
    ("plural", "namespace", "name"),
    [
        ("pods", None, "p"),  # namespaced needs a namespace
        ("pods", "", "p"),
        ("nodes", "default", "n"),  # cluster-scoped takes none
        ("pods", "default", ""),
        ("pods", "default", "a/b"),  # would reach into another key's prefix
        ("pods", "a/b", "p"),
    ],
)
def test_storage_key_refuses_keys_that_would_alias(
    plural: str, namespace: str | None, name: str
) -> None:
    resource = registry.lookup("", "v1", plural)
    assert resource is not None
    with pytest.raises(ValueError):
        registry.storage_key(resource, namespace, name)


def test_storage_prefix_refuses_a_namespace_for_cluster_scoped() -> None:
    assert NODE is not None and POD is not None
    with pytest.raises(ValueError):
        registry.storage_prefix(NODE, "default")
    with pytest.raises(ValueError):
        registry.storage_prefix(POD, "")


_segment = st.text(alphabet="abc-.1", min_size=1, max_size=4)


@given(ns1=_segment, name1=_segment, ns2=_segment, name2=_segment)
def test_a_namespace_prefix_holds_exactly_that_namespaces_keys(
    ns1: str, name1: str, ns2: str, name2: str
) -> None:
    assert POD is not None
    key = registry.storage_key(POD, ns1, name1)
    assert key.startswith(registry.storage_prefix(POD))
    assert key.startswith(registry.storage_prefix(POD, ns2)) == (ns1 == ns2)
    assert (key == registry.storage_key(POD, ns2, name2)) == ((ns1, name1) == (ns2, name2))
