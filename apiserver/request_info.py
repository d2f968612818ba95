"""What a request asks for, read from its method, path and query (pure).

/api/v1/namespaces/default/pods/web-1/log?follow=true
-> group "", version v1, namespace default, resource pods, name web-1,
   subresource log, verb get
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestInfo:
    is_resource: bool
    path: str
    verb: str  # get list watch create update patch delete deletecollection
    group: str = ""
    version: str = ""
    namespace: str | None = None
    plural: str = ""
    name: str = ""
    subresource: str = ""
    parts: tuple[str, ...] = ()
    subpath: str = ""  # what follows a proxy subresource: nodes/N/proxy/<subpath>


_TRUE = {"1", "true", "True", "TRUE", "yes"}
# /api/v1/namespaces/NAME/status is the namespace's own subresource, not a resource
# "status" inside it (Kubernetes' RequestInfoFactory makes the same exception).
NAMESPACE_SUBRESOURCES = ("status", "finalize")


def is_true(value: str | None) -> bool:
    return value is not None and value in _TRUE


def parse(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    """Split a path into API coordinates; non-resource paths keep only the path."""
    parts = tuple(p for p in path.split("/") if p)
    if not parts or parts[0] not in ("api", "apis"):
        return RequestInfo(False, path, method.lower())
    if parts[0] == "api":
        if len(parts) < 2:
            return RequestInfo(False, path, method.lower(), parts=parts)
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 3:
            return RequestInfo(False, path, method.lower(), parts=parts)
        group, version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        return RequestInfo(False, path, method.lower(), group=group, version=version, parts=parts)
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and not (
            len(rest) == 3 and rest[2] in NAMESPACE_SUBRESOURCES):
        namespace, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) == 2:
        # /api/v1/namespaces/NAME is the namespace object itself
        pass
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    subpath = ""
    if len(rest) > 3:
        if subresource == "proxy":
            # Kubernetes authorizes nodes/proxy whatever path follows it.
            subpath = "/".join(rest[3:])
        else:
            subresource = "/".join(rest[2:])
    verb = _verb(method, bool(name), query)
    return RequestInfo(
        True, path, verb, group, version, namespace, plural, name, subresource, parts,
        subpath,
    )


def _verb(method: str, has_name: bool, query: Mapping[str, str]) -> str:
    method = method.upper()
    if method in ("GET", "HEAD"):
        if is_true(query.get("watch")):
            return "watch"
        return "get" if has_name else "list"
    return {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if has_name else "deletecollection",
    }.get(method, method.lower())
