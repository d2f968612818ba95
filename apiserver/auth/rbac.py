"""RBAC authorization, evaluated exactly as Kubernetes' RBAC authorizer does (pure).

A request is allowed when some rule reachable from the user allows it:

- every ClusterRoleBinding whose subjects include the user contributes its
  ClusterRole's rules, wherever the request goes;
- in a namespaced request, every RoleBinding of that namespace whose subjects include
  the user contributes its Role (same namespace) or ClusterRole, for that namespace
  only. That is how `admin`/`edit`/`view` are granted per namespace.

A rule allows a resource request when verb, API group, resource and resource name all
match: `*` matches any verb/group/resource; `pods/log` names a subresource and `*/log`
that subresource of anything; `resourceNames` restricts to those names (so it can never
allow list, watch, create or deletecollection, which carry no name). A rule allows a
non-resource request (`/healthz`) when verb and path match, a trailing `*` in
`nonResourceURLs` matching any path with that prefix. Subjects are `User` (by name),
`Group` (by membership) and `ServiceAccount` (by `system:serviceaccount:<ns>:<name>`,
the namespace defaulting to the binding's). There is no deny rule.

As in Kubernetes, members of `system:masters` are allowed everything before RBAC is
consulted, so a broken policy can always be repaired by an administrator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from apiserver import status
from apiserver.auth.user import SYSTEM_MASTERS, UserInfo, service_account_username

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Attributes:
    """What is asked: Kubernetes' authorizer.Attributes. A non-empty
    `non_resource_path` makes it a non-resource request (`/healthz`, `/apis`)."""

    user: UserInfo
    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    non_resource_path: str = ""

    @property
    def is_resource_request(self) -> bool:
        return not self.non_resource_path


class RequestLike(Protocol):
    """The parts of the handler's parsed request (request_info.RequestInfo) used here;
    read-only properties, so a frozen dataclass satisfies it."""

    @property
    def is_resource(self) -> bool: ...
    @property
    def path(self) -> str: ...
    @property
    def verb(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def namespace(self) -> str | None: ...
    @property
    def plural(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def subresource(self) -> str: ...


def attributes_from_request(user: UserInfo, info: RequestLike) -> Attributes:
    if not info.is_resource:
        return Attributes(user, info.verb, non_resource_path=info.path or "/")
    namespace = info.namespace or ""
    if info.plural == "namespaces" and info.name and not namespace:
        # Kubernetes treats /api/v1/namespaces/foo as being in namespace foo, so a
        # RoleBinding in foo can grant reading the namespace object itself.
        namespace = info.name
    return Attributes(
        user, info.verb, info.group, info.plural, info.subresource, namespace, info.name
    )


# --- matching ---------------------------------------------------------------------------


def _strings(rule: Obj, key: str) -> list[str]:
    return list(rule.get(key) or ())


def rule_allows(attrs: Attributes, rule: Obj) -> bool:
    verbs = _strings(rule, "verbs")
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if not attrs.is_resource_request:
        path = attrs.non_resource_path
        for url in _strings(rule, "nonResourceURLs"):
            if url in ("*", path) or (url.endswith("*") and path.startswith(url.rstrip("*"))):
                return True
        return False
    groups = _strings(rule, "apiGroups")
    if "*" not in groups and attrs.api_group not in groups:
        return False
    if not _resource_matches(_strings(rule, "resources"), attrs.resource, attrs.subresource):
        return False
    names = _strings(rule, "resourceNames")
    return not names or attrs.name in names


def _resource_matches(rule_resources: list[str], resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for r in rule_resources:
        if r in ("*", combined):
            return True
        if subresource and r == f"*/{subresource}":
            return True
    return False


def subject_matches(user: UserInfo, subject: Obj, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return bool(namespace) and user.name == service_account_username(namespace, name)
    return False


def _describe_subject(subject: Obj, binding_namespace: str) -> str:
    kind, name = subject.get("kind", ""), subject.get("name", "")
    if kind == "ServiceAccount":
        name = f"{name}/{subject.get('namespace') or binding_namespace}"
    return f'{kind} "{name}"'


# --- the authorizer ---------------------------------------------------------------------


def index_roles(roles: Iterable[Obj]) -> dict[tuple[str, str], Obj]:
    """Roles keyed by (namespace, name), the shape authorize() looks them up in."""
    return {(r["metadata"].get("namespace", ""), r["metadata"]["name"]): r for r in roles}


def index_cluster_roles(cluster_roles: Iterable[Obj]) -> dict[str, Obj]:
    return {r["metadata"]["name"]: r for r in cluster_roles}


def authorize(
    attrs: Attributes,
    roles: Mapping[tuple[str, str], Obj],
    cluster_roles: Mapping[str, Obj],
    role_bindings: Iterable[Obj],
    cluster_role_bindings: Iterable[Obj],
) -> tuple[bool, str]:
    """(allowed, reason). The reason names the granting binding, or on denial lists
    dangling role references (empty when there are none), as Kubernetes does.

    `roles` is keyed by (namespace, name) and `cluster_roles` by name (see index_roles);
    `role_bindings` may hold every namespace's bindings, only the request's are used.
    """
    if SYSTEM_MASTERS in attrs.user.groups:
        return True, f'allowed by group "{SYSTEM_MASTERS}"'
    errors: list[str] = []
    for crb in cluster_role_bindings:
        granted = _binding_grants(attrs, crb, "", roles, cluster_roles, errors)
        if granted:
            return True, granted
    if attrs.namespace:
        for rb in role_bindings:
            if rb.get("metadata", {}).get("namespace") != attrs.namespace:
                continue
            granted = _binding_grants(attrs, rb, attrs.namespace, roles, cluster_roles, errors)
            if granted:
                return True, granted
    unique = list(dict.fromkeys(errors))
    if not unique:
        return False, ""
    joined = unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"
    return False, f"RBAC: {joined}"


def _binding_grants(
    attrs: Attributes,
    binding: Obj,
    namespace: str,
    roles: Mapping[tuple[str, str], Obj],
    cluster_roles: Mapping[str, Obj],
    errors: list[str],
) -> str:
    """The allow reason if `binding` applies to the user and its role allows; else ""."""
    subject = next(
        (s for s in binding.get("subjects") or () if subject_matches(attrs.user, s, namespace)),
        None,
    )
    if subject is None:
        return ""
    ref = binding.get("roleRef") or {}
    kind, role_name = ref.get("kind", ""), ref.get("name", "")
    if kind == "ClusterRole":
        role = cluster_roles.get(role_name)
        missing = f'clusterrole.rbac.authorization.k8s.io "{role_name}" not found'
    elif kind == "Role" and namespace:
        role = roles.get((namespace, role_name))
        missing = f'role.rbac.authorization.k8s.io "{role_name}" not found'
    else:
        errors.append(f'unsupported role reference kind: "{kind}"')
        return ""
    if role is None:
        errors.append(missing)
        return ""
    if not any(rule_allows(attrs, rule) for rule in role.get("rules") or ()):
        return ""
    meta = binding.get("metadata", {})
    if namespace:
        source = f'RoleBinding "{meta.get("name", "")}/{namespace}"'
    else:
        source = f'ClusterRoleBinding "{meta.get("name", "")}"'
    return (
        f'RBAC: allowed by {source} of {kind} "{role_name}" to '
        f"{_describe_subject(subject, namespace)}"
    )


# --- the 403 answer ---------------------------------------------------------------------


def _sanitize(text: str) -> str:
    # Kubernetes escapes these so an error can never be rendered as HTML.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def forbidden(attrs: Attributes, reason: str = "") -> status.ApiError:
    """The 403 Status Kubernetes sends for a denied request (raise it from a handler).

    The message reads, per request kind:

    pods "x" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "default"
    nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" at the cluster scope
    forbidden: User "bob" cannot get path "/metrics"

    `reason` (authorize()'s, on denial) follows after `: ` when not empty. The user
    name, namespace and path are HTML-escaped as Kubernetes does, since they come
    from the request.
    """
    return status.forbidden(
        _sanitize(attrs.user.name),
        _sanitize(attrs.verb),
        attrs.resource if attrs.is_resource_request else "",
        attrs.api_group if attrs.is_resource_request else "",
        attrs.name if attrs.is_resource_request else "",
        _sanitize(attrs.namespace) if attrs.is_resource_request else "",
        subresource=attrs.subresource if attrs.is_resource_request else "",
        path=_sanitize(attrs.non_resource_path),
        reason=reason,
    )


def forbidden_message(attrs: Attributes, reason: str = "") -> str:
    return forbidden(attrs, reason).message


def forbidden_details(attrs: Attributes) -> dict[str, Any]:
    """The Status `details` of the 403 (Go's omitempty: empty fields left out)."""
    return dict(forbidden(attrs).status.get("details") or {})
