"""Endpoints reconcile: ready and not-ready addresses, named ports, packing, no-op updates."""

from __future__ import annotations

import copy

from controllers import actions, endpoints, meta
from tests.unit.controller_world import T0, make_pod

APP = {"app": "web"}


def _service(**spec: object) -> dict:
    body = {"selector": dict(APP), "clusterIP": "10.96.0.10", "type": "ClusterIP",
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "ns", "uid": "svc", "labels": {"tier": "fe"}},
            "spec": body}


def _pod(name: str, ip: str, ready: bool = True, **kwargs: object) -> dict:
    pod = make_pod(name, APP, node="n1", phase="Running", ip=ip,
                   ready_since=T0 if ready else None, **kwargs)  # type: ignore[arg-type]
    pod["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080,
                                              "protocol": "TCP"}]
    return pod


def test_creates_endpoints_with_ready_and_not_ready_addresses() -> None:
    pods = [_pod("b", "10.244.0.9"), _pod("a", "10.244.0.10"),
            _pod("c", "10.244.1.3", ready=False), _pod("noip", ""),
            make_pod("other", {"app": "db"}, ip="10.244.0.50", phase="Running")]
    (create,) = endpoints.reconcile(_service(), pods, None)
    assert isinstance(create, actions.Create)
    assert create.obj["metadata"] == {"name": "web", "namespace": "ns", "labels": {"tier": "fe"}}
    assert create.obj["subsets"] == [{
        "addresses": [
            {"ip": "10.244.0.10", "nodeName": "n1",
             "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}},
            {"ip": "10.244.0.9", "nodeName": "n1",
             "targetRef": {"kind": "Pod", "namespace": "ns", "name": "b", "uid": "uid-b"}},
        ],
        "notReadyAddresses": [
            {"ip": "10.244.1.3", "nodeName": "n1",
             "targetRef": {"kind": "Pod", "namespace": "ns", "name": "c", "uid": "uid-c"}},
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }]


def test_named_target_port_resolves_per_pod_and_splits_subsets() -> None:
    service = _service(ports=[{"name": "http", "port": 80, "targetPort": "http"}])
    a = _pod("a", "10.0.0.1")
    b = _pod("b", "10.0.0.2")
    b["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 9090}]
    c = _pod("c", "10.0.0.3")
    c["spec"]["containers"][0]["ports"] = [{"name": "metrics", "containerPort": 9100}]
    subsets = endpoints.build_subsets(service, [a, b, c])
    assert [([x["ip"] for x in s["addresses"]], s["ports"]) for s in subsets] == [
        (["10.0.0.1"], [{"name": "http", "port": 8080, "protocol": "TCP"}]),
        (["10.0.0.2"], [{"name": "http", "port": 9090, "protocol": "TCP"}]),
    ]


def test_unchanged_endpoints_are_not_rewritten_and_changes_are_updates() -> None:
    service = _service()
    pods = [_pod("a", "10.0.0.1")]
    (create,) = endpoints.reconcile(service, pods, None)
    existing = copy.deepcopy(create.obj)
    existing["metadata"].update(uid="ep", resourceVersion="7")
    assert endpoints.reconcile(service, list(reversed(pods)), existing) == []
    pods[0]["status"]["conditions"][0]["status"] = "False"
    (update,) = endpoints.reconcile(service, pods, existing)
    assert isinstance(update, actions.Update)
    assert update.obj["metadata"]["resourceVersion"] == "7"
    assert "addresses" not in update.obj["subsets"][0]
    assert [a["ip"] for a in update.obj["subsets"][0]["notReadyAddresses"]] == ["10.0.0.1"]


def test_terminating_and_finished_pods_are_left_out() -> None:
    going = _pod("going", "10.0.0.1")
    going["metadata"]["deletionTimestamp"] = meta.format_time(T0)
    done = _pod("done", "10.0.0.2", ready=False)
    done["status"]["phase"] = "Succeeded"
    assert endpoints.build_subsets(_service(), [going, done]) == []
    published = endpoints.build_subsets(_service(publishNotReadyAddresses=True), [going])
    assert [a["ip"] for a in published[0]["addresses"]] == ["10.0.0.1"]


def test_service_without_selector_is_left_alone_and_gone_service_deletes() -> None:
    manual = {"metadata": {"name": "web", "namespace": "ns", "uid": "ep"}, "subsets": []}
    assert endpoints.reconcile(_service(selector=None), [_pod("a", "10.0.0.1")], manual) == []
    (delete,) = endpoints.reconcile(None, [], manual)
    assert (delete.resource, delete.name, delete.uid_precondition) == ("endpoints", "web", "ep")
    assert endpoints.reconcile(None, [], None) == []


def test_headless_service_without_ports_lists_addresses_only() -> None:
    service = _service(clusterIP="None", ports=[])
    (create,) = endpoints.reconcile(service, [_pod("a", "10.0.0.1")], None)
    assert create.obj["subsets"] == [{"addresses": [
        {"ip": "10.0.0.1", "nodeName": "n1",
         "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}}]}]
    assert create.obj["metadata"]["labels"] == {"tier": "fe", endpoints.HEADLESS_LABEL: ""}


def test_hostname_when_subdomain_is_the_service() -> None:
    pod = _pod("a", "10.0.0.1")
    pod["spec"].update(hostname="a-0", subdomain="web")
    address = endpoints.build_subsets(_service(), [pod])[0]["addresses"][0]
    assert address["hostname"] == "a-0"


def test_target_port_defaults_to_port() -> None:
    service = _service(ports=[{"port": 8080}])
    subsets = endpoints.build_subsets(service, [_pod("a", "10.0.0.1")])
    assert subsets[0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
