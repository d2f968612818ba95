"""The store client's pure parts: builders, the JSON mapping, failure classification,
and how a watch advances its resume revision. Wire samples are copied from etcd 3.4's
captured replies (shared/anchors/etcd/api_examples.md)."""

from __future__ import annotations

from typing import cast

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from store import client_codec, errors
from store.client_transport import Failure, Transport, backoff_delay, classify_reply
from store.client_types import (
    Compare,
    DeleteResult,
    Op,
    PutResult,
    RangeResult,
    SortOrder,
    TxnResult,
    WatchCompacted,
    WatchFilter,
    prefix_range_end,
)
from store.client_watch import Watch, WatchSpec, _Lines, create_request
from store.kv_types import DELETE, PUT, KeyValue

# --- prefix_range_end ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "end"),
    [(b"a/", b"a0"), (b"a\xff", b"b"), (b"a\xff\xff", b"b"), (b"\xff\xff", b"\x00"),
     (b"", b"\x00"), ("r/", b"r0")],
)
def test_prefix_range_end_examples(prefix: bytes | str, end: bytes) -> None:
    assert prefix_range_end(prefix) == end


@given(st.binary(max_size=4), st.binary(max_size=6))
def test_prefix_range_end_covers_exactly_the_prefix(prefix: bytes, key: bytes) -> None:
    end = prefix_range_end(prefix)
    in_range = prefix <= key and (end == b"\x00" or key < end)
    assert in_range == key.startswith(prefix)


# --- requests ------------------------------------------------------------------------------


def test_range_request_omits_zero_values_and_names_enums() -> None:
    op = Op.get(b"a/", b"a0", limit=2, sort_order=SortOrder.DESCEND, keys_only=True)
    assert client_codec.encode_fields(op.fields) == {
        "key": "YS8=", "range_end": "YTA=", "limit": "2", "sort_order": "DESCEND",
        "keys_only": True,
    }


def test_put_request_keeps_big_lease_ids_exact() -> None:
    op = Op.put("k", b"", lease=8547447278526642208)
    assert client_codec.encode_fields(op.fields) == {"key": "aw==", "lease": "8547447278526642208"}


def test_txn_request_shape_keeps_zero_compare_operands() -> None:
    op = Op.txn(
        [Compare.create_revision(b"new", "=", 0), Compare.value(b"new", "!=", b"")],
        [Op.put(b"new", b"n")],
        [Op.get(b"new"), Op.txn([], [Op.delete(b"x", prev_kv=True)])],
    )
    assert client_codec.encode_fields(op.fields) == {
        "compare": [
            {"key": "bmV3", "target": "CREATE", "result": "EQUAL", "create_revision": "0"},
            {"key": "bmV3", "target": "VALUE", "result": "NOT_EQUAL", "value": ""},
        ],
        "success": [{"request_put": {"key": "bmV3", "value": "bg=="}}],
        "failure": [
            {"request_range": {"key": "bmV3"}},
            {"request_txn": {"success": [
                {"request_delete_range": {"key": "eA==", "prev_kv": True}}]}},
        ],
    }


def test_compare_rejects_unknown_operator() -> None:
    with pytest.raises(ValueError):
        Compare.version(b"k", "=>", 1)


def test_read_only_ops() -> None:
    assert Op.get(b"k").is_read_only
    assert Op.txn([], [Op.get(b"a")], [Op.txn([], [Op.get(b"b")])]).is_read_only
    assert not Op.txn([], [Op.get(b"a")], [Op.put(b"b", b"")]).is_read_only
    assert not Op.delete(b"k").is_read_only


def test_watch_create_request() -> None:
    spec = WatchSpec(b"w/", b"w0", True, False, (WatchFilter.NODELETE,))
    assert create_request(spec, 19) == {"create_request": {
        "key": "dy8=", "range_end": "dzA=", "start_revision": "19", "prev_kv": True,
        "filters": ["NODELETE"],
    }}


# --- responses -----------------------------------------------------------------------------

HEADER = {"cluster_id": "873", "member_id": "723", "revision": "10", "raft_term": "2"}


def test_decode_range_with_missing_fields() -> None:
    body = {"header": HEADER, "kvs": [
        {"key": "YS8z", "create_revision": "6", "mod_revision": "6", "version": "1"},
        {"key": "bC8x", "create_revision": "16", "mod_revision": "16", "version": "1",
         "value": "eA==", "lease": "1234"},
    ], "more": True, "count": "5"}
    assert client_codec.decode_range(body) == RangeResult(
        kvs=[KeyValue(b"a/3", 6, 6, 1, b"", 0), KeyValue(b"l/1", 16, 16, 1, b"x", 1234)],
        more=True, count=5, revision=10,
    )
    assert client_codec.decode_range({"header": HEADER}) == RangeResult([], False, 0, 10)


def test_decode_txn_with_nested_responses() -> None:
    body = orjson.loads(
        b'{"header":{"revision":"15"},"succeeded":true,"responses":[{"response_delete_range":'
        b'{"header":{"revision":"15"},"deleted":"1","prev_kvs":[{"key":"bmV3",'
        b'"create_revision":"14","mod_revision":"14","version":"1","value":"bg=="}]}},'
        b'{"response_txn":{"header":{},"succeeded":true,"responses":[{"response_put":'
        b'{"header":{"revision":"15"}}}]}}]}'
    )
    assert client_codec.decode_txn(body) == TxnResult(True, 15, [
        DeleteResult(15, 1, [KeyValue(b"new", 14, 14, 1, b"n", 0)]),
        TxnResult(True, 0, [PutResult(15, None)]),
    ])
    assert client_codec.decode_txn({"header": HEADER}) == TxnResult(False, 10, [])


def test_decode_watch_events_and_compaction() -> None:
    body = orjson.loads(
        b'{"header":{"revision":"21"},"events":[{"kv":{"key":"dy9h","create_revision":"19",'
        b'"mod_revision":"20","version":"2","value":"Mg=="}},{"type":"DELETE","kv":{"key":'
        b'"dy9h","mod_revision":"21"},"prev_kv":{"key":"dy9h","create_revision":"19",'
        b'"mod_revision":"20","version":"2","value":"Mg=="}}]}'
    )
    message = client_codec.decode_watch_message(body)
    assert [(e.type, e.kv.mod_revision) for e in message.events] == [(PUT, 20), (DELETE, 21)]
    assert message.events[1].kv == KeyValue(b"w/a", 0, 21, 0, b"", 0)
    assert message.events[1].prev_kv == KeyValue(b"w/a", 19, 20, 2, b"2", 0)
    compacted = client_codec.decode_watch_message(
        {"header": {"raft_term": "2"}, "canceled": True, "compact_revision": "20"}
    )
    assert (compacted.canceled, compacted.compact_revision, compacted.revision) == (True, 20, 0)


def test_decode_status_and_member() -> None:
    status = client_codec.decode_status("http://m1", {
        "header": {"member_id": "7234452911104208618", "revision": "24"},
        "version": "3.4.23", "dbSize": "20480", "leader": "7234452911104208618",
        "raftIndex": "54", "raftTerm": "2", "raftAppliedIndex": "54",
    })
    assert status.is_leader and status.member_id == 7234452911104208618
    assert status.revision == 24 and status.errors == []
    member = client_codec.decode_member({"ID": "1122112626450025415", "peerURLs": ["http://p"]})
    assert (member.id, member.name, member.client_urls) == (1122112626450025415, "", [])


# --- errors and failover decisions -------------------------------------------------------------


def test_decode_error_bodies() -> None:
    etcd = b'{"error":"etcdserver: requested lease not found","message":"etcdserver: ' \
        b'requested lease not found","code":5}'
    assert client_codec.decode_error(404, etcd) == errors.lease_not_found()
    plain = client_codec.decode_error(404, b"404 page not found\n")
    assert plain == errors.EtcdError("404 page not found", errors.GrpcCode.UNIMPLEMENTED)
    stream = client_codec.decode_error(
        500, b'{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader"}}'
    )
    assert stream == errors.no_leader()


@pytest.mark.parametrize(
    ("status", "error", "failure"),
    [
        (503, errors.no_leader(), Failure.NOT_APPLIED),
        (503, errors.request_timed_out(), Failure.UNKNOWN),
        (500, errors.deadline_exceeded(), Failure.UNKNOWN),
        (400, errors.compacted(), Failure.ANSWER),
        (404, errors.lease_not_found(), Failure.ANSWER),
        (412, errors.lease_exists(), Failure.ANSWER),
    ],
)
def test_classify_reply(status: int, error: errors.EtcdError, failure: Failure) -> None:
    assert classify_reply(status, error) is failure


def test_backoff_is_short_and_capped() -> None:
    delays = [backoff_delay(n) for n in range(20)]
    assert delays[0] <= 0.05 and max(delays) == 1.0 and delays == sorted(delays)


# --- watch resume bookkeeping ----------------------------------------------------------------


def _watch(start_revision: int) -> Watch:
    spec = WatchSpec(b"w/", b"w0", False, False, ())
    return Watch(cast(Transport, None), spec, start_revision=start_revision, idle_probe=1.0)


def _message(revision: int, *mod_revisions: int, **flags: object) -> client_codec.WatchMessage:
    events = [
        client_codec.decode_event({"kv": {"key": "dy9h", "mod_revision": str(r)}})
        for r in mod_revisions
    ]
    return client_codec.WatchMessage(
        revision=revision,
        created=bool(flags.get("created")),
        canceled=bool(flags.get("canceled")),
        compact_revision=int(cast(int, flags.get("compact_revision", 0))),
        cancel_reason="",
        events=events,
    )


def test_watch_resume_revision_follows_events_not_headers() -> None:
    watch = _watch(5)
    assert watch._apply(_message(22, created=True)) is None
    assert watch.next_revision == 5
    batch = watch._apply(_message(2000, 5, 6, 6, 9))  # a capped replay: header is ahead
    assert batch is not None and batch.revision == 2000
    assert watch.next_revision == 10


def test_watch_drops_events_it_already_delivered() -> None:
    watch = _watch(10)
    assert watch._apply(_message(11, 8, 9)) is None
    batch = watch._apply(_message(12, 9, 10, 11))
    assert batch is not None and [e.kv.mod_revision for e in batch.events] == [10, 11]


def test_watch_progress_moves_resume_revision() -> None:
    watch = _watch(10)
    batch = watch._apply(_message(40))
    assert batch is not None and batch.events == [] and batch.revision == 40
    assert watch.next_revision == 41
    watch._apply(_message(30))  # an older progress message never moves it back
    assert watch.next_revision == 41


def test_watch_compaction_and_cancel_end_the_watch() -> None:
    with pytest.raises(WatchCompacted) as info:
        _watch(2)._apply(_message(0, canceled=True, compact_revision=20))
    assert info.value.compact_revision == 20
    assert info.value.code == errors.GrpcCode.OUT_OF_RANGE
    watch = _watch(2)
    batch = watch._apply(_message(7, canceled=True))
    assert batch is not None and batch.canceled


def test_lines_span_reads_and_reads_span_lines() -> None:
    lines = _Lines()
    lines.feed(b'{"a":1}\n{"b"')
    assert lines.pop() == b'{"a":1}'
    assert lines.pop() is None
    lines.feed(b":2}\n\n")
    assert lines.pop() == b'{"b":2}'
    assert lines.pop() == b""
    assert lines.pop() is None
