"""What a node agent may touch: its own Node, its own Lease, the pods bound to it (pure).

Kubernetes confines kubelets with the Node authorizer plus the NodeRestriction
admission plugin. kubelite does it with RBAC (the `system:node` ClusterRole, bound to
group `system:nodes`, says which verbs a node may use at all) plus this check, which
says on which objects. The handler combines them:

    verdict = node_restriction(user, attrs, lookup)
    allowed = verdict is not False and rbac.authorize(attrs, ...)[0]

A node is a user named `system:node:<name>` in group `system:nodes` (both required).
For such a user, a resource request is allowed only if it is listed here; everything
else is refused (False) whatever RBAC says, so binding a broad role to a node cannot
widen what a stolen node credential reaches. Non-resource requests (discovery,
health) and users that are not nodes get None: no opinion, RBAC alone decides.

| resource (group) | verbs | on which objects |
|---|---|---|
| nodes | get, list, watch | any |
| nodes | create | a Node named after itself (registration) |
| nodes | update, patch | its own Node |
| nodes/status | get | any |
| nodes/status | update, patch | its own Node |
| leases (coordination.k8s.io) | get, create, update, patch | its own: name = node name, namespace kube-node-lease |
| pods | get, list, watch | any |
| pods | delete | pods bound to it (spec.nodeName = node name): the final delete after shutdown |
| pods/status | get | any |
| pods/status | update, patch | pods bound to it |
| services, endpoints, endpointslices (discovery.k8s.io) | get, list, watch | any |
| events (core and events.k8s.io) | create, update, patch | any namespace |

Not allowed, on purpose: deleting any Node (its own included), creating pods (no mirror
pods), secrets and configmaps (Kubernetes' graph of pod references is not built here),
evictions, and every other resource.

`obj_lookup` is called only when a decision needs the object, at most once. It returns
the request body for `create` and the stored object otherwise (None if there is none,
which refuses): for pods/status that is the stored pod, so a status update cannot move
a pod onto the node by claiming a new `spec.nodeName`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from apiserver.auth.rbac import Attributes
from apiserver.auth.user import UserInfo, node_name

NODE_LEASE_NAMESPACE = "kube-node-lease"

ObjectLookup = Callable[[], Mapping[str, Any] | None]

# Conditions on the object, checked by _condition_holds.
ANY = "any"
OWN_NODE = "own-node"
OWN_LEASE = "own-lease"
BOUND_POD = "bound-pod"

_READ = {"get": ANY, "list": ANY, "watch": ANY}
_EVENTS = {"create": ANY, "update": ANY, "patch": ANY}

# (api group, resource, subresource) -> verb -> condition
ALLOWED: dict[tuple[str, str, str], dict[str, str]] = {
    ("", "nodes", ""): {**_READ, "create": OWN_NODE, "update": OWN_NODE, "patch": OWN_NODE},
    ("", "nodes", "status"): {"get": ANY, "update": OWN_NODE, "patch": OWN_NODE},
    ("coordination.k8s.io", "leases", ""): {
        "get": OWN_LEASE,
        "create": OWN_LEASE,
        "update": OWN_LEASE,
        "patch": OWN_LEASE,
    },
    ("", "pods", ""): {**_READ, "delete": BOUND_POD},
    ("", "pods", "status"): {"get": ANY, "update": BOUND_POD, "patch": BOUND_POD},
    ("", "services", ""): _READ,
    ("", "endpoints", ""): _READ,
    ("discovery.k8s.io", "endpointslices", ""): _READ,
    ("", "events", ""): _EVENTS,
    ("events.k8s.io", "events", ""): _EVENTS,
}


def node_restriction(user: UserInfo, attrs: Attributes, obj_lookup: ObjectLookup) -> bool | None:
    """None: not a node request, RBAC decides. True: within the node's limits (RBAC
    must still allow it). False: refuse, whatever RBAC says."""
    node = node_name(user)
    if node is None or not attrs.is_resource_request:
        return None
    verbs = ALLOWED.get((attrs.api_group, attrs.resource, attrs.subresource))
    condition = verbs.get(attrs.verb) if verbs else None
    if condition is None:
        return False
    return _condition_holds(condition, node, attrs, obj_lookup)


def _condition_holds(condition: str, node: str, attrs: Attributes, lookup: ObjectLookup) -> bool:
    if condition == ANY:
        return True
    if condition == OWN_LEASE and attrs.namespace != NODE_LEASE_NAMESPACE:
        return False
    if condition in (OWN_NODE, OWN_LEASE):
        if attrs.verb != "create":
            return attrs.name == node
        body = lookup()
        return attrs.name in ("", node) and _get(body, "metadata", "name") == node
    if condition == BOUND_POD:
        return bool(attrs.name) and _get(lookup(), "spec", "nodeName") == node
    raise AssertionError(f"unknown condition {condition!r}")


def _get(obj: Mapping[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj
