"""Per-kind validation returning Kubernetes `causes`, with Kubernetes' exact texts.

`validate(kind, obj, old)` is what the handlers call after `defaults.apply_defaults`
(validation assumes defaults: an undefaulted Pod fails with "Required value" on
`terminationGracePeriodSeconds`, as it would in Kubernetes). With `old` it is an
update: metadata must keep its name, namespace and uid, and each kind's immutable
fields (a Deployment's selector, a Job's template, most of a Pod's spec) must not move.
An empty list means valid; `status.invalid(resource, name, causes)` turns a non-empty
one into the 422 that kubectl prints as `The Pod "x" is invalid: ...`.

Object metadata rules live in validation_meta; the kinds in validation_pods (and
validation_containers), validation_workloads, validation_core and validation_rbac;
the wording and the string checks in validation_errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from apiserver import validation_core as core
from apiserver import validation_errors as fe
from apiserver import validation_meta as meta_validation
from apiserver import validation_pods as pods
from apiserver import validation_rbac as rbac
from apiserver import validation_workloads as workloads

Cause = fe.Cause
NameFn = Callable[[str, bool], list[str]]
KindValidator = Callable[[dict, "dict | None"], list[Cause]]

CLUSTER_SCOPED = frozenset({
    "Namespace", "Node", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
    "StorageClass", "PriorityClass", "CustomResourceDefinition", "APIService",
})
_NAME_FNS: dict[str, NameFn] = {
    "Namespace": fe.name_is_dns_label,
    "Service": fe.name_is_dns1035_label,
    "Role": fe.name_is_path_segment,
    "ClusterRole": fe.name_is_path_segment,
    "RoleBinding": fe.name_is_path_segment,
    "ClusterRoleBinding": fe.name_is_path_segment,
}
_KINDS: dict[str, KindValidator] = {
    "Pod": pods.validate_pod,
    "PodTemplate": pods.validate_pod_template,
    "Deployment": workloads.validate_deployment,
    "ReplicaSet": workloads.validate_replica_set,
    "DaemonSet": workloads.validate_daemon_set,
    "Job": workloads.validate_job,
    "Service": core.validate_service,
    "Namespace": core.validate_namespace,
    "Node": core.validate_node,
    "ConfigMap": core.validate_config_map,
    "Secret": core.validate_secret,
    "Endpoints": core.validate_endpoints,
    "Event": core.validate_event,
    "Lease": core.validate_lease,
    "Role": lambda obj, old: rbac.validate_role(obj, old, namespaced=True),
    "ClusterRole": lambda obj, old: rbac.validate_role(obj, old, namespaced=False),
    "RoleBinding": lambda obj, old: rbac.validate_binding(obj, old, namespaced=True),
    "ClusterRoleBinding": lambda obj, old: rbac.validate_binding(obj, old, namespaced=False),
}

validate_labels = meta_validation.validate_labels
validate_annotations = meta_validation.validate_annotations
validate_object_meta = meta_validation.validate_object_meta
validate_object_meta_update = meta_validation.validate_object_meta_update


def validate(kind: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> list[Cause]:
    """All causes for creating (`old` None) or updating `obj` of `kind`; [] when valid."""
    obj_d, old_d = dict(obj), (dict(old) if old is not None else None)
    meta = fe.dict_of(obj_d.get("metadata"))
    causes: list[Cause] = []
    if kind == "Event":
        # core/v1 Events skip ObjectMeta validation (legacyValidateEvent); a name is
        # still needed to store one.
        if not meta.get("name") and not meta.get("generateName"):
            causes.append(fe.required("metadata.name", "name or generateName is required"))
    else:
        if old_d is not None:
            causes += meta_validation.validate_object_meta_update(meta, fe.dict_of(old_d.get("metadata")))
        causes += meta_validation.validate_object_meta(meta, _NAME_FNS.get(kind, fe.name_is_dns_subdomain), is_namespaced(kind))
    validator = _KINDS.get(kind)
    if validator is not None:
        causes += validator(obj_d, old_d)
    return _unique(causes)


def is_namespaced(kind: str) -> bool:
    return kind not in CLUSTER_SCOPED


def name_errors(kind: str, name: str, prefix: bool = False) -> list[str]:
    """The kind's name rule (DNS subdomain unless stated): Kubernetes' messages, or []."""
    return _NAME_FNS.get(kind, fe.name_is_dns_subdomain)(name, prefix)


def invalid_name_message(kind: str, name: str, field: str = "metadata.name") -> str | None:
    """`metadata.name: Invalid value: "X": ...` for a bad name, None for a good one."""
    msgs = name_errors(kind, name)
    return fe.aggregate([fe.invalid_text(field, name, m) for m in msgs]) if msgs else None


def url_name_errors(name: str) -> list[str]:
    """What the REST layer checks of a name in a URL path (IsValidPathSegmentName)."""
    return fe.path_segment_errors(name)


def _unique(causes: list[Cause]) -> list[Cause]:
    """Kubernetes reports the same error once (ToAggregate de-duplicates); so do we."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for c in causes:
        key = (c["reason"], c["field"], c["message"])
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out
