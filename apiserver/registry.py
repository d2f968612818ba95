"""Every resource the apiserver serves, and where its objects live in the store.

This table is the single source for URL routing (`lookup`), for decoding bodies whose
apiVersion/kind name a resource (`by_kind`), for discovery (apiserver/discovery.py
renders it) and for storage keys. Names, scopes, short names, categories, verbs and
subresources copy Kubernetes 1.32's own discovery, because kubectl resolves `po`,
`deploy` or `get all` from discovery alone: a missing short name or category is a
command that silently stops working.

`RESOURCES` is in Kubernetes' discovery order: groups by the aggregator's priority
(core, apps, batch, policy, rbac.authorization.k8s.io, coordination.k8s.io), resources
within a group-version sorted by plural, subresources sorted by name. Only groups with
resources are listed: autoscaling/v1 Scale and authentication.k8s.io/v1 TokenRequest are
named by subresources (deployments/scale, serviceaccounts/token), which is all clients
need to build those requests.

Storage layout follows kube-apiserver's etcd3 layout, minus its per-resource quirks
(`/registry/minions`, `/registry/services/specs`): `/registry/<plural>/<namespace>/<name>`,
cluster-scoped objects without the namespace. Plurals are unique across the groups we
serve, so the group is not part of the key.
"""

from __future__ import annotations

from dataclasses import dataclass

# Kubernetes lists verbs sorted; kubectl only tests membership.
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
# Namespaces have no deletecollection: deleting every namespace at once is refused.
NAMESPACE_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    """One served resource (a group/version/plural), as discovery describes it."""

    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS

    @property
    def api_version(self) -> str:
        """The `apiVersion` of objects of this resource: "v1" or "apps/v1"."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        """The kind of a list response, e.g. "PodList"."""
        return f"{self.kind}List"

    @property
    def group_resource(self) -> str:
        """The name Kubernetes' messages use: "pods", "deployments.apps"."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


@dataclass(frozen=True)
class Subresource:
    """What a subresource endpoint answers with and which verbs it takes.

    Most answer with the parent's kind; `scale`, `eviction`, `binding` and `token`
    answer (and accept) a kind of another group, which discovery must announce so that
    clients build the right request (drain looks for pods/eviction's policy group).
    """

    name: str
    group: str
    version: str
    kind: str
    verbs: tuple[str, ...]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


_READ_WRITE = ("get", "patch", "update")

# name -> (group, version, kind, verbs); group None means "the parent's group/version/kind".
_SUBRESOURCES: dict[str, tuple[str | None, str, str, tuple[str, ...]]] = {
    "binding": ("", "v1", "Binding", ("create",)),
    "eviction": ("policy", "v1", "Eviction", ("create",)),
    "finalize": (None, "", "", ("update",)),
    "log": (None, "", "", ("get",)),
    "proxy": (None, "", "", ("get",)),
    "scale": ("autoscaling", "v1", "Scale", _READ_WRITE),
    "status": (None, "", "", _READ_WRITE),
    "token": ("authentication.k8s.io", "v1", "TokenRequest", ("create",)),
}

_ALL = ("all",)
_RBAC = "rbac.authorization.k8s.io"

RESOURCES: tuple[Resource, ...] = (
    # core/v1
    Resource("", "v1", "ConfigMap", "configmaps", "configmap", True, short_names=("cm",)),
    Resource("", "v1", "Endpoints", "endpoints", "endpoints", True, short_names=("ep",)),
    Resource("", "v1", "Event", "events", "event", True, short_names=("ev",)),
    Resource(
        "", "v1", "Namespace", "namespaces", "namespace", False,
        short_names=("ns",), subresources=("finalize", "status"), verbs=NAMESPACE_VERBS,
    ),
    Resource(
        "", "v1", "Node", "nodes", "node", False,
        short_names=("no",), subresources=("proxy", "status"),
    ),
    Resource(
        "", "v1", "Pod", "pods", "pod", True,
        short_names=("po",), categories=_ALL,
        subresources=("binding", "eviction", "log", "status"),
    ),
    Resource("", "v1", "Secret", "secrets", "secret", True),
    Resource(
        "", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", True,
        short_names=("sa",), subresources=("token",),
    ),
    Resource(
        "", "v1", "Service", "services", "service", True,
        short_names=("svc",), categories=_ALL, subresources=("status",),
    ),
    # apps/v1
    Resource(
        "apps", "v1", "Deployment", "deployments", "deployment", True,
        short_names=("deploy",), categories=_ALL, subresources=("scale", "status"),
    ),
    Resource(
        "apps", "v1", "ReplicaSet", "replicasets", "replicaset", True,
        short_names=("rs",), categories=_ALL, subresources=("scale", "status"),
    ),
    # batch/v1
    Resource("batch", "v1", "Job", "jobs", "job", True, categories=_ALL, subresources=("status",)),
    # policy/v1: served so that /apis lists group "policy", without which kubectl 1.20's
    # drain never uses pods/eviction (REQUIREMENTS §8). A group-version must not be listed
    # empty: kubectl 1.32's legacy discovery then fails every `api-resources` with
    # "received empty response for: policy/v1".
    Resource(
        "policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget",
        True, short_names=("pdb",), subresources=("status",),
    ),
    # rbac.authorization.k8s.io/v1
    Resource(_RBAC, "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", False),
    Resource(_RBAC, "v1", "ClusterRole", "clusterroles", "clusterrole", False),
    Resource(_RBAC, "v1", "RoleBinding", "rolebindings", "rolebinding", True),
    Resource(_RBAC, "v1", "Role", "roles", "role", True),
    # coordination.k8s.io/v1
    Resource("coordination.k8s.io", "v1", "Lease", "leases", "lease", True),
)  # fmt: skip

# The aggregator's group priorities (kube-apiserver's apiVersionPriorities): a higher
# number is listed first. kubectl prefers earlier groups when a name is ambiguous.
_GROUP_PRIORITY: dict[str, int] = {
    "": 18000,
    "apps": 17800,
    "batch": 17400,
    "policy": 17100,
    "rbac.authorization.k8s.io": 17000,
    "coordination.k8s.io": 16500,
}

_BY_PATH: dict[tuple[str, str, str], Resource] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}
_BY_KIND: dict[tuple[str, str], Resource] = {(r.api_version, r.kind): r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> Resource | None:
    """The resource served at /api/v1/<plural> or /apis/<group>/<version>/<plural>."""
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> Resource | None:
    """The resource whose objects carry this apiVersion and kind."""
    return _BY_KIND.get((api_version, kind))


def subresource(resource: Resource, name: str) -> Subresource | None:
    """The subresource `name` of `resource`, or None if that resource does not serve it."""
    if name not in resource.subresources:
        return None
    group, version, kind, verbs = _SUBRESOURCES[name]
    if group is None:
        group, version, kind = resource.group, resource.version, resource.kind
    return Subresource(name, group, version, kind, verbs)


def subresources_of(resource: Resource) -> list[Subresource]:
    """Every subresource `resource` serves, in discovery order."""
    return [s for s in (subresource(resource, n) for n in resource.subresources) if s]


def groups() -> list[tuple[str, list[str]]]:
    """Every (group, versions) discovery lists, core ("") first, preferred version first."""
    versions: dict[str, list[str]] = {}
    for r in RESOURCES:
        listed = versions.setdefault(r.group, [])
        if r.version not in listed:
            listed.append(r.version)
    return sorted(versions.items(), key=lambda item: -_GROUP_PRIORITY[item[0]])


def resources_in(group: str, version: str) -> list[Resource]:
    """The resources of one group-version, in discovery order."""
    return [r for r in RESOURCES if r.group == group and r.version == version]


def _check_segment(what: str, value: str) -> None:
    # A "/" or an empty segment would let one key prefix match another's objects.
    if not value or "/" in value:
        raise ValueError(f"invalid {what} for a storage key: {value!r}")


def storage_prefix(resource: Resource, namespace: str | None = None) -> str:
    """The key prefix (ending in "/") of all objects of `resource`, or of one namespace's.

    The trailing "/" keeps namespace "a" from matching keys of namespace "ab".
    """
    if namespace is None:
        return f"/registry/{resource.plural}/"
    if not resource.namespaced:
        raise ValueError(f"{resource.group_resource} is cluster-scoped; no namespace prefix")
    _check_segment("namespace", namespace)
    return f"/registry/{resource.plural}/{namespace}/"


def storage_key(resource: Resource, namespace: str | None, name: str) -> str:
    """The store key of one object; namespaced resources need a namespace, others none."""
    _check_segment("name", name)
    if resource.namespaced:
        if namespace is None:
            raise ValueError(f"{resource.group_resource} is namespaced; a namespace is needed")
        return storage_prefix(resource, namespace) + name
    if namespace:
        raise ValueError(
            f"{resource.group_resource} is cluster-scoped; got namespace {namespace!r}"
        )
    return storage_prefix(resource) + name
