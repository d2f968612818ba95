"""Lease table: TTL rules, keepalive, expiry as a function of time, attachments."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store import errors
from store.leases import MAX_LEASE_TTL, MIN_LEASE_TTL, LeaseTable


def test_grant_raises_ttl_to_minimum_and_refuses_bad_ids() -> None:
    t = LeaseTable()
    assert t.grant(1, 0, 100.0).ttl == MIN_LEASE_TTL == 2
    assert t.grant(2, 30, 100.0).expiry == 130.0
    with pytest.raises(errors.EtcdError) as err:
        t.grant(2, 30, 100.0)
    assert err.value == errors.lease_exists() and err.value.http_status == 412
    with pytest.raises(errors.EtcdError) as err:
        t.grant(0, 30, 100.0)
    assert err.value == errors.lease_not_found()
    with pytest.raises(errors.EtcdError) as err:
        t.grant(3, MAX_LEASE_TTL + 1, 100.0)
    assert err.value == errors.lease_ttl_too_large()
    assert t.ids() == [1, 2] and 2 in t and 3 not in t and len(t) == 2


def test_remaining_truncates_like_etcd() -> None:
    t = LeaseTable()
    t.grant(7, 30, 100.0)
    assert t.remaining(7, 100.0) == 30
    assert t.remaining(7, 100.5) == 29  # int64(Remaining().Seconds())
    assert t.remaining(7, 200.0) == 0  # expired but not yet revoked: never negative
    assert t.remaining(8, 100.0) == -1  # unknown


def test_keepalive_renews_but_not_after_expiry() -> None:
    t = LeaseTable()
    t.grant(7, 10, 100.0)
    assert t.keepalive(7, 105.0) == 10 and t.get(7).expiry == 115.0
    assert t.keepalive(7, 115.0) == 0  # expired at 115: waiting for revoke, not renewable
    assert t.keepalive(99, 105.0) == 0


def test_expired_is_ordered_and_follows_renewals() -> None:
    t = LeaseTable()
    t.grant(1, 10, 0.0)
    t.grant(2, 5, 0.0)
    t.grant(3, 20, 0.0)
    assert t.expired(4.9) == []
    assert t.expired(10.0) == [2, 1]
    t.keepalive(2, 4.0)  # -> 9.0
    assert t.expired(9.0) == [2]
    t.revoke(2)
    assert t.expired(100.0) == [1, 3]


def test_extend_all_only_moves_expiries_forward() -> None:
    t = LeaseTable()
    t.grant(1, 10, 0.0)  # expires 10
    t.grant(2, 10, 100.0)  # expires 110 (stamped by an old leader with a faster clock)
    t.extend_all(50.0)
    assert t.get(1).expiry == 60.0 and t.get(2).expiry == 110.0
    assert t.expired(109.0) == [1]


def test_revoke_returns_keys_and_forgets_the_lease() -> None:
    t = LeaseTable()
    t.grant(1, 10, 0.0)
    t.attach(1, b"b")
    t.attach(1, b"a")
    t.attach(42, b"x")  # unknown lease: ignored
    assert t.keys(1) == [b"a", b"b"]
    t.detach(1, b"b")
    assert t.revoke(1).keys == {b"a"}
    assert 1 not in t and t.keys(1) == []
    with pytest.raises(errors.EtcdError) as err:
        t.revoke(1)
    assert err.value == errors.lease_not_found()


def test_restore_round_trip() -> None:
    t = LeaseTable()
    t.grant(5, 10, 1.5)
    t.grant(3, 60, 2.0)
    r = LeaseTable.restore(t.items())
    assert r.items() == t.items() == [(3, 60, 62.0), (5, 10, 11.5)]
    assert r.expired(12.0) == [5]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["grant", "keepalive", "revoke", "extend"]),
            st.integers(1, 4),
            st.integers(0, 20),
            st.floats(0, 100),
        ),
        max_size=30,
    )
)
def test_expiry_index_matches_a_scan(ops: list) -> None:
    t = LeaseTable()
    for op, lease_id, ttl, now in ops:
        try:
            if op == "grant":
                t.grant(lease_id, ttl, now)
            elif op == "keepalive":
                t.keepalive(lease_id, now)
            elif op == "revoke":
                t.revoke(lease_id)
            else:
                t.extend_all(now)
        except errors.EtcdError:
            pass
        for at in (0.0, 25.0, 50.0, 200.0):
            scan = sorted((t.get(i).expiry, i) for i in t.ids() if t.get(i).expiry <= at)
            assert t.expired(at) == [i for _, i in scan]
