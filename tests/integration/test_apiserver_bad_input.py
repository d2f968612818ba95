"""Bad requests get a Kubernetes Status, never a 500, and write nothing.

Each case sends one bad request to an apiserver (over etcd and over kubelite's store)
and checks three things: the answer is a `Status` with `Content-Type` exactly
`application/json` (clients such as lightkube recognise errors only by that header), its
code and reason are the ones Kubernetes gives, and the store's revision did not move,
read from the store's own gateway before and after (so not even a half-done write got
through).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.apiserver_cluster import ApiserverCluster
from tests.apiserver_http import Api, Reply, configmap, deployment, store_revision

CM = "/api/v1/namespaces/{ns}/configmaps"
DEPLOY = "/apis/apps/v1/namespaces/{ns}/deployments"
MERGE = "application/merge-patch+json"
BIG = 3 * 1024 * 1024 + 1024


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    body: Any = None
    codes: tuple[int, ...] = (400,)
    reason: str | tuple[str, ...] = "BadRequest"
    content_type: str | None = "application/json"
    message: str = ""  # a substring the message must contain
    causes: tuple[str, ...] = ()  # fields that details.causes must name
    headers: dict[str, str] = field(default_factory=dict)


def _deployment_with(**spec: Any) -> dict:
    body = deployment("typed")
    body["spec"].update(spec)
    return body


def _labelled(labels: Any) -> dict:
    return {"metadata": {"name": "labelled", "labels": labels}}


CASES: dict[str, Case] = {
    # Bodies that are not JSON objects.
    "malformed-json": Case("POST", CM, b'{"metadata": {"name": '),
    "json-array": Case("POST", CM, b"[]"),
    "empty-body": Case("POST", CM, b""),
    "malformed-patch": Case("PATCH", CM + "/existing", b"{nope", content_type=MERGE),
    # Wrong types for typed fields (Go's decoder refuses them: 400).
    "replicas-string": Case("POST", DEPLOY, _deployment_with(replicas="three")),
    "replicas-float": Case("POST", DEPLOY, _deployment_with(replicas=1.5)),
    "metadata-string": Case("POST", CM, {"metadata": "x"}),
    "name-number": Case("POST", CM, {"metadata": {"name": 5}}),
    "labels-list": Case("POST", CM, _labelled(["a"])),
    "label-value-number": Case("POST", CM, _labelled({"a": 1})),
    "configmap-data-number": Case("POST", CM, {"metadata": {"name": "d"}, "data": {"a": 1}}),
    "containers-not-a-list": Case("POST", DEPLOY, _deployment_with(template={
        "metadata": {"labels": {"app": "typed"}}, "spec": {"containers": "main"}})),
    "patch-to-wrong-type": Case("PATCH", CM + "/existing", {"data": 5}, codes=(400, 422),
                                reason=("BadRequest", "Invalid"), content_type=MERGE),
    "put-bad-resource-version": Case("PUT", CM + "/existing", {
        "metadata": {"name": "existing", "resourceVersion": "abc"}}, codes=(400, 422),
        reason=("BadRequest", "Invalid")),
    # Size.
    "huge-body": Case("POST", CM, {"metadata": {"name": "huge"}, "data": {"x": "y" * BIG}},
                      codes=(413,), reason="RequestEntityTooLarge"),
    # Kind and URL disagree.
    "kind-of-another-resource": Case("POST", CM, {"apiVersion": "v1", "kind": "Secret",
                                                  "metadata": {"name": "k"}}),
    "unknown-kind-in-body": Case("POST", CM, {"apiVersion": "v1", "kind": "Bogus",
                                              "metadata": {"name": "k"}}),
    "other-api-version-in-body": Case("POST", DEPLOY, dict(deployment("v"),
                                                           apiVersion="apps/v1beta9")),
    "namespace-mismatch": Case("POST", CM, {"metadata": {"name": "n", "namespace": "other"}}),
    "name-mismatch-on-put": Case("PUT", CM + "/existing", {"metadata": {"name": "else"}}),
    "post-to-a-named-object": Case("POST", CM + "/existing", configmap("posted"),
                                   codes=(405,), reason="MethodNotAllowed"),
    # Invalid objects: 422 with the field named.
    "invalid-name": Case("POST", CM, configmap("Invalid_Name"), codes=(422,),
                         reason="Invalid", causes=("metadata.name",),
                         message='ConfigMap "Invalid_Name" is invalid: metadata.name'),
    "name-too-long": Case("POST", CM, configmap("a" * 254), codes=(422,), reason="Invalid",
                          causes=("metadata.name",)),
    "invalid-label": Case("POST", CM, _labelled({"a b": "c"}), codes=(422,),
                          reason="Invalid", causes=("metadata.labels",)),
    "missing-name": Case("POST", CM, {"metadata": {}}, codes=(422,), reason="Invalid",
                         causes=("metadata.name",)),
    "invalid-namespace-name": Case("POST", "/api/v1/namespaces", {
        "metadata": {"name": "Bad.Namespace"}}, codes=(422,), reason="Invalid",
        causes=("metadata.name",)),
    "selector-mismatch": Case("POST", DEPLOY, _deployment_with(
        selector={"matchLabels": {"app": "other"}}), codes=(422,), reason="Invalid",
        causes=("spec.template.metadata.labels",)),
    "invalid-via-patch": Case("PATCH", CM + "/existing", {"metadata": {"labels": {
        "bad key!": "v"}}}, codes=(422,), reason="Invalid", content_type=MERGE,
        causes=("metadata.labels",)),
    # Media types.
    "xml-body": Case("POST", CM, b"<configmap/>", codes=(415,),
                     reason="UnsupportedMediaType", content_type="application/xml"),
    "xml-patch": Case("PATCH", CM + "/existing", b"<patch/>", codes=(415,),
                      reason="UnsupportedMediaType", content_type="application/xml"),
    "garbage-protobuf": Case("POST", CM, b"k8s\x00\xff\xff", codes=(400, 415),
                             reason=("BadRequest", "UnsupportedMediaType"),
                             content_type="application/vnd.kubernetes.protobuf"),
    "invalid-json-patch": Case("PATCH", CM + "/existing", [{"op": "bogus"}],
                               codes=(400, 422), reason=("BadRequest", "Invalid"),
                               content_type="application/json-patch+json"),
    # Unknown resources and paths.
    "unknown-resource": Case("GET", "/api/v1/namespaces/{ns}/bogus", codes=(404,),
                             reason="NotFound"),
    "post-unknown-resource": Case("POST", "/api/v1/namespaces/{ns}/bogus",
                                  configmap("x"), codes=(404,), reason="NotFound"),
    "unknown-group": Case("GET", "/apis/bogus.example.com/v1/things", codes=(404,),
                          reason="NotFound"),
    "unknown-subresource": Case("GET", CM + "/existing/bogus", codes=(404,),
                                reason="NotFound"),
    # Bad query parameters.
    "bad-limit": Case("GET", CM + "?limit=abc"),
    "bad-label-selector": Case("GET", CM + "?labelSelector=a%20in%20("),
    "unsupported-field-selector": Case("GET", CM + "?fieldSelector=spec.x%3D1"),
    "bad-watch-resource-version": Case("GET", CM + "?watch=true&resourceVersion=abc"),
    "bad-watch-timeout": Case("GET", CM + "?watch=true&timeoutSeconds=soon"),
    "bad-grace-period": Case("DELETE", CM + "/existing?gracePeriodSeconds=x"),
    "bad-delete-options": Case("DELETE", CM + "/existing", b"{not json"),
}


@pytest.fixture
def target(admin_api: Api, namespace: str) -> str:
    """The test's namespace, holding a ConfigMap `existing` for updates to aim at."""
    admin_api.ok("POST", CM.format(ns=namespace), configmap("existing", {"k": "v"}))
    return namespace


def _check_status(reply: Reply, case: Case) -> dict:
    assert reply.code != 500, reply
    assert reply.headers["Content-Type"] == "application/json", reply
    body = reply.json
    assert (body.get("kind"), body.get("apiVersion"), body.get("status")) == (
        "Status", "v1", "Failure"), body
    assert body["code"] == reply.code
    assert reply.code in case.codes, body
    reasons = (case.reason,) if isinstance(case.reason, str) else case.reason
    assert body.get("reason") in reasons, body
    assert case.message in body.get("message", ""), body
    fields = [c["field"] for c in body.get("details", {}).get("causes", [])]
    for name in case.causes:
        assert any(f.startswith(name) for f in fields), body
    return body


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_request_is_a_status_and_writes_nothing(
        apiservers_module: ApiserverCluster, admin_api: Api, target: str, case: Case) -> None:
    store = apiservers_module.store.endpoints[0]
    listed_before = admin_api.ok("GET", CM.format(ns=target))["items"]
    revision_before = store_revision(store)

    body = case.body
    if isinstance(body, dict | list):
        body = json.dumps(body).encode()
    reply = admin_api.request(case.method, case.path.format(ns=target), body,
                              content_type=case.content_type, headers=case.headers)
    _check_status(reply, case)

    assert store_revision(store) == revision_before, "the bad request wrote to the store"
    assert admin_api.ok("GET", CM.format(ns=target))["items"] == listed_before


def test_every_apiserver_answers_bad_input_the_same(apiservers_module: ApiserverCluster,
                                                   target: str) -> None:
    replies = []
    for url in apiservers_module.urls:
        api = Api(url, apiservers_module.paths.ca_cert, token=apiservers_module.admin_token)
        reply = api.post(CM.format(ns=target), configmap("Invalid_Name"))
        replies.append((reply.code, reply.json))
    assert replies[0] == replies[1]
    assert replies[0][0] == 422
