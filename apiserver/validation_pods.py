"""Pod, PodTemplate and PodSpec validation (core/validation ValidatePodSpec and friends).

The pod spec is validated in three places with small differences: a Pod (`is_pod`:
image whitespace, hostPort must equal containerPort on the host network), and a pod
template inside a PodTemplate, Deployment, ReplicaSet, DaemonSet or Job. Containers
themselves are in validation_containers. On update a Pod's spec is frozen except
container images, activeDeadlineSeconds (only lowered), tolerations (only added) and
scheduling gates (only removed); anything else is one Forbidden on `spec`.
"""

from __future__ import annotations

import json
from typing import Any

from apiserver import validation_containers as containers
from apiserver import validation_errors as fe
from apiserver import validation_meta as meta_validation

Cause = fe.Cause
MAX_INT32 = 2**31 - 1
_VOLUME_SOURCES = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret", "nfs",
    "iscsi", "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs", "quobyte",
    "downwardAPI", "fc", "flexVolume", "configMap", "azureFile", "vsphereVolume",
    "photonPersistentDisk", "portworxVolume", "azureDisk", "storageos", "projected", "scaleIO", "csi",
    "ephemeral", "image",
)
# Go reports a second downwardAPI source under this misspelt path; so do we.
_VOLUME_PATH_NAMES = {"downwardAPI": "downwarAPI", "cephfs": "cephFS"}
_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_UPDATABLE = ",".join((
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
))


def validate_pod(pod: dict, old: dict | None) -> list[Cause]:
    spec = fe.dict_of(pod.get("spec"))
    causes = pod_spec(spec, "spec", is_pod=True)
    if old is None:
        if fe.list_of(spec.get("ephemeralContainers")):
            causes.append(fe.forbidden("spec.ephemeralContainers", "cannot be set on create"))
        if spec.get("nodeName") and fe.list_of(spec.get("schedulingGates")):
            causes.append(fe.forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"))
    else:
        causes += _pod_update(spec, fe.dict_of(old.get("spec")))
    return causes


def validate_pod_template(obj: dict, old: dict | None) -> list[Cause]:
    return pod_template_spec(fe.dict_of(obj.get("template")), "template")


def pod_template_spec(template: dict, path: str) -> list[Cause]:
    """ValidatePodTemplateSpec: template metadata labels/annotations, then the pod spec."""
    meta = fe.dict_of(template.get("metadata"))
    causes = meta_validation.validate_labels(meta.get("labels"), f"{path}.labels")
    causes += meta_validation.validate_annotations(meta.get("annotations"), f"{path}.annotations")
    spec = fe.dict_of(template.get("spec"))
    causes += pod_spec(spec, f"{path}.spec", is_pod=False)
    if fe.list_of(spec.get("ephemeralContainers")):
        causes.append(fe.forbidden(f"{path}.spec.ephemeralContainers", "ephemeral containers not allowed in pod template"))
    return causes


def pod_spec(spec: dict, path: str, is_pod: bool) -> list[Cause]:
    """ValidatePodSpec, in Kubernetes' order (the order kubectl lists the causes in)."""
    causes: list[Cause] = []
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is None:
        causes.append(fe.required(f"{path}.terminationGracePeriodSeconds"))
    volumes, volume_causes = _volumes(spec.get("volumes"), f"{path}.volumes")
    causes += volume_causes
    regular = fe.dicts_of(spec.get("containers"))
    causes += containers.validate_containers(regular, volumes, f"{path}.containers")
    causes += containers.validate_init_containers(
        fe.dicts_of(spec.get("initContainers")), regular, volumes, f"{path}.initContainers")
    if spec.get("hostNetwork") is True:
        for i, container in enumerate(regular):
            for j, port in enumerate(fe.dicts_of(container.get("ports"))):
                host, cont = port.get("hostPort") or 0, port.get("containerPort") or 0
                if (is_pod or host != 0) and host != cont:
                    causes.append(fe.invalid(f"{path}.containers[{i}].ports[{j}].hostPort", host,
                                             "must match `containerPort` when `hostNetwork` is true"))
    causes += _enum(spec.get("restartPolicy"), _RESTART_POLICIES, f"{path}.restartPolicy")
    causes += _enum(spec.get("dnsPolicy"), _DNS_POLICIES, f"{path}.dnsPolicy")
    causes += meta_validation.validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    causes += _security_context(fe.dict_of(spec.get("securityContext")), f"{path}.securityContext")
    for i, secret in enumerate(fe.dicts_of(spec.get("imagePullSecrets"))):
        if set(secret) - {"name"}:
            value = fe.GoText(f"core.LocalObjectReference{{Name:{fe.go_quote(fe.str_of(secret.get('name')))}}}")
            causes.append(fe.invalid(f"{path}.imagePullSecrets[{i}]", value, "only name may be set"))
    for key, name_check in (("serviceAccountName", fe.name_is_dns_subdomain), ("nodeName", fe.name_is_dns_subdomain)):
        value = fe.str_of(spec.get(key))
        if value:
            causes += [fe.invalid(f"{path}.{key}", value, m) for m in name_check(value, False)]
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and not 1 <= deadline <= MAX_INT32:
        causes.append(fe.invalid(f"{path}.activeDeadlineSeconds", deadline, fe.inclusive_range_error(1, MAX_INT32)))
    for key in ("hostname", "subdomain"):
        value = fe.str_of(spec.get(key))
        if value:
            causes += [fe.invalid(f"{path}.{key}", value, m) for m in fe.dns1123_label_errors(value)]
    causes += validate_tolerations(spec.get("tolerations"), f"{path}.tolerations")
    priority_class = fe.str_of(spec.get("priorityClassName"))
    if priority_class:
        causes += [fe.invalid(f"{path}.priorityClassName", priority_class, m)
                   for m in fe.name_is_dns_subdomain(priority_class, False)]
    if is_pod:
        for name in ("containers", "initContainers"):
            for i, container in enumerate(fe.dicts_of(spec.get(name))):
                image = fe.str_of(container.get("image"))
                if image != image.strip():
                    causes.append(fe.invalid(f"{path}.{name}[{i}].image", image, "must not have leading or trailing whitespace"))
    return causes


def validate_tolerations(tolerations: object, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, tol in enumerate(fe.dicts_of(tolerations)):
        at = f"{path}[{i}]"
        key, operator = fe.str_of(tol.get("key")), fe.str_of(tol.get("operator"))
        value, effect = fe.str_of(tol.get("value")), fe.str_of(tol.get("effect"))
        if key:
            causes += [fe.invalid(f"{at}.key", key, m) for m in fe.label_key_errors(key)]
        if not key and operator != "Exists":
            causes.append(fe.invalid(f"{at}.operator", operator,
                                     'operator must be Exists when `key` is empty, which means "match all values and all keys"'))
        if tol.get("tolerationSeconds") is not None and effect != "NoExecute":
            causes.append(fe.invalid(f"{at}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if operator in ("Equal", ""):
            msgs = fe.label_value_errors(value)
            if msgs:
                causes.append(fe.invalid(f"{at}.operator", value, ";".join(msgs)))
        elif operator == "Exists":
            if value:
                causes.append(fe.invalid(f"{at}.operator", value, "value must be empty when `operator` is 'Exists'"))
        else:
            causes.append(fe.not_supported(f"{at}.operator", operator, ("Equal", "Exists")))
        if effect and effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            causes.append(fe.not_supported(f"{at}.effect", effect, ("NoSchedule", "PreferNoSchedule", "NoExecute")))
    return causes


def _enum(value: object, allowed: tuple[str, ...], path: str) -> list[Cause]:
    text = fe.str_of(value)
    if not text:
        return [fe.required(path)]
    return [] if text in allowed else [fe.not_supported(path, text, allowed)]


def _volumes(volumes: object, path: str) -> tuple[set[str], list[Cause]]:
    names: set[str] = set()
    causes: list[Cause] = []
    for i, volume in enumerate(fe.dicts_of(volumes)):
        errs: list[Cause] = []
        sources = [key for key in _VOLUME_SOURCES if volume.get(key) is not None]
        errs += [fe.forbidden(f"{path}[{i}].{_VOLUME_PATH_NAMES.get(key, key)}", "may not specify more than 1 volume type")
                 for key in sources[1:]]
        if not sources:
            errs.append(fe.required(f"{path}[{i}]", "must specify a volume type"))
        name = fe.str_of(volume.get("name"))
        if not name:
            errs.append(fe.required(f"{path}[{i}].name"))
        else:
            errs += [fe.invalid(f"{path}[{i}].name", name, m) for m in fe.dns1123_label_errors(name)]
        if name in names:
            errs.append(fe.duplicate(f"{path}[{i}].name", name))
        if not errs:
            names.add(name)
        causes += errs
    return names, causes


def _security_context(context: dict, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for key in ("fsGroup", "runAsUser", "runAsGroup"):
        value = context.get(key)
        if isinstance(value, int) and not 0 <= value <= 0xFFFFFFFF:
            causes.append(fe.invalid(f"{path}.{key}", value, fe.inclusive_range_error(0, 0xFFFFFFFF)))
    for i, gid in enumerate(fe.list_of(context.get("supplementalGroups"))):
        if isinstance(gid, int) and not 0 <= gid <= 0xFFFFFFFF:
            causes.append(fe.invalid(f"{path}.supplementalGroups[{i}]", gid, fe.inclusive_range_error(0, 0xFFFFFFFF)))
    return causes


def _pod_update(new: dict, old: dict) -> list[Cause]:
    """ValidatePodUpdate: only the listed fields may change; everything else is Forbidden."""
    causes: list[Cause] = []
    for name in ("containers", "initContainers"):
        new_list, old_list = fe.dicts_of(new.get(name)), fe.dicts_of(old.get(name))
        if len(new_list) != len(old_list):
            return causes + [fe.forbidden(f"spec.{name}", "pod updates may not add or remove containers")]
        for i, container in enumerate(new_list):
            image = fe.str_of(container.get("image"))
            if not image:
                causes.append(fe.required(f"spec.{name}[{i}].image"))
    new_deadline, old_deadline = new.get("activeDeadlineSeconds"), old.get("activeDeadlineSeconds")
    if isinstance(new_deadline, int):
        if not 0 <= new_deadline <= MAX_INT32:
            return causes + [fe.invalid("spec.activeDeadlineSeconds", new_deadline, fe.inclusive_range_error(0, MAX_INT32))]
        if isinstance(old_deadline, int) and old_deadline < new_deadline:
            return causes + [fe.invalid("spec.activeDeadlineSeconds", new_deadline, "must be less than or equal to previous value")]
    elif old_deadline is not None:
        causes.append(fe.invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"))
    causes += _only_added_tolerations(fe.dicts_of(new.get("tolerations")), fe.dicts_of(old.get("tolerations")))
    old_gates = {fe.str_of(g.get("name")) for g in fe.dicts_of(old.get("schedulingGates"))}
    for i, gate in enumerate(fe.dicts_of(new.get("schedulingGates"))):
        name = fe.str_of(gate.get("name"))
        if name not in old_gates:
            causes.append(fe.forbidden(f"spec.schedulingGates[{i}].name",
                                       f"only deletion is allowed, but found new scheduling gate '{name}'"))
    munged = _munge(new, old)
    if munged != old:
        diff = "\n".join(
            f"-\t{key}: {json.dumps(old.get(key), sort_keys=True)}\n+\t{key}: {json.dumps(munged.get(key), sort_keys=True)}"
            for key in sorted(set(munged) | set(old)) if munged.get(key) != old.get(key))
        causes.append(fe.forbidden("spec", f"pod updates may not change fields other than {_UPDATABLE}\n{diff}"))
    return causes


def _munge(new: dict, old: dict) -> dict[str, Any]:
    """The new spec with every updatable field put back to its old value."""
    munged = json.loads(json.dumps(new))
    for name in ("containers", "initContainers"):
        for container, old_container in zip(fe.dicts_of(munged.get(name)), fe.dicts_of(old.get(name)), strict=False):
            if "image" in old_container:
                container["image"] = old_container["image"]
            else:
                container.pop("image", None)
    for key in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        if key in old:
            munged[key] = old[key]
        else:
            munged.pop(key, None)
    old_grace, new_grace = old.get("terminationGracePeriodSeconds"), munged.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 and new_grace == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    return munged


def _only_added_tolerations(new: list[dict], old: list[dict]) -> list[Cause]:
    def without_seconds(tol: dict) -> dict:
        return {k: v for k, v in tol.items() if k != "tolerationSeconds"}

    remaining = [without_seconds(t) for t in new]
    for tol in old:
        if without_seconds(tol) not in remaining:
            return [fe.forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds")]
    return validate_tolerations(new, "spec.tolerations")
