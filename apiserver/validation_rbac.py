"""RBAC validation: Role/ClusterRole rules and RoleBinding/ClusterRoleBinding references.

Follows pkg/apis/rbac/validation. RBAC names only need to be usable as a URL path
segment (no "/", "%", "." or ".."), which is why `system:controller:foo` is valid.
A binding's roleRef cannot change after create (delete and re-create instead).
"""

from __future__ import annotations

from apiserver import validation_errors as fe

Cause = fe.Cause
RBAC_GROUP = "rbac.authorization.k8s.io"


def validate_role(obj: dict, old: dict | None, namespaced: bool) -> list[Cause]:
    causes: list[Cause] = []
    for i, rule in enumerate(fe.dicts_of(obj.get("rules"))):
        causes += _policy_rule(rule, namespaced, f"rules[{i}]")
    return causes


def validate_binding(obj: dict, old: dict | None, namespaced: bool) -> list[Cause]:
    ref = fe.dict_of(obj.get("roleRef"))
    causes: list[Cause] = []
    group = fe.str_of(ref.get("apiGroup"))
    if group != RBAC_GROUP:
        causes.append(fe.not_supported("roleRef.apiGroup", group, (RBAC_GROUP,)))
    kind = fe.str_of(ref.get("kind"))
    allowed = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
    if kind not in allowed:
        causes.append(fe.not_supported("roleRef.kind", kind, allowed))
    name = fe.str_of(ref.get("name"))
    if not name:
        causes.append(fe.required("roleRef.name"))
    else:
        causes += [fe.invalid("roleRef.name", name, m) for m in fe.path_segment_errors(name)]
    for i, subject in enumerate(fe.dicts_of(obj.get("subjects"))):
        causes += _subject(subject, namespaced, f"subjects[{i}]")
    if old is not None:
        old_ref = fe.dict_of(old.get("roleRef"))
        if any(fe.str_of(ref.get(k)) != fe.str_of(old_ref.get(k)) for k in ("apiGroup", "kind", "name")):
            rendered = fe.GoText(
                f"rbac.RoleRef{{APIGroup:{fe.go_quote(group)}, Kind:{fe.go_quote(kind)}, Name:{fe.go_quote(name)}}}")
            causes.append(fe.invalid("roleRef", rendered, "cannot change roleRef"))
    return causes


def _policy_rule(rule: dict, namespaced: bool, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not fe.list_of(rule.get("verbs")):
        causes.append(fe.required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = fe.list_of(rule.get("nonResourceURLs"))
    if urls:
        if namespaced:
            causes.append(fe.invalid(f"{path}.nonResourceURLs", fe.go_string_slice(urls),
                                     "namespaced rules cannot apply to non-resource URLs"))
        if any(fe.list_of(rule.get(k)) for k in ("apiGroups", "resources", "resourceNames")):
            causes.append(fe.invalid(f"{path}.nonResourceURLs", fe.go_string_slice(urls),
                                     "rules cannot apply to both regular resources and non-resource URLs"))
        return causes
    if not fe.list_of(rule.get("apiGroups")):
        causes.append(fe.required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    resources = fe.list_of(rule.get("resources"))
    if not resources:
        causes.append(fe.required(f"{path}.resources", "resource rules must supply at least one resource"))
    if fe.list_of(rule.get("resourceNames")) and len(resources) > 1:
        causes.append(fe.required(f"{path}.resourceNames", "resource names cannot apply to multiple resources"))
    return causes


def _subject(subject: dict, namespaced: bool, path: str) -> list[Cause]:
    causes: list[Cause] = []
    name, kind, group = (fe.str_of(subject.get(k)) for k in ("name", "kind", "apiGroup"))
    if not name:
        causes.append(fe.required(f"{path}.name"))
    if kind == "ServiceAccount":
        if name:
            causes += [fe.invalid(f"{path}.name", name, m) for m in fe.name_is_dns_subdomain(name, False)]
        if group:
            causes.append(fe.not_supported(f"{path}.apiGroup", group, ("",)))
        if not namespaced and not fe.str_of(subject.get("namespace")):
            causes.append(fe.required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if not name:
            causes.append(fe.invalid(f"{path}.name", name, f"{kind.lower()} name cannot be empty"))
        if group != RBAC_GROUP:
            causes.append(fe.not_supported(f"{path}.apiGroup", group, (RBAC_GROUP,)))
    else:
        causes.append(fe.not_supported(f"{path}.kind", kind, ("ServiceAccount", "User", "Group")))
    return causes
