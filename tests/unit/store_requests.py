"""Builders for the store's internal requests (every field present, as the codec makes them)
and small assertions shared by the store's unit tests."""

from __future__ import annotations

from store import errors
from store.commands import CommandType
from store.kv_types import Event, KeyValue

# Compare.CompareTarget and Compare.CompareResult
VERSION, CREATE, MOD, VALUE, LEASE = range(5)
EQUAL, GREATER, LESS, NOT_EQUAL = range(4)


def put_req(key: bytes, value: bytes = b"", **fields: object) -> dict:
    req = {
        "key": key,
        "value": value,
        "lease": 0,
        "prev_kv": False,
        "ignore_value": False,
        "ignore_lease": False,
    }
    req.update(fields)
    return req


def range_req(key: bytes, range_end: bytes = b"", **fields: object) -> dict:
    req = {
        "key": key,
        "range_end": range_end,
        "limit": 0,
        "revision": 0,
        "sort_order": 0,
        "sort_target": 0,
        "serializable": False,
        "keys_only": False,
        "count_only": False,
        "min_mod_revision": 0,
        "max_mod_revision": 0,
        "min_create_revision": 0,
        "max_create_revision": 0,
    }
    req.update(fields)
    return req


def delete_req(key: bytes, range_end: bytes = b"", prev_kv: bool = False) -> dict:
    return {"key": key, "range_end": range_end, "prev_kv": prev_kv}


def cmp(key: bytes, target: int, result: int, range_end: bytes = b"", **fields: object) -> dict:
    c = {
        "result": result,
        "target": target,
        "key": key,
        "range_end": range_end,
        "version": 0,
        "create_revision": 0,
        "mod_revision": 0,
        "value": b"",
        "lease": 0,
    }
    c.update(fields)
    return c


def txn_req(
    compare: list | None = None, success: list | None = None, failure: list | None = None
) -> dict:
    return {"compare": compare or [], "success": success or [], "failure": failure or []}


def op_put(key: bytes, value: bytes = b"", **fields: object) -> dict:
    return {"request_put": put_req(key, value, **fields)}


def op_range(key: bytes, range_end: bytes = b"", **fields: object) -> dict:
    return {"request_range": range_req(key, range_end, **fields)}


def op_delete(key: bytes, range_end: bytes = b"", prev_kv: bool = False) -> dict:
    return {"request_delete_range": delete_req(key, range_end, prev_kv)}


def op_txn(
    compare: list | None = None, success: list | None = None, failure: list | None = None
) -> dict:
    return {"request_txn": txn_req(compare, success, failure)}


def put_cmd(key: bytes, value: bytes = b"", **fields: object) -> tuple:
    return (CommandType.PUT, put_req(key, value, **fields))


def del_cmd(key: bytes, range_end: bytes = b"", prev_kv: bool = False) -> tuple:
    return (CommandType.DELETE_RANGE, delete_req(key, range_end, prev_kv))


def txn_cmd(
    compare: list | None = None, success: list | None = None, failure: list | None = None
) -> tuple:
    return (CommandType.TXN, txn_req(compare, success, failure))


def compact_cmd(revision: int, physical: bool = False) -> tuple:
    return (CommandType.COMPACT, {"revision": revision, "physical": physical})


def kv(
    key: bytes, create: int, mod: int, version: int, value: bytes = b"", lease: int = 0
) -> KeyValue:
    return KeyValue(key, create, mod, version, value, lease)


def ok(state, command: tuple) -> tuple[dict, list[Event]]:
    """Apply a command that must succeed."""
    resp, events = state.apply(command)
    assert not isinstance(resp, errors.EtcdError), resp
    return resp, events


def fails(state, command: tuple, expected: errors.EtcdError) -> None:
    """Apply a command that must fail with `expected` and change nothing."""
    rev = state.revision
    resp, events = state.apply(command)
    assert resp == expected and events == [] and state.revision == rev
