"""The values the store client hands out and takes in: results, builders, exceptions.

Everything here is plain data with no I/O, so the apiserver can build a `Compare` or an
`Op` and look at a `TxnResult` without a network in sight, and tests can check the
builders directly. Keys and values are bytes, revisions and IDs are ints, exactly as
etcd's clientv3 reports them; `store.client_codec` turns them into gateway JSON.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from store import errors
from store.kv_types import Event, KeyValue

BytesLike = bytes | str


def to_bytes(value: BytesLike) -> bytes:
    """Keys and values are bytes on the wire; str is accepted as UTF-8 for convenience."""
    return value.encode() if isinstance(value, str) else bytes(value)


def prefix_range_end(prefix: BytesLike) -> bytes:
    """The `range_end` that makes [prefix, range_end) cover every key starting with prefix.

    As clientv3's GetPrefixRangeEnd: bump the last byte that is not 0xff and cut after it;
    a prefix of only 0xff bytes (or empty) has no upper bound, spelled b"\\x00".
    """
    end = bytearray(to_bytes(prefix))
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\x00"


# --- enums, numbered as in etcd's .proto --------------------------------------------


class SortOrder(enum.IntEnum):
    NONE = 0
    ASCEND = 1
    DESCEND = 2


class SortTarget(enum.IntEnum):
    KEY = 0
    VERSION = 1
    CREATE = 2
    MOD = 3
    VALUE = 4


class CompareTarget(enum.IntEnum):
    VERSION = 0
    CREATE = 1
    MOD = 2
    VALUE = 3
    LEASE = 4


class CompareResult(enum.IntEnum):
    EQUAL = 0
    GREATER = 1
    LESS = 2
    NOT_EQUAL = 3


class WatchFilter(enum.IntEnum):
    NOPUT = 0
    NODELETE = 1


_OPERATORS = {
    "=": CompareResult.EQUAL,
    "==": CompareResult.EQUAL,
    ">": CompareResult.GREATER,
    "<": CompareResult.LESS,
    "!=": CompareResult.NOT_EQUAL,
}


# --- results -------------------------------------------------------------------------


class RangeResult(NamedTuple):
    """`count` is the number of matching keys, even when `limit` cut `kvs` short."""

    kvs: list[KeyValue]
    more: bool
    count: int  # type: ignore[assignment]  # etcd's field name; shadows tuple.count
    revision: int


class PutResult(NamedTuple):
    revision: int
    prev_kv: KeyValue | None


class DeleteResult(NamedTuple):
    """A delete that matched nothing does not create a revision: `revision` is current."""

    revision: int
    deleted: int
    prev_kvs: list[KeyValue]


class TxnResult(NamedTuple):
    """`responses` line up with the ops of the branch that ran (success or failure)."""

    succeeded: bool
    revision: int
    responses: list[OpResult]


OpResult = RangeResult | PutResult | DeleteResult | TxnResult


class LeaseTimeToLive(NamedTuple):
    """`ttl` is -1 when the lease does not exist (etcd answers 200, not an error)."""

    id: int
    ttl: int
    granted_ttl: int
    keys: list[bytes]


class Member(NamedTuple):
    """A member that was added but never started has no name and no client URLs yet."""

    id: int
    name: str
    peer_urls: list[str]
    client_urls: list[str]
    is_learner: bool


class Status(NamedTuple):
    """One member's view: `leader` is 0 and `errors` non-empty when it has no leader."""

    endpoint: str
    member_id: int
    leader: int
    version: str
    db_size: int
    db_size_in_use: int
    raft_index: int
    raft_term: int
    raft_applied_index: int
    revision: int
    is_learner: bool
    errors: list[str]

    @property
    def is_leader(self) -> bool:
        return self.leader != 0 and self.leader == self.member_id


class WatchBatch(NamedTuple):
    """One watch message: events (one txn's events are never split), or progress.

    A batch with no events is a progress notification: nothing in the watched range
    changed up to `revision`.
    """

    revision: int
    events: list[Event]
    compact_revision: int = 0
    canceled: bool = False


# --- exceptions ----------------------------------------------------------------------


class StoreUnavailable(Exception):
    """No endpoint answered in time.

    `maybe_applied` is True when a write may have reached a member before the failure,
    so its outcome is unknown: the caller must read back before deciding to retry.
    """

    def __init__(
        self, message: str, *, maybe_applied: bool = False, causes: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.maybe_applied = maybe_applied
        self.causes = list(causes)

    def __str__(self) -> str:
        if not self.causes:
            return self.message
        return f"{self.message} ({'; '.join(self.causes[-3:])})"


class WatchCompacted(errors.EtcdError):
    """The watch cannot continue: the revisions it needs were compacted away.

    The consumer must re-list (and re-watch from the list's revision), as an informer does
    on HTTP 410 Gone.
    """

    def __init__(self, compact_revision: int) -> None:
        base = errors.compacted()
        super().__init__(base.message, base.code)
        self.compact_revision = compact_revision

    def __reduce__(self) -> tuple[Any, ...]:
        return (WatchCompacted, (self.compact_revision,))

    def __repr__(self) -> str:
        return f"WatchCompacted(compact_revision={self.compact_revision})"


# --- txn builders --------------------------------------------------------------------


class Compare(NamedTuple):
    """One txn guard, as etcdserverpb.Compare. Build with the class methods."""

    key: bytes
    target: CompareTarget
    result: CompareResult
    operand: int | bytes
    range_end: bytes = b""

    @classmethod
    def _build(
        cls, key: BytesLike, op: str, target: CompareTarget, operand: int | bytes,
        range_end: BytesLike,
    ) -> Compare:
        if op not in _OPERATORS:
            raise ValueError(f"compare operator must be one of {sorted(_OPERATORS)}: {op!r}")
        return cls(to_bytes(key), target, _OPERATORS[op], operand, to_bytes(range_end))

    @classmethod
    def version(cls, key: BytesLike, op: str, version: int, range_end: BytesLike = b"") -> Compare:
        return cls._build(key, op, CompareTarget.VERSION, int(version), range_end)

    @classmethod
    def create_revision(
        cls, key: BytesLike, op: str, revision: int, range_end: BytesLike = b""
    ) -> Compare:
        """`create_revision(key, "=", 0)` is "key does not exist"."""
        return cls._build(key, op, CompareTarget.CREATE, int(revision), range_end)

    @classmethod
    def mod_revision(
        cls, key: BytesLike, op: str, revision: int, range_end: BytesLike = b""
    ) -> Compare:
        """`mod_revision(key, "=", rev)` is optimistic concurrency: nobody wrote since rev."""
        return cls._build(key, op, CompareTarget.MOD, int(revision), range_end)

    @classmethod
    def value(cls, key: BytesLike, op: str, value: BytesLike, range_end: BytesLike = b"") -> Compare:
        return cls._build(key, op, CompareTarget.VALUE, to_bytes(value), range_end)

    @classmethod
    def lease(cls, key: BytesLike, op: str, lease: int, range_end: BytesLike = b"") -> Compare:
        return cls._build(key, op, CompareTarget.LEASE, int(lease), range_end)


@dataclass(frozen=True)
class Op:
    """One request inside a txn, and the request body of the matching unary call.

    `kind` is the oneof name without its prefix ("range", "put", "delete_range", "txn");
    `fields` are the request's .proto fields as python values (zero values may be left
    out). The unary methods build the same `Op`, so a txn and a plain call cannot drift.
    """

    kind: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def get(
        cls,
        key: BytesLike,
        range_end: BytesLike = b"",
        *,
        limit: int = 0,
        revision: int = 0,
        serializable: bool = False,
        keys_only: bool = False,
        count_only: bool = False,
        sort_order: SortOrder = SortOrder.NONE,
        sort_target: SortTarget = SortTarget.KEY,
    ) -> Op:
        return cls("range", {
            "key": to_bytes(key),
            "range_end": to_bytes(range_end),
            "limit": int(limit),
            "revision": int(revision),
            "sort_order": SortOrder(sort_order),
            "sort_target": SortTarget(sort_target),
            "serializable": bool(serializable),
            "keys_only": bool(keys_only),
            "count_only": bool(count_only),
        })

    @classmethod
    def put(cls, key: BytesLike, value: BytesLike, *, lease: int = 0, prev_kv: bool = False) -> Op:
        return cls("put", {
            "key": to_bytes(key),
            "value": to_bytes(value),
            "lease": int(lease),
            "prev_kv": bool(prev_kv),
        })

    @classmethod
    def delete(cls, key: BytesLike, range_end: BytesLike = b"", *, prev_kv: bool = False) -> Op:
        return cls("delete_range", {
            "key": to_bytes(key),
            "range_end": to_bytes(range_end),
            "prev_kv": bool(prev_kv),
        })

    @classmethod
    def txn(
        cls, compare: Sequence[Compare], success: Sequence[Op] = (), failure: Sequence[Op] = ()
    ) -> Op:
        return cls("txn", {
            "compare": list(compare),
            "success": list(success),
            "failure": list(failure),
        })

    @property
    def is_read_only(self) -> bool:
        """True when sending it twice cannot change anything, so failover may resend it."""
        if self.kind == "range":
            return True
        if self.kind == "txn":
            ops = [*self.fields.get("success", ()), *self.fields.get("failure", ())]
            return all(op.is_read_only for op in ops)
        return False
