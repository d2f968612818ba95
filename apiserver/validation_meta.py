"""ObjectMeta validation: names, namespace, labels, annotations, owners, finalizers.

Mirrors apimachinery's api/validation/objectmeta.go plus core's finalizer-name rule.
One deliberate difference: Kubernetes generates a name from `generateName` before it
validates, so a missing name is only "Required" when `generateName` is missing too;
the handler may validate before or after generating.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from apiserver import validation_errors as fe

Cause = fe.Cause
NameFn = Callable[[str, bool], list[str]]
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
_STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def validate_object_meta(meta: Mapping[str, Any], name_fn: NameFn, namespaced: bool, path: str = "metadata") -> list[Cause]:
    """ValidateObjectMeta for an object whose names follow `name_fn`."""
    causes: list[Cause] = []
    name, generate_name = fe.str_of(meta.get("name")), fe.str_of(meta.get("generateName"))
    if generate_name:
        causes += [fe.invalid(f"{path}.generateName", generate_name, m) for m in name_fn(generate_name, True)]
    if not name:
        if not generate_name:
            causes.append(fe.required(f"{path}.name", "name or generateName is required"))
    else:
        causes += [fe.invalid(f"{path}.name", name, m) for m in name_fn(name, False)]
    namespace = fe.str_of(meta.get("namespace"))
    if namespaced:
        if not namespace:
            causes.append(fe.required(f"{path}.namespace"))
        else:
            causes += [fe.invalid(f"{path}.namespace", namespace, m) for m in fe.dns1123_label_errors(namespace)]
    elif namespace:
        causes.append(fe.forbidden(f"{path}.namespace", "not allowed on this type"))
    causes += fe.nonnegative(f"{path}.generation", meta.get("generation"))
    causes += validate_labels(meta.get("labels"), f"{path}.labels")
    causes += validate_annotations(meta.get("annotations"), f"{path}.annotations")
    causes += _owner_references(meta.get("ownerReferences"), f"{path}.ownerReferences")
    causes += _finalizers(meta.get("finalizers"), f"{path}.finalizers")
    return causes


def validate_object_meta_update(new: Mapping[str, Any], old: Mapping[str, Any], path: str = "metadata") -> list[Cause]:
    """ValidateObjectMetaUpdate's immutables. A missing uid is taken as "unchanged"."""
    causes: list[Cause] = []
    new_generation, old_generation = new.get("generation"), old.get("generation")
    if isinstance(new_generation, int) and isinstance(old_generation, int) and new_generation < old_generation:
        causes.append(fe.invalid(f"{path}.generation", new_generation, "must not be decremented"))
    for key in ("name", "namespace"):
        causes += fe.immutable(f"{path}.{key}", fe.str_of(new.get(key)), fe.str_of(old.get(key)))
    if new.get("uid"):
        causes += fe.immutable(f"{path}.uid", fe.str_of(new.get("uid")), fe.str_of(old.get("uid")))
    if old.get("deletionTimestamp"):
        added = sorted(set(map(str, fe.list_of(new.get("finalizers")))) - set(map(str, fe.list_of(old.get("finalizers")))))
        if added:
            causes.append(fe.forbidden(
                f"{path}.finalizers",
                f"no new finalizers can be added if the object is being deleted, found new finalizers {fe.go_string_slice(added)}"))
    return causes


def validate_labels(labels: object, path: str) -> list[Cause]:
    """ValidateLabels: every key a qualified name, every value a label value; errors at `path`."""
    causes: list[Cause] = []
    for key, value in sorted(fe.dict_of(labels).items()):
        causes += [fe.invalid(path, key, m) for m in fe.label_key_errors(key)]
        text = fe.str_of(value)
        causes += [fe.invalid(path, text, m) for m in fe.label_value_errors(text)]
    return causes


def validate_annotations(annotations: object, path: str) -> list[Cause]:
    """ValidateAnnotations: keys are qualified names (case-insensitively); 256 KiB in total."""
    items = fe.dict_of(annotations)
    causes = [fe.invalid(path, key, m) for key in sorted(items) for m in fe.label_key_errors(key.lower())]
    total = sum(len(k.encode()) + len(fe.str_of(v).encode()) for k, v in items.items())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(fe.too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return causes


def kube_finalizer_errors(name: str, path: str) -> list[Cause]:
    """validateKubeFinalizerName: an unqualified finalizer must be one Kubernetes knows."""
    if "/" not in name and name not in _STANDARD_FINALIZERS:
        return [fe.invalid(path, name, "name is neither a standard finalizer name nor is it fully qualified")]
    return []


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
            causes.append(fe.invalid(path, fe.GoText("v1.OwnerReference{...}"), "/v1, Kind=Event is disallowed from being an owner"))
        if ref.get("controller") is True:
            current = f"{fe.str_of(ref.get('kind'))}/{fe.str_of(ref.get('name'))}"
            if controller:
                causes.append(fe.invalid(path, fe.GoText("[]v1.OwnerReference{...}"), (
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
        causes += kube_finalizer_errors(name, f"{path}[{i}]")
    return causes
