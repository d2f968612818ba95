"""RBAC evaluation with Kubernetes' semantics, and its Forbidden messages."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from apiserver.auth import rbac
from apiserver.auth.rbac import Attributes
from apiserver.auth.user import UserInfo

BOB = UserInfo("bob", "", ("devs", "system:authenticated"))
SA = UserInfo(
    "system:serviceaccount:ci:builder",
    "",
    ("system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"),
)


def rule(verbs, groups=("",), resources=(), names=(), urls=()) -> dict:
    out: dict = {"verbs": list(verbs)}
    if urls:
        out["nonResourceURLs"] = list(urls)
    else:
        out["apiGroups"], out["resources"] = list(groups), list(resources)
    if names:
        out["resourceNames"] = list(names)
    return out


def cluster_role(name: str, *rules: dict) -> dict:
    return {"kind": "ClusterRole", "metadata": {"name": name}, "rules": list(rules)}


def role(ns: str, name: str, *rules: dict) -> dict:
    return {"kind": "Role", "metadata": {"namespace": ns, "name": name}, "rules": list(rules)}


def subject(kind: str, name: str, namespace: str | None = None) -> dict:
    s = {"kind": kind, "name": name}
    if namespace is not None:
        s["namespace"] = namespace
    return s


def binding(name: str, kind: str, role_name: str, subjects: list[dict], ns: str = "") -> dict:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {
        "kind": "RoleBinding" if ns else "ClusterRoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role_name},
        "subjects": subjects,
    }


CLUSTER_ROLES = [
    cluster_role("pod-reader", rule(["get", "list", "watch"], resources=["pods"])),
    cluster_role("log-reader", rule(["get"], resources=["pods/log"])),
    cluster_role("any-status", rule(["update"], groups=["*"], resources=["*/status"])),
    cluster_role("one-cm", rule(["get", "update"], resources=["configmaps"], names=["app-cfg"])),
    cluster_role("node-reader", rule(["get", "list"], resources=["nodes"])),
    cluster_role("metrics", rule(["get"], urls=["/metrics", "/logs/*"])),
    cluster_role("apps-all", rule(["*"], groups=["apps"], resources=["*"])),
]
ROLES = [role("dev", "secrets-rw", rule(["*"], resources=["secrets"]))]
ROLE_BINDINGS = [
    binding("bob-pods", "ClusterRole", "pod-reader", [subject("User", "bob")], ns="dev"),
    binding("bob-secrets", "Role", "secrets-rw", [subject("Group", "devs")], ns="dev"),
    binding("sa-cm", "ClusterRole", "one-cm", [subject("ServiceAccount", "builder")], ns="ci"),
    binding("dangling", "Role", "gone", [subject("User", "bob")], ns="dev"),
]
CLUSTER_ROLE_BINDINGS = [
    binding("bob-logs", "ClusterRole", "log-reader", [subject("User", "bob")]),
    binding("devs-nodes", "ClusterRole", "node-reader", [subject("Group", "devs")]),
    binding("devs-metrics", "ClusterRole", "metrics", [subject("Group", "devs")]),
    binding("sa-status", "ClusterRole", "any-status", [subject("ServiceAccount", "builder", "ci")]),
    binding("sa-apps", "ClusterRole", "apps-all", [subject("ServiceAccount", "builder", "ci")]),
    binding("sa-no-ns", "ClusterRole", "node-reader", [subject("ServiceAccount", "builder")]),
]


def allowed(user: UserInfo, verb: str, **kw) -> bool:
    return decide(user, verb, **kw)[0]


def decide(user: UserInfo, verb: str, **kw) -> tuple[bool, str]:
    attrs = Attributes(user, verb, **kw)
    return rbac.authorize(
        attrs,
        rbac.index_roles(ROLES),
        rbac.index_cluster_roles(CLUSTER_ROLES),
        ROLE_BINDINGS,
        CLUSTER_ROLE_BINDINGS,
    )


def test_cluster_role_in_role_binding_is_namespace_scoped() -> None:
    assert allowed(BOB, "list", resource="pods", namespace="dev")
    assert not allowed(BOB, "list", resource="pods", namespace="prod")
    assert not allowed(BOB, "list", resource="pods")  # all namespaces: cluster scope
    assert not allowed(BOB, "delete", resource="pods", namespace="dev", name="p")


def test_cluster_role_binding_applies_everywhere() -> None:
    assert allowed(BOB, "list", resource="nodes")
    assert allowed(BOB, "get", resource="pods", subresource="log", namespace="x", name="p")
    assert not allowed(BOB, "get", resource="pods", namespace="x", name="p")  # log only


def test_role_and_group_subjects() -> None:
    assert allowed(BOB, "delete", resource="secrets", namespace="dev", name="s")
    assert not allowed(BOB, "get", resource="secrets", namespace="prod", name="s")
    assert not allowed(BOB, "get", api_group="apps", resource="secrets", namespace="dev", name="s")


def test_resource_names_restrict_and_never_allow_unnamed_verbs() -> None:
    assert allowed(SA, "get", resource="configmaps", namespace="ci", name="app-cfg")
    assert allowed(SA, "update", resource="configmaps", namespace="ci", name="app-cfg")
    assert not allowed(SA, "get", resource="configmaps", namespace="ci", name="other")
    assert not allowed(SA, "get", resource="configmaps", namespace="ci")  # a list carries no name


def test_subresources_and_wildcards() -> None:
    assert allowed(SA, "update", resource="pods", subresource="status", namespace="a", name="p")
    assert allowed(
        SA,
        "update",
        api_group="apps",
        resource="deployments",
        subresource="status",
        namespace="a",
        name="d",
    )
    assert not allowed(SA, "update", resource="pods", namespace="a", name="p")  # */status only
    assert not allowed(SA, "update", resource="pods", subresource="log", namespace="a", name="p")
    # "*" resources include subresources, but only in the named group
    assert allowed(
        SA,
        "patch",
        api_group="apps",
        resource="deployments",
        subresource="scale",
        namespace="a",
        name="d",
    )
    assert not allowed(SA, "patch", api_group="batch", resource="jobs", namespace="a", name="j")


def test_service_account_subject_without_namespace_in_cluster_binding_matches_nobody() -> None:
    assert not allowed(SA, "list", resource="nodes")  # sa-no-ns names no namespace
    assert not rbac.subject_matches(SA, subject("ServiceAccount", "builder"), "")
    # ...while in a RoleBinding it defaults to the binding's namespace
    assert rbac.subject_matches(SA, subject("ServiceAccount", "builder"), "ci")
    assert not rbac.subject_matches(SA, subject("ServiceAccount", "builder"), "dev")


def test_non_resource_urls() -> None:
    assert allowed(BOB, "get", non_resource_path="/metrics")
    assert not allowed(BOB, "get", non_resource_path="/metrics/x")
    assert allowed(BOB, "get", non_resource_path="/logs/kube.log")
    assert allowed(BOB, "get", non_resource_path="/logs/")
    assert not allowed(BOB, "get", non_resource_path="/logs")
    assert not allowed(BOB, "post", non_resource_path="/metrics")
    # a resource rule never allows a path and vice versa
    assert not rbac.rule_allows(
        Attributes(BOB, "get", non_resource_path="/api"), rule(["*"], ["*"], ["*"])
    )
    assert not rbac.rule_allows(Attributes(BOB, "get", resource="pods"), rule(["get"], urls=["*"]))


def test_system_masters_always_allowed() -> None:
    root = UserInfo("root", "", ("system:masters",))
    ok, reason = rbac.authorize(
        Attributes(root, "delete", resource="nodes", name="n"), {}, {}, [], []
    )
    assert ok and "system:masters" in reason


def test_reasons() -> None:
    ok, reason = decide(BOB, "list", resource="pods", namespace="dev")
    assert ok
    assert reason == (
        'RBAC: allowed by RoleBinding "bob-pods/dev" of ClusterRole "pod-reader" to User "bob"'
    )
    ok, reason = decide(BOB, "list", resource="nodes")
    assert reason == (
        'RBAC: allowed by ClusterRoleBinding "devs-nodes" of ClusterRole "node-reader" '
        'to Group "devs"'
    )
    ok, reason = decide(BOB, "create", resource="pods", namespace="dev")
    assert not ok and reason == 'RBAC: role.rbac.authorization.k8s.io "gone" not found'
    ok, reason = decide(BOB, "create", resource="pods", namespace="prod")
    assert not ok and reason == ""


@dataclass
class FakeRequestInfo:
    is_resource: bool
    path: str
    verb: str
    group: str = ""
    namespace: str | None = None
    plural: str = ""
    name: str = ""
    subresource: str = ""


def test_attributes_from_request() -> None:
    info = FakeRequestInfo(True, "/api/v1/namespaces/dev", "get", plural="namespaces", name="dev")
    assert rbac.attributes_from_request(BOB, info).namespace == "dev"
    info = FakeRequestInfo(False, "/healthz", "get")
    assert rbac.attributes_from_request(BOB, info) == Attributes(
        BOB, "get", non_resource_path="/healthz"
    )


@pytest.mark.parametrize(
    ("attrs", "message", "details"),
    [
        (
            Attributes(BOB, "get", "", "pods", "", "default", "x"),
            'pods "x" is forbidden: User "bob" cannot get resource "pods" in API group "" '
            'in the namespace "default"',
            {"name": "x", "kind": "pods"},
        ),
        (
            Attributes(BOB, "list", "", "nodes"),
            'nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" '
            "at the cluster scope",
            {"kind": "nodes"},
        ),
        (
            Attributes(BOB, "patch", "apps", "deployments", "scale", "web", "d1"),
            'deployments.apps "d1" is forbidden: User "bob" cannot patch resource '
            '"deployments/scale" in API group "apps" in the namespace "web"',
            {"name": "d1", "group": "apps", "kind": "deployments"},
        ),
        (
            Attributes(UserInfo("system:anonymous"), "get", non_resource_path="/metrics"),
            'forbidden: User "system:anonymous" cannot get path "/metrics"',
            {},
        ),
        (
            Attributes(UserInfo("<b>"), "get", non_resource_path="/x"),
            'forbidden: User "&lt;b&gt;" cannot get path "/x"',
            {},
        ),
    ],
)
def test_forbidden_message(attrs: Attributes, message: str, details: dict) -> None:
    assert rbac.forbidden_message(attrs) == message
    assert rbac.forbidden_details(attrs) == details


def test_forbidden_message_with_reason() -> None:
    attrs = Attributes(BOB, "list", "", "pods", "", "dev")
    assert rbac.forbidden_message(attrs, 'RBAC: role.rbac.authorization.k8s.io "r" not found') == (
        'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the '
        'namespace "dev": RBAC: role.rbac.authorization.k8s.io "r" not found'
    )
