"""Which fields a strategic merge patch merges, and by which key.

Kubernetes reads this from Go struct tags (`patchStrategy:"merge"`,
`patchMergeKey:"name"`) on the k8s.io/api types. We keep the same facts as tables: for
each type, the fields that carry a tag or lead to a type that has tagged fields. Every
field not listed behaves as an untagged Go field: maps merge, lists are replaced
(tolerations, taints, externalIPs, containerStatuses, namespace finalizers, ...).

Tags come from k8s.io/api core/v1, apps/v1, batch/v1, policy/v1 and
k8s.io/apimachinery meta/v1 `types.go`. `retainKeys` alone (Deployment `strategy`,
on PodSpec `volumes`) changes nothing here: the `$retainKeys` directive carries it.
"""

from __future__ import annotations

from typing import NamedTuple


class Meta(NamedTuple):
    """One field: `strategy` is "merge", "replace" or ""; `type` names its schema."""

    strategy: str = ""
    merge_key: str = ""
    type: str | None = None


def _merge(key: str = "", type_: str | None = None) -> Meta:
    return Meta("merge", key, type_)


def _of(type_: str) -> Meta:
    return Meta("", "", type_)


_CONDITIONS = {"conditions": _merge("type")}
_TEMPLATE = {"template": _of("PodTemplateSpec")}

SCHEMA: dict[str, dict[str, Meta]] = {
    "ObjectMeta": {"ownerReferences": _merge("uid"), "finalizers": _merge()},
    "PodTemplateSpec": {"metadata": _of("ObjectMeta"), "spec": _of("PodSpec")},
    "PodSpec": {
        "volumes": _merge("name"),
        "initContainers": _merge("name", "Container"),
        "containers": _merge("name", "Container"),
        "ephemeralContainers": _merge("name", "Container"),
        "imagePullSecrets": _merge("name"),
        "hostAliases": _merge("ip"),
        "topologySpreadConstraints": _merge("topologyKey"),
        "schedulingGates": _merge("name"),
        "resourceClaims": _merge("name"),
    },
    "Container": {
        "ports": _merge("containerPort"),
        "env": _merge("name"),
        "volumeMounts": _merge("mountPath"),
        "volumeDevices": _merge("devicePath"),
    },
    "PodStatus": {
        **_CONDITIONS,
        "hostIPs": _merge("ip"),
        "podIPs": _merge("ip"),
        "resourceClaimStatuses": _merge("name"),
    },
    "NodeSpec": {"podCIDRs": _merge()},
    "NodeStatus": {**_CONDITIONS, "addresses": _merge("type")},
    "ServiceSpec": {"ports": _merge("port")},
    "ServiceStatus": _CONDITIONS,
    "NamespaceStatus": _CONDITIONS,
    "PersistentVolumeClaimStatus": _CONDITIONS,
    "ReplicationControllerSpec": _TEMPLATE,
    "ReplicationControllerStatus": _CONDITIONS,
    "DeploymentSpec": _TEMPLATE,
    "DeploymentStatus": _CONDITIONS,
    "ReplicaSetSpec": _TEMPLATE,
    "ReplicaSetStatus": _CONDITIONS,
    "DaemonSetSpec": _TEMPLATE,
    "DaemonSetStatus": _CONDITIONS,
    "StatefulSetSpec": _TEMPLATE,
    "StatefulSetStatus": _CONDITIONS,
    "JobSpec": _TEMPLATE,
    "JobStatus": _CONDITIONS,
    "JobTemplateSpec": {"metadata": _of("ObjectMeta"), "spec": _of("JobSpec")},
    "CronJobSpec": {"jobTemplate": _of("JobTemplateSpec")},
    "PodDisruptionBudgetSpec": {"selector": Meta("replace")},
    "PodDisruptionBudgetStatus": _CONDITIONS,
    "PodTemplate": {"metadata": _of("ObjectMeta"), "template": _of("PodTemplateSpec")},
    "ServiceAccount": {"metadata": _of("ObjectMeta"), "secrets": _merge("name")},
}

_UNTAGGED = Meta()
_OBJECT = "Object"


def _roots() -> dict[str, dict[str, Meta]]:
    """Whole-object schemas: metadata plus `<Kind>Spec` / `<Kind>Status` where tabled."""
    kinds = {
        name[: -len(part)] for name in SCHEMA for part in ("Spec", "Status") if name.endswith(part)
    }
    roots = {_OBJECT: {"metadata": _of("ObjectMeta")}}
    for kind in kinds - SCHEMA.keys():
        fields = {"metadata": _of("ObjectMeta")}
        for part in ("Spec", "Status"):
            if kind + part in SCHEMA:
                fields[part.lower()] = _of(kind + part)
        roots[kind] = fields
    return roots


SCHEMA.update(_roots())


def root(kind: str) -> str:
    """The schema name for a whole object of `kind` (metadata only if we know no more)."""
    return kind if kind in SCHEMA else _OBJECT


def field(schema: str | None, key: str) -> Meta:
    """The patch metadata of `key` inside `schema` (untagged if unknown)."""
    if schema is None:
        return _UNTAGGED
    return SCHEMA.get(schema, {}).get(key, _UNTAGGED)
