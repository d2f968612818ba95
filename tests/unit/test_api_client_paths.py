"""API paths from the registry: collections, objects, subresources, and what is refused."""

from __future__ import annotations

import pytest

from apiserver import client_paths, registry


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (("v1", "pods"), "/api/v1/pods"),
        (("v1", "pods", "default"), "/api/v1/namespaces/default/pods"),
        (("v1", "pods", "default", "web-1"), "/api/v1/namespaces/default/pods/web-1"),
        (("v1", "pods", "default", "web-1", "status"),
         "/api/v1/namespaces/default/pods/web-1/status"),
        (("v1", "pods", "default", "web-1", "binding"),
         "/api/v1/namespaces/default/pods/web-1/binding"),
        (("v1", "nodes", None, "n1"), "/api/v1/nodes/n1"),
        (("v1", "namespaces", None, "kube-system"), "/api/v1/namespaces/kube-system"),
        (("apps/v1", "deployments", "prod", "web", "scale"),
         "/apis/apps/v1/namespaces/prod/deployments/web/scale"),
        (("coordination.k8s.io/v1", "leases", "kube-node-lease", "n1"),
         "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"),
        (("rbac.authorization.k8s.io/v1", "clusterroles", None, "system:node"),
         "/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Anode"),
    ],
)
def test_resource_path(args: tuple, path: str) -> None:
    assert client_paths.resource_path(*args) == path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("v1", "podz"), "no resource 'podz'"),
        (("apps/v2", "deployments"), "no resource"),
        (("v1", "nodes", "default"), "cluster-scoped"),
        (("v1", "pods", None, "web-1"), "a namespace is needed"),
        (("v1", "configmaps", "default", "c", "status"), "no subresource 'status'"),
        (("v1", "pods", "default", None, "status"), "needs an object name"),
        (("v1", "pods", "default", "a/b"), "invalid name"),
        (("v1", "pods", "..", "x"), "invalid namespace"),
        (("v1", "pods", "default", ""), "invalid name"),
    ],
)
def test_resource_path_refuses(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        client_paths.resource_path(*args)


def test_object_path_from_the_object() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "a"}}
    assert client_paths.object_path(cm) == "/api/v1/namespaces/a/configmaps/c"
    assert client_paths.object_path(cm, collection=True) == "/api/v1/namespaces/a/configmaps"
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    assert client_paths.object_path(deploy, "status", namespace="prod") == \
        "/apis/apps/v1/namespaces/prod/deployments/web/status"
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    # A cluster-scoped object ignores the default namespace.
    assert client_paths.object_path(node, namespace="default") == "/api/v1/nodes/n1"
    with pytest.raises(ValueError, match="no metadata.namespace"):
        client_paths.object_path(deploy)
    with pytest.raises(ValueError, match="no resource serves"):
        client_paths.object_path({"apiVersion": "v1", "kind": "Widget", "metadata": {}})
    with pytest.raises(ValueError, match="apiVersion and kind"):
        client_paths.object_path({"metadata": {"name": "x"}})


def test_resolve_names() -> None:
    pods = registry.lookup("", "v1", "pods")
    deployments = registry.lookup("apps", "v1", "deployments")
    assert client_paths.resolve("pods") is pods
    assert client_paths.resolve(pods) is pods
    assert client_paths.resolve("deployments.apps") is deployments
    assert client_paths.resolve("apps/v1/deployments") is deployments
    assert client_paths.resolve("v1/pods") is pods
    with pytest.raises(ValueError):
        client_paths.resolve("deployments")  # the core group has none


def test_with_query() -> None:
    assert client_paths.with_query("/api/v1/pods", {}) == "/api/v1/pods"
    assert client_paths.with_query(
        "/api/v1/pods", {"watch": True, "labelSelector": "app in (a,b)", "limit": 5,
                         "continue": None}) == \
        "/api/v1/pods?watch=true&labelSelector=app+in+%28a%2Cb%29&limit=5"
    assert client_paths.with_query("/x?a=1", {"b": False}) == "/x?a=1&b=false"
