"""Status bodies: exact JSON (field order included) against REQUIREMENTS.md section 9 and Go's apimachinery errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apiserver import status
from apiserver.status import ApiError


def body(err: ApiError) -> str:
    return json.dumps(err.status, separators=(",", ":"))


def test_not_found_matches_the_captured_status_byte_for_byte() -> None:
    captured = (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        '"message":"pods \\"nosuch\\" not found","reason":"NotFound",'
        '"details":{"name":"nosuch","kind":"pods"},"code":404}'
    )
    err = status.not_found("pods", "", "nosuch")
    assert body(err) == captured
    assert (err.code, err.reason, str(err)) == (404, "NotFound", 'pods "nosuch" not found')


def test_not_found_of_a_grouped_resource_names_the_group() -> None:
    err = status.not_found("deployments", "apps", "web")
    assert err.message == 'deployments.apps "web" not found'
    assert err.status["details"] == {"name": "web", "group": "apps", "kind": "deployments"}


def test_not_found_path() -> None:
    assert status.not_found_path().status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server could not find the requested resource",
        "reason": "NotFound",
        "details": {},
        "code": 404,
    }


def test_already_exists_and_conflict() -> None:
    err = status.already_exists("pods", "", "p1")
    assert (err.code, err.reason, err.message) == (409, "AlreadyExists", 'pods "p1" already exists')
    assert err.status["details"] == {"name": "p1", "kind": "pods"}
    err = status.conflict("pods", "", "x")
    assert (err.code, err.reason) == (409, "Conflict")
    assert err.message == (
        'Operation cannot be fulfilled on pods "x": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert status.conflict("deployments", "apps", "web", "boom").message == (
        'Operation cannot be fulfilled on deployments.apps "web": boom'
    )


def test_invalid_with_one_cause() -> None:
    cause = {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.containers",
    }
    err = status.invalid("Pod", "", "bad", [cause])
    assert body(err) == (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        '"message":"Pod \\"bad\\" is invalid: spec.containers: Required value","reason":"Invalid",'
        '"details":{"name":"bad","kind":"Pod","causes":[{"reason":"FieldValueRequired",'
        '"message":"Required value","field":"spec.containers"}]},"code":422}'
    )


def test_invalid_with_several_causes_joins_them_in_brackets_without_duplicates() -> None:
    causes = [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.selector"},
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "Invalid_Name": a lowercase RFC 1123 subdomain ...',
            "field": "metadata.name",
        },
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.selector"},
    ]
    err = status.invalid("Deployment", "apps", "Invalid_Name", causes)
    assert err.message == (
        'Deployment.apps "Invalid_Name" is invalid: [spec.selector: Required value, '
        'metadata.name: Invalid value: "Invalid_Name": a lowercase RFC 1123 subdomain ...]'
    )
    assert err.status["details"]["group"] == "apps" and len(err.status["details"]["causes"]) == 3
    assert status.invalid("Pod", "", "x", []).message == 'Pod "x" is invalid'


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (
            status.bad_request("limit must be an integer"),
            (400, "BadRequest", "limit must be an integer"),
        ),
        (status.unauthorized(), (401, "Unauthorized", "Unauthorized")),
        (
            status.gone("too old resource version: 5 (20)"),
            (410, "Expired", "too old resource version: 5 (20)"),
        ),
        (
            status.too_large(),
            (413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728"),
        ),
        (
            status.service_unavailable("etcdserver: request timed out"),
            (503, "ServiceUnavailable", "etcdserver: request timed out"),
        ),
    ],
)
def test_errors_without_details(err: ApiError, expected: tuple[int, str, str]) -> None:
    code, reason, message = expected
    assert err.status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def test_forbidden_by_rbac() -> None:
    err = status.forbidden("bob", "get", "pods", "", "x", "default")
    assert err.message == (
        'pods "x" is forbidden: User "bob" cannot get resource "pods" in API group "" '
        'in the namespace "default"'
    )
    assert (err.code, err.reason) == (403, "Forbidden")
    assert err.status["details"] == {"name": "x", "kind": "pods"}
    listing = status.forbidden("bob", "list", "deployments", "apps")
    assert listing.message == (
        'deployments.apps is forbidden: User "bob" cannot list resource "deployments" '
        'in API group "apps" at the cluster scope'
    )
    logs = status.forbidden(
        "bob", "get", "pods", "", "p", "ns", subresource="log", reason="RBAC: role not found"
    )
    assert logs.message.endswith(
        'cannot get resource "pods/log" in API group "" in the namespace "ns": RBAC: role not found'
    )
    path = status.forbidden("bob", "get", "", path="/metrics")
    assert path.message == 'forbidden: User "bob" cannot get path "/metrics"'
    assert path.status["details"] == {}


def test_forbidden_because_a_namespace_is_terminating() -> None:
    err = status.forbidden_because(
        "pods",
        "",
        "p",
        "unable to create new content in namespace ns because it is being terminated",
    )
    assert err.message == (
        'pods "p" is forbidden: unable to create new content in namespace ns because it is being terminated'
    )


def test_unsupported_media_type_lists_what_is_accepted() -> None:
    err = status.unsupported_media_type("text/xml")
    assert (err.code, err.reason) == (415, "UnsupportedMediaType")
    assert err.message == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml, application/vnd.kubernetes.protobuf"
    )
    patch = status.unsupported_media_type("text/plain", status.PATCH_MEDIA_TYPES)
    assert patch.message.endswith(
        "application/json-patch+json, application/merge-patch+json, "
        "application/strategic-merge-patch+json, application/apply-patch+yaml"
    )
    custom = status.unsupported_media_type(
        message="protobuf bodies for Pod are not supported; use JSON"
    )
    assert custom.message == "protobuf bodies for Pod are not supported; use JSON"
    assert "details" not in custom.status


def test_method_not_allowed() -> None:
    err = status.method_not_allowed("nodes", "", "deletecollection")
    assert err.status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'deletecollection is not supported on resources of kind "nodes"',
        "reason": "MethodNotAllowed",
        "details": {"kind": "nodes"},
        "code": 405,
    }


def test_retryable_errors_carry_retry_after() -> None:
    err = status.too_many_requests()
    assert (err.code, err.reason, err.message) == (
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
    )
    assert err.status["details"] == {"retryAfterSeconds": 1}
    err = status.timeout()
    assert (err.code, err.reason) == (504, "Timeout")
    assert (
        err.message
        == "Timeout: request did not complete within requested timeout - context deadline exceeded"
    )
    assert err.status["details"] == {}
    assert status.timeout("x", 3).status["details"] == {"retryAfterSeconds": 3}


def test_internal_error_repeats_the_cause() -> None:
    err = status.internal_error("boom")
    assert (err.code, err.reason, err.message) == (
        500,
        "InternalError",
        "Internal error occurred: boom",
    )
    assert err.status["details"] == {"causes": [{"message": "boom"}]}


def test_success() -> None:
    expected: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": 200,
    }
    assert status.status_success() == expected
    evicted = status.status_success(201)
    assert json.dumps(evicted, separators=(",", ":")) == (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201}'
    )
    deleted = status.status_success(details={"name": "x", "kind": "pods", "uid": "u1"})
    assert list(deleted) == ["kind", "apiVersion", "metadata", "status", "details", "code"]


def test_api_error_is_an_exception() -> None:
    with pytest.raises(ApiError, match="not found"):
        raise status.not_found("pods", "", "x")
