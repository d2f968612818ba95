"""The messages etcd 3.4's JSON gateway speaks, transcribed from its .proto files.

etcdserverpb/rpc.proto, mvccpb/kv.proto and v3lockpb/v3lock.proto of etcd release-3.4: field
names, numbers, types, declaration order and oneof groups. Order matters twice: jsonpb writes
fields in declaration order, and reads them in that order too (message oneof members last),
so the first bad field in *that* order is the one the error names. Enum names are the Go
type names that appear in etcd's errors ("etcdserverpb.RangeRequest_SortOrder"). The field
numbers serve proto_size(): gRPC's message limits are counted in protobuf bytes, not JSON.
"""

from __future__ import annotations

from typing import Any, NamedTuple

# ---- field kinds -----------------------------------------------------------------------------

BYTES, STRING, BOOL = "bytes", "string", "bool"
INT64, UINT64, INT32, UINT32 = "int64", "uint64", "int32", "uint32"
ENUM, MESSAGE = "enum", "message"


class Field(NamedTuple):
    """One .proto field. `type` names the enum (Go spelling) or the message."""

    name: str
    number: int
    kind: str
    type: str = ""
    repeated: bool = False
    oneof: str = ""

    @property
    def camel(self) -> str:
        """protoc's json_name: jsonpb accepts it beside the .proto name (and prefers it)."""
        head, *rest = self.name.split("_")
        return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _f(name: str, number: int, kind: str, type_: str = "", *, rep: bool = False,
       oneof: str = "") -> Field:
    return Field(name, number, kind, type_, rep, oneof)


def _header() -> Field:
    return _f("header", 1, MESSAGE, "ResponseHeader")


def _members(number: int) -> Field:
    return _f("members", number, MESSAGE, "Member", rep=True)


# Enum values are contiguous from 0 in every enum the gateway uses: index = number.
ENUMS: dict[str, tuple[str, ...]] = {
    "etcdserverpb.RangeRequest_SortOrder": ("NONE", "ASCEND", "DESCEND"),
    "etcdserverpb.RangeRequest_SortTarget": ("KEY", "VERSION", "CREATE", "MOD", "VALUE"),
    "etcdserverpb.Compare_CompareResult": ("EQUAL", "GREATER", "LESS", "NOT_EQUAL"),
    "etcdserverpb.Compare_CompareTarget": ("VERSION", "CREATE", "MOD", "VALUE", "LEASE"),
    "etcdserverpb.WatchCreateRequest_FilterType": ("NOPUT", "NODELETE"),
    "etcdserverpb.AlarmRequest_AlarmAction": ("GET", "ACTIVATE", "DEACTIVATE"),
    "etcdserverpb.AlarmType": ("NONE", "NOSPACE", "CORRUPT"),
    "mvccpb.Event_EventType": ("PUT", "DELETE"),
}
ENUM_VALUES: dict[str, dict[str, int]] = {
    name: {value: number for number, value in enumerate(values)} for name, values in ENUMS.items()
}

_SORT_ORDER = "etcdserverpb.RangeRequest_SortOrder"
_SORT_TARGET = "etcdserverpb.RangeRequest_SortTarget"
_TARGET_UNION = "target_union"

MESSAGES: dict[str, tuple[Field, ...]] = {
    # mvccpb
    "KeyValue": (
        _f("key", 1, BYTES), _f("create_revision", 2, INT64), _f("mod_revision", 3, INT64),
        _f("version", 4, INT64), _f("value", 5, BYTES), _f("lease", 6, INT64)),
    "Event": (
        _f("type", 1, ENUM, "mvccpb.Event_EventType"), _f("kv", 2, MESSAGE, "KeyValue"),
        _f("prev_kv", 3, MESSAGE, "KeyValue")),
    # KV
    "ResponseHeader": (
        _f("cluster_id", 1, UINT64), _f("member_id", 2, UINT64), _f("revision", 3, INT64),
        _f("raft_term", 4, UINT64)),
    "RangeRequest": (
        _f("key", 1, BYTES), _f("range_end", 2, BYTES), _f("limit", 3, INT64),
        _f("revision", 4, INT64), _f("sort_order", 5, ENUM, _SORT_ORDER),
        _f("sort_target", 6, ENUM, _SORT_TARGET), _f("serializable", 7, BOOL),
        _f("keys_only", 8, BOOL), _f("count_only", 9, BOOL), _f("min_mod_revision", 10, INT64),
        _f("max_mod_revision", 11, INT64), _f("min_create_revision", 12, INT64),
        _f("max_create_revision", 13, INT64)),
    "RangeResponse": (
        _header(), _f("kvs", 2, MESSAGE, "KeyValue", rep=True), _f("more", 3, BOOL),
        _f("count", 4, INT64)),
    "PutRequest": (
        _f("key", 1, BYTES), _f("value", 2, BYTES), _f("lease", 3, INT64),
        _f("prev_kv", 4, BOOL), _f("ignore_value", 5, BOOL), _f("ignore_lease", 6, BOOL)),
    "PutResponse": (_header(), _f("prev_kv", 2, MESSAGE, "KeyValue")),
    "DeleteRangeRequest": (_f("key", 1, BYTES), _f("range_end", 2, BYTES), _f("prev_kv", 3, BOOL)),
    "DeleteRangeResponse": (
        _header(), _f("deleted", 2, INT64), _f("prev_kvs", 3, MESSAGE, "KeyValue", rep=True)),
    "RequestOp": (
        _f("request_range", 1, MESSAGE, "RangeRequest", oneof="request"),
        _f("request_put", 2, MESSAGE, "PutRequest", oneof="request"),
        _f("request_delete_range", 3, MESSAGE, "DeleteRangeRequest", oneof="request"),
        _f("request_txn", 4, MESSAGE, "TxnRequest", oneof="request")),
    "ResponseOp": (
        _f("response_range", 1, MESSAGE, "RangeResponse", oneof="response"),
        _f("response_put", 2, MESSAGE, "PutResponse", oneof="response"),
        _f("response_delete_range", 3, MESSAGE, "DeleteRangeResponse", oneof="response"),
        _f("response_txn", 4, MESSAGE, "TxnResponse", oneof="response")),
    "Compare": (
        _f("result", 1, ENUM, "etcdserverpb.Compare_CompareResult"),
        _f("target", 2, ENUM, "etcdserverpb.Compare_CompareTarget"), _f("key", 3, BYTES),
        _f("version", 4, INT64, oneof=_TARGET_UNION),
        _f("create_revision", 5, INT64, oneof=_TARGET_UNION),
        _f("mod_revision", 6, INT64, oneof=_TARGET_UNION),
        _f("value", 7, BYTES, oneof=_TARGET_UNION), _f("lease", 8, INT64, oneof=_TARGET_UNION),
        _f("range_end", 64, BYTES)),
    "TxnRequest": (
        _f("compare", 1, MESSAGE, "Compare", rep=True),
        _f("success", 2, MESSAGE, "RequestOp", rep=True),
        _f("failure", 3, MESSAGE, "RequestOp", rep=True)),
    "TxnResponse": (
        _header(), _f("succeeded", 2, BOOL), _f("responses", 3, MESSAGE, "ResponseOp", rep=True)),
    "CompactionRequest": (_f("revision", 1, INT64), _f("physical", 2, BOOL)),
    "CompactionResponse": (_header(),),
    # Watch
    "WatchRequest": (
        _f("create_request", 1, MESSAGE, "WatchCreateRequest", oneof="request_union"),
        _f("cancel_request", 2, MESSAGE, "WatchCancelRequest", oneof="request_union"),
        _f("progress_request", 3, MESSAGE, "WatchProgressRequest", oneof="request_union")),
    "WatchCreateRequest": (
        _f("key", 1, BYTES), _f("range_end", 2, BYTES), _f("start_revision", 3, INT64),
        _f("progress_notify", 4, BOOL),
        _f("filters", 5, ENUM, "etcdserverpb.WatchCreateRequest_FilterType", rep=True),
        _f("prev_kv", 6, BOOL), _f("watch_id", 7, INT64), _f("fragment", 8, BOOL)),
    "WatchCancelRequest": (_f("watch_id", 1, INT64),),
    "WatchProgressRequest": (),
    "WatchResponse": (
        _header(), _f("watch_id", 2, INT64), _f("created", 3, BOOL), _f("canceled", 4, BOOL),
        _f("compact_revision", 5, INT64), _f("cancel_reason", 6, STRING),
        _f("fragment", 7, BOOL), _f("events", 11, MESSAGE, "Event", rep=True)),
    # Lease
    "LeaseGrantRequest": (_f("TTL", 1, INT64), _f("ID", 2, INT64)),
    "LeaseGrantResponse": (
        _header(), _f("ID", 2, INT64), _f("TTL", 3, INT64), _f("error", 4, STRING)),
    "LeaseRevokeRequest": (_f("ID", 1, INT64),),
    "LeaseRevokeResponse": (_header(),),
    "LeaseKeepAliveRequest": (_f("ID", 1, INT64),),
    "LeaseKeepAliveResponse": (_header(), _f("ID", 2, INT64), _f("TTL", 3, INT64)),
    "LeaseTimeToLiveRequest": (_f("ID", 1, INT64), _f("keys", 2, BOOL)),
    "LeaseTimeToLiveResponse": (
        _header(), _f("ID", 2, INT64), _f("TTL", 3, INT64), _f("grantedTTL", 4, INT64),
        _f("keys", 5, BYTES, rep=True)),
    "LeaseLeasesRequest": (),
    "LeaseStatus": (_f("ID", 1, INT64),),
    "LeaseLeasesResponse": (_header(), _f("leases", 2, MESSAGE, "LeaseStatus", rep=True)),
    # Cluster
    "Member": (
        _f("ID", 1, UINT64), _f("name", 2, STRING), _f("peerURLs", 3, STRING, rep=True),
        _f("clientURLs", 4, STRING, rep=True), _f("isLearner", 5, BOOL)),
    "MemberAddRequest": (_f("peerURLs", 1, STRING, rep=True), _f("isLearner", 2, BOOL)),
    "MemberAddResponse": (_header(), _f("member", 2, MESSAGE, "Member"), _members(3)),
    "MemberRemoveRequest": (_f("ID", 1, UINT64),),
    "MemberRemoveResponse": (_header(), _members(2)),
    "MemberUpdateRequest": (_f("ID", 1, UINT64), _f("peerURLs", 2, STRING, rep=True)),
    "MemberUpdateResponse": (_header(), _members(2)),
    "MemberListRequest": (),
    "MemberListResponse": (_header(), _members(2)),
    "MemberPromoteRequest": (_f("ID", 1, UINT64),),
    "MemberPromoteResponse": (_header(), _members(2)),
    # Maintenance
    "StatusRequest": (),
    "StatusResponse": (
        _header(), _f("version", 2, STRING), _f("dbSize", 3, INT64), _f("leader", 4, UINT64),
        _f("raftIndex", 5, UINT64), _f("raftTerm", 6, UINT64), _f("raftAppliedIndex", 7, UINT64),
        _f("errors", 8, STRING, rep=True), _f("dbSizeInUse", 9, INT64), _f("isLearner", 10, BOOL)),
    "AlarmRequest": (
        _f("action", 1, ENUM, "etcdserverpb.AlarmRequest_AlarmAction"), _f("memberID", 2, UINT64),
        _f("alarm", 3, ENUM, "etcdserverpb.AlarmType")),
    "AlarmMember": (_f("memberID", 1, UINT64), _f("alarm", 2, ENUM, "etcdserverpb.AlarmType")),
    "AlarmResponse": (_header(), _f("alarms", 2, MESSAGE, "AlarmMember", rep=True)),
    "HashRequest": (),
    "HashResponse": (_header(), _f("hash", 2, UINT32)),
    "DefragmentRequest": (),
    "DefragmentResponse": (_header(),),
    "MoveLeaderRequest": (_f("targetID", 1, UINT64),),
    "MoveLeaderResponse": (_header(),),
    # v3lockpb
    "LockRequest": (_f("name", 1, BYTES), _f("lease", 2, INT64)),
    "LockResponse": (_header(), _f("key", 2, BYTES)),
    "UnlockRequest": (_f("key", 1, BYTES),),
    "UnlockResponse": (_header(),),
}

INT_RANGES: dict[str, tuple[int, int]] = {
    INT64: (-(1 << 63), (1 << 63) - 1),
    UINT64: (0, (1 << 64) - 1),
    INT32: (-(1 << 31), (1 << 31) - 1),
    UINT32: (0, (1 << 32) - 1),
    "uint8": (0, 255),
}


# ---- protobuf size: what gRPC's 2 MiB receive limit measures ---------------------------------


def _varint_size(value: int) -> int:
    if value < 0:
        return 10
    return max(1, (value.bit_length() + 6) // 7)


def _scalar_size(kind: str, value: Any) -> int:
    if kind in (BYTES, STRING):
        length = len(value) if kind == BYTES else len(value.encode("utf-8", "surrogatepass"))
        return _varint_size(length) + length
    return _varint_size(int(value))


def proto_size(message: str, value: Any) -> int:
    """Size of `value` as a protobuf message, e.g. the N in etcd's 429 "grpc: received message
    larger than max (N vs. 2097152)". A scalar oneof member (Compare.version ... lease) that
    is zero counts as sent once, as clients send it; the result can be off by those 2 bytes."""
    if isinstance(value, tuple):
        value = value._asdict()
    total = 0
    has_union = union_sent = False
    for f in MESSAGES[message]:
        item = value.get(f.name)
        tag = _varint_size(f.number << 3)
        if f.kind == MESSAGE:
            items = (item or []) if f.repeated else ([] if item is None else [item])
            for element in items:
                size = proto_size(f.type, {} if element is None else element)
                total += tag + _varint_size(size) + size
        elif f.repeated:
            if not item:
                continue
            if f.kind in (BYTES, STRING):
                total += sum(tag + _scalar_size(f.kind, x) for x in item)
            else:  # proto3 packs repeated numbers
                size = sum(_scalar_size(f.kind, x) for x in item)
                total += tag + _varint_size(size) + size
        elif item:
            total += tag + _scalar_size(f.kind, item)
        if f.oneof and f.kind != MESSAGE:
            has_union = True
            union_sent = union_sent or bool(item)
    return total + (2 if has_union and not union_sent else 0)
