"""Bad requests: etcd 3.4's exact error body and HTTP status, and no change to the data.

Every gateway error is `{"error": m, "message": m, "code": <gRPC code>}` with the HTTP
status that grpc-gateway maps the code to (3, 11 → 400; 5 → 404; 9 → 412; 8 → 429).
Many messages are the text of Go libraries etcd is built on (encoding/json, encoding/
base64, grpc); they are asserted verbatim because that is what a client sees and logs.
They are all in CASES below, so a deliberate decision to differ is one edit.

Each case also checks that the store is untouched: the revision is the same afterwards
and the key the bad request aimed at still holds what it held.
"""

from __future__ import annotations

import json

import pytest

from tests.clusters import StoreClusterHandle
from tests.compat_helpers import Gateway, b64, error_body

TARGET = "a/1"  # "YS8x": the key the bad writes below aim at
MAX_GRPC_MESSAGE = 2 * 1024 * 1024  # grpc-gateway → etcd's gRPC server: 2 MiB
MAX_REQUEST_BYTES = 1536 * 1024  # etcd's --max-request-bytes default: 1.5 MiB


def invalid(message: str) -> tuple[int, dict]:
    return 400, error_body(message, 3)


KEY_NOT_PROVIDED = invalid("etcdserver: key is not provided")
STRING_FOR_BOOL = invalid("json: cannot unmarshal string into Go value of type bool")
LEASE_NOT_FOUND = (404, error_body("etcdserver: requested lease not found", 5))

CASES = [
    # --- not JSON, or not the JSON expected ---
    pytest.param("kv/put", b"not json", invalid("invalid character 'o' in literal null (expecting 'u')"), id="not-json"),
    pytest.param("kv/put", b"{bad", invalid("invalid character 'b' looking for beginning of object key string"), id="bad-object"),
    pytest.param("kv/put", b'{"key":"YS8x","value":"djE=",}', invalid("invalid character '}' looking for beginning of object key string"), id="trailing-comma"),
    pytest.param("kv/put", b'{"key":"YS8x","value":"djE="', invalid("unexpected EOF"), id="truncated"),
    pytest.param("kv/range", {"key": b64(TARGET), "serializable": "true"}, STRING_FOR_BOOL, id="bool-as-string"),
    pytest.param("kv/put", {"key": b64(TARGET), "value": b64("x"), "prev_kv": "true"}, STRING_FOR_BOOL, id="put-bool-as-string"),
    pytest.param("kv/put", {"key": b64(TARGET), "value": b64("x"), "prev_kv": 1}, invalid("json: cannot unmarshal number into Go value of type bool"), id="bool-as-number"),
    pytest.param("kv/range", {"key": b64(TARGET), "limit": 1.5}, invalid("json: cannot unmarshal number 1.5 into Go value of type int64"), id="int64-fraction"),
    pytest.param("kv/put", {"key": b64(TARGET), "value": b64("x"), "lease": True}, invalid("json: cannot unmarshal bool into Go value of type int64"), id="int64-as-bool"),
    # --- base64: standard alphabet, padded ---
    pytest.param("kv/put", {"key": "AAEC_w==", "value": "eA=="}, invalid("illegal base64 data at input byte 4"), id="base64-url-safe"),
    pytest.param("kv/range", {"key": "YS8"}, invalid("illegal base64 data at input byte 0"), id="base64-unpadded-key"),
    pytest.param("kv/put", {"key": b64(TARGET), "value": "djE"}, invalid("illegal base64 data at input byte 0"), id="base64-unpadded-value"),
    pytest.param("kv/put", {"key": b64(TARGET), "value": "dj E="}, invalid("illegal base64 data at input byte 2"), id="base64-space"),
    # --- missing key ---
    pytest.param("kv/put", {"value": b64("x")}, KEY_NOT_PROVIDED, id="put-no-key"),
    pytest.param("kv/put", b"", KEY_NOT_PROVIDED, id="put-empty-body"),
    pytest.param("kv/range", {}, KEY_NOT_PROVIDED, id="range-no-key"),
    pytest.param("kv/range", {"key": ""}, KEY_NOT_PROVIDED, id="range-empty-key"),
    pytest.param("kv/deleterange", {"range_end": "AA=="}, KEY_NOT_PROVIDED, id="delete-no-key"),
    pytest.param("kv/txn", {"success": [{"request_put": {"key": b64("ok"), "value": b64("x")}}, {"request_put": {"value": b64("x")}}]}, KEY_NOT_PROVIDED, id="txn-put-no-key"),
    pytest.param("kv/txn", {"compare": [{"target": "MOD", "result": "EQUAL"}]}, KEY_NOT_PROVIDED, id="txn-compare-no-key"),
    # --- enums: names are case-sensitive ---
    pytest.param("kv/range", {"key": b64("a/"), "range_end": b64("a0"), "sort_order": "BOGUS"}, invalid('unknown value "BOGUS" for enum etcdserverpb.RangeRequest_SortOrder'), id="enum-sort-order"),
    pytest.param("kv/range", {"key": b64("a/"), "sort_order": "descend"}, invalid('unknown value "descend" for enum etcdserverpb.RangeRequest_SortOrder'), id="enum-lower-case"),
    pytest.param("kv/range", {"key": b64("a/"), "sort_target": "BOGUS"}, invalid('unknown value "BOGUS" for enum etcdserverpb.RangeRequest_SortTarget'), id="enum-sort-target"),
    pytest.param("kv/txn", {"compare": [{"key": b64(TARGET), "target": "BOGUS", "result": "EQUAL"}], "success": [{"request_put": {"key": b64(TARGET)}}]}, invalid('unknown value "BOGUS" for enum etcdserverpb.Compare_CompareTarget'), id="enum-compare-target"),
    pytest.param("kv/txn", {"compare": [{"key": b64(TARGET), "target": "MOD", "result": "BOGUS"}], "success": [{"request_put": {"key": b64(TARGET)}}]}, invalid('unknown value "BOGUS" for enum etcdserverpb.Compare_CompareResult'), id="enum-compare-result"),
    # --- put options that contradict each other or the store ---
    pytest.param("kv/put", {"key": b64("nokey"), "ignore_value": True}, invalid("etcdserver: key not found"), id="ignore-value-missing-key"),
    pytest.param("kv/put", {"key": b64(TARGET), "value": b64("x"), "ignore_value": True}, invalid("etcdserver: value is provided"), id="ignore-value-with-value"),
    pytest.param("kv/put", {"key": b64(TARGET), "lease": "5", "ignore_lease": True}, invalid("etcdserver: lease is provided"), id="ignore-lease-with-lease"),
    pytest.param("kv/txn", {"success": [{"request_put": {"key": b64(TARGET), "value": b64("x")}}, {"request_put": {"key": b64(TARGET), "value": b64("y")}}]}, invalid("etcdserver: duplicate key given in txn request"), id="txn-duplicate-key"),
    # --- leases ---
    pytest.param("kv/put", {"key": b64(TARGET), "value": b64("x"), "lease": "999"}, LEASE_NOT_FOUND, id="put-unknown-lease"),
    pytest.param("kv/put", {"key": b64(TARGET), "value": b64("x"), "lease": 999}, LEASE_NOT_FOUND, id="put-unknown-lease-number"),
    pytest.param("kv/txn", {"success": [{"request_put": {"key": b64(TARGET), "value": b64("x"), "lease": "999"}}]}, LEASE_NOT_FOUND, id="txn-put-unknown-lease"),
    pytest.param("lease/revoke", {"ID": "999"}, LEASE_NOT_FOUND, id="revoke-unknown-lease"),
    pytest.param("kv/lease/revoke", {"ID": 999}, LEASE_NOT_FOUND, id="revoke-alias-unknown-lease"),
    pytest.param("lease/grant", {"TTL": 9_000_000_001}, (400, error_body("etcdserver: too large lease TTL", 11)), id="grant-ttl-too-large"),
    # --- revisions ---
    pytest.param("kv/range", {"key": b64(TARGET), "revision": "1000000"}, (400, error_body("etcdserver: mvcc: required revision is a future revision", 11)), id="range-future-revision"),
    pytest.param("kv/compaction", {"revision": 1000000}, (400, error_body("etcdserver: mvcc: required revision is a future revision", 11)), id="compact-future-revision"),
]  # fmt: skip


@pytest.fixture(scope="module")
def seeded(store_cluster_module: StoreClusterHandle) -> Gateway:
    gw = Gateway(store_cluster_module.endpoints[0])
    gw.put(TARGET, "original")
    return gw


def assert_rejected_without_change(gw: Gateway, path: str, body: object, expected: tuple) -> None:
    revision = gw.revision()
    target = gw.range(TARGET)["kvs"]
    reply = gw.post(path, body)
    assert reply.content_type == "application/json", reply
    assert (reply.status, reply.json) == expected
    assert gw.revision() == revision
    assert gw.range(TARGET)["kvs"] == target


@pytest.mark.parametrize(("path", "body", "expected"), CASES)
def test_bad_request(seeded: Gateway, path: str, body: object, expected: tuple) -> None:
    assert_rejected_without_change(seeded, path, body, expected)


def put_request_size(key: bytes, value: bytes) -> int:
    """Size of a PutRequest{key, value} in protobuf: grpc reports it in its size error."""

    def field(data: bytes) -> int:
        length, varint = len(data), 1
        while length >= 0x80:
            length >>= 7
            varint += 1
        return 1 + varint + len(data)

    return field(key) + field(value)


def test_value_over_the_grpc_limit(seeded: Gateway) -> None:
    value = b"x" * MAX_GRPC_MESSAGE
    size = put_request_size(TARGET.encode(), value)
    message = f"grpc: received message larger than max ({size} vs. {MAX_GRPC_MESSAGE})"
    body = {"key": b64(TARGET), "value": b64(value)}
    assert_rejected_without_change(seeded, "kv/put", body, (429, error_body(message, 8)))


def test_value_over_the_request_limit_but_under_the_grpc_limit(seeded: Gateway) -> None:
    """Between etcd's 1.5 MiB request limit and grpc's 2 MiB: a different error."""
    body = {"key": b64(TARGET), "value": b64(b"x" * (MAX_REQUEST_BYTES + 64 * 1024))}
    assert_rejected_without_change(
        seeded, "kv/put", body, invalid("etcdserver: request is too large")
    )


def test_a_value_under_the_request_limit_is_stored(seeded: Gateway) -> None:
    value = b"y" * (MAX_REQUEST_BYTES - 4096)
    revision = seeded.revision()
    seeded.put("big/ok", value)
    assert seeded.revision() == revision + 1
    kvs = seeded.range("big/ok")["kvs"]
    assert [len(kv["value"]) for kv in kvs] == [len(b64(value))]
    seeded.ok("kv/deleterange", {"key": b64("big/ok")})


def test_granting_a_lease_id_twice(seeded: Gateway) -> None:
    revision = seeded.revision()
    lease_id = "70707"
    assert seeded.ok("lease/grant", {"TTL": 60, "ID": lease_id})["ID"] == lease_id
    reply = seeded.post("lease/grant", {"TTL": 120, "ID": int(lease_id)})
    assert (reply.status, reply.json) == (412, error_body("etcdserver: lease already exists", 9))
    assert seeded.ok("lease/timetolive", {"ID": lease_id})["grantedTTL"] == "60"
    assert seeded.revision() == revision
    seeded.ok("lease/revoke", {"ID": lease_id})


def test_error_bodies_are_single_json_documents(seeded: Gateway) -> None:
    """Content-Type application/json and nothing after the object (clients json.loads it)."""
    reply = seeded.post("kv/put", b"not json")
    assert reply.content_type == "application/json"
    assert json.loads(reply.body.decode()) == reply.json
