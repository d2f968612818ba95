"""apiserver.request_info: API coordinates from a method, path and query."""

from __future__ import annotations

import pytest

from apiserver import request_info


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/api/v1/namespaces/ns/pods", ("list", "ns", "pods", "", "")),
    ("GET", "/api/v1/namespaces/ns/pods/web", ("get", "ns", "pods", "web", "")),
    ("PUT", "/api/v1/namespaces/ns/pods/web/status", ("update", "ns", "pods", "web", "status")),
    ("GET", "/api/v1/namespaces/ns/pods/status", ("get", "ns", "pods", "status", "")),
    ("GET", "/api/v1/namespaces/ns", ("get", None, "namespaces", "ns", "")),
    # The namespace's own subresources, not resources named "status" inside it.
    ("PUT", "/api/v1/namespaces/ns/status", ("update", None, "namespaces", "ns", "status")),
    ("PUT", "/api/v1/namespaces/ns/finalize", ("update", None, "namespaces", "ns",
                                                "finalize")),
    ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/web/scale",
     ("patch", "ns", "deployments", "web", "scale")),
    ("DELETE", "/api/v1/namespaces/ns/configmaps", ("deletecollection", "ns", "configmaps",
                                                     "", "")),
])
def test_parse(method: str, path: str, expected: tuple) -> None:
    info = request_info.parse(method, path, {})
    assert info.is_resource
    assert (info.verb, info.namespace, info.plural, info.name, info.subresource) == expected


def test_watch_is_a_verb_of_its_own() -> None:
    assert request_info.parse("GET", "/api/v1/pods", {"watch": "1"}).verb == "watch"
    assert request_info.parse("GET", "/api/v1/pods", {"watch": "false"}).verb == "list"
