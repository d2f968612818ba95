"""Authentication and authorization for each request, over the pure `apiserver.auth`.

Users come from a verified client certificate, the static token file, or a
service-account JWT; no credentials means `system:anonymous`, a bad token means 401.
RBAC objects are read from the store and cached for a second, so a new binding takes
effect within about a second on every apiserver. Nodes are further confined to their own
objects by `node_restriction`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from aiohttp import web

from apiserver import http_util, registry, status
from apiserver.auth import pki, rbac, tokens
from apiserver.auth.node_restriction import node_restriction
from apiserver.auth.user import ANONYMOUS, SYSTEM_MASTERS, UserInfo, node_name
from apiserver.request_info import RequestInfo
from apiserver.storage import Storage

RBAC_TTL = 1.0
ALWAYS_PUBLIC = {"/healthz", "/livez", "/readyz", "/version"}

_RBAC_KINDS = ("roles", "clusterroles", "rolebindings", "clusterrolebindings")


class _Policy(NamedTuple):
    """The RBAC objects as rbac.authorize takes them, indexed once per reload."""

    roles: dict
    cluster_roles: dict
    role_bindings: list[dict]
    cluster_role_bindings: list[dict]


class Security:
    def __init__(self, storage: Storage, users: Mapping[str, UserInfo],
                 sa_verifier: tokens.ServiceAccountVerifier | None, rbac_enabled: bool) -> None:
        self.storage = storage
        self.users = users
        self.sa_verifier = sa_verifier
        self.rbac_enabled = rbac_enabled
        self._policy: _Policy | None = None
        self._policy_at = 0.0
        self._reload = asyncio.Lock()  # one reload at a time; requests meanwhile wait

    def authenticate(self, request: web.Request) -> UserInfo | None:
        subject = None
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        if peer:
            subject = peer.get("subject")
        return tokens.authenticate(request.headers.get("Authorization"), self.users,
                                   self.sa_verifier, subject)

    async def authorize(self, user: Any, info: RequestInfo, request: web.Request) -> None:
        if user is None:
            raise status.unauthorized()
        path = request.path.rstrip("/") or "/"
        if not self.rbac_enabled:
            return
        if user == ANONYMOUS and path in ALWAYS_PUBLIC:
            return
        attrs = rbac.attributes_from_request(user, info)
        lookup = await self._lookup(info, request) if node_name(user) else (lambda: None)
        verdict = node_restriction(user, attrs, lookup)
        if verdict is False:
            raise rbac.forbidden(attrs, "")
        if SYSTEM_MASTERS in user.groups:
            return  # what rbac.authorize answers first, without loading the policy
        policy = await self._load_policy()
        allowed, reason = rbac.authorize(attrs, policy.roles, policy.cluster_roles,
                                         policy.role_bindings, policy.cluster_role_bindings)
        if not allowed:
            if user == ANONYMOUS:
                raise status.unauthorized() if path not in ALWAYS_PUBLIC else \
                    rbac.forbidden(attrs, reason)
            raise rbac.forbidden(attrs, reason)

    async def _lookup(self, info: RequestInfo, request: web.Request):
        """What node_restriction judges: the body for a create, else the stored object."""
        resource = registry.lookup(info.group, info.version, info.plural)
        obj = None
        if info.verb == "create":
            try:
                obj = await http_util.read_object(request)
            except status.ApiError:
                obj = None
        elif resource is not None and info.name:
            try:
                obj = await self.storage.get(resource, info.namespace, info.name)
            except status.ApiError:
                obj = None
        return lambda: obj

    def _fresh_policy(self) -> _Policy | None:
        if self._policy is not None and time.monotonic() - self._policy_at <= RBAC_TTL:
            return self._policy
        return None

    async def _load_policy(self) -> _Policy:
        """The RBAC objects, read again at most every RBAC_TTL seconds: one reload at a
        time (concurrent requests wait for it rather than each reading the store), and
        indexed once per reload rather than once per request."""
        policy = self._fresh_policy()
        if policy is not None:
            return policy
        async with self._reload:
            policy = self._fresh_policy()
            if policy is not None:
                return policy
            now = time.monotonic()
            objects: dict[str, list[dict]] = {}
            for plural in _RBAC_KINDS:
                resource = registry.lookup("rbac.authorization.k8s.io", "v1", plural)
                assert resource is not None
                objects[plural] = (await self.storage.list(resource, None)).items
            self._policy = _Policy(rbac.index_roles(objects["roles"]),
                                   rbac.index_cluster_roles(objects["clusterroles"]),
                                   objects["rolebindings"], objects["clusterrolebindings"])
            self._policy_at = now
            return self._policy


def from_args(args: argparse.Namespace, storage: Storage) -> Security:
    users = tokens.load_token_file(args.token_auth_file) if args.token_auth_file else {}
    verifier = None
    keys = [k for path in args.service_account_key_file for k in pki.load_public_keys(path)]
    if keys:
        audiences = tuple(a.strip() for a in args.api_audiences.split(",") if a.strip())
        verifier = tokens.ServiceAccountVerifier(keys, audiences,
                                                 (args.service_account_issuer,))
    return Security(storage, users, verifier, args.authorization_mode == "RBAC")
