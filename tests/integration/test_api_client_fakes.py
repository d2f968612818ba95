"""apiserver.client against scripted fake apiservers on 127.0.0.1, for failures a real
apiserver will not stage on cue: a connection cut after the request went out, 503 and
504 answers, 429 with Retry-After, a readiness probe that recovers, paginated lists
whose continue token expires, and watch streams split across chunks, ending with an
ERROR event or breaking off."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from aiohttp import web

from apiserver.auth import kubeconfig
from apiserver.client import ApiClient, ApiStatusError, ApiUnavailable
from tests import ports

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, 30)

    return asyncio.run(bounded())


class FakeApiserver:
    """Answers every path except /readyz with `handler`; records what it was asked."""

    def __init__(self, handler: Handler, ready: bool = True) -> None:
        self.handler = handler
        self.ready = ready
        self.requests: list[tuple[str, str, str, dict[str, Any] | None]] = []

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/readyz":
            return web.Response(text="ok" if self.ready else "not ready",
                                status=200 if self.ready else 500)
        raw = await request.read()
        self.requests.append((request.method, request.path_qs,
                              request.headers.get("Authorization", ""),
                              orjson.loads(raw) if raw else None))
        return await self.handler(request)

    def asked(self, method: str | None = None) -> int:
        return sum(1 for m, *_ in self.requests if method is None or m == method)


@asynccontextmanager
async def serving(*servers: FakeApiserver) -> AsyncIterator[list[str]]:
    runners: list[web.AppRunner] = []
    used = ports.free_ports(len(servers))
    try:
        for server, port in zip(servers, used, strict=True):
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", server.dispatch)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, "127.0.0.1", port).start()
        yield [f"http://127.0.0.1:{port}" for port in used]
    finally:
        for runner in runners:
            await runner.cleanup()
        ports.release(used)


@asynccontextmanager
async def dead_urls(count: int) -> AsyncIterator[list[str]]:
    """Loopback ports nothing listens on (reserved meanwhile, so nothing will)."""
    used = ports.free_ports(count)
    try:
        yield [f"http://127.0.0.1:{port}" for port in used]
    finally:
        ports.release(used)


def status(code: int, reason: str, message: str = "", headers: dict[str, str] | None = None,
           **details: Any) -> Handler:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message or reason, "reason": reason, "code": code}
    if details:
        body["details"] = details

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, body=orjson.dumps(body), headers=headers,
                            content_type="application/json")

    return handler


async def echo(request: web.Request) -> web.StreamResponse:
    """Answer a write with its body (rv 7), a read with an object."""
    raw = await request.read()
    obj = orjson.loads(raw) if raw else {"metadata": {"name": request.path.rsplit("/", 1)[-1]}}
    obj.setdefault("metadata", {})["resourceVersion"] = "7"
    return web.Response(status=201 if request.method == "POST" else 200,
                        body=orjson.dumps(obj), content_type="application/json")


async def cut_connection(request: web.Request) -> web.StreamResponse:
    """The request arrived; the server dies before answering."""
    assert request.transport is not None
    request.transport.abort()
    await asyncio.sleep(1)
    raise web.HTTPInternalServerError()


CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}}
CM_PATH = "/api/v1/namespaces/ns/configmaps/c"


def test_refused_connections_fail_over_for_every_verb_and_the_answering_server_sticks() -> None:
    async def body() -> None:
        healthy = FakeApiserver(echo)
        async with serving(healthy) as (url,), dead_urls(1) as (dead,), \
                ApiClient([dead, url], token="t0k", timeout=5) as api:
            created = await api.create(CM)  # not sent at all: safe to send elsewhere
            assert created["metadata"]["resourceVersion"] == "7"
            assert api.current_server == url
            await api.get(CM_PATH)
            assert healthy.asked() == 2
            assert healthy.requests[0][:3] == ("POST", "/api/v1/namespaces/ns/configmaps",
                                               "Bearer t0k")

    run(body())


@pytest.mark.parametrize(
    "handler",
    [cut_connection, status(503, "ServiceUnavailable", "the store is unavailable"),
     status(504, "Timeout", "request did not complete")],
    ids=["connection-cut", "503", "504"],
)
def test_a_create_with_unknown_outcome_is_not_resent_but_a_read_is(handler: Handler) -> None:
    async def body() -> None:
        unsure, healthy = FakeApiserver(handler), FakeApiserver(echo)
        async with serving(unsure, healthy) as urls, ApiClient(urls, timeout=5) as api:
            with pytest.raises(ApiUnavailable) as info:
                await api.create(CM)
            assert info.value.maybe_applied and info.value.retryable
            assert unsure.asked() == 1 and healthy.asked() == 0
            await api.get(CM_PATH)  # the same failure on a read: asked again elsewhere
            assert healthy.asked("GET") == 1

    run(body())


def test_an_update_is_resent_only_with_a_resource_version() -> None:
    async def body() -> None:
        unsure, healthy = FakeApiserver(cut_connection), FakeApiserver(echo)
        async with serving(unsure, healthy) as urls, ApiClient(urls, timeout=5) as api:
            with pytest.raises(ApiUnavailable):
                await api.update(CM)  # unconditional: a resend could overwrite a newer write
            assert healthy.asked() == 0
            api.servers.answered(urls[0])  # make the cutting server first again
            stored = await api.update({**CM, "metadata": {**CM["metadata"],
                                                          "resourceVersion": "5"}})
            assert stored["metadata"]["resourceVersion"] == "7"
            assert healthy.asked("PUT") == 1
            api.servers.answered(urls[0])
            with pytest.raises(ApiUnavailable):
                await api.patch(CM_PATH, {"data": {"a": "b"}})
            api.servers.answered(urls[0])
            await api.delete(CM_PATH, {"preconditions": {"uid": "u-1"}})
            assert healthy.requests[-1][0] == "DELETE"
            assert healthy.requests[-1][3]["preconditions"] == {"uid": "u-1"}

    run(body())


@pytest.mark.parametrize(
    ("handler", "waited"),
    [(status(429, "TooManyRequests", headers={"Retry-After": "0.4"}), 0.35),
     (status(429, "TooManyRequests", retryAfterSeconds=1), 0.9),
     (status(503, "ServiceUnavailable", headers={"Retry-After": "0.3"}), 0.25)],
    ids=["429-header", "429-details", "503-retry-after"],
)
def test_refused_with_retry_after_is_resent_after_the_wait(handler: Handler,
                                                           waited: float) -> None:
    async def body() -> None:
        busy, healthy = FakeApiserver(handler), FakeApiserver(echo)
        async with serving(busy, healthy) as urls, ApiClient(urls, timeout=5) as api:
            started = time.monotonic()
            await api.create(CM)
            assert time.monotonic() - started >= waited
            assert busy.asked() == 1 and healthy.asked("POST") == 1

    run(body())


def test_a_retry_after_beyond_the_timeout_fails_at_once() -> None:
    async def body() -> None:
        busy = FakeApiserver(status(429, "TooManyRequests", headers={"Retry-After": "30"}))
        async with serving(busy) as urls, ApiClient(urls, timeout=2) as api:
            started = time.monotonic()
            with pytest.raises(ApiUnavailable) as info:
                await api.get(CM_PATH)
            assert time.monotonic() - started < 1.0
            assert (info.value.code, info.value.reason) == (429, "TooManyRequests")
            assert not info.value.maybe_applied

    run(body())


def test_every_server_down_fails_within_the_timeout() -> None:
    async def body() -> None:
        async with dead_urls(2) as dead, ApiClient(dead, timeout=1.0) as api:
            started = time.monotonic()
            with pytest.raises(ApiUnavailable) as info:
                await api.create(CM)
            assert 0.9 <= time.monotonic() - started < 2.0
            assert info.value.code == 503 and not info.value.maybe_applied
            assert len(info.value.causes) >= 4  # tried both, more than once

    run(body())


def test_answers_are_raised_as_they_are() -> None:
    async def body() -> None:
        missing = FakeApiserver(status(404, "NotFound", 'configmaps "c" not found',
                                       name="c", kind="configmaps"))
        other = FakeApiserver(echo)
        async with serving(missing, other) as urls, ApiClient(urls, timeout=5) as api:
            with pytest.raises(ApiStatusError) as info:
                await api.get(CM_PATH)
            assert (info.value.code, info.value.reason) == (404, "NotFound")
            assert info.value.status["details"] == {"name": "c", "kind": "configmaps"}
            assert other.asked() == 0
            with pytest.raises(ValueError, match="patch type"):
                await api.patch(CM_PATH, {}, type="apply")

    run(body())


def test_a_failed_server_is_probed_and_preferred_again_once_ready() -> None:
    async def body() -> None:
        flaky = FakeApiserver(status(503, "ServiceUnavailable"), ready=False)
        healthy = FakeApiserver(echo)
        async with serving(flaky, healthy) as urls, ApiClient(urls, timeout=5) as api:
            await api.get(CM_PATH)
            assert api.servers.ready[urls[0]] is False and api.current_server == urls[1]
            flaky.handler, flaky.ready = echo, True
            for _ in range(60):
                if api.servers.ready[urls[0]]:
                    break
                await asyncio.sleep(0.05)
            assert api.servers.ready[urls[0]] is True  # /readyz said ok again
            # the last that answered stays first; the recovered one is next in line
            assert api.servers.order() == [urls[1], urls[0]]

    run(body())


def test_list_follows_continue_tokens_and_restarts_when_one_expires() -> None:
    pages = {"": (["a", "b"], "t1"), "t1": (["c", "d"], "t2"), "t2": (["e"], "")}
    expire = {"t2": False}

    async def paged(request: web.Request) -> web.StreamResponse:
        token = request.query.get("continue", "")
        if expire.get(token):
            return await status(410, "Expired", "continue too old")(request)
        names, next_token = pages[token] if request.query.get("limit") else \
            (["a", "b", "c", "d", "e"], "")
        meta = {"resourceVersion": "99" if token else "40"}
        if next_token:
            meta["continue"] = next_token
        items = [{"metadata": {"name": n}} for n in names]
        return web.Response(body=orjson.dumps({"kind": "ConfigMapList", "metadata": meta,
                                               "items": items}),
                            content_type="application/json")

    async def body() -> None:
        server = FakeApiserver(paged)
        async with serving(server) as urls, ApiClient(urls, timeout=5) as api:
            items, rv = await api.list("/api/v1/configmaps", label_selector="a=b", page_size=2)
            assert [i["metadata"]["name"] for i in items] == ["a", "b", "c", "d", "e"]
            assert rv == "40"  # the first page's snapshot
            assert [r[1] for r in server.requests] == [
                "/api/v1/configmaps?labelSelector=a%3Db&limit=2",
                "/api/v1/configmaps?labelSelector=a%3Db&limit=2&continue=t1",
                "/api/v1/configmaps?labelSelector=a%3Db&limit=2&continue=t2"]
            # An expired continue token: start over without pages, once.
            server.requests.clear()
            expire["t2"] = True
            items, rv = await api.list("/api/v1/configmaps", page_size=2)
            assert [i["metadata"]["name"] for i in items] == ["a", "b", "c", "d", "e"]
            assert [r[1] for r in server.requests] == [
                "/api/v1/configmaps?limit=2", "/api/v1/configmaps?limit=2&continue=t1",
                "/api/v1/configmaps?limit=2&continue=t2", "/api/v1/configmaps"]

    run(body())


async def _stream(request: web.Request, chunks: list[bytes], *,
                  then: str = "end") -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for chunk in chunks:
        await response.write(chunk)
        await asyncio.sleep(0.02)
    if then == "break":
        assert request.transport is not None
        request.transport.abort()
        return response
    await response.write_eof()
    return response


def _line(kind: str, obj: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


def test_watch_events_split_across_chunks_then_an_error_event() -> None:
    added = _line("ADDED", {"metadata": {"name": "a", "resourceVersion": "11"}})
    gone = _line("ERROR", {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "message": "too old resource version: 5 (9)", "reason": "Expired",
                           "code": 410})

    async def watch(request: web.Request) -> web.StreamResponse:
        return await _stream(request, [added[:10], added[10:] + b"\n" + _line(
            "BOOKMARK", {"metadata": {"resourceVersion": "12"}})[:-5], _line(
            "BOOKMARK", {"metadata": {"resourceVersion": "12"}})[-5:], gone])

    async def body() -> None:
        server = FakeApiserver(watch)
        # Opening fails over like a GET: the first server refuses the connection.
        async with serving(server) as (url,), dead_urls(1) as (dead,), \
                ApiClient([dead, url], timeout=5) as api:
            seen = []
            with pytest.raises(ApiStatusError) as info:
                async with api.watch("/api/v1/configmaps", "10",
                                     label_selector="app=x") as events:
                    async for event in events:
                        seen.append((event[0], event[1]["metadata"]["resourceVersion"]))
            assert seen == [("ADDED", "11"), ("BOOKMARK", "12")]
            assert info.value.code == 410
            assert server.requests[0][1] == ("/api/v1/configmaps?watch=true&resourceVersion=10"
                                             "&labelSelector=app%3Dx&allowWatchBookmarks=true")

    run(body())


def test_a_watch_that_breaks_raises_and_one_that_ends_stops() -> None:
    event = _line("ADDED", {"metadata": {"name": "a", "resourceVersion": "11"}})
    mode = {"then": "break"}

    async def watch(request: web.Request) -> web.StreamResponse:
        return await _stream(request, [event], then=mode["then"])

    async def body() -> None:
        async with serving(FakeApiserver(watch)) as urls, ApiClient(urls, timeout=5) as api:
            seen = []
            with pytest.raises(ApiUnavailable, match="broke"):
                async for kind, _obj in api.watch("/api/v1/pods", "10", allow_bookmarks=False):
                    seen.append(kind)
            assert seen == ["ADDED"]
            mode["then"] = "end"
            async with api.watch("/api/v1/pods", "10", timeout_seconds=5) as events:
                assert [kind async for kind, _ in events] == ["ADDED"]

    run(body())


def test_from_kubeconfig_reads_every_server_and_the_namespace(tmp_path: Path) -> None:
    config = tmp_path / "config"
    kubeconfig.write_kubeconfig(config, ["http://127.0.0.1:1", "http://127.0.0.1:2"], None,
                                "dev", namespace="team-a")
    api = ApiClient.from_kubeconfig(config, timeout=3)
    assert api.servers.urls == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    assert api.namespace == "team-a" and api.timeout == 3
    run(api.close())
