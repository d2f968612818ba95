"""Who a request is from: the authenticated user and Kubernetes' well-known names.

Authentication (tokens.py) produces a `UserInfo`; authorization (rbac.py,
node_restriction.py) reads it. The names below are the ones Kubernetes uses, so RBAC
objects written for a real cluster (bindings to `system:masters`, `system:nodes`,
`system:serviceaccounts:<ns>`) mean the same thing here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Groups
SYSTEM_MASTERS = "system:masters"  # allowed everything, before RBAC is consulted
AUTHENTICATED = "system:authenticated"  # every authenticated user
UNAUTHENTICATED = "system:unauthenticated"  # the anonymous user
NODES = "system:nodes"  # node agents, with users named system:node:<name>
SERVICE_ACCOUNTS = "system:serviceaccounts"  # plus system:serviceaccounts:<namespace>
BOOTSTRAPPERS = "system:bootstrappers"  # holders of a bootstrap (join) token

# Users
ANONYMOUS_NAME = "system:anonymous"
NODE_USER_PREFIX = "system:node:"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
KUBE_SCHEDULER = "system:kube-scheduler"
KUBE_CONTROLLER_MANAGER = "system:kube-controller-manager"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated identity. Frozen so one can be shared across requests safely."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()

    def in_group(self, group: str) -> bool:
        return group in self.groups


ANONYMOUS = UserInfo(ANONYMOUS_NAME, "", (UNAUTHENTICATED,))


def with_authenticated(user: UserInfo) -> UserInfo:
    """Add `system:authenticated` as Kubernetes' AuthenticatedGroupAdder does.

    Every authenticator's result passes through it, so bindings to
    `system:authenticated` reach every real user, but never the anonymous one.
    """
    if user.name == ANONYMOUS_NAME or UNAUTHENTICATED in user.groups:
        return user
    if AUTHENTICATED in user.groups:
        return user
    return UserInfo(user.name, user.uid, (*user.groups, AUTHENTICATED))


def service_account_username(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def split_service_account_username(username: str) -> tuple[str, str] | None:
    """(namespace, name) of `system:serviceaccount:<ns>:<name>`, or None."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, sep, name = username[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name


def service_account_groups(namespace: str) -> tuple[str, ...]:
    return (SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{namespace}", AUTHENTICATED)


def node_name(user: UserInfo) -> str | None:
    """The node a user acts for: named `system:node:<name>` AND in `system:nodes`.

    Both are required, as in Kubernetes' node identifier, so a token-file user merely
    named like a node gets no node powers.
    """
    if NODES not in user.groups or not user.name.startswith(NODE_USER_PREFIX):
        return None
    name = user.name[len(NODE_USER_PREFIX) :]
    return name or None
