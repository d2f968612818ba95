"""The default roles evaluated through rbac.authorize, and the node restriction."""

from __future__ import annotations

import itertools

import pytest

from apiserver.auth import bootstrap_policy, node_restriction, rbac
from apiserver.auth.node_restriction import NODE_LEASE_NAMESPACE
from apiserver.auth.rbac import Attributes
from apiserver.auth.user import ANONYMOUS, UserInfo

ROLES = bootstrap_policy.cluster_roles()
BINDINGS = bootstrap_policy.cluster_role_bindings()
AUTHED = ("system:authenticated",)
NODE = UserInfo("system:node:w1", "", ("system:nodes", *AUTHED))


def namespace_grant(role: str, user: str, ns: str) -> dict:
    return {
        "kind": "RoleBinding",
        "metadata": {"name": f"{user}-{role}", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "User", "name": user}],
    }


ROLE_BINDINGS = [
    namespace_grant("view", "viewer", "dev"),
    namespace_grant("edit", "editor", "dev"),
    namespace_grant("admin", "boss", "dev"),
]


def allowed(user: UserInfo | str, verb: str, **kw) -> bool:
    if isinstance(user, str):
        user = UserInfo(user, "", AUTHED)
    attrs = Attributes(user, verb, **kw)
    return rbac.authorize(attrs, {}, rbac.index_cluster_roles(ROLES), ROLE_BINDINGS, BINDINGS)[0]


def test_objects_are_well_formed() -> None:
    objs = bootstrap_policy.bootstrap_objects()
    keys = [(o["kind"], o["metadata"]["name"]) for o in objs]
    assert len(keys) == len(set(keys))
    role_names = {o["metadata"]["name"] for o in ROLES}
    assert {b["roleRef"]["name"] for b in BINDINGS} <= role_names
    for o in objs:
        assert o["apiVersion"] == "rbac.authorization.k8s.io/v1"
        assert o["metadata"]["labels"] == {"kubernetes.io/bootstrapping": "rbac-defaults"}
    assert objs[0] is not bootstrap_policy.bootstrap_objects()[0]  # fresh copies
    have = {("ClusterRole", "view"), ("ClusterRoleBinding", "cluster-admin")}
    assert {(o["kind"], o["metadata"]["name"]) for o in bootstrap_policy.missing(have)} == (
        set(keys) - have
    )


def test_masters_and_anonymous() -> None:
    root = UserInfo("root", "", ("system:masters", *AUTHED))
    assert allowed(root, "delete", resource="nodes", name="n")
    assert allowed(root, "post", non_resource_path="/anything")
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        assert allowed(ANONYMOUS, "get", non_resource_path=path)
    assert not allowed(ANONYMOUS, "get", non_resource_path="/api")
    assert not allowed(ANONYMOUS, "list", resource="namespaces")


def test_authenticated_users_discover_but_read_nothing() -> None:
    for path in ("/api", "/api/v1", "/apis", "/apis/apps/v1", "/openapi/v2", "/version/"):
        assert allowed("carol", "get", non_resource_path=path)
    assert not allowed("carol", "get", non_resource_path="/metrics")
    assert not allowed("carol", "list", resource="pods", namespace="dev")
    assert allowed(
        "carol", "create", api_group="authorization.k8s.io", resource="selfsubjectaccessreviews"
    )


def test_view_edit_admin_in_a_namespace() -> None:
    assert allowed("viewer", "list", resource="pods", namespace="dev")
    assert allowed("viewer", "get", resource="pods", subresource="log", namespace="dev", name="p")
    assert allowed("viewer", "get", resource="namespaces", namespace="dev", name="dev")
    assert allowed("viewer", "watch", api_group="apps", resource="deployments", namespace="dev")
    assert not allowed("viewer", "get", resource="secrets", namespace="dev", name="s")
    assert not allowed("viewer", "create", resource="pods", namespace="dev")
    assert not allowed("viewer", "list", resource="pods", namespace="prod")

    assert allowed("editor", "create", api_group="apps", resource="deployments", namespace="dev")
    assert allowed(
        "editor",
        "patch",
        api_group="apps",
        resource="deployments",
        subresource="scale",
        namespace="dev",
        name="d",
    )
    assert allowed("editor", "get", resource="secrets", namespace="dev", name="s")
    assert allowed(
        "editor", "create", resource="pods", subresource="eviction", namespace="dev", name="p"
    )
    assert not allowed(
        "editor", "update", resource="pods", subresource="status", namespace="dev", name="p"
    )
    assert not allowed(
        "editor",
        "create",
        api_group="rbac.authorization.k8s.io",
        resource="roles",
        namespace="dev",
    )

    assert allowed(
        "boss",
        "create",
        api_group="rbac.authorization.k8s.io",
        resource="rolebindings",
        namespace="dev",
    )
    assert not allowed("boss", "list", resource="nodes")


def test_scheduler_and_controller_manager() -> None:
    sched = "system:kube-scheduler"
    assert allowed(sched, "create", resource="pods", subresource="binding", namespace="a", name="p")
    assert allowed(sched, "watch", resource="nodes")
    assert allowed(
        sched,
        "update",
        api_group="coordination.k8s.io",
        resource="leases",
        namespace="kube-system",
        name="kube-scheduler",
    )
    assert not allowed(sched, "delete", resource="nodes", name="n")
    assert not allowed(sched, "create", resource="pods", namespace="a")

    kcm = "system:kube-controller-manager"
    assert allowed(kcm, "create", resource="pods", namespace="a")
    assert allowed(
        kcm,
        "update",
        api_group="apps",
        resource="deployments",
        subresource="status",
        namespace="a",
        name="d",
    )
    assert allowed(kcm, "list", resource="secrets")
    assert allowed(kcm, "deletecollection", resource="secrets", namespace="gone")
    assert allowed(kcm, "update", resource="nodes", subresource="status", name="w1")
    assert not allowed(kcm, "create", resource="secrets", namespace="a")
    assert not allowed(
        kcm, "create", api_group="rbac.authorization.k8s.io", resource="clusterrolebindings"
    )


def _node_rbac_triples() -> set[tuple[str, str, str]]:
    """(verb, group, resource) that the system:node ClusterRole grants."""
    node_role = next(r for r in ROLES if r["metadata"]["name"] == "system:node")
    out = set()
    for rule in node_role["rules"]:
        assert "resourceNames" not in rule and "*" not in rule["verbs"] + rule["resources"]
        out |= set(itertools.product(rule["verbs"], rule["apiGroups"], rule["resources"]))
    return out


def test_system_node_role_and_restriction_list_the_same_verbs() -> None:
    restriction = {
        (verb, group, f"{res}/{sub}" if sub else res)
        for (group, res, sub), verbs in node_restriction.ALLOWED.items()
        for verb in verbs
    }
    assert restriction == _node_rbac_triples()
    for verb, group, resource in restriction:  # and RBAC really grants each to a node
        res, _, sub = resource.partition("/")
        attrs = dict(api_group=group, resource=res, subresource=sub, namespace="x", name="w1")
        assert allowed(NODE, verb, **attrs), (verb, group, resource)


def pod(node: str) -> dict:
    return {"metadata": {"name": "p", "namespace": "a"}, "spec": {"nodeName": node}}


def check(user: UserInfo, verb: str, obj: dict | None = None, /, **kw: str) -> bool | None:
    calls = []

    def lookup() -> dict | None:
        calls.append(1)
        return obj

    verdict = node_restriction.node_restriction(user, Attributes(user, verb, **kw), lookup)
    assert len(calls) <= 1
    return verdict


def test_restriction_has_no_opinion_on_others() -> None:
    assert check(UserInfo("bob", "", AUTHED), "delete", resource="nodes", name="w1") is None
    impostor = UserInfo("system:node:w1", "", AUTHED)  # node-like name, not in system:nodes
    assert check(impostor, "update", resource="nodes", name="w2") is None
    assert check(NODE, "get", non_resource_path="/api") is None


def test_restriction_nodes() -> None:
    assert check(NODE, "get", resource="nodes", name="w2") is True
    assert check(NODE, "list", resource="nodes") is True
    assert check(NODE, "update", resource="nodes", name="w1") is True
    assert check(NODE, "patch", resource="nodes", subresource="status", name="w1") is True
    assert check(NODE, "patch", resource="nodes", subresource="status", name="w2") is False
    assert check(NODE, "update", resource="nodes", name="w2") is False
    assert check(NODE, "delete", resource="nodes", name="w1") is False
    assert check(NODE, "create", {"metadata": {"name": "w1"}}, resource="nodes") is True
    assert check(NODE, "create", {"metadata": {"name": "w2"}}, resource="nodes") is False
    assert check(NODE, "create", None, resource="nodes") is False


@pytest.mark.parametrize("verb", ["get", "update", "patch"])
def test_restriction_own_lease_only(verb: str) -> None:
    lease = dict(api_group="coordination.k8s.io", resource="leases")
    assert check(NODE, verb, namespace=NODE_LEASE_NAMESPACE, name="w1", **lease) is True
    assert check(NODE, verb, namespace=NODE_LEASE_NAMESPACE, name="w2", **lease) is False
    assert check(NODE, verb, namespace="kube-system", name="w1", **lease) is False


def test_restriction_lease_create_and_list() -> None:
    lease = dict(api_group="coordination.k8s.io", resource="leases", namespace=NODE_LEASE_NAMESPACE)
    assert check(NODE, "create", {"metadata": {"name": "w1"}}, **lease) is True
    assert check(NODE, "create", {"metadata": {"name": "w2"}}, **lease) is False
    assert check(NODE, "list", **lease) is False
    assert check(NODE, "delete", name="w1", **lease) is False


def test_restriction_pods() -> None:
    status = dict(resource="pods", subresource="status", namespace="a", name="p")
    assert check(NODE, "update", pod("w1"), **status) is True
    assert check(NODE, "patch", pod("w1"), **status) is True
    assert check(NODE, "update", pod("w2"), **status) is False
    assert check(NODE, "update", pod(""), **status) is False  # not scheduled yet
    assert check(NODE, "update", None, **status) is False  # no such pod
    assert check(NODE, "delete", pod("w1"), resource="pods", namespace="a", name="p") is True
    assert check(NODE, "delete", pod("w2"), resource="pods", namespace="a", name="p") is False
    assert check(NODE, "list", resource="pods") is True
    assert check(NODE, "get", resource="pods", namespace="a", name="p") is True
    assert check(NODE, "create", pod("w1"), resource="pods", namespace="a") is False
    assert check(NODE, "update", pod("w1"), resource="pods", namespace="a", name="p") is False


def test_restriction_reads_events_and_the_rest() -> None:
    assert check(NODE, "watch", resource="services") is True
    assert check(NODE, "list", resource="endpoints", namespace="a") is True
    assert check(NODE, "list", api_group="discovery.k8s.io", resource="endpointslices") is True
    assert check(NODE, "create", resource="events", namespace="a") is True
    assert check(NODE, "create", api_group="events.k8s.io", resource="events", namespace="a")
    assert check(NODE, "delete", resource="services", namespace="a", name="s") is False
    assert check(NODE, "get", resource="secrets", namespace="a", name="s") is False
    assert check(NODE, "get", resource="configmaps", namespace="a", name="c") is False
    assert (
        check(NODE, "create", resource="pods", subresource="eviction", namespace="a", name="p")
        is False
    )
    assert check(NODE, "list", api_group="apps", resource="deployments") is False
