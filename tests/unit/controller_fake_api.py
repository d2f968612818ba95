"""An async fake of the API client's reads and writes over controller_world.World.

The runner talks to this exactly as to ApiClient (paths from client_paths, errors as
ApiStatusError with the apiserver's codes and reasons), so its tests check what goes
over the wire: 404 for a missing object, 409 AlreadyExists, 409 Conflict for a stale
resourceVersion or a failed uid precondition. Hooks let a test fail a request, make it
slow (to observe concurrency) or make its outcome unknown.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Callable, Mapping
from typing import Any

from apiserver.client_policy import ApiStatusError, ApiUnavailable
from controllers import actions, meta
from tests.unit.controller_world import Conflict, World

Obj = dict[str, Any]
_PATH = re.compile(r"^/(?:api/v1|apis/[^/]+/[^/]+)(?:/namespaces/(?P<ns>[^/]+))?"
                   r"/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$")
_PATCH_TYPES = {"merge": actions.MERGE_PATCH, "json": actions.JSON_PATCH,
                "strategic": actions.STRATEGIC_MERGE_PATCH}


def error(code: int, reason: str, message: str) -> ApiStatusError:
    return ApiStatusError(code, reason, {"kind": "Status", "code": code, "reason": reason,
                                         "message": message})


def parse(path: str) -> tuple[str, str, str, str]:
    match = _PATH.match(path)
    assert match, path
    return (match["plural"], match["ns"] or "", match["name"] or "", match["sub"] or "")


class FakeApi:
    """Requests logged in `calls` as (method, path); `fail(method, plural)` hooks errors."""

    timeout = 10.0

    def __init__(self, world: World | None = None) -> None:
        self.world = world or World()
        self.calls: list[tuple[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.failures: dict[tuple[str, str], Callable[[Obj | None], ApiStatusError | None]] = {}
        self.delay = 0.0

    def fail(self, method: str, plural: str,
             how: Callable[[Obj | None], ApiStatusError | None]) -> None:
        self.failures[(method, plural)] = how

    async def _enter(self, method: str, path: str, body: Obj | None) -> None:
        self.calls.append((method, path))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        hook = self.failures.get((method, parse(path)[0]))
        if hook is not None:
            err = hook(body)
            if err is not None:
                raise err

    async def get(self, path: str, *, timeout: float | None = None) -> Obj:
        await self._enter("GET", path, None)
        plural, ns, name, _ = parse(path)
        obj = self.world.objects.get((plural, ns, name))
        if obj is None:
            raise error(404, "NotFound", f'{plural} "{name}" not found')
        return copy.deepcopy(obj)

    async def create(self, obj: Mapping[str, Any], *, timeout: float | None = None,
                     path: str | None = None, namespace: str | None = None) -> Obj:
        assert path is not None
        await self._enter("POST", path, dict(obj))
        plural, ns, _, _ = parse(path)
        md = meta.metadata(obj)
        if md.get("name") and (plural, ns, md["name"]) in self.world.objects:
            raise error(409, "AlreadyExists", f'{plural} "{md["name"]}" already exists')
        return self.world._create(plural, ns, dict(obj))

    async def update(self, obj: Mapping[str, Any], *, timeout: float | None = None,
                     subresource: str | None = None) -> Obj:
        ns = meta.namespace(obj)
        plural = {"Pod": "pods", "ReplicaSet": "replicasets", "Node": "nodes",
                  "ServiceAccount": "serviceaccounts", "Secret": "secrets",
                  "Deployment": "deployments", "Endpoints": "endpoints"}[obj["kind"]]
        path = f"/api/v1/namespaces/{ns}/{plural}/{meta.name(obj)}" + \
            (f"/{subresource}" if subresource else "")
        await self._enter("PUT", path, dict(obj))
        kind = actions.UpdateStatus if subresource == "status" else actions.Update
        try:
            self.world._update(kind(plural, obj["apiVersion"], ns or None, dict(obj)))
        except Conflict as err:
            code = 404 if "not found" in str(err) else 409
            raise error(code, "NotFound" if code == 404 else "Conflict", str(err)) from None
        return copy.deepcopy(self.world.objects[(plural, ns, meta.name(obj))])

    async def patch(self, path: str, patch: Any, *, type: str = "merge",
                    timeout: float | None = None) -> Obj:
        await self._enter("PATCH", path, None)
        plural, ns, name, sub = parse(path)
        try:
            self.world._patch(actions.Patch(plural, "v1", ns or None, name, _PATCH_TYPES[type],
                                            patch, sub))
        except Conflict as err:
            code = 404 if "not found" in str(err) else 409
            raise error(code, "NotFound" if code == 404 else "Conflict", str(err)) from None
        return copy.deepcopy(self.world.objects[(plural, ns, name)])

    async def delete(self, path: str, options: Mapping[str, Any] | None = None, *,
                     timeout: float | None = None) -> Obj:
        await self._enter("DELETE", path, dict(options or {}))
        plural, ns, name, _ = parse(path)
        current = self.world.objects.get((plural, ns, name))
        if current is None:
            raise error(404, "NotFound", f'{plural} "{name}" not found')
        uid = ((options or {}).get("preconditions") or {}).get("uid")
        if uid and uid != meta.uid(current):
            raise error(409, "Conflict", f"Precondition failed: UID in precondition: {uid}, "
                                         f"UID in object meta: {meta.uid(current)}")
        return self.world.objects.pop((plural, ns, name))


def unknown_outcome() -> ApiUnavailable:
    return ApiUnavailable("POST: outcome unknown", maybe_applied=True, causes=["reset"])
