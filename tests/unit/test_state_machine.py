"""StoreState.apply: the captured etcd 3.4.23 session replayed; leases, members, dispatch."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import errors
from store.commands import CommandType as C
from store.kv_types import DELETE, PUT, Event, tombstone
from store.state_machine import StoreState
from tests.unit.store_requests import (
    CREATE,
    EQUAL,
    GREATER,
    LEASE,
    LESS,
    MOD,
    NOT_EQUAL,
    VALUE,
    VERSION,
    cmp,
    compact_cmd,
    del_cmd,
    fails,
    kv,
    ok,
    op_delete,
    op_put,
    op_range,
    op_txn,
    put_cmd,
    range_req,
    txn_cmd,
)


@pytest.fixture
def captured() -> StoreState:
    """The KV part of api_examples.md up to revision 10."""
    s = StoreState()
    assert ok(s, put_cmd(b"foo", b"bar"))[0]["header"] == {"revision": 2}
    assert ok(s, put_cmd(b"a/1", b"v1"))[0]["header"] == {"revision": 3}
    resp, events = ok(s, put_cmd(b"a/1", b"v2", prev_kv=True))
    assert resp == {"header": {"revision": 4}, "prev_kv": kv(b"a/1", 3, 3, 1, b"v1")}
    assert events == [Event(PUT, kv(b"a/1", 3, 4, 2, b"v2"), kv(b"a/1", 3, 3, 1, b"v1"))]
    assert ok(s, put_cmd(b"a/2", b"v3", prev_kv=True))[0] == {
        "header": {"revision": 5},
        "prev_kv": None,
    }
    ok(s, put_cmd(b"a/3", b""))  # 6
    ok(s, put_cmd(b"a/4"))  # 7
    assert ok(s, put_cmd(b"a/4", ignore_value=True))[0]["header"] == {"revision": 8}
    fails(s, put_cmd(b"nokey", ignore_value=True), errors.key_not_found())
    ok(s, put_cmd(b"a/5", b"v5"))  # 9
    ok(s, put_cmd(b"\x00\x01\x02\xff", b"\xff"))  # 10
    return s


def test_captured_ranges(captured: StoreState) -> None:
    s = captured
    r = s.range(range_req(b"a/1"))
    assert r == {
        "header": {"revision": 10},
        "kvs": [kv(b"a/1", 3, 4, 2, b"v2")],
        "more": False,
        "count": 1,
    }
    assert s.range(range_req(b"missing"))["count"] == 0
    prefix = s.range(range_req(b"a/", b"a0"))
    assert [(x.key, x.create_revision, x.mod_revision, x.version) for x in prefix["kvs"]] == [
        (b"a/1", 3, 4, 2),
        (b"a/2", 5, 5, 1),
        (b"a/3", 6, 6, 1),
        (b"a/4", 7, 8, 2),
        (b"a/5", 9, 9, 1),
    ]
    limited = s.range(range_req(b"a/", b"a0", limit=2))
    assert len(limited["kvs"]) == 2 and limited["more"] and limited["count"] == 5
    assert all(x.value == b"" for x in s.range(range_req(b"a/", b"a0", keys_only=True))["kvs"])
    assert s.range(range_req(b"a/", b"a0", count_only=True)) == {
        "header": {"revision": 10},
        "kvs": [],
        "more": False,
        "count": 5,
    }
    everything = s.range(range_req(b"\0", b"\0", keys_only=True))
    assert [x.key for x in everything["kvs"]] == [
        b"\x00\x01\x02\xff",
        b"a/1",
        b"a/2",
        b"a/3",
        b"a/4",
        b"a/5",
        b"foo",
    ]
    desc = [b"a/5", b"a/4", b"a/3", b"a/2", b"a/1"]
    assert [x.key for x in s.range(range_req(b"a/", b"a0", sort_order=2))["kvs"]] == desc
    assert [
        x.key for x in s.range(range_req(b"a/", b"a0", sort_order=2, sort_target=3))["kvs"]
    ] == desc
    assert s.range(range_req(b"a/1", revision=3))["kvs"] == [kv(b"a/1", 3, 3, 1, b"v1")]
    assert s.range(range_req(b"a/1", revision=3))["header"] == {"revision": 10}
    filt = s.range(range_req(b"a/", b"a0", max_create_revision=3))
    assert [x.key for x in filt["kvs"]] == [b"a/1"] and filt["count"] == 5
    with pytest.raises(errors.EtcdError) as err:
        s.range(range_req(b"a/1", revision=1000))
    assert err.value == errors.future_revision() and err.value.http_status == 400
    with pytest.raises(errors.EtcdError) as err:
        s.range(range_req(b""))
    assert err.value == errors.empty_key()


def test_captured_deletes_and_txns(captured: StoreState) -> None:
    s = captured
    assert ok(s, del_cmd(b"a/4"))[0] == {"header": {"revision": 11}, "deleted": 1, "prev_kvs": []}
    assert ok(s, del_cmd(b"a/4")) == (
        {"header": {"revision": 11}, "deleted": 0, "prev_kvs": []},
        [],
    )
    resp, events = ok(s, del_cmd(b"a/3", b"a0", prev_kv=True))
    assert resp == {
        "header": {"revision": 12},
        "deleted": 2,
        "prev_kvs": [kv(b"a/3", 6, 6, 1), kv(b"a/5", 9, 9, 1, b"v5")],
    }
    assert events == [
        Event(DELETE, tombstone(b"a/3", 12), kv(b"a/3", 6, 6, 1)),
        Event(DELETE, tombstone(b"a/5", 12), kv(b"a/5", 9, 9, 1, b"v5")),
    ]

    cas = txn_cmd(
        [cmp(b"a/1", MOD, EQUAL, mod_revision=4)],
        [op_put(b"a/1", b"t1", prev_kv=True)],
        [op_range(b"a/1")],
    )
    assert ok(s, cas)[0] == {
        "header": {"revision": 13},
        "succeeded": True,
        "responses": [
            {"response_put": {"header": {"revision": 13}, "prev_kv": kv(b"a/1", 3, 4, 2, b"v2")}}
        ],
    }
    assert ok(s, cas) == (
        {
            "header": {"revision": 13},
            "succeeded": False,
            "responses": [
                {
                    "response_range": {
                        "header": {"revision": 13},
                        "kvs": [kv(b"a/1", 3, 13, 3, b"t1")],
                        "more": False,
                        "count": 1,
                    }
                }
            ],
        },
        [],
    )

    create = txn_cmd([cmp(b"new", CREATE, EQUAL, create_revision=0)], [op_put(b"new", b"n")])
    assert ok(s, create)[0] == {
        "header": {"revision": 14},
        "succeeded": True,
        "responses": [{"response_put": {"header": {"revision": 14}, "prev_kv": None}}],
    }
    assert ok(s, create) == ({"header": {"revision": 14}, "succeeded": False, "responses": []}, [])

    both = txn_cmd(
        [cmp(b"new", VERSION, GREATER, version=0), cmp(b"new", VALUE, EQUAL, value=b"n")],
        [op_delete(b"new", prev_kv=True), op_range(b"a/", b"a0", count_only=True)],
    )
    assert ok(s, both)[0] == {
        "header": {"revision": 15},
        "succeeded": True,
        "responses": [
            {
                "response_delete_range": {
                    "header": {"revision": 15},
                    "deleted": 1,
                    "prev_kvs": [kv(b"new", 14, 14, 1, b"n")],
                }
            },
            {"response_range": {"header": {"revision": 15}, "kvs": [], "more": False, "count": 2}},
        ],
    }

    nested = txn_cmd(
        [cmp(b"a/1", MOD, NOT_EQUAL, mod_revision=1)],
        [op_txn([cmp(b"a/1", VALUE, LESS, value=b"zz")], [op_range(b"a/1")])],
    )
    assert ok(s, nested) == (
        {
            "header": {"revision": 15},
            "succeeded": True,
            "responses": [
                {
                    "response_txn": {
                        "header": {"revision": 0},
                        "succeeded": True,
                        "responses": [
                            {
                                "response_range": {
                                    "header": {"revision": 15},
                                    "kvs": [kv(b"a/1", 3, 13, 3, b"t1")],
                                    "more": False,
                                    "count": 1,
                                }
                            }
                        ],
                    }
                }
            ],
        },
        [],
    )

    over_range = txn_cmd(
        [cmp(b"a/", VERSION, GREATER, b"a0", version=0)], [op_range(b"a/1", keys_only=True)]
    )
    assert ok(s, over_range)[0]["succeeded"]
    assert not ok(s, txn_cmd([cmp(b"a/", MOD, GREATER, b"a0", mod_revision=5)]))[0]["succeeded"]
    assert ok(s, txn_cmd([cmp(b"a/1", LEASE, EQUAL, lease=0)]))[0] == {
        "header": {"revision": 15},
        "succeeded": True,
        "responses": [],
    }
    assert ok(s, txn_cmd())[0] == {"header": {"revision": 15}, "succeeded": True, "responses": []}
    fails(s, txn_cmd(success=[op_put(b"x", b"1"), op_put(b"x", b"2")]), errors.duplicate_key())


def test_captured_leases_and_watch_and_compaction() -> None:
    s = StoreState()
    for i in range(14):
        ok(s, put_cmd(b"a/%d" % i))  # revisions 2..15
    now = 1000.0
    granted = ok(s, (C.LEASE_GRANT, 3380692606374767403, 30, now))[0]
    assert granted == {
        "header": {"revision": 15},
        "ID": 3380692606374767403,
        "TTL": 30,
        "error": "",
    }
    ok(s, (C.LEASE_GRANT, 1234, 30, now))
    fails(s, (C.LEASE_GRANT, 1234, 30, now), errors.lease_exists())
    assert ok(s, (C.LEASE_GRANT, 3380692606374767407, 0, now))[0]["TTL"] == 2
    assert ok(s, put_cmd(b"l/1", b"x", lease=1234))[0]["header"] == {"revision": 16}
    ok(s, put_cmd(b"l/2", b"x", lease=1234))
    fails(s, put_cmd(b"l/3", b"x", lease=999), errors.lease_not_found())
    assert [x.lease for x in s.range(range_req(b"l/", b"l0"))["kvs"]] == [1234, 1234]
    assert s.lease_time_to_live(1234, False, now + 0.5) == {
        "header": {"revision": 17},
        "ID": 1234,
        "TTL": 29,
        "grantedTTL": 30,
        "keys": [],
    }
    assert s.lease_time_to_live(1234, True, now + 0.5)["keys"] == [b"l/1", b"l/2"]
    assert s.lease_time_to_live(999, True, now)["TTL"] == -1
    assert s.lease_leases()["leases"] == [
        {"ID": 1234},
        {"ID": 3380692606374767403},
        {"ID": 3380692606374767407},
    ]
    assert ok(s, (C.LEASE_KEEPALIVE, 1234, now + 1))[0] == {
        "header": {"revision": 17},
        "ID": 1234,
        "TTL": 30,
    }
    assert ok(s, (C.LEASE_KEEPALIVE, 999, now + 1))[0]["TTL"] == 0
    resp, events = ok(s, (C.LEASE_REVOKE, 1234))
    assert resp == {"header": {"revision": 18}}
    assert [(e.type, e.kv) for e in events] == [
        (DELETE, tombstone(b"l/1", 18)),
        (DELETE, tombstone(b"l/2", 18)),
    ]
    fails(s, (C.LEASE_REVOKE, 1234), errors.lease_not_found())
    assert s.range(range_req(b"l/", b"l0", count_only=True))["count"] == 0

    ok(s, put_cmd(b"w/a", b"1"))  # 19
    ok(s, put_cmd(b"w/a", b"2"))  # 20
    ok(s, del_cmd(b"w/a"))  # 21
    _, events = ok(s, txn_cmd(success=[op_put(b"w/b", b"1"), op_put(b"w/c", b"1")]))  # 22
    assert [(e.kv.key, e.kv.mod_revision) for e in events] == [(b"w/b", 22), (b"w/c", 22)]
    replay = s.events_since(19, b"w/", b"w0")
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in replay] == [
        (PUT, b"w/a", 19),
        (PUT, b"w/a", 20),
        (DELETE, b"w/a", 21),
        (PUT, b"w/b", 22),
        (PUT, b"w/c", 22),
    ]
    assert replay[2].prev_kv == kv(b"w/a", 19, 20, 2, b"2")
    assert len(s.events_since(19, b"w/a", b"")) == 3
    assert s.events_since(100000, b"w/", b"w0") == []

    assert ok(s, compact_cmd(19))[0] == {"header": {"revision": 22}}
    fails(s, compact_cmd(19), errors.compacted())
    fails(s, compact_cmd(100000), errors.future_revision())
    ok(s, compact_cmd(20, physical=True))
    assert s.compact_revision == 20
    with pytest.raises(errors.EtcdError) as err:
        s.range(range_req(b"a/1", revision=2))
    assert err.value == errors.compacted()
    with pytest.raises(errors.EtcdError) as err:
        s.events_since(2, b"w/", b"w0")
    assert err.value == errors.compacted()
    assert [e.kv.mod_revision for e in s.events_since(20, b"w/", b"w0")] == [20, 21, 22, 22]


# -- leases through apply -----------------------------------------------------------------


def test_put_moves_key_between_leases_and_revoke_is_one_revision() -> None:
    s = StoreState()
    ok(s, (C.LEASE_GRANT, 1, 10, 0.0))
    ok(s, (C.LEASE_GRANT, 2, 10, 0.0))
    ok(s, put_cmd(b"k", b"v", lease=1))
    ok(s, put_cmd(b"j", b"v", lease=1))
    ok(s, put_cmd(b"k", b"w", lease=2))
    assert s.leases.keys(1) == [b"j"] and s.leases.keys(2) == [b"k"]
    ok(s, put_cmd(b"k", b"x", ignore_lease=True))
    assert s.range(range_req(b"k"))["kvs"][0].lease == 2
    ok(s, put_cmd(b"k", b"x"))  # no lease: detached
    assert s.leases.keys(2) == []
    ok(s, put_cmd(b"k", b"y", lease=1))
    ok(s, del_cmd(b"j"))
    assert s.leases.keys(1) == [b"k"]
    resp, events = ok(s, (C.LEASE_REVOKE, 2))
    assert events == [] and resp["header"]["revision"] == s.revision  # no keys: no new revision


def test_lease_expire_and_extend() -> None:
    s = StoreState()
    ok(s, (C.LEASE_GRANT, 1, 10, 0.0))
    ok(s, (C.LEASE_GRANT, 2, 20, 0.0))
    ok(s, put_cmd(b"a", lease=1))
    ok(s, put_cmd(b"b", lease=1))
    ok(s, put_cmd(b"c", lease=2))
    assert s.expired_leases(15.0) == [1]
    resp, events = ok(s, (C.LEASE_EXPIRE, (1, 2, 99), 15.0))
    assert resp == {"header": {"revision": 5}, "revoked": [1]}
    assert [(e.kv.key, e.kv.mod_revision) for e in events] == [(b"a", 5), (b"b", 5)]
    assert ok(s, (C.LEASE_KEEPALIVE, 2, 20.0))[0]["TTL"] == 0  # expired: not renewed
    ok(s, (C.LEASE_EXTEND_ALL, 30.0))
    assert s.expired_leases(49.0) == [] and s.expired_leases(50.0) == [2]
    assert ok(s, (C.LEASE_EXPIRE, (2,), 49.0))[0]["revoked"] == []


# -- members, dispatch ------------------------------------------------------------------


def test_members() -> None:
    s = StoreState()
    resp, _ = ok(s, (C.MEMBER_ADD, 20, ("http://127.0.0.1:2380",), False))
    assert resp["member"] == {
        "ID": 20,
        "name": "",
        "peerURLs": ["http://127.0.0.1:2380"],
        "clientURLs": [],
        "isLearner": False,
    }
    ok(s, (C.MEMBER_PUBLISH, 10, "m1", ("http://127.0.0.1:2381",), ("http://127.0.0.1:2379",)))
    fails(s, (C.MEMBER_ADD, 20, ("http://x",), False), errors.member_exists())
    fails(s, (C.MEMBER_ADD, 30, ("http://127.0.0.1:2380",), True), errors.peer_url_exists())
    ok(s, (C.MEMBER_PUBLISH, 20, "m2", ("http://127.0.0.1:2380",), ("http://c2",)))
    assert [(m["ID"], m["name"]) for m in s.members()] == [(10, "m1"), (20, "m2")]
    resp, _ = ok(s, (C.MEMBER_REMOVE, 20))
    assert [m["ID"] for m in resp["members"]] == [10]
    fails(s, (C.MEMBER_REMOVE, 20), errors.member_not_found())
    fails(
        s, (C.MEMBER_PUBLISH, 20, "m2", (), ()), errors.member_not_found()
    )  # removed stays removed
    fails(s, (C.MEMBER_ADD, 20, (), False), errors.member_not_found())
    s.members()[0]["peerURLs"].append("mutated")
    assert s.members()[0]["peerURLs"] == ["http://127.0.0.1:2381"]


def test_dispatch() -> None:
    s = StoreState()
    assert s.apply((C.NOOP,)) == ({"header": {"revision": 1}}, [])
    assert s.apply((0,)) == ({"header": {"revision": 1}}, [])
    with pytest.raises(ValueError):
        s.apply((999,))


lease_st = st.sampled_from([0, 1, 2])
key_st = st.sampled_from([b"a", b"b", b"c"])
lease_cmd_st = st.one_of(
    st.builds(lambda k, lease: put_cmd(k, b"v", lease=lease), key_st, lease_st),
    st.builds(lambda k: put_cmd(k, ignore_lease=True, ignore_value=True), key_st),
    st.builds(del_cmd, key_st, st.sampled_from([b"", b"\0"])),
    st.builds(lambda k, lease: txn_cmd(success=[op_put(k, lease=lease)]), key_st, lease_st),
    st.builds(
        lambda i, ttl: (C.LEASE_GRANT, i, ttl, 0.0), st.sampled_from([1, 2]), st.integers(0, 9)
    ),
    st.builds(lambda i: (C.LEASE_REVOKE, i), st.sampled_from([1, 2])),
    st.builds(lambda i, now: (C.LEASE_EXPIRE, (i,), now), st.sampled_from([1, 2]), st.floats(0, 9)),
    st.builds(lambda i, now: (C.LEASE_KEEPALIVE, i, now), st.sampled_from([1, 2]), st.floats(0, 9)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lease_cmd_st, max_size=25))
def test_lease_attachments_always_match_the_keys(commands: list) -> None:
    """Whatever happens, a lease holds exactly the live keys whose lease field names it."""
    s = StoreState()
    for command in commands:
        resp, events = s.apply(command)
        live = s.range(range_req(b"\0", b"\0"))["kvs"]
        assert all(x.lease in s.leases for x in live if x.lease)
        for lease_id in s.leases.ids():
            assert s.leases.keys(lease_id) == [x.key for x in live if x.lease == lease_id]
        if command[0] in (C.LEASE_REVOKE, C.LEASE_EXPIRE) and events:
            assert {e.kv.mod_revision for e in events} == {s.revision}  # one revision per lease
            assert all(e.type == DELETE for e in events)
