"""Txn rules through StoreState.apply: op limits, duplicate keys, checks before writes,
own-writes visibility; and a model check of random put/delete/txn/compact sequences."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import errors
from store.commands import CommandType as C
from store.kv_types import DELETE, PUT, KeyValue
from store.mvcc import in_range
from store.state_machine import StoreState
from tests.unit.store_requests import (
    EQUAL,
    GREATER,
    LESS,
    MOD,
    NOT_EQUAL,
    VALUE,
    VERSION,
    cmp,
    compact_cmd,
    del_cmd,
    fails,
    ok,
    op_delete,
    op_put,
    op_range,
    op_txn,
    put_cmd,
    range_req,
    txn_cmd,
)


def test_txn_op_limits() -> None:
    s = StoreState()
    ok(s, txn_cmd(success=[op_put(b"k%d" % i) for i in range(128)]))
    fails(s, txn_cmd(success=[op_put(b"k%d" % i) for i in range(129)]), errors.too_many_ops())
    fails(s, txn_cmd([cmp(b"k", VERSION, EQUAL)] * 129), errors.too_many_ops())
    # a nested txn gets what its parent left: 128 - 100 = 28
    ok(
        s,
        txn_cmd([cmp(b"k", VERSION, EQUAL)] * 100, failure=[op_txn(success=[op_range(b"k")] * 28)]),
    )
    fails(
        s,
        txn_cmd([cmp(b"k", VERSION, EQUAL)] * 100, failure=[op_txn(success=[op_range(b"k")] * 29)]),
        errors.too_many_ops(),
    )


def test_txn_request_checks() -> None:
    s = StoreState()
    fails(s, txn_cmd([cmp(b"", VERSION, EQUAL)]), errors.empty_key())
    fails(s, txn_cmd(success=[op_put(b"")]), errors.empty_key())
    fails(s, txn_cmd(failure=[op_txn(success=[op_delete(b"")])]), errors.empty_key())
    fails(s, txn_cmd(success=[{}]), errors.key_not_found())
    fails(s, put_cmd(b"k", b"v", ignore_value=True), errors.value_provided())
    fails(s, put_cmd(b"k", lease=5, ignore_lease=True), errors.lease_provided())
    fails(s, del_cmd(b""), errors.empty_key())


@pytest.mark.parametrize(
    "ops",
    [
        [op_put(b"k"), op_put(b"k")],
        [op_put(b"k"), op_delete(b"a", b"z")],
        [op_delete(b"k"), op_put(b"k")],
        [op_txn(success=[op_put(b"k")]), op_put(b"k")],
        [op_put(b"k"), op_txn(failure=[op_delete(b"k")])],
        [op_txn(success=[op_delete(b"j", b"l")]), op_txn(success=[op_put(b"k")])],
        [op_txn(success=[op_put(b"k")]), op_txn(failure=[op_put(b"k")])],
    ],
)
def test_duplicate_keys_rejected(ops: list) -> None:
    fails(StoreState(), txn_cmd(success=ops), errors.duplicate_key())


@pytest.mark.parametrize(
    "ops",
    [
        [op_delete(b"k"), op_delete(b"a", b"z")],  # deletes may overlap
        [op_txn([cmp(b"k", VERSION, EQUAL)], [op_put(b"k")], [op_put(b"k")])],  # exclusive branches
        [op_delete(b"a", b"\0"), op_put(b"k")],  # etcd takes range_end "\0" literally here
        [op_txn(success=[op_put(b"k")]), op_txn(success=[op_delete(b"k")])],  # etcd checks in order
    ],
)
def test_overlaps_etcd_allows(ops: list) -> None:
    s = StoreState()
    ok(s, put_cmd(b"k", b"old"))
    ok(s, txn_cmd(success=ops))
    assert s.revision == 3


def test_put_then_delete_of_one_key_in_one_revision() -> None:
    s = StoreState()
    _, events = ok(
        s,
        txn_cmd(success=[op_txn(success=[op_put(b"k", b"1")]), op_txn(success=[op_delete(b"k")])]),
    )
    assert [e.type for e in events] == [PUT, DELETE] and s.revision == 2
    assert s.range(range_req(b"k"))["count"] == 0
    assert s.range(range_req(b"k", revision=2))["count"] == 0
    ok(s, put_cmd(b"x"))
    ok(s, compact_cmd(2))
    assert s.events_since(2, b"\0", b"\0")[0].kv.key == b"x"  # neither change at 2 survives


def test_txn_errors_leave_nothing_behind() -> None:
    s = StoreState()
    ok(s, put_cmd(b"a"))
    ok(s, compact_cmd(2))
    fails(s, txn_cmd(success=[op_put(b"x"), op_put(b"y", lease=77)]), errors.lease_not_found())
    fails(
        s, txn_cmd(success=[op_put(b"x"), op_put(b"y", ignore_value=True)]), errors.key_not_found()
    )
    fails(s, txn_cmd(success=[op_put(b"x"), op_range(b"a", revision=1)]), errors.compacted())
    fails(s, txn_cmd(success=[op_put(b"x"), op_range(b"a", revision=3)]), errors.future_revision())
    fails(
        s,
        txn_cmd(success=[op_range(b"a", sort_target=7)]),
        errors.invalid_argument("etcdserver: invalid sort option"),
    )
    # puts are checked before ranges, whichever comes first
    fails(
        s,
        txn_cmd(success=[op_range(b"a", revision=1), op_put(b"y", lease=77)]),
        errors.lease_not_found(),
    )
    # only the path taken is checked
    ok(s, txn_cmd([cmp(b"a", VERSION, EQUAL, version=1)], [op_put(b"x")], [op_put(b"y", lease=77)]))
    assert s.range(range_req(b"\0", b"\0"))["count"] == 2


def test_txn_sees_its_own_writes_but_compares_see_the_start() -> None:
    s = StoreState()
    ok(s, put_cmd(b"k", b"0"))  # 2
    resp, _ = ok(
        s,
        txn_cmd(
            success=[
                op_range(b"k"),
                op_put(b"k", b"1"),
                op_range(b"k"),
                op_range(b"k", revision=2),
                op_txn([cmp(b"k", VALUE, EQUAL, value=b"1")], [op_put(b"yes")], [op_put(b"no")]),
                op_delete(b"nothing"),
            ]
        ),
    )
    r = [next(iter(x.values())) for x in resp["responses"]]
    assert r[0]["header"] == {"revision": 2} and r[0]["kvs"][0].value == b"0"
    assert r[1]["header"] == {"revision": 3}
    assert r[2]["header"] == {"revision": 3} and r[2]["kvs"][0].value == b"1"
    assert r[3]["kvs"][0].value == b"0"
    assert not r[4]["succeeded"]  # nested compare ran before the outer put
    assert r[5] == {"header": {"revision": 3}, "deleted": 0, "prev_kvs": []}
    assert s.range(range_req(b"no"))["count"] == 1


def test_missing_key_compares() -> None:
    s = StoreState()
    assert ok(
        s, txn_cmd([cmp(b"m", VERSION, EQUAL, version=0), cmp(b"m", MOD, LESS, mod_revision=1)])
    )[0]["succeeded"]
    assert not ok(s, txn_cmd([cmp(b"m", VALUE, NOT_EQUAL, value=b"x")]))[0]["succeeded"]
    ok(s, put_cmd(b"m", b""))
    assert ok(s, txn_cmd([cmp(b"m", VALUE, EQUAL, value=b"")]))[0]["succeeded"]


# -- model check --------------------------------------------------------------------------

KEYS = [b"a", b"a/1", b"b", b"c"]
key_st = st.sampled_from(KEYS)
end_st = st.sampled_from([b"", b"\0", b"a0", b"c"])
write_st = st.one_of(
    st.builds(op_put, key_st, st.binary(max_size=2)),
    st.builds(op_delete, key_st, end_st),
)
cmd_st = st.one_of(
    st.builds(put_cmd, key_st, st.binary(max_size=2)),
    st.builds(del_cmd, key_st, end_st),
    st.builds(
        lambda c, s, f: txn_cmd(c, s, f),
        st.lists(
            st.builds(
                cmp,
                key_st,
                st.sampled_from([VERSION, MOD, VALUE]),
                st.sampled_from([EQUAL, GREATER, LESS]),
                version=st.integers(0, 2),
                mod_revision=st.integers(0, 6),
                value=st.binary(max_size=1),
            ),
            max_size=2,
        ),
        st.lists(write_st, max_size=3),
        st.lists(write_st, max_size=3),
    ),
    st.builds(compact_cmd, st.integers(0, 12)),
)


class Model:
    """Current key -> KeyValue plus every revision's snapshot: the simplest possible store."""

    def __init__(self) -> None:
        self.rev, self.compact = 1, -1
        self.kvs: dict[bytes, KeyValue] = {}
        self.at: dict[int, dict[bytes, KeyValue]] = {1: {}}

    def apply(self, command: tuple) -> object:
        kind, req = command
        if kind == C.COMPACT:
            if req["revision"] <= self.compact:
                return errors.compacted()
            if req["revision"] > self.rev:
                return errors.future_revision()
            self.compact = req["revision"]
            return None
        if kind == C.PUT:
            ops = [op_put(req["key"], req["value"])]
        elif kind == C.DELETE_RANGE:
            ops = [op_delete(req["key"], req["range_end"])]
        else:
            for branch in (req["success"], req["failure"]):  # flat branches: the simple rule
                puts = [op["request_put"]["key"] for op in branch if "request_put" in op]
                dels = [op["request_delete_range"] for op in branch if "request_delete_range" in op]
                if len(set(puts)) < len(puts) or any(
                    d["key"] <= k < (d["range_end"] or d["key"] + b"\0") for k in puts for d in dels
                ):
                    return errors.duplicate_key()
            ops = req["success"] if all(self.holds(c) for c in req["compare"]) else req["failure"]
        new = dict(self.kvs)
        rev, changed = self.rev + 1, False
        for op in ops:
            if "request_put" in op:
                key, value = op["request_put"]["key"], op["request_put"]["value"]
                old = new.get(key)
                new[key] = KeyValue(
                    key,
                    old.create_revision if old else rev,
                    rev,
                    old.version + 1 if old else 1,
                    value,
                    0,
                )
                changed = True
            else:
                d = op["request_delete_range"]
                gone = [k for k in new if in_range(k, d["key"], d["range_end"])]
                for k in gone:
                    del new[k]
                changed = changed or bool(gone)
        if changed:
            self.rev, self.kvs = rev, new
            self.at[rev] = new
        return None

    def holds(self, c: dict) -> bool:
        cur = self.kvs.get(c["key"])
        if cur is None and c["target"] == VALUE:
            return False
        cur = cur or KeyValue(b"", 0, 0, 0, b"", 0)
        field = {
            VERSION: ("version", "version"),
            MOD: ("mod_revision", "mod_revision"),
            VALUE: ("value", "value"),
        }[c["target"]]
        have, want = getattr(cur, field[0]), c[field[1]]
        return {EQUAL: have == want, GREATER: have > want, LESS: have < want}[c["result"]]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(cmd_st, max_size=20))
def test_apply_matches_model(commands: list) -> None:
    s, m = StoreState(), Model()
    for command in commands:
        expected_error = m.apply(command)
        resp, events = s.apply(command)
        if expected_error is not None:
            assert resp == expected_error and events == []
        else:
            assert not isinstance(resp, errors.EtcdError), resp
            assert resp["header"]["revision"] == m.rev
        assert s.revision == m.rev and s.compact_revision == m.compact
        assert s.range(range_req(b"\0", b"\0"))["kvs"] == sorted(m.kvs.values())
        assert all(e.kv.mod_revision == m.rev for e in events)
    for rev in range(max(m.compact, 1), m.rev + 1):
        snap = m.at[rev]
        got = s.range(range_req(b"\0", b"\0", revision=rev))
        assert got["kvs"] == sorted(snap.values()) and got["count"] == len(snap)
