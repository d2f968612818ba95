"""Event aggregation: what counts as a repeat, what gets written, and the recorder's
behaviour against a scripted writer (404 on patch, fenced writes, a full queue)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from apiserver.client_policy import ApiStatusError, status_body
from apiserver.event_recorder import (
    EventRecorder,
    Pending,
    Seen,
    correlation_key,
    plan_write,
)
from controllers.leader_election import Fenced
from controllers.scheduling import events

T = TypeVar("T")
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "resourceVersion": "5"}}


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, 10)

    return asyncio.run(bounded())


def failed(message: str = "0/1 nodes are available: 1 Insufficient cpu.", at: int = 0) -> dict[str, Any]:
    return events.failed_scheduling_event(POD, message, T0 + timedelta(seconds=at), instance="s1")


def test_repeats_share_a_key_whatever_their_time_and_name() -> None:
    assert correlation_key(failed(at=0)) == correlation_key(failed(at=30))
    assert failed(at=0)["metadata"]["name"] != failed(at=30)["metadata"]["name"]
    assert correlation_key(failed("other")) != correlation_key(failed())
    scheduled = events.scheduled_event(POD, "n1", T0, instance="s1")
    assert correlation_key(scheduled) != correlation_key(failed())


def test_first_occurrence_is_created_later_ones_bump_the_count() -> None:
    pending = Pending.of(failed(at=0))
    pending.merge(failed(at=10))
    action, body = plan_write(None, pending)
    assert action == "create"
    assert body["count"] == 2
    assert body["firstTimestamp"] == "2026-01-01T12:00:00Z"
    assert body["lastTimestamp"] == "2026-01-01T12:00:10Z"
    action, body = plan_write(Seen("ns", "web.1", 2), Pending.of(failed(at=20)))
    assert (action, body) == ("patch", {"count": 3, "lastTimestamp": "2026-01-01T12:00:20Z"})


class Writer:
    """Records writes; `events` is the store of Events by name."""

    def __init__(self, fail_patch_with: int | None = None, fenced: bool = False) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_patch_with = fail_patch_with
        self.fenced = fenced

    async def create(self, obj: Mapping[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        await asyncio.sleep(0.001)
        if self.fenced:
            raise Fenced("lost")
        name = obj["metadata"]["name"]
        self.calls.append(("create", name))
        self.events[name] = dict(obj)
        return dict(obj)

    async def patch(self, path: str, patch: Any, *, type: str = "merge",
                    timeout: float | None = None) -> dict[str, Any]:
        await asyncio.sleep(0.001)
        name = path.rsplit("/", 1)[-1]
        self.calls.append(("patch", name))
        if self.fail_patch_with:
            code = self.fail_patch_with
            raise ApiStatusError(code, "NotFound", status_body(code, "NotFound", path))
        self.events[name].update(patch)
        return self.events[name]


async def drain(recorder: EventRecorder) -> None:
    while len(recorder._queue) or recorder._queue.state.processing or recorder._queue.state.held:
        await asyncio.sleep(0.002)


def test_recorder_folds_repeats_into_one_event() -> None:
    async def scenario() -> Writer:
        writer = Writer()
        recorder = EventRecorder(writer, workers=2)
        await recorder.start()
        for i in range(5):
            recorder.record(failed(at=i))
        await drain(recorder)
        for i in range(5, 8):
            recorder.record(failed(at=i))
            await drain(recorder)
        recorder.record(events.scheduled_event(POD, "n1", T0, instance="s1"))
        await drain(recorder)
        await recorder.stop()
        return writer

    writer = run(scenario())
    failures = [e for e in writer.events.values() if e["reason"] == "FailedScheduling"]
    assert len(failures) == 1
    assert failures[0]["count"] == 8
    assert failures[0]["lastTimestamp"] == "2026-01-01T12:00:07Z"
    assert sum(1 for e in writer.events.values() if e["reason"] == "Scheduled") == 1


def test_a_vanished_event_is_created_again() -> None:
    async def scenario() -> Writer:
        writer = Writer()
        recorder = EventRecorder(writer, workers=1)
        await recorder.start()
        recorder.record(failed(at=0))
        await drain(recorder)
        writer.fail_patch_with = 404
        writer.events.clear()
        recorder.record(failed(at=1))
        await drain(recorder)
        await recorder.stop()
        return writer

    writer = run(scenario())
    assert [c[0] for c in writer.calls] == ["create", "patch", "create"]
    (event,) = writer.events.values()
    assert event["count"] == 1


def test_fenced_writes_are_dropped_and_a_full_queue_drops_new_keys() -> None:
    async def scenario() -> tuple[EventRecorder, Writer]:
        writer = Writer(fenced=True)
        recorder = EventRecorder(writer, workers=1, max_pending=3)
        for i in range(5):
            recorder.record(failed(f"message {i}"))
        recorder.record(failed("message 0"))  # a repeat of a waiting key still folds in
        await recorder.start()
        await drain(recorder)
        await recorder.stop()
        return recorder, writer

    recorder, writer = run(scenario())
    assert recorder.dropped == 2
    assert recorder.written == 0
    assert writer.events == {}
