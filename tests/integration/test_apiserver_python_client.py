"""The official Python client (`kubernetes`, pinned in requirements.lock) against real
apiservers over both store kinds.

The client is configured from the kubeconfig the cluster writes, exactly as a user
would. It sends POST bodies without a Content-Type and, for models built without them,
without apiVersion/kind (REQUIREMENTS §11); it patches with strategic-merge-patch (the
scale subresource too), deserializes every watch line into a model (so watch events
must carry full objects), and raises ApiException with the Status body on errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.apiserver_cluster import ApiserverCluster
from tests.apiserver_http import wait_for

REQUEST_TIMEOUT = 30  # seconds, bounds every socket read of the client


@pytest.fixture
def api_client(apiservers_module: ApiserverCluster) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(apiservers_module.kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


def status_of(err: ApiException) -> dict:
    """The Status body of an error, which must be JSON with the exact Content-Type."""
    assert err.headers["Content-Type"] == "application/json"
    body = json.loads(err.body)
    assert (body["kind"], body["apiVersion"], body["status"]) == ("Status", "v1", "Failure")
    assert body["code"] == err.status
    return body


def raises(call, *args, **kwargs) -> ApiException:
    with pytest.raises(ApiException) as info:
        call(*args, **kwargs)
    return info.value


def deployment_model(name: str, replicas: int = 2) -> client.V1Deployment:
    """A model without apiVersion/kind, as many programs build them."""
    labels = {"app": name}
    container = client.V1Container(name="main", image="busybox",
                                   ports=[client.V1ContainerPort(container_port=8080)])
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[container]))))


def test_server_version(api_client: client.ApiClient) -> None:
    info = client.VersionApi(api_client).get_code(_request_timeout=REQUEST_TIMEOUT)
    assert (info.major, info.minor) == ("1", "32")


def test_namespaces(core: client.CoreV1Api, request: pytest.FixtureRequest) -> None:
    name = "py-ns-" + request.node.callspec.id
    names = {ns.metadata.name for ns in core.list_namespace().items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names

    created = core.create_namespace(client.V1Namespace(
        metadata=client.V1ObjectMeta(name=name, labels={"team": "a"})))
    assert created.metadata.uid and created.metadata.resource_version
    assert created.status.phase == "Active"
    assert created.metadata.labels["kubernetes.io/metadata.name"] == name

    patched = core.patch_namespace(name, {"metadata": {"labels": {"team": "b"}}})
    assert patched.metadata.labels["team"] == "b"
    current = core.read_namespace(name)
    current.metadata.labels["extra"] = "yes"
    replaced = core.replace_namespace(name, current)
    assert replaced.metadata.labels["extra"] == "yes"
    assert int(replaced.metadata.resource_version) > int(patched.metadata.resource_version)

    core.delete_namespace(name)
    # Deletion is asynchronous: Terminating first, gone once emptied.
    err = wait_for(lambda: _missing(core.read_namespace, name), timeout=30,
                   what=f"namespace {name} removed")
    assert status_of(err)["reason"] == "NotFound"


def _missing(read, *args) -> ApiException | None:
    try:
        read(*args)
    except ApiException as err:
        if err.status == 404:
            return err
        raise
    return None


def test_configmaps_and_errors(core: client.CoreV1Api, namespace: str) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg", labels={"tier": "fe"}),
                              data={"a": "1"})
    created = core.create_namespaced_config_map(namespace, body)
    assert (created.kind, created.api_version) == ("ConfigMap", "v1")
    assert created.metadata.namespace == namespace
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="other"), data={}))

    listed = core.list_namespaced_config_map(namespace, label_selector="tier=fe")
    assert [cm.metadata.name for cm in listed.items] == ["cfg"]

    patched = core.patch_namespaced_config_map("cfg", namespace, {"data": {"b": "2"}})
    assert patched.data == {"a": "1", "b": "2"}

    stale = created  # read before the patch: its resourceVersion is old
    stale.data = {"c": "3"}
    err = raises(core.replace_namespaced_config_map, "cfg", namespace, stale)
    assert (err.status, err.reason) == (409, "Conflict")
    assert status_of(err)["message"] == (
        'Operation cannot be fulfilled on configmaps "cfg": the object has been modified; '
        "please apply your changes to the latest version and try again")

    fresh = core.read_namespaced_config_map("cfg", namespace)
    fresh.data = {"c": "3"}
    assert core.replace_namespaced_config_map("cfg", namespace, fresh).data == {"c": "3"}

    err = raises(core.create_namespaced_config_map, namespace, body)
    assert err.status == 409
    assert status_of(err)["reason"] == "AlreadyExists"
    assert status_of(err)["message"] == 'configmaps "cfg" already exists'

    bad = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="Bad_Name"))
    err = raises(core.create_namespaced_config_map, namespace, bad)
    assert err.status == 422
    invalid = status_of(err)
    assert invalid["reason"] == "Invalid"
    assert invalid["details"]["causes"][0]["field"] == "metadata.name"

    deleted = core.delete_namespaced_config_map("cfg", namespace)
    assert deleted is not None
    err = raises(core.read_namespaced_config_map, "cfg", namespace)
    assert (err.status, err.reason) == (404, "Not Found")
    assert status_of(err)["message"] == 'configmaps "cfg" not found'
    assert status_of(err)["details"] == {"name": "cfg", "kind": "configmaps"}

    err = raises(core.list_namespaced_config_map, namespace, label_selector="a in (")
    assert err.status == 400 and status_of(err)["reason"] == "BadRequest"


def test_deployments_and_the_scale_subresource(apps: client.AppsV1Api, namespace: str) -> None:
    created = apps.create_namespaced_deployment(namespace, deployment_model("web"))
    assert (created.kind, created.api_version) == ("Deployment", "apps/v1")
    assert created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate"  # defaulted by the server

    assert [d.metadata.name for d in apps.list_namespaced_deployment(namespace).items] == [
        "web"]
    everywhere = apps.list_deployment_for_all_namespaces(field_selector="metadata.name=web")
    assert namespace in {d.metadata.namespace for d in everywhere.items}

    scale = apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 4}})
    assert (scale.kind, scale.spec.replicas, scale.status.selector) == ("Scale", 4, "app=web")
    assert apps.read_namespaced_deployment_scale("web", namespace).spec.replicas == 4
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 4

    patched = apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": {
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]}}}})
    [main] = patched.spec.template.spec.containers
    assert (main.image, main.ports[0].container_port) == ("busybox:1.36", 8080)
    assert patched.metadata.generation == 3

    current = apps.read_namespaced_deployment("web", namespace)
    current.spec.replicas = 1
    replaced = apps.replace_namespaced_deployment("web", namespace, current)
    assert (replaced.spec.replicas, replaced.metadata.generation) == (1, 4)

    err = raises(apps.patch_namespaced_deployment_scale, "web", namespace,
                 {"spec": {"replicas": -1}})
    assert err.status == 422 and status_of(err)["reason"] == "Invalid"

    apps.delete_namespaced_deployment("web", namespace)
    err = raises(apps.read_namespaced_deployment, "web", namespace)
    assert err.status == 404
    assert status_of(err)["message"] == 'deployments.apps "web" not found'
    assert status_of(err)["details"]["group"] == "apps"


def test_watch_streams(core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str) -> None:
    for name in ("one", "two"):
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name), data={"v": "0"}))

    # No resourceVersion: synthetic ADDED events for what exists, then the stream ends
    # at timeoutSeconds.
    events = list(watch.Watch().stream(core.list_namespaced_config_map, namespace,
                                       timeout_seconds=1, _request_timeout=REQUEST_TIMEOUT))
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "one"), ("ADDED", "two")]
    assert all(isinstance(e["object"], client.V1ConfigMap) for e in events)

    # From a list's resourceVersion: exactly what happened after it, in order.
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="three")))
    core.patch_namespaced_config_map("one", namespace, {"data": {"v": "1"}})
    core.delete_namespaced_config_map("two", namespace)
    events = list(watch.Watch().stream(core.list_namespaced_config_map, namespace,
                                       resource_version=rv, timeout_seconds=1,
                                       _request_timeout=REQUEST_TIMEOUT))
    seen = [(e["type"], e["object"].metadata.name) for e in events]
    assert seen == [("ADDED", "three"), ("MODIFIED", "one"), ("DELETED", "two")]
    assert events[1]["object"].data == {"v": "1"}
    versions = [int(e["object"].metadata.resource_version) for e in events]
    assert versions == sorted(versions) and versions[0] > int(rv)

    # Deployments, with a label selector.
    apps.create_namespaced_deployment(namespace, deployment_model("picked"))
    apps.create_namespaced_deployment(namespace, deployment_model("ignored"))
    events = list(watch.Watch().stream(apps.list_namespaced_deployment, namespace,
                                       label_selector="app=picked", timeout_seconds=1,
                                       _request_timeout=REQUEST_TIMEOUT))
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "picked")]
    assert isinstance(events[0]["object"], client.V1Deployment)
