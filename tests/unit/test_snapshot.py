"""Snapshots: exact round trip of the replicated state, refusal of foreign data, speed."""

from __future__ import annotations

import pickle
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import snapshot
from store.commands import CommandType as C
from store.state_machine import StoreState
from tests.unit.store_requests import (
    compact_cmd,
    del_cmd,
    op_delete,
    op_put,
    put_cmd,
    range_req,
    txn_cmd,
)


def internals(s: StoreState) -> tuple:
    kv = s.kv
    return (
        kv.revision,
        kv.compact_revision,
        kv._current,
        list(kv._live),
        kv._history,
        list(kv._indexed),
        kv._dirty,
        kv._events,
        s.leases.items(),
        {i: s.leases.keys(i) for i in s.leases.ids()},
        s.members(),
        s.removed_members(),
    )


def sample_state() -> StoreState:
    s = StoreState()
    s.apply((C.LEASE_GRANT, 7, 30, 100.0))
    s.apply((C.LEASE_GRANT, 2**63 - 1, 60, 100.0))
    s.apply(put_cmd(b"a", b"1", lease=7))
    s.apply(put_cmd(b"b", b"\x00\xff"))
    s.apply(put_cmd(b"a", b"2"))
    s.apply(del_cmd(b"b"))
    s.apply(put_cmd(b"c", b"", lease=2**63 - 1))
    s.apply(compact_cmd(4))
    s.apply(txn_cmd(success=[op_put(b"d", b"x" * 3000), op_delete(b"a")]))
    s.apply((C.MEMBER_PUBLISH, 11, "m1", ("http://127.0.0.1:2380",), ("http://127.0.0.1:2379",)))
    s.apply((C.MEMBER_ADD, 12, ("http://127.0.0.1:2381",), True))
    s.apply((C.MEMBER_ADD, 13, ("http://127.0.0.1:2382",), False))
    s.apply((C.MEMBER_REMOVE, 13))
    return s


def test_round_trip_is_exact_and_deterministic() -> None:
    s = sample_state()
    data = snapshot.dump(s)
    assert data[:8] == snapshot.MAGIC
    loaded = snapshot.load(data)
    assert internals(loaded) == internals(s)
    assert snapshot.dump(loaded) == data
    assert snapshot.dump(snapshot.load(snapshot.dump(StoreState()))) == snapshot.dump(StoreState())


def test_loaded_state_behaves_the_same() -> None:
    s = sample_state()
    loaded = snapshot.load(snapshot.dump(s))
    for command in [
        put_cmd(b"c", b"new"),
        (C.LEASE_REVOKE, 2**63 - 1),
        (C.LEASE_EXPIRE, (7,), 1000.0),
        compact_cmd(6),
        (C.MEMBER_ADD, 13, (), False),
    ]:
        assert loaded.apply(command) == s.apply(command)
    assert loaded.range(range_req(b"\0", b"\0")) == s.range(range_req(b"\0", b"\0"))
    assert loaded.events_since(6, b"\0", b"\0") == s.events_since(6, b"\0", b"\0")


def test_lease_ids_beyond_int64_survive() -> None:
    s = StoreState()
    s.apply((C.LEASE_GRANT, 2**64 - 5, 30, 0.0))
    s.apply(put_cmd(b"k", lease=2**64 - 5))
    loaded = snapshot.load(snapshot.dump(s))
    assert loaded.range(range_req(b"k"))["kvs"][0].lease == 2**64 - 5
    assert loaded.leases.keys(2**64 - 5) == [b"k"]


def test_refuses_foreign_data() -> None:
    header = struct.pack(">8sH", snapshot.MAGIC, snapshot.FORMAT_VERSION)
    evil = header + pickle.dumps(print)  # any global is refused, however harmless
    with pytest.raises(ValueError, match="corrupt"):
        snapshot.load(evil)
    with pytest.raises(ValueError, match="magic"):
        snapshot.load(b"PICKLE!!" + b"\x00" * 20)
    with pytest.raises(ValueError, match="version"):
        snapshot.load(struct.pack(">8sH", snapshot.MAGIC, 99) + b"x")
    with pytest.raises(ValueError, match="short"):
        snapshot.load(b"KL")
    good = snapshot.dump(sample_state())
    with pytest.raises(ValueError, match="corrupt"):
        snapshot.load(good[: len(good) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        snapshot.load(header + pickle.dumps((1, 2, 3)))


key_st = st.sampled_from([b"a", b"a/1", b"b", b"c"])
cmd_st = st.one_of(
    st.builds(put_cmd, key_st, st.binary(max_size=3), lease=st.sampled_from([0, 0, 1, 2])),
    st.builds(del_cmd, key_st, st.sampled_from([b"", b"\0", b"b"])),
    st.builds(lambda a, b: txn_cmd(success=[op_put(a, b"t"), op_delete(b)]), key_st, key_st),
    st.builds(compact_cmd, st.integers(0, 15)),
    st.builds(lambda i: (C.LEASE_GRANT, i, 10, 0.0), st.sampled_from([1, 2])),
    st.builds(lambda i: (C.LEASE_REVOKE, i), st.sampled_from([1, 2])),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(cmd_st, max_size=25), st.lists(cmd_st, max_size=5))
def test_round_trip_after_any_history(commands: list, more: list) -> None:
    s = StoreState()
    for command in commands:
        s.apply(command)
    loaded = snapshot.load(snapshot.dump(s))
    assert internals(loaded) == internals(s)
    for command in more:
        assert loaded.apply(command) == s.apply(command)
    assert internals(loaded) == internals(s)


def test_many_pod_sized_values_round_trip() -> None:
    """Pod-sized (1 KiB) values survive dump and load (speed: bench/store_micro.py)."""
    s = StoreState()
    filler = bytes(range(256)) * 4
    for i in range(5_000):
        s.apply(put_cmd(b"/registry/pods/default/pod-%06d" % i, b"%06d" % i + filler[6:]))
    loaded = snapshot.load(snapshot.dump(s))
    assert loaded.revision == 5_001 and len(loaded.kv) == 5_000
    assert internals(loaded) == internals(s)
