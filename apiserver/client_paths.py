"""URLs of the Kubernetes REST API, built from the resource registry (pure).

    resource_path("v1", "pods", "default", "web-1", "status")
        -> /api/v1/namespaces/default/pods/web-1/status
    resource_path("apps/v1", "deployments")          -> /apis/apps/v1/deployments
    resource_path("v1", "nodes", name="n1")          -> /api/v1/nodes/n1
    object_path({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"namespace": "a", "name": "c"}}) -> /api/v1/namespaces/a/configmaps/c

Every path is checked against `apiserver.registry`, so a typo in a plural, a namespace
given for a cluster-scoped resource, or a subresource the resource does not serve fails
here with a ValueError instead of as a 404 from some server. Names and namespaces are
percent-encoded as path segments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from apiserver import registry
from apiserver.registry import Resource


def split_api_version(api_version: str) -> tuple[str, str]:
    """("", "v1") for "v1", ("apps", "v1") for "apps/v1"."""
    group, _, version = api_version.rpartition("/")
    if not version:
        raise ValueError(f"invalid apiVersion {api_version!r}")
    return group, version


def lookup(api_version: str, plural: str) -> Resource:
    group, version = split_api_version(api_version)
    resource = registry.lookup(group, version, plural)
    if resource is None:
        raise ValueError(f"no resource {plural!r} in {api_version!r}")
    return resource


def resolve(resource: str | Resource) -> Resource:
    """A Resource from itself, "pods", "deployments.apps" or "apps/v1/deployments"."""
    if isinstance(resource, Resource):
        return resource
    if resource.count("/") >= 1:
        api_version, _, plural = resource.rpartition("/")
        return lookup(api_version, plural)
    plural, _, group = resource.partition(".")
    for candidate in registry.RESOURCES:
        if candidate.plural == plural and candidate.group == group:
            return candidate
    raise ValueError(f"unknown resource {resource!r}")


def _segment(what: str, value: str) -> str:
    if not value or value in (".", "..") or "/" in value:
        raise ValueError(f"invalid {what} {value!r}")
    return quote(value, safe="")


def path_of(resource: Resource, namespace: str | None = None, name: str | None = None,
            subresource: str | None = None) -> str:
    """The URL path of a collection (no name) or of one object (and its subresource).

    A namespaced resource without a namespace is the all-namespaces collection, which
    only lists and watches take.
    """
    base = f"/apis/{resource.group}/{resource.version}" if resource.group else \
        f"/api/{resource.version}"
    if namespace is not None and not resource.namespaced:
        raise ValueError(f"{resource.group_resource} is cluster-scoped; got namespace "
                         f"{namespace!r}")
    if resource.namespaced and namespace is None and name is not None:
        raise ValueError(f"{resource.group_resource} is namespaced; a namespace is needed")
    path = base
    if namespace is not None:
        path += f"/namespaces/{_segment('namespace', namespace)}"
    path += f"/{resource.plural}"
    if name is not None:
        path += f"/{_segment('name', name)}"
    if subresource is not None:
        if name is None:
            raise ValueError("a subresource needs an object name")
        if subresource not in resource.subresources:
            raise ValueError(f"{resource.group_resource} has no subresource {subresource!r}")
        path += f"/{subresource}"
    return path


def resource_path(api_version: str, plural: str, namespace: str | None = None,
                  name: str | None = None, subresource: str | None = None) -> str:
    return path_of(lookup(api_version, plural), namespace, name, subresource)


def resource_of(obj: Mapping[str, Any]) -> Resource:
    """The resource an object belongs to, from its apiVersion and kind."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise ValueError("the object needs apiVersion and kind")
    resource = registry.by_kind(api_version, kind)
    if resource is None:
        raise ValueError(f"no resource serves {api_version} {kind}")
    return resource


def object_path(obj: Mapping[str, Any], subresource: str | None = None, *,
                namespace: str | None = None, collection: bool = False) -> str:
    """The path of `obj` itself (or, with `collection`, of the collection to POST it to).

    A namespaced object without `metadata.namespace` goes to `namespace`.
    """
    resource = resource_of(obj)
    meta = obj.get("metadata") or {}
    ns = (meta.get("namespace") or namespace) if resource.namespaced else None
    if resource.namespaced and not ns:
        raise ValueError(f"{resource.group_resource} is namespaced; the object has no "
                         "metadata.namespace and none was given")
    if collection:
        return path_of(resource, ns)
    name = meta.get("name")
    if not name:
        raise ValueError("the object has no metadata.name")
    return path_of(resource, ns, name, subresource)


def with_query(path: str, params: Mapping[str, str | int | bool | None]) -> str:
    """`path?k=v&...` with None values left out and booleans spelled true/false."""
    pairs = [(k, ("true" if v else "false") if isinstance(v, bool) else str(v))
             for k, v in params.items() if v is not None]
    if not pairs:
        return path
    return f"{path}{'&' if '?' in path else '?'}{urlencode(pairs)}"
