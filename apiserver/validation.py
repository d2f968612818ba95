"""Per-kind validation returning Kubernetes `causes`, with Kubernetes' exact texts.

`validate(kind, obj, old)` is what the handlers call after `defaults.apply_defaults`
(validation assumes defaults: an undefaulted Pod fails with "Required value" on
`terminationGracePeriodSeconds`, as it would in Kubernetes). With `old` it is an
update: metadata must keep its name, namespace and uid, and each kind's immutable
fields (a Deployment's selector, a Job's template, most of a Pod's spec) must not move.
An empty list means valid; `status.invalid(resource, name, causes)` turns a non-empty
one into the 422 that kubectl prints as `The Pod "x" is invalid: ...`.

The object metadata rules live here; the kinds live in validation_pods,
validation_workloads, validation_core and validation_rbac; the wording in
validation_errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from apiserver import validation_core as core
from apiserver import validation_errors as fe
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
    "Role": rbac.validate_role,
    "ClusterRole": rbac.validate_role,
    "RoleBinding": rbac.validate_binding,
    "ClusterRoleBinding": rbac.validate_binding,
}


validate_labels = fe.validate_labels
validate_annotations = fe.validate_annotations


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
            causes += validate_object_meta_update(meta, fe.dict_of(old_d.get("metadata")))
        causes += validate_object_meta(kind, meta)
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


def validate_object_meta(kind: str, meta: Mapping[str, Any], path: str = "metadata") -> list[Cause]:
    """ValidateObjectMeta, except a name may still be missing when generateName is set."""
    causes: list[Cause] = []
    name_fn = _NAME_FNS.get(kind, fe.name_is_dns_subdomain)
    name, generate_name = fe.str_of(meta.get("name")), fe.str_of(meta.get("generateName"))
    if generate_name:
        causes += [fe.invalid(f"{path}.generateName", generate_name, m) for m in name_fn(generate_name, True)]
    if not name:
        if not generate_name:
            causes.append(fe.required(f"{path}.name", "name or generateName is required"))
    else:
        causes += [fe.invalid(f"{path}.name", name, m) for m in name_fn(name, False)]
    namespace = fe.str_of(meta.get("namespace"))
    if is_namespaced(kind):
        if not namespace:
            causes.append(fe.required(f"{path}.namespace"))
        else:
            causes += [fe.invalid(f"{path}.namespace", namespace, m) for m in fe.dns1123_label_errors(namespace)]
    elif namespace:
        causes.append(fe.forbidden(f"{path}.namespace", "not allowed on this type"))
    causes += fe.nonnegative(f"{path}.generation", meta.get("generation"))
    causes += fe.validate_labels(meta.get("labels"), f"{path}.labels")
    causes += fe.validate_annotations(meta.get("annotations"), f"{path}.annotations")
    causes += _owner_references(meta.get("ownerReferences"), f"{path}.ownerReferences")
    causes += _finalizers(meta.get("finalizers"), f"{path}.finalizers")
    return causes


def validate_object_meta_update(new: Mapping[str, Any], old: Mapping[str, Any], path: str = "metadata") -> list[Cause]:
    """ValidateObjectMetaUpdate's immutables. A missing uid is taken as "unchanged"."""
    causes: list[Cause] = []
    if isinstance(new.get("generation"), int) and isinstance(old.get("generation"), int):
        if new["generation"] < old["generation"]:
            causes.append(fe.invalid(f"{path}.generation", new["generation"], "must not be decremented"))
    for key in ("name", "namespace"):
        causes += fe.immutable(f"{path}.{key}", fe.str_of(new.get(key)), fe.str_of(old.get(key)))
    if new.get("uid"):
        causes += fe.immutable(f"{path}.uid", fe.str_of(new.get("uid")), fe.str_of(old.get("uid")))
    if old.get("deletionTimestamp"):
        added = sorted(set(fe.list_of(new.get("finalizers"))) - set(fe.list_of(old.get("finalizers"))))
        if added:
            causes.append(fe.forbidden(
                f"{path}.finalizers",
                f"no new finalizers can be added if the object is being deleted, found new finalizers {fe.go_string_slice(added)}"))
    return causes


def _owner_references(refs: object, path: str) -> list[Cause]:
    causes: list[Cause] = []
    controller = ""
    for ref in fe.dicts_of(refs):
        api_version = fe.str_of(ref.get("apiVersion"))
        if not api_version.rpartition("/")[2]:
            causes.append(fe.invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        for key in ("kind", "name", "uid"):
            if not ref.get(key):
                causes.append(fe.invalid(f"{path}.{key}", fe.str_of(ref.get(key)), "must not be empty"))
        if api_version == "v1" and ref.get("kind") == "Event":
            causes.append(fe.invalid(path, fe.GoText("{...}"), "/v1, Kind=Event is disallowed from being an owner"))
        if ref.get("controller") is True:
            current = f"{fe.str_of(ref.get('kind'))}/{fe.str_of(ref.get('name'))}"
            if controller:
                causes.append(fe.invalid(path, fe.GoText("[...]"), (
                    'Only one reference can have Controller set to true. Found "true" in references for '
                    f"{controller} and {current}")))
            else:
                controller = current
    return causes


def _finalizers(finalizers: object, path: str) -> list[Cause]:
    names = [fe.str_of(f) for f in fe.list_of(finalizers)]
    causes: list[Cause] = []
    for name in names:
        causes += [fe.invalid(path, name, m) for m in fe.label_key_errors(name)]
    if "orphan" in names and "foregroundDeletion" in names:
        causes.append(fe.invalid(path, fe.go_string_slice(names), "finalizer orphan and foregroundDeletion cannot be both set"))
    for i, name in enumerate(names):
        causes += fe.kube_finalizer_errors(name, f"{path}[{i}]")
    return causes


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
