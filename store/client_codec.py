"""The client's side of the etcd v3 JSON gateway mapping: python values <-> JSON dicts.

Kept apart from the server's codec on purpose: the client must read what real etcd 3.4
writes, which is the authority, and not whatever our server happens to write. Rules it
relies on (docs in shared/anchors/etcd/api_examples.md, sections 2-3):

- bytes are padded standard base64; int64 arrive as JSON strings (sent as strings too,
  so lease and member IDs above 2**53 survive any JSON parser on the way);
- zero values are omitted, so every missing field reads as its zero;
- enums are sent by name, read by name or number.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import orjson

from store import errors
from store.client_types import (
    Compare,
    DeleteResult,
    LeaseTimeToLive,
    Member,
    Op,
    OpResult,
    PutResult,
    RangeResult,
    Status,
    TxnResult,
)
from store.kv_types import DELETE, PUT, Event, KeyValue

# --- primitives ------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def as_bytes(value: Any) -> bytes:
    return base64.b64decode(value) if value else b""


def as_int(value: Any) -> int:
    """int64 fields come as strings ("5"), tolerate numbers; missing means 0."""
    return int(value) if value not in (None, "") else 0


def header_revision(body: Mapping[str, Any]) -> int:
    return as_int((body.get("header") or {}).get("revision"))


def header_member_id(body: Mapping[str, Any]) -> int:
    return as_int((body.get("header") or {}).get("member_id"))


# --- requests ----------------------------------------------------------------------------


def _encode_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return b64(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, enum.IntEnum):
        return value.name
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Compare):
        return encode_compare(value)
    if isinstance(value, Op):
        return encode_op(value)
    if isinstance(value, list | tuple):
        return [_encode_value(item) for item in value]
    return value


def encode_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A request body with zero values left out, as etcd's own gateway writes them."""
    return {
        name: _encode_value(value)
        for name, value in fields.items()
        if value not in (None, b"", "", 0, False, [], ())
    }


def encode_op(op: Op) -> dict[str, Any]:
    """An op inside a txn: `{"request_put": {...}}` and so on."""
    return {f"request_{op.kind}": encode_fields(op.fields)}


_COMPARE_FIELD = {
    "VERSION": "version",
    "CREATE": "create_revision",
    "MOD": "mod_revision",
    "VALUE": "value",
    "LEASE": "lease",
}


def encode_compare(compare: Compare) -> dict[str, Any]:
    """The operand is always written, even when zero: it selects the oneof target_union."""
    body: dict[str, Any] = {
        "key": b64(compare.key),
        "target": compare.target.name,
        "result": compare.result.name,
        _COMPARE_FIELD[compare.target.name]: _encode_value(compare.operand),
    }
    if compare.range_end:
        body["range_end"] = b64(compare.range_end)
    return body


def dumps(body: Mapping[str, Any]) -> bytes:
    return orjson.dumps(body)


# --- responses -----------------------------------------------------------------------------


def decode_kv(body: Mapping[str, Any]) -> KeyValue:
    return KeyValue(
        key=as_bytes(body.get("key")),
        create_revision=as_int(body.get("create_revision")),
        mod_revision=as_int(body.get("mod_revision")),
        version=as_int(body.get("version")),
        value=as_bytes(body.get("value")),
        lease=as_int(body.get("lease")),
    )


def _maybe_kv(body: Mapping[str, Any] | None) -> KeyValue | None:
    return decode_kv(body) if body else None


def decode_range(body: Mapping[str, Any]) -> RangeResult:
    return RangeResult(
        kvs=[decode_kv(kv) for kv in body.get("kvs") or ()],
        more=bool(body.get("more")),
        count=as_int(body.get("count")),
        revision=header_revision(body),
    )


def decode_put(body: Mapping[str, Any]) -> PutResult:
    return PutResult(revision=header_revision(body), prev_kv=_maybe_kv(body.get("prev_kv")))


def decode_delete(body: Mapping[str, Any]) -> DeleteResult:
    return DeleteResult(
        revision=header_revision(body),
        deleted=as_int(body.get("deleted")),
        prev_kvs=[decode_kv(kv) for kv in body.get("prev_kvs") or ()],
    )


def decode_txn(body: Mapping[str, Any]) -> TxnResult:
    return TxnResult(
        succeeded=bool(body.get("succeeded")),
        revision=header_revision(body),
        responses=[decode_op_response(item) for item in body.get("responses") or ()],
    )


_OP_DECODERS: dict[str, Callable[[Mapping[str, Any]], OpResult]] = {
    "response_range": decode_range,
    "response_put": decode_put,
    "response_delete_range": decode_delete,
    "response_txn": decode_txn,
}


def decode_op_response(body: Mapping[str, Any]) -> OpResult:
    for name, decode in _OP_DECODERS.items():
        if name in body:
            return decode(body[name] or {})
    raise ValueError(f"unknown txn response {sorted(body)}")


def decode_event(body: Mapping[str, Any]) -> Event:
    kind = body.get("type")
    return Event(
        type=DELETE if kind in ("DELETE", DELETE) else PUT,
        kv=decode_kv(body.get("kv") or {}),
        prev_kv=_maybe_kv(body.get("prev_kv")),
    )


def decode_lease_ttl(body: Mapping[str, Any]) -> LeaseTimeToLive:
    return LeaseTimeToLive(
        id=as_int(body.get("ID")),
        ttl=as_int(body.get("TTL")),
        granted_ttl=as_int(body.get("grantedTTL")),
        keys=[as_bytes(key) for key in body.get("keys") or ()],
    )


def decode_member(body: Mapping[str, Any]) -> Member:
    return Member(
        id=as_int(body.get("ID")),
        name=body.get("name") or "",
        peer_urls=list(body.get("peerURLs") or ()),
        client_urls=list(body.get("clientURLs") or ()),
        is_learner=bool(body.get("isLearner")),
    )


def decode_status(endpoint: str, body: Mapping[str, Any]) -> Status:
    return Status(
        endpoint=endpoint,
        member_id=header_member_id(body),
        leader=as_int(body.get("leader")),
        version=body.get("version") or "",
        db_size=as_int(body.get("dbSize")),
        db_size_in_use=as_int(body.get("dbSizeInUse")),
        raft_index=as_int(body.get("raftIndex")),
        raft_term=as_int(body.get("raftTerm")),
        raft_applied_index=as_int(body.get("raftAppliedIndex")),
        revision=header_revision(body),
        is_learner=bool(body.get("isLearner")),
        errors=list(body.get("errors") or ()),
    )


class WatchMessage(NamedTuple):
    """One `{"result": WatchResponse}` line of a watch stream."""

    revision: int
    created: bool
    canceled: bool
    compact_revision: int
    cancel_reason: str
    events: list[Event]


def decode_watch_message(body: Mapping[str, Any]) -> WatchMessage:
    return WatchMessage(
        revision=header_revision(body),
        created=bool(body.get("created")),
        canceled=bool(body.get("canceled")),
        compact_revision=as_int(body.get("compact_revision")),
        cancel_reason=body.get("cancel_reason") or "",
        events=[decode_event(event) for event in body.get("events") or ()],
    )


# --- errors ------------------------------------------------------------------------------

# For error bodies that are not etcd's JSON (a proxy, a plain-text 404 for a bad path).
_CODE_FOR_STATUS = {
    400: errors.GrpcCode.INVALID_ARGUMENT,
    404: errors.GrpcCode.UNIMPLEMENTED,
    405: errors.GrpcCode.UNIMPLEMENTED,
    408: errors.GrpcCode.DEADLINE_EXCEEDED,
    429: errors.GrpcCode.RESOURCE_EXHAUSTED,
    503: errors.GrpcCode.UNAVAILABLE,
    504: errors.GrpcCode.DEADLINE_EXCEEDED,
}


def _error_from_fields(body: Mapping[str, Any], status: int) -> errors.EtcdError | None:
    message = body.get("message") or body.get("error")
    code = body.get("code", body.get("grpc_code"))
    if not isinstance(message, str) or not isinstance(code, int):
        return None
    try:
        return errors.EtcdError(message, errors.GrpcCode(code))
    except ValueError:
        return errors.EtcdError(message, _CODE_FOR_STATUS.get(status, errors.GrpcCode.UNKNOWN))


def decode_error(status: int, raw: bytes) -> errors.EtcdError:
    """An error reply: etcd's `{"error","message","code"}`, or whatever else came back."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        # A gateway stream that fails mid-way writes {"error": {grpc_code, message, ...}}.
        nested = body.get("error")
        found = _error_from_fields(nested if isinstance(nested, dict) else body, status)
        if found is not None:
            return found
    text = raw.decode("utf-8", "replace").strip() or f"HTTP {status}"
    return errors.EtcdError(text, _CODE_FOR_STATUS.get(status, errors.GrpcCode.UNKNOWN))
