"""Txn rules that decide before anything is written: request checks, compares, path.

etcd validates a txn in two places and both must pass before any write, so a rejected
txn leaves no partial state:

1. Statically (v3rpc key.go): at most `MAX_TXN_OPS` compares / success / failure ops
   per level (nested levels get what their parent left), no empty keys, no empty ops,
   and no key written twice (`check_intervals`: two puts of a key, or a put inside a
   delete range, in one branch including nested txns).
2. Against the store before the txn (apply.go): every compare of the txn and of the
   nested txns it will run is evaluated first (`plan`), so nested compares do NOT see
   the outer txn's writes; then the puts and ranges on that path are checked.

This module holds the static rules and the compare evaluation; `state_machine` runs the
plan. Pure functions of their arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from store import errors
from store.kv_types import KeyValue
from store.mvcc import SORT_KEYS

MAX_TXN_OPS = 128  # etcd's --max-txn-ops default

RANGE, PUT, DELETE_RANGE, TXN = (
    "request_range",
    "request_put",
    "request_delete_range",
    "request_txn",
)
RESPONSE = {
    RANGE: "response_range",
    PUT: "response_put",
    DELETE_RANGE: "response_delete_range",
    TXN: "response_txn",
}

# Compare.CompareTarget -> the field compared (same name in Compare and KeyValue)
_TARGET_FIELDS = {0: "version", 1: "create_revision", 2: "mod_revision", 3: "value", 4: "lease"}
VALUE_TARGET = 3
EQUAL, GREATER, LESS, NOT_EQUAL = 0, 1, 2, 3
_ZERO_KV = KeyValue(b"", 0, 0, 0, b"", 0)


class Plan(NamedTuple):
    """The branch a txn will take: its outcome and the ops to run, nested txns planned."""

    succeeded: bool
    steps: list[tuple[str, dict, Plan | None]]  # (kind, request, sub-plan for a txn)


def op_kind(op: dict) -> tuple[str, dict] | None:
    """The one request a RequestOp holds, or None for an empty op."""
    for kind in (RANGE, PUT, DELETE_RANGE, TXN):
        req = op.get(kind)
        if req is not None:
            return kind, req
    return None


# -- static checks (etcd v3rpc) --------------------------------------------------------


def check_range(req: dict) -> None:
    if not req["key"]:
        raise errors.empty_key()
    if req["sort_target"] not in SORT_KEYS or req["sort_order"] not in (0, 1, 2):
        raise errors.invalid_argument("etcdserver: invalid sort option")


def check_put(req: dict) -> None:
    if not req["key"]:
        raise errors.empty_key()
    if req["ignore_value"] and req["value"]:
        raise errors.value_provided()
    if req["ignore_lease"] and req["lease"]:
        raise errors.lease_provided()


def check_delete(req: dict) -> None:
    if not req["key"]:
        raise errors.empty_key()


_CHECKS = {RANGE: check_range, PUT: check_put, DELETE_RANGE: check_delete}


def check_txn(req: dict, max_ops: int = MAX_TXN_OPS) -> None:
    """etcd's checkTxnRequest then checkIntervals on both branches. Raises EtcdError."""
    _check_txn_ops(req, max_ops)
    check_intervals(req["success"])
    check_intervals(req["failure"])


def _check_txn_ops(req: dict, max_ops: int) -> None:
    opc = max(len(req["compare"]), len(req["success"]), len(req["failure"]))
    if opc > max_ops:
        raise errors.too_many_ops()
    for cmp in req["compare"]:
        if not cmp["key"]:
            raise errors.empty_key()
    for op in (*req["success"], *req["failure"]):
        found = op_kind(op)
        if found is None:
            raise errors.key_not_found()  # etcd's answer to an empty RequestOp
        kind, sub = found
        if kind == TXN:
            _check_txn_ops(sub, max_ops - opc)
        else:
            _CHECKS[kind](sub)


def _hits(dels: list[tuple[bytes, bytes]], key: bytes) -> bool:
    return any(start <= key < end for start, end in dels)


def check_intervals(ops: list[dict]) -> tuple[set[bytes], list[tuple[bytes, bytes]]]:
    """etcd's checkIntervals: reject a key put twice or put inside a deleted range.

    Same algorithm as etcd, quirks included: a delete's range_end b"\\0" is taken
    literally (an empty interval), deletes may overlap each other, the two branches of
    a nested txn may put the same key, and a nested put is only checked against deletes
    of nested txns that come before it.
    """
    dels: list[tuple[bytes, bytes]] = []
    for op in ops:
        found = op_kind(op)
        if found and found[0] == DELETE_RANGE:
            key, end = found[1]["key"], found[1]["range_end"]
            dels.append((key, end if end else key + b"\0"))
    puts: set[bytes] = set()
    for op in ops:
        found = op_kind(op)
        if not found or found[0] != TXN:
            continue
        puts_then, dels_then = check_intervals(found[1]["success"])
        puts_else, dels_else = check_intervals(found[1]["failure"])
        for key in puts_then:
            if key in puts or _hits(dels, key):
                raise errors.duplicate_key()
            puts.add(key)
        for key in puts_else:
            if (key in puts and key not in puts_then) or _hits(dels, key):
                raise errors.duplicate_key()
            puts.add(key)
        dels.extend(dels_then)
        dels.extend(dels_else)
    for op in ops:
        found = op_kind(op)
        if found and found[0] == PUT:
            key = found[1]["key"]
            if key in puts or _hits(dels, key):
                raise errors.duplicate_key()
            puts.add(key)
    return puts, dels


# -- compares and the path ---------------------------------------------------------------

Reader = Callable[[bytes, bytes], list[KeyValue]]  # (key, range_end) -> current kvs


def compare(cmp: dict, kvs: list[KeyValue]) -> bool:
    """etcd's applyCompare over the kvs in the compare's range (all must hold)."""
    target = cmp["target"]
    if not kvs:
        if target == VALUE_TARGET:
            return False  # a missing key has no value, not an empty one
        kvs = [_ZERO_KV]
    field = _TARGET_FIELDS.get(target)  # an unknown target compares equal, as in etcd
    want = cmp[field] if field else 0
    result_op = cmp["result"]
    for kv in kvs:
        have = getattr(kv, field) if field else 0
        result = (have > want) - (have < want)
        if result_op == EQUAL:
            ok = result == 0
        elif result_op == GREATER:
            ok = result > 0
        elif result_op == LESS:
            ok = result < 0
        elif result_op == NOT_EQUAL:
            ok = result != 0
        else:
            ok = True
        if not ok:
            return False
    return True


def plan(req: dict, read: Reader) -> Plan:
    """Evaluate this txn's compares and those of the nested txns on its path."""
    succeeded = all(compare(c, read(c["key"], c["range_end"])) for c in req["compare"])
    steps: list[tuple[str, dict, Plan | None]] = []
    for op in req["success"] if succeeded else req["failure"]:
        found = op_kind(op)
        if found is None:
            continue
        kind, sub = found
        steps.append((kind, sub, plan(sub, read) if kind == TXN else None))
    return Plan(succeeded, steps)


def walk(p: Plan, kind: str) -> list[dict]:
    """Requests of one kind on the planned path, in execution order."""
    found: list[dict] = []
    for step_kind, req, sub in p.steps:
        if step_kind == TXN:
            assert sub is not None
            found.extend(walk(sub, kind))
        elif step_kind == kind:
            found.append(req)
    return found
