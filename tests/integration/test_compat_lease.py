"""Leases over the v3 JSON gateway, compared with etcd 3.4.

Lease IDs are random 64-bit numbers when the server picks them (> 2^53: a client must
not parse them as doubles), so replies are compared whole after replacing a
server-chosen ID, and TTLs that tick down are checked within a window. Every test
revokes the leases it attached keys to: an expiry in the middle of a later test would
move that test's revisions.
"""

from __future__ import annotations

import itertools
import time

import pytest

from tests.clusters import StoreClusterHandle, wait_until
from tests.compat_helpers import (
    DECIMAL,
    ChunkedStream,
    Gateway,
    b64,
    error_body,
    header,
    kv,
    normalize,
    stream_body,
)

LEASE_NOT_FOUND = error_body("etcdserver: requested lease not found", 5)
EXPIRY_TIMEOUT = 15.0  # TTL 3 s plus etcd's 0.5 s expiry check plus a Raft round, with margin
_ids = itertools.count(5000)


@pytest.fixture
def gw(store_cluster_module: StoreClusterHandle) -> Gateway:
    return Gateway(store_cluster_module.endpoints[0])


def fresh_id() -> str:
    """A client-chosen lease ID no other test of this module uses."""
    return str(next(_ids))


def grant(gw: Gateway, ttl: int, lease_id: str | int | None = None) -> str:
    body: dict = {"TTL": ttl}
    if lease_id is not None:
        body["ID"] = lease_id
    return gw.ok("lease/grant", body)["ID"]


def keepalive(gw: Gateway, *ids: str) -> list[dict]:
    """POST one keepalive request object per id; the results, after the stream ended."""
    body = stream_body(*({"ID": i} for i in ids))
    with ChunkedStream(gw.endpoint, "/v3/lease/keepalive", body) as stream:
        assert stream.status == 200, stream.body()
        assert stream.headers.get("content-type") == "application/json"
        return list(stream.results())


def ttl_of(gw: Gateway, lease_id: str, path: str = "lease/timetolive") -> int:
    return int(gw.ok(path, {"ID": lease_id})["TTL"])


# --- grant ------------------------------------------------------------------------------


def test_grant_with_server_chosen_id(gw: Gateway) -> None:
    base = gw.revision()
    reply = gw.ok("lease/grant", {"TTL": "30"})
    lease_id = reply["ID"]
    assert DECIMAL.match(lease_id) and int(lease_id) > 0, reply
    assert normalize(reply, base) == {"header": header(0), "ID": lease_id, "TTL": "30"}
    # Server-chosen IDs differ, and ID 0 in the request means "choose one".
    other = gw.ok("lease/grant", {"TTL": 30, "ID": 0})["ID"]
    assert other != lease_id and int(other) > 0
    for i in (lease_id, other):
        gw.ok("lease/revoke", {"ID": i})
    assert gw.revision() == base  # leases without keys never move the revision


@pytest.mark.parametrize(
    "lease_id",
    [
        pytest.param("string", id="as-string"),
        pytest.param("number", id="as-number"),
        pytest.param(8547447278526642208, id="above-2**53"),
    ],
)
def test_grant_with_client_chosen_id(gw: Gateway, lease_id: str | int) -> None:
    base = gw.revision()
    if lease_id == "string":
        requested: str | int = fresh_id()
    elif lease_id == "number":
        requested = int(fresh_id())
    else:
        requested = lease_id
    reply = gw.ok("lease/grant", {"TTL": 30, "ID": requested})
    assert normalize(reply, base) == {"header": header(0), "ID": str(requested), "TTL": "30"}
    gw.ok("lease/revoke", {"ID": requested})


def test_lower_case_ttl_is_ignored_so_the_lease_gets_the_minimum_ttl(gw: Gateway) -> None:
    minimum = gw.ok("lease/grant", {"TTL": 1})
    ignored = gw.ok("lease/grant", {"ttl": 30})
    absent = gw.ok("lease/grant", {})
    assert 1 <= int(minimum["TTL"]) < 30
    assert ignored["TTL"] == absent["TTL"] == minimum["TTL"]
    for reply in (minimum, ignored, absent):
        gw.ok("lease/revoke", {"ID": reply["ID"]})


# --- timetolive and leases --------------------------------------------------------------


def test_timetolive_with_and_without_keys(gw: Gateway) -> None:
    base = gw.revision()
    lease_id = grant(gw, 30, fresh_id())
    gw.put("ttl/1", "x", lease=lease_id)
    gw.put("ttl/2", "x", lease=int(lease_id))  # the lease as a JSON number
    assert normalize(gw.ok("kv/range", {"key": b64("ttl/"), "range_end": b64("ttl0")}), base) == {
        "header": header(2),
        "kvs": [
            kv("ttl/1", "x", create=1, mod=1, version=1, lease=int(lease_id)),
            kv("ttl/2", "x", create=2, mod=2, version=1, lease=int(lease_id)),
        ],
        "count": "2",
    }

    for path in ("lease/timetolive", "kv/lease/timetolive"):
        reply = normalize(gw.ok(path, {"ID": lease_id}), base)
        assert 28 <= int(reply.pop("TTL")) <= 30, path
        assert reply == {"header": header(2), "ID": lease_id, "grantedTTL": "30"}, path

        reply = normalize(gw.ok(path, {"ID": lease_id, "keys": True}), base)
        assert 28 <= int(reply.pop("TTL")) <= 30, path
        reply["keys"] = sorted(reply.get("keys", []))  # the order of keys is unspecified
        assert reply == {
            "header": header(2),
            "ID": lease_id,
            "grantedTTL": "30",
            "keys": [b64("ttl/1"), b64("ttl/2")],
        }, path

    gw.ok("lease/revoke", {"ID": lease_id})


def test_timetolive_of_a_lease_without_keys_and_of_an_unknown_lease(gw: Gateway) -> None:
    base = gw.revision()
    lease_id = grant(gw, 30)
    reply = normalize(gw.ok("lease/timetolive", {"ID": lease_id, "keys": True}), base)
    reply.pop("TTL")
    assert reply == {"header": header(0), "ID": lease_id, "grantedTTL": "30"}  # no "keys"
    gw.ok("lease/revoke", {"ID": lease_id})

    # Unknown (or revoked): 200 with TTL -1, no error.
    for unknown in ("999", lease_id):
        for path in ("lease/timetolive", "kv/lease/timetolive"):
            reply = gw.ok(path, {"ID": unknown, "keys": True})
            assert normalize(reply, base) == {"header": header(0), "ID": unknown, "TTL": "-1"}


def test_leases_lists_ids_only(gw: Gateway) -> None:
    base = gw.revision()
    ours = {grant(gw, 30, fresh_id()), grant(gw, 30)}
    for path in ("lease/leases", "kv/lease/leases"):
        reply = normalize(gw.ok(path, {}), base)
        assert set(reply) == {"header", "leases"} and reply["header"] == header(0)
        assert all(list(entry) == ["ID"] for entry in reply["leases"]), reply
        assert ours <= {entry["ID"] for entry in reply["leases"]}
    for lease_id in ours:
        gw.ok("lease/revoke", {"ID": lease_id})
    listed = {entry["ID"] for entry in gw.ok("lease/leases", {}).get("leases", [])}
    assert not ours & listed


# --- keepalive --------------------------------------------------------------------------


def test_keepalive_one_request_answers_one_line_and_ends(gw: Gateway) -> None:
    base = gw.revision()
    lease_id = grant(gw, 30, fresh_id())
    results = keepalive(gw, lease_id)
    assert [normalize(r, base) for r in results] == [
        {"header": header(0), "ID": lease_id, "TTL": "30"}
    ]
    # A client that reads the whole body as one JSON document (etcd3gw) can do so.
    reply = gw.post("lease/keepalive", {"ID": lease_id})
    assert reply.status == 200 and reply.body.endswith(b"}\n")
    assert normalize(reply.json, base) == {
        "result": {"header": header(0), "ID": lease_id, "TTL": "30"}
    }
    gw.ok("lease/revoke", {"ID": lease_id})


def test_keepalive_several_requests_in_one_body(gw: Gateway) -> None:
    base = gw.revision()
    first, second = grant(gw, 30, fresh_id()), grant(gw, 40, fresh_id())
    results = keepalive(gw, first, second, first)
    assert [normalize(r, base) for r in results] == [
        {"header": header(0), "ID": first, "TTL": "30"},
        {"header": header(0), "ID": second, "TTL": "40"},
        {"header": header(0), "ID": first, "TTL": "30"},
    ]
    for lease_id in (first, second):
        gw.ok("lease/revoke", {"ID": lease_id})


def test_keepalive_of_an_unknown_lease_omits_ttl(gw: Gateway) -> None:
    base = gw.revision()
    revoked = grant(gw, 30, fresh_id())
    gw.ok("lease/revoke", {"ID": revoked})
    results = keepalive(gw, "999", revoked)
    assert [normalize(r, base) for r in results] == [
        {"header": header(0), "ID": "999"},
        {"header": header(0), "ID": revoked},
    ]


# --- revoke and expiry ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["lease/revoke", "kv/lease/revoke"])
def test_revoke_deletes_attached_keys_in_one_revision(gw: Gateway, path: str) -> None:
    base = gw.revision()
    lease_id = grant(gw, 30, fresh_id())
    prefix = f"rvk/{path}/"
    gw.put(prefix + "1", "x", lease=lease_id)
    gw.ok("kv/txn", {"success": [{"request_put": {"key": b64(prefix + "2"), "lease": lease_id}}]})
    gw.put(prefix + "3", "not leased")

    assert normalize(gw.ok(path, {"ID": lease_id}), base) == {"header": header(4)}
    keys = gw.ok(
        "kv/range", {"key": b64(prefix), "range_end": b64(prefix[:-1] + "0"), "keys_only": True}
    )
    assert normalize(keys, base) == {
        "header": header(4),
        "kvs": [kv(prefix + "3", create=3, mod=3, version=1)],
        "count": "1",
    }
    reply = gw.post(path, {"ID": lease_id})
    assert (reply.status, reply.json) == (404, LEASE_NOT_FOUND)


def test_a_put_moves_a_key_between_leases(gw: Gateway) -> None:
    base = gw.revision()
    first, second = grant(gw, 30, fresh_id()), grant(gw, 30, fresh_id())

    def keys_of(lease_id: str) -> list[str]:
        return gw.ok("lease/timetolive", {"ID": lease_id, "keys": True}).get("keys", [])

    gw.put("mv/a", "1", lease=first)
    gw.put("mv/a", "2", lease=second)
    assert (keys_of(first), keys_of(second)) == ([], [b64("mv/a")])
    # ignore_lease keeps the key's lease; a plain put detaches it.
    gw.ok("kv/put", {"key": b64("mv/a"), "value": b64("3"), "ignore_lease": True})
    assert normalize(gw.range("mv/a"), base)["kvs"] == [
        kv("mv/a", "3", create=1, mod=3, version=3, lease=int(second))
    ]
    gw.put("mv/a", "4")
    assert normalize(gw.range("mv/a"), base)["kvs"] == [kv("mv/a", "4", create=1, mod=4, version=4)]
    assert keys_of(second) == []
    for lease_id in (first, second):
        gw.ok("lease/revoke", {"ID": lease_id})
    assert gw.range("mv/a")["kvs"][0]["value"] == b64("4")  # detached: survives the revoke


def test_expiry_deletes_keys_after_the_ttl_and_keepalive_postpones_it(gw: Gateway) -> None:
    lease_id = grant(gw, 3, fresh_id())
    gw.put("exp/1", "x", lease=lease_id)
    gw.put("exp/2", "y", lease=lease_id)

    # Let the TTL run down to under 2 s, then renew it: the keepalive resets it to 3 s.
    wait_until(lambda: ttl_of(gw, lease_id) <= 1, timeout=EXPIRY_TIMEOUT, what="TTL running down")
    renewed_at = time.monotonic()
    [renewed] = keepalive(gw, lease_id)
    assert renewed["TTL"] == "3"
    assert gw.range("exp/1").get("count") == "1"
    before = gw.revision()

    def expired() -> bool:
        return "kvs" not in gw.ok("kv/range", {"key": b64("exp/"), "range_end": b64("exp0")})

    wait_until(expired, timeout=EXPIRY_TIMEOUT, what="keys of the expired lease deleted")
    # Without the renewal the keys would have gone less than 2 s after `renewed_at`.
    assert time.monotonic() - renewed_at >= 2.0, "the keepalive did not postpone the expiry"
    assert gw.revision() == before + 1  # both keys deleted in one revision
    assert gw.ok("lease/timetolive", {"ID": lease_id})["TTL"] == "-1"
    assert "TTL" not in keepalive(gw, lease_id)[0]
    reply = gw.post("lease/revoke", {"ID": lease_id})
    assert (reply.status, reply.json) == (404, LEASE_NOT_FOUND)
