"""The default ClusterRoles and ClusterRoleBindings every apiserver ensures at startup.

Names, labels and annotations are Kubernetes', so `kubectl get clusterroles` looks
familiar and manifests written for Kubernetes bind to the same roles. The apiserver
creates each object that is missing and leaves existing ones alone (an administrator's
edits win; delete one to get the default back).

| ClusterRole | grants | bound to |
|---|---|---|
| cluster-admin | everything, every non-resource URL | group system:masters |
| admin | edit + Roles/RoleBindings (grant to a RoleBinding per namespace) | - |
| edit | read/write workloads, services, config, secrets; no RBAC, no quotas | - |
| view | read-only on the same objects, except secrets | - |
| system:discovery | GET /api*, /apis*, /openapi*, /version, health | system:authenticated |
| system:public-info-viewer | GET /version, /healthz, /livez, /readyz | authenticated + unauthenticated |
| system:basic-user | self subject access/rules reviews | system:authenticated |
| system:node | what a node agent does; node_restriction.py narrows it to its own objects | group system:nodes |
| system:kube-scheduler | read the cluster, bind pods, its leader-election lease | user system:kube-scheduler |
| system:kube-controller-manager | read everything, write the objects controllers own | user system:kube-controller-manager |

Kubernetes gives nodes their powers through the Node authorizer and no longer binds
system:node; kubelite binds it to system:nodes and applies the node restriction
instead. Aggregated roles are flattened: admin, edit and view are listed in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apiserver.auth.user import (
    AUTHENTICATED,
    KUBE_CONTROLLER_MANAGER,
    KUBE_SCHEDULER,
    NODES,
    SYSTEM_MASTERS,
    UNAUTHENTICATED,
)

RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
READ_WRITE = READ + WRITE

Rule = dict[str, list[str]]


def rule(
    verbs: Sequence[str], groups: Sequence[str], resources: Sequence[str], names: Sequence[str] = ()
) -> Rule:
    out = {"apiGroups": list(groups), "resources": list(resources), "verbs": list(verbs)}
    if names:
        out["resourceNames"] = list(names)
    return out


def url_rule(verbs: Sequence[str], urls: Sequence[str]) -> Rule:
    return {"nonResourceURLs": list(urls), "verbs": list(verbs)}


def _meta(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    }


def _view_rules() -> list[Rule]:
    return [
        rule(READ, [""], [
            "configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status",
            "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
            "services", "services/status",
        ]),
        rule(READ, [""], [
            "bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
            "replicationcontrollers/status", "resourcequotas", "resourcequotas/status",
        ]),
        rule(READ, [""], ["namespaces"]),
        rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
        rule(READ, ["apps"], [
            "controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
            "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
            "replicasets/status", "statefulsets", "statefulsets/scale", "statefulsets/status",
        ]),
        rule(READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
        rule(READ, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
        rule(READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
        rule(READ, ["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"]),
    ]  # fmt: skip


def _edit_rules() -> list[Rule]:
    return [
        rule(READ, [""], [
            "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets",
            "services/proxy",
        ]),
        rule(["impersonate"], [""], ["serviceaccounts"]),
        rule(WRITE, [""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"]),
        rule(["create"], [""], ["pods/eviction", "serviceaccounts/token"]),
        rule(WRITE, [""], [
            "configmaps", "endpoints", "events", "persistentvolumeclaims",
            "replicationcontrollers", "replicationcontrollers/scale", "secrets",
            "serviceaccounts", "services", "services/proxy",
        ]),
        rule(WRITE, ["apps"], [
            "daemonsets", "deployments", "deployments/rollback", "deployments/scale",
            "replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale",
        ]),
        rule(WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
        rule(WRITE, ["batch"], ["cronjobs", "jobs"]),
        rule(WRITE, ["networking.k8s.io"], ["ingresses", "networkpolicies"]),
        rule(WRITE, ["policy"], ["poddisruptionbudgets"]),
        rule(WRITE, ["discovery.k8s.io"], ["endpointslices"]),
        *_view_rules(),
    ]  # fmt: skip


def _admin_rules() -> list[Rule]:
    return [
        rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
        rule(READ_WRITE, [RBAC_GROUP], ["rolebindings", "roles"]),
        *_edit_rules(),
    ]


def _node_rules() -> list[Rule]:
    # Keep in step with node_restriction.ALLOWED: these rules say which verbs a node may
    # use at all, the restriction says on which objects.
    return [
        rule(READ + ["create", "update", "patch"], [""], ["nodes"]),
        rule(["get", "update", "patch"], [""], ["nodes/status"]),
        rule(["get", "create", "update", "patch"], ["coordination.k8s.io"], ["leases"]),
        rule(READ + ["delete"], [""], ["pods"]),
        rule(["get", "update", "patch"], [""], ["pods/status"]),
        rule(READ, [""], ["services", "endpoints"]),
        rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
        rule(["create", "update", "patch"], ["", "events.k8s.io"], ["events"]),
    ]


def _scheduler_rules() -> list[Rule]:
    return [
        rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
        # Leader election; the lease name is the scheduler's own choice, so unpinned.
        rule(READ + ["create", "update", "patch"], ["coordination.k8s.io"], ["leases"]),
        rule(READ, [""], [
            "namespaces", "nodes", "persistentvolumeclaims", "persistentvolumes", "pods",
            "replicationcontrollers", "services",
        ]),
        rule(["delete"], [""], ["pods"]),  # preemption
        rule(["create"], [""], ["bindings", "pods/binding"]),
        rule(["patch", "update"], [""], ["pods/status"]),
        rule(READ, ["apps"], ["replicasets", "statefulsets"]),
        rule(READ, ["policy"], ["poddisruptionbudgets"]),
    ]  # fmt: skip


def _controller_manager_rules() -> list[Rule]:
    # One identity runs every controller (Kubernetes splits them into per-controller
    # service accounts). The namespace controller must delete anything in a terminating
    # namespace, hence delete on everything, as Kubernetes' namespace-controller has.
    return [
        rule(READ + ["delete", "deletecollection"], ["*"], ["*"]),
        rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
        rule(["create", "patch", "update"], [""], [
            "pods", "pods/status", "pods/binding", "endpoints", "serviceaccounts", "configmaps",
            "replicationcontrollers", "replicationcontrollers/status",
            "replicationcontrollers/scale", "namespaces", "namespaces/status",
            "namespaces/finalize", "nodes", "nodes/status", "persistentvolumeclaims",
            "persistentvolumeclaims/status",
        ]),
        rule(["create"], [""], ["pods/eviction", "serviceaccounts/token"]),
        rule(["create", "patch", "update"], ["apps"], [
            "controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
            "deployments/status", "deployments/scale", "replicasets", "replicasets/status",
            "replicasets/scale", "statefulsets", "statefulsets/status", "statefulsets/scale",
        ]),
        rule(["create", "patch", "update"], ["batch"], [
            "jobs", "jobs/status", "jobs/finalizers", "cronjobs", "cronjobs/status",
        ]),
        rule(["create", "patch", "update"], ["discovery.k8s.io"], ["endpointslices"]),
        rule(["create", "patch", "update"], ["coordination.k8s.io"], ["leases"]),
        rule(["patch", "update"], ["policy"], ["poddisruptionbudgets/status"]),
        rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
        rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
    ]  # fmt: skip


HEALTH_URLS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
DISCOVERY_URLS = ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", *HEALTH_URLS]


def cluster_roles() -> list[dict[str, Any]]:
    """Fresh dicts each call: the caller may add metadata before storing them."""
    rules: dict[str, list[Rule]] = {
        "cluster-admin": [rule(["*"], ["*"], ["*"]), url_rule(["*"], ["*"])],
        "admin": _admin_rules(),
        "edit": _edit_rules(),
        "view": _view_rules(),
        "system:discovery": [url_rule(["get"], DISCOVERY_URLS)],
        "system:public-info-viewer": [url_rule(["get"], HEALTH_URLS)],
        "system:basic-user": [
            rule(["create"], ["authorization.k8s.io"], [
                "selfsubjectaccessreviews", "selfsubjectrulesreviews",
            ]),
            rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
        ],
        "system:node": _node_rules(),
        "system:kube-scheduler": _scheduler_rules(),
        "system:kube-controller-manager": _controller_manager_rules(),
    }  # fmt: skip
    return [
        {"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole", "metadata": _meta(name), "rules": r}
        for name, r in rules.items()
    ]


def _subject(kind: str, name: str) -> dict[str, str]:
    return {"apiGroup": RBAC_GROUP, "kind": kind, "name": name}


def cluster_role_bindings() -> list[dict[str, Any]]:
    subjects: dict[str, list[dict[str, str]]] = {
        "cluster-admin": [_subject("Group", SYSTEM_MASTERS)],
        "system:discovery": [_subject("Group", AUTHENTICATED)],
        "system:public-info-viewer": [
            _subject("Group", AUTHENTICATED),
            _subject("Group", UNAUTHENTICATED),
        ],
        "system:basic-user": [_subject("Group", AUTHENTICATED)],
        "system:node": [_subject("Group", NODES)],
        "system:kube-scheduler": [_subject("User", KUBE_SCHEDULER)],
        "system:kube-controller-manager": [_subject("User", KUBE_CONTROLLER_MANAGER)],
    }
    return [
        {
            "apiVersion": RBAC_API_VERSION,
            "kind": "ClusterRoleBinding",
            "metadata": _meta(name),
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
            "subjects": s,
        }
        for name, s in subjects.items()
    ]


def bootstrap_objects() -> list[dict[str, Any]]:
    """Roles first, then bindings: the order to create them in."""
    return cluster_roles() + cluster_role_bindings()


def missing(existing: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """The bootstrap objects whose (kind, name) is not in `existing`."""
    return [o for o in bootstrap_objects() if (o["kind"], o["metadata"]["name"]) not in existing]
