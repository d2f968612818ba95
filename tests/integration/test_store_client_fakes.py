"""store.client against scripted fake members, for failures real etcd will not stage on cue:
503 refusals, a connection cut after the request went out, and a watch stream that
splits its lines across chunks and then breaks."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import orjson
import pytest
from aiohttp import web

from store.client import StoreClient, StoreUnavailable
from tests import ports

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HEADER = {"cluster_id": "1", "member_id": "2", "raft_term": "2"}


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, 30)

    return asyncio.run(bounded())


class FakeMember:
    """One endpoint answering every path with `handler`; counts the requests it got."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, dict[str, Any]]] = []

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, orjson.loads(await request.read() or b"{}")))
        return await self.handler(request)


@asynccontextmanager
async def serving(*members: FakeMember) -> AsyncIterator[list[str]]:
    runners: list[web.AppRunner] = []
    used = ports.free_ports(len(members))
    try:
        for member, port in zip(members, used, strict=True):
            app = web.Application()
            app.router.add_route("POST", "/{tail:.*}", member._dispatch)
            runner = web.AppRunner(app)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, "127.0.0.1", port).start()
        yield [f"http://127.0.0.1:{port}" for port in used]
    finally:
        for runner in runners:
            await runner.cleanup()
        ports.release(used)


def reply(status: int, body: dict[str, Any]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")

    return handler


def etcd_error(status: int, message: str, code: int) -> Handler:
    return reply(status, {"error": message, "message": message, "code": code})


OK_PUT = reply(200, {"header": {**HEADER, "revision": "7"}})


async def cut_connection(request: web.Request) -> web.StreamResponse:
    """The request arrived; the member dies before answering."""
    assert request.transport is not None
    request.transport.abort()
    await asyncio.sleep(1)
    raise web.HTTPInternalServerError()


def test_write_refused_before_proposing_goes_to_the_next_member() -> None:
    async def body() -> None:
        refusing = FakeMember(etcd_error(503, "etcdserver: no leader", 14))
        healthy = FakeMember(OK_PUT)
        async with serving(refusing, healthy) as endpoints, StoreClient(endpoints) as store:
            assert (await store.put(b"k", b"v")).revision == 7
            assert len(refusing.requests) == 1 and len(healthy.requests) == 1
            await store.put(b"k", b"v")  # the member that answered is now tried first
            assert len(refusing.requests) == 1 and len(healthy.requests) == 2

    run(body())


@pytest.mark.parametrize(
    "handler",
    [etcd_error(503, "etcdserver: request timed out", 14),
     etcd_error(500, "context deadline exceeded", 2),
     cut_connection],
    ids=["503-timed-out", "500-deadline", "connection-cut"],
)
def test_write_with_unknown_outcome_is_not_resent(handler: Handler) -> None:
    async def body() -> None:
        unsure = FakeMember(handler)
        healthy = FakeMember(OK_PUT)
        async with serving(unsure, healthy) as endpoints, StoreClient(endpoints) as store:
            with pytest.raises(StoreUnavailable) as info:
                await store.put(b"k", b"v")
            assert info.value.maybe_applied
            assert len(unsure.requests) == 1 and healthy.requests == []
            # The same failure on a read is simply asked again elsewhere.
            await store.range(b"k")
            assert len(healthy.requests) == 1

    run(body())


def test_reads_give_up_after_the_timeout() -> None:
    async def body() -> None:
        down = FakeMember(etcd_error(503, "etcdserver: request timed out", 14))
        async with serving(down) as endpoints, StoreClient(endpoints, timeout=0.5) as store:
            started = asyncio.get_running_loop().time()
            with pytest.raises(StoreUnavailable) as info:
                await store.get(b"k")
            assert not info.value.maybe_applied
            assert 0.4 < asyncio.get_running_loop().time() - started < 1.5
            assert 2 < len(down.requests) < 20  # retried with back-off, not in a hot loop

    run(body())


def result_line(revision: int, **body: Any) -> bytes:
    header = {**HEADER, "revision": str(revision)}
    return orjson.dumps({"result": {"header": header, **body}}) + b"\n"


def event(revision: int) -> dict[str, Any]:
    key = base64.b64encode(b"w/a").decode()
    return {"kv": {"key": key, "create_revision": "3", "mod_revision": str(revision)}}


def watch_member(lines: list[bytes], *, split_at: int) -> Handler:
    """Streams `lines` re-chunked at odd places, then breaks the stream (member dies)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        data = b"".join(lines)
        for start in range(0, len(data), split_at):
            await response.write(data[start : start + split_at])
            await asyncio.sleep(0.01)
        assert request.transport is not None
        request.transport.abort()
        return response

    return handler


def test_watch_resumes_from_the_last_event_across_odd_chunking() -> None:
    # Created at 4, so events from 5; the first member dies after 7, so resume from 8.
    first = watch_member(
        [result_line(4, created=True),
         result_line(6, events=[event(5), event(6)]),
         result_line(7, events=[event(7)])],
        split_at=37,
    )
    second = watch_member(
        [result_line(9, created=True),
         result_line(9, events=[event(7), event(8)]),  # 7 again: must be dropped
         result_line(9, events=[event(9)])],
        split_at=1000,
    )

    async def body() -> None:
        a, b = FakeMember(first), FakeMember(second)
        async with serving(a, b) as endpoints, StoreClient(endpoints) as store:
            revisions: list[int] = []
            async with store.watch(b"w/a") as watch:
                async for batch in watch:
                    revisions.extend(e.kv.mod_revision for e in batch.events)
                    if revisions[-1] == 9:
                        break
            assert revisions == [5, 6, 7, 8, 9]
            assert watch.endpoint == "" and watch.next_revision == 10
            created_a = a.requests[0][1]["create_request"]
            created_b = b.requests[0][1]["create_request"]
            assert "start_revision" not in created_a
            assert created_b["start_revision"] == "8"

    run(body())


def test_watch_that_breaks_before_any_event_resumes_after_its_created_revision() -> None:
    first = watch_member([result_line(4, created=True)], split_at=1000)
    second = watch_member(
        [result_line(6, created=True), result_line(6, events=[event(5), event(6)])],
        split_at=5,
    )

    async def body() -> None:
        a, b = FakeMember(first), FakeMember(second)
        async with serving(a, b) as endpoints, StoreClient(endpoints) as store:
            async with store.watch(b"w/a") as watch:
                batch = await anext(watch)
            assert [e.kv.mod_revision for e in batch.events] == [5, 6]
            assert b.requests[0][1]["create_request"]["start_revision"] == "5"

    run(body())
