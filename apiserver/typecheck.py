"""Go's JSON decoding, as far as types go: a wrong type is a 400, never stored (pure).

Kubernetes decodes every body into Go structs before anything else runs, so
`"replicas": "three"` or `"labels": ["a"]` never reaches validation; the client gets

    400 BadRequest: Deployment in version "v1" cannot be handled as a Deployment:
    json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32

Objects here stay plain dicts, so `check(kind, obj)` walks them against the Go types of
the fields clients commonly send (ObjectMeta for every kind, plus the specs of the kinds
we serve) and returns that `json: ...` text for the first mismatch, or None. Fields not
listed are not checked (as with Go, unknown fields are not an error); `null` is allowed
anywhere, since Go decodes it as the zero value.

Type nodes: a scalar name ("string", "int32", "int64", "bool", "quantity",
"int-or-string", "time"), `("list", node)`, `("map", node)` (string keys), or
`("struct", "v1.Name", {field: node})`. Go's message names the innermost struct and
the whole JSON path: `Go struct field PodSpec.spec.template.spec.containers`.
"""

from __future__ import annotations

from typing import Any

Node = str | tuple

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_GO_SCALARS = {"quantity": "resource.Quantity", "int-or-string": "intstr.IntOrString",
               "time": "v1.Time"}


def struct(go_name: str, **fields: Node) -> tuple:
    return ("struct", go_name, fields)


def list_of(node: Node) -> tuple:
    return ("list", node)


def map_of(node: Node) -> tuple:
    return ("map", node)


S, I32, I64, B = "string", "int32", "int64", "bool"
STRINGS = list_of(S)
STRING_MAP = map_of(S)

OWNER_REFERENCE = struct("v1.OwnerReference", apiVersion=S, kind=S, name=S, uid=S,
                         controller=B, blockOwnerDeletion=B)
OBJECT_META = struct(
    "v1.ObjectMeta", name=S, generateName=S, namespace=S, uid=S, resourceVersion=S,
    generation=I64, creationTimestamp="time", deletionTimestamp="time",
    deletionGracePeriodSeconds=I64, labels=STRING_MAP, annotations=STRING_MAP,
    ownerReferences=list_of(OWNER_REFERENCE), finalizers=STRINGS)
LABEL_SELECTOR = struct(
    "v1.LabelSelector", matchLabels=STRING_MAP,
    matchExpressions=list_of(struct("v1.LabelSelectorRequirement", key=S, operator=S,
                                    values=STRINGS)))
RESOURCES = struct("v1.ResourceRequirements", limits=map_of("quantity"),
                   requests=map_of("quantity"))
CONTAINER = struct(
    "v1.Container", name=S, image=S, command=STRINGS, args=STRINGS, workingDir=S,
    imagePullPolicy=S,
    ports=list_of(struct("v1.ContainerPort", name=S, hostPort=I32, containerPort=I32,
                         protocol=S, hostIP=S)),
    env=list_of(struct("v1.EnvVar", name=S, value=S)),
    resources=RESOURCES,
    volumeMounts=list_of(struct("v1.VolumeMount", name=S, mountPath=S, readOnly=B,
                                subPath=S)))
TOLERATION = struct("v1.Toleration", key=S, operator=S, value=S, effect=S,
                    tolerationSeconds=I64)
POD_SPEC = struct(
    "v1.PodSpec", containers=list_of(CONTAINER), initContainers=list_of(CONTAINER),
    volumes=list_of(struct("v1.Volume", name=S)), restartPolicy=S,
    terminationGracePeriodSeconds=I64, activeDeadlineSeconds=I64, dnsPolicy=S,
    nodeSelector=STRING_MAP, serviceAccountName=S, nodeName=S, hostNetwork=B,
    schedulerName=S, tolerations=list_of(TOLERATION), priority=I32, priorityClassName=S)
POD_TEMPLATE = struct("v1.PodTemplateSpec", metadata=OBJECT_META, spec=POD_SPEC)
CONDITIONS = list_of(struct("v1.Condition", type=S, status=S, reason=S, message=S))

_SPECS: dict[str, dict[str, Node]] = {
    "Pod": {"spec": POD_SPEC, "status": struct(
        "v1.PodStatus", phase=S, hostIP=S, podIP=S, conditions=CONDITIONS)},
    "Deployment": {
        "spec": struct("v1.DeploymentSpec", replicas=I32, selector=LABEL_SELECTOR,
                       template=POD_TEMPLATE, minReadySeconds=I32,
                       revisionHistoryLimit=I32, paused=B, progressDeadlineSeconds=I32,
                       strategy=struct("v1.DeploymentStrategy", type=S)),
        "status": struct("v1.DeploymentStatus", observedGeneration=I64, replicas=I32,
                         updatedReplicas=I32, readyReplicas=I32, availableReplicas=I32,
                         unavailableReplicas=I32, conditions=CONDITIONS)},
    "ReplicaSet": {
        "spec": struct("v1.ReplicaSetSpec", replicas=I32, minReadySeconds=I32,
                       selector=LABEL_SELECTOR, template=POD_TEMPLATE),
        "status": struct("v1.ReplicaSetStatus", replicas=I32, readyReplicas=I32,
                         availableReplicas=I32, observedGeneration=I64)},
    "DaemonSet": {"spec": struct("v1.DaemonSetSpec", selector=LABEL_SELECTOR,
                                 template=POD_TEMPLATE, minReadySeconds=I32,
                                 revisionHistoryLimit=I32)},
    "Job": {"spec": struct("v1.JobSpec", parallelism=I32, completions=I32,
                           activeDeadlineSeconds=I64, backoffLimit=I32,
                           selector=LABEL_SELECTOR, manualSelector=B, template=POD_TEMPLATE,
                           ttlSecondsAfterFinished=I32, completionMode=S, suspend=B)},
    "Service": {"spec": struct(
        "v1.ServiceSpec", type=S, clusterIP=S, clusterIPs=STRINGS, selector=STRING_MAP,
        ports=list_of(struct("v1.ServicePort", name=S, protocol=S, port=I32,
                             targetPort="int-or-string", nodePort=I32)))},
    "ConfigMap": {"data": STRING_MAP, "binaryData": STRING_MAP, "immutable": B},
    "Secret": {"data": STRING_MAP, "stringData": STRING_MAP, "type": S, "immutable": B},
    "Namespace": {"spec": struct("v1.NamespaceSpec", finalizers=STRINGS)},
    "Node": {"spec": struct("v1.NodeSpec", podCIDR=S, podCIDRs=STRINGS, unschedulable=B,
                            taints=list_of(struct("v1.Taint", key=S, value=S, effect=S)))},
    "Lease": {"spec": struct("v1.LeaseSpec", holderIdentity=S, leaseDurationSeconds=I32,
                             acquireTime="time", renewTime="time", leaseTransitions=I32)},
    "Role": {"rules": list_of(struct("v1.PolicyRule", verbs=STRINGS, apiGroups=STRINGS,
                                     resources=STRINGS, resourceNames=STRINGS,
                                     nonResourceURLs=STRINGS))},
    "RoleBinding": {
        "subjects": list_of(struct("v1.Subject", kind=S, apiGroup=S, name=S, namespace=S)),
        "roleRef": struct("v1.RoleRef", apiGroup=S, kind=S, name=S)},
}
_SPECS["ClusterRole"] = _SPECS["Role"]
_SPECS["ClusterRoleBinding"] = _SPECS["RoleBinding"]


def schema(kind: str) -> tuple:
    """The struct node for a whole object of `kind` (only TypeMeta and ObjectMeta for
    kinds without a table here)."""
    return struct(f"v1.{kind}", apiVersion=S, kind=S, metadata=OBJECT_META,
                  **_SPECS.get(kind, {}))


class _Mismatch(Exception):
    pass


def check(kind: str, obj: Any) -> str | None:
    """None if `obj` decodes into the Go type of `kind`, else Go's error text."""
    try:
        _walk(obj, schema(kind), "", kind)
    except _Mismatch as exc:
        return str(exc)
    return None


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value}" if isinstance(value, float) else "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _go_type(node: Node) -> str:
    if isinstance(node, str):
        return _GO_SCALARS.get(node, node)
    if node[0] == "list":
        return "[]" + _go_type(node[1])
    if node[0] == "map":
        return "map[string]" + _go_type(node[1])
    return node[1]


def _fail(value: Any, node: Node, path: str, owner: str) -> _Mismatch:
    return _Mismatch(f"json: cannot unmarshal {_json_type(value)} into Go struct field "
                     f"{owner}.{path} of type {_go_type(node)}")


def _walk(value: Any, node: Node, path: str, owner: str) -> None:
    """`owner` is the Go struct (without package) that holds the field at `path`."""
    if value is None:
        return
    if isinstance(node, str):
        if not _scalar_ok(value, node):
            raise _fail(value, node, path, owner)
        return
    if node[0] == "list":
        if not isinstance(value, list):
            raise _fail(value, node, path, owner)
        for item in value:
            _walk(item, node[1], path, owner)
        return
    if node[0] == "map":
        if not isinstance(value, dict):
            raise _fail(value, node, path, owner)
        for item in value.values():
            _walk(item, node[1], path, owner)
        return
    if not isinstance(value, dict):
        if not path:
            raise _Mismatch(f"json: cannot unmarshal {_json_type(value)} into Go value of "
                            f"type {node[1]}")
        raise _fail(value, node, path, owner)
    name = node[1].rsplit(".", 1)[-1]
    for key, field in node[2].items():
        if key in value:
            _walk(value[key], field, f"{path}.{key}" if path else key, name)


def _scalar_ok(value: Any, kind: str) -> bool:
    if kind in ("string", "time"):
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if kind == "quantity":
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    if kind == "int-or-string":
        return isinstance(value, str) or (isinstance(value, int)
                                          and not isinstance(value, bool))
    raise AssertionError(f"unknown scalar type {kind!r}")
