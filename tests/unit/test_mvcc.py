"""MVCC store: revisions, ranges, history, compaction, event log; plus a model check."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import errors
from store.kv_types import DELETE, PUT, Event, KeyValue, tombstone
from store.mvcc import MVCCStore, in_range
from tests.unit.store_requests import range_req


def put(s: MVCCStore, key: bytes, value: bytes = b"v", lease: int = 0) -> KeyValue:
    s.begin()
    kv, _ = s.put(key, value, lease)
    s.end()
    return kv


def delete(s: MVCCStore, key: bytes, end: bytes = b"") -> list[KeyValue]:
    s.begin()
    prevs = s.delete_range(key, end)
    s.end()
    return prevs


def keys(result) -> list[bytes]:
    return [kv.key for kv in result.kvs]


@pytest.fixture
def abc() -> MVCCStore:
    s = MVCCStore()
    for k in (b"a", b"a/1", b"a/2", b"b", b"c"):
        put(s, k)
    return s  # revisions 2..6


def test_fresh_store_is_at_revision_1_and_first_put_creates_2() -> None:
    s = MVCCStore()
    assert s.revision == 1 and s.compact_revision == -1
    assert put(s, b"k") == KeyValue(b"k", 2, 2, 1, b"v", 0)
    assert put(s, b"k", b"w") == KeyValue(b"k", 2, 3, 2, b"w", 0)
    assert s.revision == 3


def test_range_end_semantics(abc: MVCCStore) -> None:
    assert keys(abc.range(b"a/1", b"")) == [b"a/1"]
    assert keys(abc.range(b"a/", b"a0")) == [b"a/1", b"a/2"]
    assert keys(abc.range(b"b", b"\0")) == [b"b", b"c"]
    assert keys(abc.range(b"\0", b"\0")) == [b"a", b"a/1", b"a/2", b"b", b"c"]
    assert abc.range(b"c", b"a").count == 0  # end before key: empty, not negative
    assert abc.range(b"zz", b"").count == 0


def test_limit_keeps_total_count(abc: MVCCStore) -> None:
    r = abc.range(b"\0", b"\0", limit=2)
    assert keys(r) == [b"a", b"a/1"] and r.count == 5 and r.rev == 6
    r = abc.range(b"\0", b"\0", count_only=True)
    assert r.kvs == [] and r.count == 5


def test_range_request_sort_filter_limit(abc: MVCCStore) -> None:
    put(abc, b"a")  # rev 7: a has mod 7, version 2
    desc = abc.range_request(range_req(b"\0", b"\0", sort_order=2, sort_target=3, limit=2))
    assert [kv.key for kv in desc["kvs"]] == [b"a", b"c"] and desc["more"] and desc["count"] == 5
    put(abc, b"a/1")  # 8
    put(abc, b"a/2")  # 9: mods are now a 7, a/1 8, a/2 9, b 5, c 6
    asc = abc.range_request(range_req(b"\0", b"\0", sort_order=1, sort_target=3, limit=2))
    assert [kv.key for kv in asc["kvs"]] == [b"b", b"c"]
    # NONE order with a non-key target sorts ascending, but etcd limits (+1) before sorting
    quirk = abc.range_request(range_req(b"\0", b"\0", sort_target=3, limit=2))
    assert [kv.key for kv in quirk["kvs"]] == [b"a", b"a/1"] and quirk["more"]
    filt = abc.range_request(range_req(b"\0", b"\0", max_create_revision=2, keys_only=True))
    assert [(kv.key, kv.value) for kv in filt["kvs"]] == [(b"a", b"")] and filt["count"] == 5
    filt = abc.range_request(range_req(b"\0", b"\0", min_mod_revision=6, limit=1))
    assert [kv.key for kv in filt["kvs"]] == [b"a"] and filt["more"]  # filters before limit
    only = abc.range_request(range_req(b"a", b"b", count_only=True, limit=1))
    assert only["kvs"] == [] and only["count"] == 3 and not only["more"]
    with pytest.raises(errors.EtcdError, match="sort"):
        abc.range_request(range_req(b"a", sort_target=9))


def test_historical_reads_and_revision_errors(abc: MVCCStore) -> None:
    put(abc, b"a", b"new")
    delete(abc, b"b")
    assert abc.range(b"a", b"", rev=2).kvs[0].value == b"v"
    assert keys(abc.range(b"\0", b"\0", rev=7)) == [b"a", b"a/1", b"a/2", b"b", b"c"]
    assert keys(abc.range(b"\0", b"\0", rev=8)) == [b"a", b"a/1", b"a/2", b"c"]
    assert abc.range(b"\0", b"\0", rev=4).count == 3
    assert abc.range(b"b", b"", rev=1).count == 0
    with pytest.raises(errors.EtcdError) as err:
        abc.range(b"a", b"", rev=9)
    assert err.value == errors.future_revision()


def test_delete_of_nothing_does_not_bump(abc: MVCCStore) -> None:
    assert delete(abc, b"zz") == [] and abc.revision == 6
    prevs = delete(abc, b"a/", b"a0")
    assert [kv.key for kv in prevs] == [b"a/1", b"a/2"] and abc.revision == 7
    assert keys(abc.range(b"\0", b"\0")) == [b"a", b"b", b"c"]


def test_writes_in_one_txn_share_a_revision_and_are_visible() -> None:
    s = MVCCStore()
    s.begin()
    assert s.read_revision == 1
    s.put(b"x", b"1", 0)
    assert s.read_revision == 2 and s.revision == 1
    assert s.range(b"x", b"").kvs[0].value == b"1"  # own write visible
    assert s.range(b"x", b"", rev=1).count == 0  # the pre-txn view is history
    s.put(b"y", b"1", 0)
    s.delete_range(b"x", b"")
    events = s.end()
    assert s.revision == 2
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in events] == [
        (PUT, b"x", 2),
        (PUT, b"y", 2),
        (DELETE, b"x", 2),
    ]
    s.begin()
    assert s.end() == [] and s.revision == 2


def test_compaction_rules(abc: MVCCStore) -> None:
    with pytest.raises(errors.EtcdError) as err:
        abc.compact(7)
    assert err.value == errors.future_revision()
    abc.compact(4)
    for rev in (4, 3):
        with pytest.raises(errors.EtcdError) as err:
            abc.compact(rev)
        assert err.value == errors.compacted()
    with pytest.raises(errors.EtcdError) as err:
        abc.range(b"a", b"", rev=3)
    assert err.value == errors.compacted()
    assert keys(abc.range(b"\0", b"\0", rev=4)) == [b"a", b"a/1", b"a/2"]  # rev == compact is fine
    abc.compact(6)  # compacting at the current revision is allowed


def test_compaction_prunes_history_and_tombstones() -> None:
    s = MVCCStore()
    put(s, b"k", b"1")  # 2
    put(s, b"k", b"2")  # 3
    delete(s, b"k")  # 4
    put(s, b"k", b"3")  # 5
    put(s, b"gone")  # 6
    delete(s, b"gone")  # 7
    s.compact(4)
    assert s._history[b"k"] == [KeyValue(b"k", 5, 5, 1, b"3", 0)]  # tombstone at 4 dropped
    assert b"k" not in s._dirty
    s.compact(7)
    assert b"gone" not in s._history and b"gone" not in s._indexed
    assert s.range(b"\0", b"\0", rev=7).count == 1


def test_events_since_and_compaction_boundary() -> None:
    s = MVCCStore()
    put(s, b"w/a", b"1")  # 2
    s.begin()
    s.put(b"w/b", b"1", 0)
    s.put(b"w/c", b"1", 0)
    s.end()  # 3
    delete(s, b"w/b")  # 4
    put(s, b"x")  # 5
    assert [e.kv.mod_revision for e in s.events_since(3, b"w/", b"w0")] == [3, 3, 4]
    assert [e.kv.key for e in s.events_since(1, b"w/c", b"")] == [b"w/c"]
    assert s.events_since(0, b"\0", b"\0") == []  # 0 means "from now"
    assert s.events_since(6, b"\0", b"\0") == []
    delete(s, b"w/c")  # 6
    put(s, b"w/b", b"2")  # 7
    s.compact(4)
    with pytest.raises(errors.EtcdError):
        s.events_since(3, b"\0", b"\0")
    # at the compact revision itself, deletes are gone and puts lose prev_kv (as in etcd)
    assert s.events_since(4, b"\0", b"\0")[0].kv.key == b"x"
    s.compact(7)
    assert s.events_since(7, b"\0", b"\0") == [Event(PUT, KeyValue(b"w/b", 7, 7, 1, b"2", 0), None)]


def test_in_range() -> None:
    assert in_range(b"a", b"a", b"") and not in_range(b"ab", b"a", b"")
    assert in_range(b"z", b"b", b"\0") and not in_range(b"a", b"b", b"\0")
    assert in_range(b"a/x", b"a/", b"a0") and not in_range(b"a0", b"a/", b"a0")


# -- model check ---------------------------------------------------------------------

KEYS = [b"a", b"a/1", b"a/2", b"b", b"c"]
key_st = st.sampled_from(KEYS)
end_st = st.sampled_from([b"", b"\0", b"a0", b"b\0", b"c"])
op_st = st.one_of(
    st.tuples(st.just("put"), key_st, st.binary(max_size=2)),
    st.tuples(st.just("delete"), key_st, end_st),
    st.tuples(st.just("txn"), st.lists(st.tuples(key_st, st.booleans()), max_size=3)),
    st.tuples(st.just("compact"), st.integers(0, 8)),
    st.tuples(st.just("range"), key_st, end_st, st.integers(0, 30), st.integers(0, 3)),
)


class Model:
    """Dict of per-key version lists: (revision, KeyValue or None for a delete)."""

    def __init__(self) -> None:
        self.rev, self.compact = 1, -1
        self.versions: dict[bytes, list[tuple[int, KeyValue | None]]] = {}
        self.log: list[KeyValue] = []  # every change in order; tombstones for deletes

    def at(self, key: bytes, rev: int) -> KeyValue | None:
        found = None
        for r, kv in self.versions.get(key, []):
            if r <= rev:
                found = kv
        return found

    def write(self, changes: list[tuple[bytes, bytes | None]]) -> None:
        rev = self.rev + 1
        changed = False
        for key, value in changes:
            cur = self.at(key, rev)
            if value is None:
                if cur is not None:
                    self.versions[key].append((rev, None))
                    self.log.append(tombstone(key, rev))
                    changed = True
                continue
            create, version = (cur.create_revision, cur.version + 1) if cur else (rev, 1)
            kv = KeyValue(key, create, rev, version, value, 0)
            self.versions.setdefault(key, []).append((rev, kv))
            self.log.append(kv)
            changed = True
        self.rev += changed


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op_st, max_size=25))
def test_matches_dict_of_versions_model(ops: list) -> None:
    s, m = MVCCStore(), Model()
    for op in ops:
        if op[0] == "put":
            put(s, op[1], op[2])
            m.write([(op[1], op[2])])
        elif op[0] == "delete":
            delete(s, op[1], op[2])
            m.write([(k, None) for k in KEYS if in_range(k, op[1], op[2])])
        elif op[0] == "txn":
            s.begin()
            for key, is_put in op[1]:
                if is_put:
                    s.put(key, b"t", 0)
                else:
                    s.delete_range(key, b"")
            s.end()
            m.write([(k, b"t" if p else None) for k, p in op[1]])
        elif op[0] == "compact":
            expected = (
                errors.compacted()
                if op[1] <= m.compact
                else errors.future_revision()
                if op[1] > m.rev
                else None
            )
            try:
                s.compact(op[1])
                got = None
            except errors.EtcdError as err:
                got = err
            assert got == expected
            if expected is None:
                m.compact = op[1]
        else:
            _, key, end, rev, limit = op
            try:
                got = s.range(key, end, rev, limit)
            except errors.EtcdError as err:
                got = err
            read = rev if rev > 0 else m.rev
            if rev > m.rev:
                assert got == errors.future_revision()
                continue
            if read < m.compact:
                assert got == errors.compacted()
                continue
            want = [kv for k in KEYS if in_range(k, key, end) and (kv := m.at(k, read))]
            assert got.count == len(want) and got.rev == m.rev
            assert got.kvs == (want[:limit] if limit else want)
        assert s.revision == m.rev
        # the current view always equals the model at the head revision
        head = [kv for k in KEYS if (kv := m.at(k, m.rev))]
        assert s.range(b"\0", b"\0").kvs == head
    # replay from just after the compaction point reproduces every later change, with prev_kv
    start = max(m.compact + 1, 2)
    events = s.events_since(start, b"\0", b"\0")
    assert [e.kv for e in events] == [kv for kv in m.log if kv.mod_revision >= start]
    last: dict[bytes, KeyValue] = {}
    for kv in m.log:
        if kv.mod_revision >= start:
            ev = events.pop(0)
            prev = last.get(kv.key)
            assert ev.prev_kv == (None if prev is None or prev.version == 0 else prev)
            assert ev.type == (DELETE if kv.version == 0 else PUT)
        last[kv.key] = kv
