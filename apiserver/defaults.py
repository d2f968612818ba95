"""Per-kind defaulting, as the apiserver applies it to every object it decodes.

Clients see defaulted objects: `kubectl get -o yaml` shows `imagePullPolicy`,
`terminationMessagePath` and a `25%` maxSurge they never wrote, and `apply` diffs
against them. Validation also assumes defaults are in (a Pod without
`terminationGracePeriodSeconds` is "Required value"), so the handler runs
`apply_defaults` and then `validation.validate`.

Sources: pkg/apis/core/v1/defaults.go (+ the declarative `+default` markers),
apps/v1, batch/v1 and rbac/v1 defaults.go. Also here, because they are pure mutations
the real apiserver makes on every write: resource quantities re-printed in canonical
form (`0.5` -> `500m`), Secret `stringData` folded into `data`, and the paired
`podIP`/`podIPs`, `hostIP`/`hostIPs`, `podCIDR`/`podCIDRs` kept in step.

Not here: things a strategy does once on create with information the handler owns
(the Job's generated selector needs the uid: `generate_job_selector`; admission's pod
priority and default tolerations: `admit_pod`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from apiserver import quantities

Obj = dict[str, Any]
RBAC_GROUP = "rbac.authorization.k8s.io"
DEFAULT_TOLERATION_SECONDS = 300


def apply_defaults(kind: str, obj: Obj) -> None:
    """Fill in Kubernetes' defaults for `kind`, in place. Unknown kinds are left alone."""
    defaulter = _DEFAULTERS.get(kind)
    if defaulter is not None:
        defaulter(obj)


def generate_job_selector(job: Obj) -> None:
    """The Job strategy's PrepareForCreate: label the template and select it by uid.

    Call on create only, after metadata.uid is set; skipped when spec.manualSelector.
    """
    spec = _child(job, "spec")
    if spec.get("manualSelector") is True:
        return
    meta = job.get("metadata") or {}
    name, uid = str(meta.get("name", "")), str(meta.get("uid", ""))
    labels = _child(_child(_child(spec, "template"), "metadata"), "labels")
    for key in ("job-name", "batch.kubernetes.io/job-name"):
        labels.setdefault(key, name)
    for key in ("controller-uid", "batch.kubernetes.io/controller-uid"):
        labels.setdefault(key, uid)
    selector = spec.get("selector") if isinstance(spec.get("selector"), dict) else {}
    spec["selector"] = selector
    match_labels = selector.setdefault("matchLabels", {})
    match_labels.setdefault("batch.kubernetes.io/controller-uid", uid)


def admit_pod(pod: Obj) -> None:
    """What default admission plugins add to a new Pod: priority and NoExecute tolerations."""
    spec = _child(pod, "spec")
    if not spec.get("priorityClassName"):
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    tolerations = spec.setdefault("tolerations", [])
    present = {(t.get("key"), t.get("effect")) for t in tolerations if isinstance(t, dict)}
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if (key, "NoExecute") not in present and (key, None) not in present:
            tolerations.append({
                "key": key, "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
            })


# --- pods and pod templates ---------------------------------------------------------


def _pod(pod: Obj) -> None:
    spec = _child(pod, "spec")
    _pod_spec(spec, default_restart_policy=True)
    for name in ("containers", "initContainers"):
        for container in _dicts(spec.get(name)):
            resources = container.get("resources") or {}
            limits = resources.get("limits")
            if isinstance(limits, dict) and limits:
                requests = resources.setdefault("requests", {})
                if isinstance(requests, dict):
                    for key, value in limits.items():
                        requests.setdefault(key, value)
    spec.setdefault("enableServiceLinks", True)
    if spec.get("hostNetwork") is True:
        for name in ("containers", "initContainers"):
            for container in _dicts(spec.get(name)):
                for port in _dicts(container.get("ports")):
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort", 0)
    status = pod.get("status")
    if isinstance(status, dict):
        _pair(status, "podIP", "podIPs", "ip")
        _pair(status, "hostIP", "hostIPs", "ip")


def _pod_spec(spec: Obj, default_restart_policy: bool) -> None:
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if default_restart_policy and not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    for name in ("containers", "initContainers", "ephemeralContainers"):
        for container in _dicts(spec.get(name)):
            _container(container)
    for volume in _dicts(spec.get("volumes")):
        _volume(volume)
    if isinstance(spec.get("overhead"), dict):
        _resource_list(spec["overhead"])


def _template(owner: Obj, default_restart_policy: bool = True) -> None:
    template = _child(_child(owner, "spec"), "template")
    _pod_spec(_child(template, "spec"), default_restart_policy)


def _container(container: Obj) -> None:
    if not container.get("imagePullPolicy"):
        tag = _image_tag(str(container.get("image") or ""))
        container["imagePullPolicy"] = "Always" if tag == "latest" else "IfNotPresent"
    if not container.get("terminationMessagePath"):
        container["terminationMessagePath"] = "/dev/termination-log"
    if not container.get("terminationMessagePolicy"):
        container["terminationMessagePolicy"] = "File"
    for port in _dicts(container.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
    resources = container.get("resources")
    if resources is None:
        container["resources"] = resources = {}
    if isinstance(resources, dict):
        for name in ("limits", "requests"):
            if isinstance(resources.get(name), dict):
                _resource_list(resources[name])
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(name)
        if isinstance(probe, dict):
            for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
                if not probe.get(key):
                    probe[key] = value
            _http_get(probe.get("httpGet"))
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in _dicts([lifecycle.get("postStart"), lifecycle.get("preStop")]):
            _http_get(hook.get("httpGet"))
    for env in _dicts(container.get("env")):
        value_from = env.get("valueFrom")
        field_ref = value_from.get("fieldRef") if isinstance(value_from, dict) else None
        if isinstance(field_ref, dict) and not field_ref.get("apiVersion"):
            field_ref["apiVersion"] = "v1"


def _http_get(action: object) -> None:
    if isinstance(action, dict):
        if not action.get("path"):
            action["path"] = "/"
        if not action.get("scheme"):
            action["scheme"] = "HTTP"


def _volume(volume: Obj) -> None:
    if not any(key != "name" and value is not None for key, value in volume.items()):
        volume["emptyDir"] = {}
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        if isinstance(volume.get(source), dict) and volume[source].get("defaultMode") is None:
            volume[source]["defaultMode"] = 420
    if isinstance(volume.get("hostPath"), dict):
        volume["hostPath"].setdefault("type", "")


def _image_tag(image: str) -> str:
    """parsers.ParseImageName's tag: "latest" when neither tag nor digest; "" if unparsable."""
    if not image or image != image.strip():
        return ""
    name, _, digest = image.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    tag = name[colon + 1:] if colon > slash else ""
    repository = name[:colon] if colon > slash else name
    first, _, rest = repository.partition("/")
    path = rest if rest and ("." in first or ":" in first or first == "localhost") else repository
    if not path or path != path.lower():
        return ""
    return "latest" if not tag and not digest else tag


def _resource_list(resources: Obj) -> None:
    """SetDefaults_ResourceList: round up to 1m and print canonically; leave bad values for validation."""
    for key, raw in list(resources.items()):
        try:
            resources[key] = str(quantities.round_up_milli(quantities.quantity_from_json(raw)))
        except ValueError:
            continue


# --- workloads ------------------------------------------------------------------------


def _deployment(obj: Obj) -> None:
    spec = _child(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _child(spec, "strategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = _child(strategy, "rollingUpdate")
        for key in ("maxUnavailable", "maxSurge"):
            if rolling.get(key) is None:
                rolling[key] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _template(obj)


def _replica_set(obj: Obj) -> None:
    spec = _child(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _template(obj)


def _daemon_set(obj: Obj) -> None:
    spec = _child(obj, "spec")
    strategy = _child(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = _child(strategy, "rollingUpdate")
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = 1
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    _template(obj)


def _job(obj: Obj) -> None:
    spec = _child(obj, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 6
    template_labels = _child(_child(spec, "template"), "metadata").get("labels")
    meta = _child(obj, "metadata")
    if isinstance(template_labels, dict) and not meta.get("labels"):
        meta["labels"] = dict(template_labels)
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    # Kubernetes defaults the template's restartPolicy to Always and then rejects it;
    # leaving it unset gives the same single error ("Required value: valid values: ...").
    _template(obj, default_restart_policy=False)


# --- core kinds -----------------------------------------------------------------------


def _service(obj: Obj) -> None:
    spec = _child(obj, "spec")
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        if client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in _dicts(spec.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port", 0)
    service_type = spec["type"]
    externally = service_type in ("NodePort", "LoadBalancer") or (service_type == "ClusterIP" and spec.get("externalIPs"))
    if externally and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and service_type in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec["internalTrafficPolicy"] = "Cluster"
    if service_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True


def _namespace(obj: Obj) -> None:
    name = (obj.get("metadata") or {}).get("name")
    if name:
        labels = _child(_child(obj, "metadata"), "labels")
        labels["kubernetes.io/metadata.name"] = name
    spec = _child(obj, "spec")
    if "finalizers" not in spec:
        spec["finalizers"] = ["kubernetes"]
    status = _child(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Active"


def _node(obj: Obj) -> None:
    status = obj.get("status")
    if isinstance(status, dict):
        for name in ("capacity", "allocatable"):
            if isinstance(status.get(name), dict):
                _resource_list(status[name])
        if status.get("allocatable") is None and isinstance(status.get("capacity"), dict):
            status["allocatable"] = dict(status["capacity"])
    spec = obj.get("spec")
    if isinstance(spec, dict):
        _pair(spec, "podCIDR", "podCIDRs", None)


def _secret(obj: Obj) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data


def _endpoints(obj: Obj) -> None:
    for subset in _dicts(obj.get("subsets")):
        for port in _dicts(subset.get("ports")):
            if not port.get("protocol"):
                port["protocol"] = "TCP"


def _role_binding(obj: Obj) -> None:
    role_ref = _child(obj, "roleRef")
    if not role_ref.get("apiGroup"):
        role_ref["apiGroup"] = RBAC_GROUP
    for subject in _dicts(obj.get("subjects")):
        if not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP


# --- helpers --------------------------------------------------------------------------


def _child(obj: Obj, key: str) -> Obj:
    """obj[key] as a dict, created when missing (a wrong type is replaced only if None)."""
    value = obj.get(key)
    if value is None:
        value = obj[key] = {}
    return value if isinstance(value, dict) else {}


def _dicts(value: object) -> list[Obj]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _pair(obj: Obj, single: str, plural: str, key: str | None) -> None:
    """v1 conversion of `podIP`/`podIPs`-style pairs: the singular field wins, then mirrors [0]."""
    one, many = obj.get(single), obj.get(plural)
    first = many[0] if isinstance(many, list) and many else None
    first_value = first.get(key) if key and isinstance(first, dict) else first
    if one and (first is None or first_value != one):
        obj[plural] = [{key: one} if key else one]
    elif not one and first_value:
        obj[single] = first_value


_DEFAULTERS: dict[str, Callable[[Obj], None]] = {
    "Pod": _pod,
    "PodTemplate": lambda obj: _pod_spec(_child(_child(obj, "template"), "spec"), True),
    "Deployment": _deployment,
    "ReplicaSet": _replica_set,
    "DaemonSet": _daemon_set,
    "Job": _job,
    "Service": _service,
    "Namespace": _namespace,
    "Node": _node,
    "Secret": _secret,
    "Endpoints": _endpoints,
    "RoleBinding": _role_binding,
    "ClusterRoleBinding": _role_binding,
}
