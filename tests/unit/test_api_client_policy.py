"""The API client's retry rules: which failures may be retried for which requests,
Retry-After, error bodies, and the order in which apiservers are tried."""

from __future__ import annotations

import pytest

from apiserver.client_policy import (
    ApiStatusError,
    ApiUnavailable,
    Failure,
    ServerSet,
    backoff_delay,
    classify_reply,
    error_from_reply,
    may_retry,
    retry_after,
    safe_to_repeat,
)


@pytest.mark.parametrize(
    ("method", "body", "safe"),
    [
        ("GET", None, True),
        ("get", None, True),
        ("POST", {"metadata": {"name": "x", "resourceVersion": "5"}}, False),
        ("PATCH", {"metadata": {"labels": {"a": "b"}}}, False),
        ("PUT", {"metadata": {"name": "x"}}, False),
        ("PUT", {"metadata": {"name": "x", "resourceVersion": ""}}, False),
        ("PUT", {"metadata": {"name": "x", "resourceVersion": "17"}}, True),
        ("DELETE", None, False),
        ("DELETE", {"gracePeriodSeconds": 0}, False),
        ("DELETE", {"preconditions": {"uid": "u-1"}}, True),
        ("DELETE", {"preconditions": {"resourceVersion": "9"}}, True),
    ],
)
def test_safe_to_repeat(method: str, body: dict | None, safe: bool) -> None:
    assert safe_to_repeat(method, body) is safe


@pytest.mark.parametrize(
    ("code", "delay", "failure"),
    [
        (200, None, Failure.ANSWER),
        (404, None, Failure.ANSWER),
        (409, None, Failure.ANSWER),
        (500, None, Failure.ANSWER),
        (500, 1.0, Failure.ANSWER),  # a bug is not made retryable by a header
        (429, None, Failure.REFUSED),
        (429, 2.0, Failure.REFUSED),
        (503, None, Failure.UNKNOWN),  # our apiserver: the store gave up, maybe applied
        (503, 1.0, Failure.REFUSED),
        (502, None, Failure.UNKNOWN),
        (504, None, Failure.UNKNOWN),
        (504, 0.0, Failure.REFUSED),
    ],
)
def test_classify_reply(code: int, delay: float | None, failure: Failure) -> None:
    assert classify_reply(code, delay) is failure


def test_who_may_retry() -> None:
    # Anything goes again when nothing reached a server or the server refused.
    for failure in (Failure.NOT_SENT, Failure.REFUSED):
        assert may_retry(failure, safe=False) and may_retry(failure, safe=True)
    # A maybe-processed request goes again only if repeating it is harmless.
    assert may_retry(Failure.UNKNOWN, safe=True)
    assert not may_retry(Failure.UNKNOWN, safe=False)
    assert not may_retry(Failure.ANSWER, safe=True)


@pytest.mark.parametrize(
    ("header", "status", "seconds"),
    [
        (None, None, None),
        ("3", None, 3.0),
        ("0.5", None, 0.5),
        ("-4", None, 0.0),
        ("100000", None, 60.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None, 1.0),
        ("soon", None, None),
        (None, {"details": {"retryAfterSeconds": 2}}, 2.0),
        (None, {"details": {"retryAfterSeconds": 0}}, None),
        ("1", {"details": {"retryAfterSeconds": 5}}, 1.0),  # the header wins
        (None, {"details": {}}, None),
    ],
)
def test_retry_after(header: str | None, status: dict | None, seconds: float | None) -> None:
    assert retry_after(header, status) == seconds


def test_error_from_a_status_body() -> None:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
            "message": 'pods "x" not found', "code": 404,
            "details": {"name": "x", "kind": "pods"}}
    err = error_from_reply(404, body)
    assert (err.code, err.reason, err.message) == (404, "NotFound", 'pods "x" not found')
    assert err.status == body
    assert not err.retryable
    assert str(err) == '404 NotFound: pods "x" not found'


def test_error_without_a_status_body() -> None:
    err = error_from_reply(502, None, b"<html>bad gateway</html>")
    assert (err.code, err.reason) == (502, "BadGateway")
    assert err.message == "<html>bad gateway</html>"
    assert err.retryable
    assert error_from_reply(418, {"kind": "Teapot"}).reason == "Unknown"


def test_unavailable_carries_the_last_status() -> None:
    last = ApiStatusError(429, "TooManyRequests", {"kind": "Status", "code": 429,
                                                   "message": "slow down"})
    err = ApiUnavailable("GET /x: no apiserver answered", maybe_applied=False,
                         causes=["a: HTTP 429"], last=last)
    assert (err.code, err.reason, err.retryable) == (429, "TooManyRequests", True)
    assert "slow down" in err.message and err.causes == ["a: HTTP 429"]
    bare = ApiUnavailable("GET /x: no apiserver answered", maybe_applied=True, causes=[])
    assert (bare.code, bare.reason, bare.maybe_applied) == (503, "ServiceUnavailable", True)
    assert isinstance(bare, ApiStatusError)


def test_backoff_grows_and_is_capped() -> None:
    delays = [backoff_delay(n) for n in range(10)]
    assert delays[0] == 0.025
    assert delays == sorted(delays)
    assert max(delays) == 1.0


def test_server_order_prefers_the_last_that_answered_then_ready_ones() -> None:
    servers = ServerSet(["https://a:1/", "https://b:1", "https://c:1"])
    assert servers.urls == ["https://a:1", "https://b:1", "https://c:1"]
    assert servers.order() == ["https://a:1", "https://b:1", "https://c:1"]
    servers.answered("https://b:1")
    assert servers.order()[0] == "https://b:1"
    servers.failed("https://b:1")  # failed servers go last, even the preferred one
    assert servers.order() == ["https://a:1", "https://c:1", "https://b:1"]
    servers.probed("https://c:1", True)  # probed ready goes before unprobed
    assert servers.order() == ["https://c:1", "https://a:1", "https://b:1"]
    assert servers.suspects() == ["https://b:1"]
    servers.failed("https://a:1")
    servers.failed("https://c:1")
    # Every server failed: all are still tried, the last that answered first.
    assert servers.order() == ["https://b:1", "https://a:1", "https://c:1"]
    servers.probed("https://b:1", True)
    assert servers.order()[0] == "https://b:1"


def test_server_set_refuses_empty_and_repeated() -> None:
    with pytest.raises(ValueError):
        ServerSet([])
    with pytest.raises(ValueError):
        ServerSet(["https://a:1", "https://a:1/"])
