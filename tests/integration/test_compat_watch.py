"""Watch over the v3 JSON gateway (POST /v3/watch), compared with etcd 3.4.

Streams are read on a raw socket (`ChunkedStream`), so every message is also checked to
be exactly one HTTP chunk holding one JSON object and "\\n", which etcd3gw depends on.
All requests of a stream are in its one request body: etcd's gateway starts answering
only once the body is complete.

What clients rely on is asserted exactly: `created` before any event, one message per
revision for live events (all events of a txn together, in the txn's order), `type` only
on DELETE, `watch_id` absent for watch 0, cancellation and compaction in-band on an open
stream. What etcd leaves open is normalised: how a history replay is cut into messages
(only that a revision is never split), and the interleaving of different watches.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

from tests.clusters import StoreClusterHandle
from tests.compat_helpers import (
    READ_TIMEOUT,
    ChunkedStream,
    Gateway,
    WatchLog,
    b64,
    create_request,
    deleted_kv,
    error_body,
    header,
    kv,
    next_result,
    normalize,
    open_watch,
    prefix_end,
    rev,
    revisions_in_one_message_each,
)


@pytest.fixture
def gw(store_cluster_module: StoreClusterHandle) -> Gateway:
    return Gateway(store_cluster_module.endpoints[0])


def created(offset: int, watch_id: str | None = None) -> dict:
    message: dict = {"header": header(offset)}
    if watch_id is not None:
        message["watch_id"] = watch_id
    message["created"] = True
    return message


def events_message(offset: int, *events: dict, watch_id: str | None = None) -> dict:
    message: dict = {"header": header(offset)}
    if watch_id is not None:
        message["watch_id"] = watch_id
    message["events"] = list(events)
    return message


def put_event(kv_: dict, prev: dict | None = None) -> dict:
    return {"kv": kv_} if prev is None else {"kv": kv_, "prev_kv": prev}


def delete_event(key: str, mod: int, prev: dict | None = None) -> dict:
    event: dict = {"type": "DELETE", "kv": deleted_kv(key, mod=mod)}
    if prev is not None:
        event["prev_kv"] = prev
    return event


def test_created_then_live_events_with_prev_kv(gw: Gateway) -> None:
    base = gw.revision()
    with open_watch(
        gw.endpoint, create_request("wl/", range_end=prefix_end("wl/"), prev_kv=True)
    ) as stream:

        def next_message() -> dict:
            return normalize(next_result(stream), base)

        # Once `created` is read the watch is in place: every later write is reported.
        assert next_message() == created(0)

        gw.put("wl/a", "1")
        a1 = kv("wl/a", "1", create=1, mod=1, version=1)
        assert next_message() == events_message(1, put_event(a1))  # no prev_kv: none existed

        gw.put("wl/a", "2")
        a2 = kv("wl/a", "2", create=1, mod=2, version=2)
        assert next_message() == events_message(2, put_event(a2, prev=a1))

        gw.put("wl/b", "")  # empty value: no "value" in the event's kv
        b3 = kv("wl/b", create=3, mod=3, version=1)
        assert next_message() == events_message(3, put_event(b3))

        gw.ok("kv/deleterange", {"key": b64("wl/a")})
        assert next_message() == events_message(4, delete_event("wl/a", 4, prev=a2))

        # All events of one txn in one message, in the txn's order.
        gw.ok(
            "kv/txn",
            {
                "success": [
                    {"request_put": {"key": b64("wl/d"), "value": b64("1")}},
                    {"request_put": {"key": b64("wl/c"), "value": b64("1")}},
                    {"request_delete_range": {"key": b64("wl/b")}},
                ]
            },
        )
        assert next_message() == events_message(
            5,
            put_event(kv("wl/d", "1", create=5, mod=5, version=1)),
            put_event(kv("wl/c", "1", create=5, mod=5, version=1)),
            delete_event("wl/b", 5, prev=b3),
        )

        # Writes outside the range are not reported: the next message is about wl/e.
        gw.put("wl0", "outside")
        gw.put("wk", "outside")
        gw.put("wl/e", "1")
        assert next_message() == events_message(
            8, put_event(kv("wl/e", "1", create=8, mod=8, version=1))
        )


def test_a_line_oriented_client_reads_one_message_per_line(gw: Gateway) -> None:
    """The stream also works for a client that reads lines (http.client decodes chunks)."""
    base = gw.revision()
    url = urlsplit(gw.endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=READ_TIMEOUT)
    try:
        body = json.dumps(create_request("line/a")) + json.dumps({"progress_request": {}})
        conn.request("POST", "/v3/watch", body=body)
        reply = conn.getresponse()
        assert (reply.status, reply.getheader("Content-Type")) == (200, "application/json")
        assert reply.getheader("Transfer-Encoding") == "chunked"
        lines = [reply.readline(), reply.readline()]
        gw.put("line/a", "1")
        lines.append(reply.readline())
        assert all(line.endswith(b"}\n") for line in lines), lines
        assert [normalize(json.loads(line), base) for line in lines] == [
            {"result": created(0)},
            {"result": {"header": header(0), "watch_id": "-1"}},
            {"result": events_message(1, put_event(kv("line/a", "1", create=1, mod=1, version=1)))},
        ]
    finally:
        conn.close()


def test_replay_from_start_revision_with_filter_and_client_watch_id(gw: Gateway) -> None:
    base = gw.revision()
    gw.put("wr/a", "1")
    gw.put("wr/a", "2")
    gw.ok("kv/deleterange", {"key": b64("wr/a")})
    gw.ok(
        "kv/txn",
        {
            "success": [
                {"request_put": {"key": b64("wr/b"), "value": b64("1")}},
                {"request_put": {"key": b64("wr/c"), "value": b64("1")}},
            ]
        },
    )
    start = str(base + 1)
    requests = [
        create_request(
            "wr/", range_end=prefix_end("wr/"), start_revision=start, filters=["NODELETE"]
        ),
        create_request("wr/a", start_revision=start, watch_id="7"),
    ]
    with open_watch(gw.endpoint, *requests) as stream:
        log = WatchLog(stream, base)
        a1 = kv("wr/a", "1", create=1, mod=1, version=1)
        a2 = kv("wr/a", "2", create=1, mod=2, version=2)
        assert log.read_events("0", 4) == [
            put_event(a1),
            put_event(a2),
            put_event(kv("wr/b", "1", create=4, mod=4, version=1)),
            put_event(kv("wr/c", "1", create=4, mod=4, version=1)),
        ]
        assert log.read_events("7", 3) == [put_event(a1), put_event(a2), delete_event("wr/a", 3)]
        assert log.messages["0"][0] == created(4)
        assert log.messages["7"][0] == created(4, watch_id="7")
        for watch_id in ("0", "7"):
            assert revisions_in_one_message_each(log.messages[watch_id])
            assert all(m.get("watch_id", "0") == watch_id for m in log.messages[watch_id])

        # After the replay the same watches carry on live.
        gw.put("wr/a", "3")
        a5 = kv("wr/a", "3", create=5, mod=5, version=1)
        assert log.read_events("0", 5)[-1] == put_event(a5)
        assert log.read_events("7", 4)[-1] == put_event(a5)


def test_filters_on_live_events(gw: Gateway) -> None:
    base = gw.revision()
    requests = [
        create_request("wf/a", filters=["NOPUT"], watch_id="10"),
        create_request("wf/a", filters=["NODELETE"], watch_id="11"),
    ]
    with open_watch(gw.endpoint, *requests) as stream:
        assert normalize(next_result(stream), base) == created(0, watch_id="10")
        assert normalize(next_result(stream), base) == created(0, watch_id="11")

        # Events reach a stream in revision order, so if watch 10 had been sent the put,
        # it would come before the delete; likewise for watch 11 and the second put.
        gw.put("wf/a", "1")
        a1 = kv("wf/a", "1", create=1, mod=1, version=1)
        assert normalize(next_result(stream), base) == events_message(
            1, put_event(a1), watch_id="11"
        )
        gw.ok("kv/deleterange", {"key": b64("wf/a")})
        assert normalize(next_result(stream), base) == events_message(
            2, delete_event("wf/a", 2), watch_id="10"
        )
        gw.put("wf/a", "2")
        a3 = kv("wf/a", "2", create=3, mod=3, version=1)
        assert normalize(next_result(stream), base) == events_message(
            3, put_event(a3), watch_id="11"
        )


def test_watch_ids_count_up_per_stream_and_a_duplicate_is_refused(gw: Gateway) -> None:
    base = gw.revision()
    requests = [
        create_request("wid/a"),
        create_request("wid/a"),
        create_request("wid/a", watch_id=1),
    ]
    with open_watch(gw.endpoint, *requests) as stream:
        assert [normalize(next_result(stream), base) for _ in requests] == [
            created(0),  # watch 0: no watch_id
            created(0, watch_id="1"),
            {
                "header": header(0),
                "watch_id": "-1",
                "created": True,
                "canceled": True,
                "cancel_reason": "mvcc: duplicate watch ID provided on the WatchStream",
            },
        ]


def test_cancel_and_cancel_of_an_unknown_id(gw: Gateway) -> None:
    base = gw.revision()
    requests = [
        create_request("wc/x", watch_id="5"),
        {"cancel_request": {"watch_id": "99"}},  # unknown: no reply at all
        {"cancel_request": {"watch_id": 5}},
        create_request("wc/y", watch_id="6"),
    ]
    with open_watch(gw.endpoint, *requests) as stream:
        assert [normalize(next_result(stream), base) for _ in range(3)] == [
            created(0, watch_id="5"),
            {"header": header(0), "watch_id": "5", "canceled": True},
            created(0, watch_id="6"),
        ]
        # Watch 5 is gone: the put to wc/x is not reported, the later one to wc/y is.
        gw.put("wc/x", "1")
        gw.put("wc/y", "1")
        assert normalize(next_result(stream), base) == events_message(
            2, put_event(kv("wc/y", "1", create=2, mod=2, version=1)), watch_id="6"
        )


def test_progress_request_is_answered_with_watch_id_minus_one(gw: Gateway) -> None:
    gw.put("wp/a", "1")
    base = gw.revision()
    progress = {"header": header(0), "watch_id": "-1"}
    with open_watch(
        gw.endpoint, create_request("wp/", range_end=prefix_end("wp/")), {"progress_request": {}}
    ) as stream:
        assert normalize(next_result(stream), base) == created(0)
        assert normalize(next_result(stream), base) == progress
    # Even on a stream without watches.
    with open_watch(gw.endpoint, {"progress_request": {}}) as stream:
        assert normalize(next_result(stream), base) == progress


def test_future_start_revision_is_silent_until_reached(gw: Gateway) -> None:
    base = gw.revision()
    with open_watch(gw.endpoint, create_request("wfut/a", start_revision=base + 3)) as stream:
        assert normalize(next_result(stream), base) == created(0)
        for value in ("1", "2", "3"):
            gw.put("wfut/a", value)
        # Nothing for base+1 and base+2: the first message is the event at base+3.
        assert normalize(next_result(stream), base) == events_message(
            3, put_event(kv("wfut/a", "3", create=1, mod=3, version=3))
        )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            b"{bad",
            "invalid character 'b' looking for beginning of object key string",
            id="bad-json",
        ),
        pytest.param(
            b'{"create_request":{"key":"!!"}}',
            "illegal base64 data at input byte 0",
            id="bad-base64",
        ),
        pytest.param(
            b'{"create_request":{"key":"eA==","prev_kv":"yes"}}',
            "json: cannot unmarshal string into Go value of type bool",
            id="string-for-bool",
        ),
    ],
)
def test_a_bad_first_request_fails_the_stream_with_http_500(
    gw: Gateway, body: bytes, message: str
) -> None:
    """Unary calls answer the same mistakes with 400/code 3; the watch stream with 500/code 2."""
    revision = gw.revision()
    with ChunkedStream(gw.endpoint, "/v3/watch", body) as stream:
        assert stream.status == 500
        assert stream.headers.get("content-type") == "application/json"
        assert json.loads(stream.body()) == error_body(message, 2)
    assert gw.revision() == revision


# Compaction affects every watch replaying older history; the tests above replay only
# revisions they wrote themselves, so this one runs last in the module.
def test_compacted_start_revision_cancels_the_watch_in_band(gw: Gateway) -> None:
    base = gw.revision()
    for value in ("1", "2", "3"):
        gw.put("wcmp/a", value)
    gw.ok("kv/compaction", {"revision": str(base + 2)})
    requests = [
        create_request("wcmp/a", start_revision=str(base + 1)),
        create_request("wcmp/b", watch_id="9"),
        create_request("wcmp/a", start_revision=base + 2, watch_id="8"),  # = the compaction
    ]
    with open_watch(gw.endpoint, *requests) as stream:
        log = WatchLog(stream, base)
        canceled = log.read_until("0", lambda m: m.get("canceled"))
        # The header of this message has no revision; the stream stays open.
        assert canceled == {"header": header(None), "canceled": True, "compact_revision": rev(2)}
        assert log.messages["0"] == [created(3), canceled]

        assert log.read_events("8", 2) == [
            put_event(kv("wcmp/a", "2", create=1, mod=2, version=2)),
            put_event(kv("wcmp/a", "3", create=1, mod=3, version=3)),
        ]
        gw.put("wcmp/b", "1")
        assert log.read_events("9", 1) == [put_event(kv("wcmp/b", "1", create=4, mod=4, version=1))]
        assert log.messages["9"][0] == created(3, watch_id="9")
        assert log.events("0") == []
