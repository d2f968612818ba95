"""The watch cache's ring and the wait for a watch's next event (no store needed).

The ring keeps the store's events as they came (bytes) and decodes them for the watches
that want them; a watch waiting with an idle timeout (for bookmarks) must survive the
timeout: waiting again delivers the next event on the same watch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson

from apiserver import status
from apiserver.resources import _Resumable
from apiserver.watch_cache import Subscription, WatchCache, WatchEvent
from store.kv_types import DELETE, PUT, Event, KeyValue, tombstone


def run(coro):
    async def bounded():
        return await asyncio.wait_for(coro, 10)

    return asyncio.run(bounded())


def put(key: bytes, rev: int, name: str, created: int | None = None) -> Event:
    value = orjson.dumps({"metadata": {"name": name}})
    return Event(PUT, KeyValue(key, created or rev, rev, 1, value, 0), None)


def test_ring_keeps_store_events_and_decodes_once_per_event() -> None:
    async def go() -> None:
        cache = WatchCache(client=None, capacity=3)  # type: ignore[arg-type]
        cache._reset(10)
        a = cache.subscribe(b"/registry/configmaps/a/", 10)
        b = cache.subscribe(b"/registry/configmaps/a/", 10)
        other = cache.subscribe(b"/registry/pods/", 10)
        cache._publish(put(b"/registry/configmaps/a/x", 11, "x"))
        cache._publish(Event(PUT, KeyValue(b"/registry/ranges/ip", 12, 12, 1, b"\x00", 0), None))
        first_a, first_b = await a.next(), await b.next()
        assert first_a is first_b  # one decoding shared by both watches
        assert first_a.type == "ADDED" and first_a.obj["metadata"] == {
            "name": "x", "resourceVersion": "11"}
        assert other.queue.empty()
        assert all(isinstance(e, Event) for e in cache.ring)  # bytes, not decoded objects
        cache._publish(put(b"/registry/configmaps/a/y", 13, "y"))
        cache._publish(Event(DELETE, tombstone(b"/registry/configmaps/a/x", 14),
                             put(b"/registry/configmaps/a/x", 11, "x").kv))
        assert cache.floor == 11 and len(cache.ring) == 3
        late = cache.subscribe(b"/registry/configmaps/a/", 12)  # replayed from the ring
        got = [await late.next(), await late.next()]
        assert [(e.type, e.revision) for e in got] == [("ADDED", 13), ("DELETED", 14)]
        assert got[1].obj["metadata"]["resourceVersion"] == "14"
        assert cache.subscribe(b"/registry/configmaps/a/", 10) is None  # older than the ring

    run(go())


def test_subscription_next_survives_a_timeout_and_ends_with_its_error() -> None:
    async def go() -> None:
        sub = Subscription(b"/registry/configmaps/", 0)
        try:
            async with asyncio.timeout(0.01):
                await sub.next()
        except TimeoutError:
            pass
        event = WatchEvent("ADDED", 5, b"/registry/configmaps/n/a", {"metadata": {}}, None)
        sub.offer(event)
        assert await sub.next() is event
        sub.end(status.gone("too far behind"))
        for _ in range(2):  # the end stays the end
            try:
                await sub.next()
            except status.ApiError as err:
                assert err.code == 410
            else:
                raise AssertionError("expected 410")

    run(go())


def test_resumable_history_survives_a_timeout() -> None:
    async def go() -> None:
        gate = asyncio.Event()

        async def history() -> AsyncIterator[WatchEvent]:
            await gate.wait()
            yield WatchEvent("ADDED", 7, b"/registry/configmaps/n/a", {"metadata": {}}, None)

        events = _Resumable(history())
        try:
            async with asyncio.timeout(0.01):
                await events.next()
        except TimeoutError:
            pass
        gate.set()
        first = await events.next()
        assert first is not None and first.revision == 7
        assert await events.next() is None
        events.cancel()

    run(go())
