"""KV over the v3 JSON gateway, compared reply by reply with what etcd 3.4 sends.

Every reply is compared whole, after `normalize` (see tests/compat_helpers.py): which
fields are present matters as much as their values, since etcd omits zero values and
clients read absence as zero (etcd3gw's `delete()` is `'deleted' in reply`). Revisions
are relative to the revision each test measures first, so tests share one cluster per
module and keep to their own key prefix. The expected replies follow the capture in
/work/shared/anchors/etcd/api_examples.md.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests import http
from tests.clusters import StoreClusterHandle
from tests.compat_helpers import (
    ChunkedStream,
    Gateway,
    Rev,
    b64,
    error_body,
    header,
    kv,
    normalize,
    prefix_end,
    resolve,
    rev,
)

COMPACTED = error_body("etcdserver: mvcc: required revision has been compacted", 11)
FUTURE = error_body("etcdserver: mvcc: required revision is a future revision", 11)


@pytest.fixture
def gw(store_cluster_module: StoreClusterHandle) -> Gateway:
    return Gateway(store_cluster_module.endpoints[0])


def prefix(p: str) -> dict:
    return {"key": b64(p), "range_end": prefix_end(p)}


# --- put --------------------------------------------------------------------------------


def test_put_replies_and_what_they_store(gw: Gateway) -> None:
    base = gw.revision()

    def put(body: dict) -> dict:
        return normalize(gw.ok("kv/put", body), base)

    assert put({"key": b64("put/1"), "value": b64("v1")}) == {"header": header(1)}
    assert put({"key": b64("put/1"), "value": b64("v2"), "prev_kv": True}) == {
        "header": header(2),
        "prev_kv": kv("put/1", "v1", create=1, mod=1, version=1),
    }
    # prev_kv asked for, but there was no previous value: the field is absent.
    assert put({"key": b64("put/2"), "value": b64("v3"), "prev_kv": True}) == {"header": header(3)}
    assert put({"key": b64("put/3"), "value": ""}) == {"header": header(4)}
    assert put({"key": b64("put/4")}) == {"header": header(5)}  # no value field: empty value
    # ignore_value keeps the value and bumps mod_revision and version.
    assert put({"key": b64("put/1"), "ignore_value": True, "prev_kv": True}) == {
        "header": header(6),
        "prev_kv": kv("put/1", "v2", create=1, mod=2, version=2),
    }
    # Unknown fields are ignored, so a typo in "value" silently stores an empty value.
    assert put({"key": b64("put/5"), "valu": b64("lost"), "bogus": 1}) == {"header": header(7)}
    assert put({"key": b64(b"put/\x00\x01\xff"), "value": b64(b"\xff")}) == {"header": header(8)}

    assert normalize(gw.ok("kv/range", prefix("put/")), base) == {
        "header": header(8),
        "kvs": [
            kv(b"put/\x00\x01\xff", b"\xff", create=8, mod=8, version=1),  # keys sort as bytes
            kv("put/1", "v2", create=1, mod=6, version=3),
            kv("put/2", "v3", create=3, mod=3, version=1),
            kv("put/3", create=4, mod=4, version=1),  # empty value: no "value" field
            kv("put/4", create=5, mod=5, version=1),
            kv("put/5", create=7, mod=7, version=1),
        ],
        "count": "6",
    }


def test_ignore_lease_on_a_key_without_a_lease(gw: Gateway) -> None:
    base = gw.revision()
    assert normalize(gw.put("il/1", "a"), base) == {"header": header(1)}
    assert normalize(
        gw.ok("kv/put", {"key": b64("il/1"), "value": b64("b"), "ignore_lease": True}), base
    ) == {"header": header(2)}
    assert normalize(gw.range("il/1"), base)["kvs"] == [kv("il/1", "b", create=1, mod=2, version=2)]


# --- range ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def five_keys(store_cluster_module: StoreClusterHandle) -> int:
    """rng/a..rng/e with values in the opposite order (e..a), rng/b written twice, and a
    key just past the prefix, written once for all range cases; returns the base revision."""
    gw = Gateway(store_cluster_module.endpoints[0])
    base = gw.revision()
    for key, value in [("a", "5"), ("b", "4"), ("c", "3"), ("d", "2"), ("e", "1"), ("b", "4")]:
        gw.put(f"rng/{key}", value)
    gw.put("rng0", "outside")
    return base


# The five keys as `kv` arguments, in key order, after `five_keys`.
RNG: dict[str, dict[str, Any]] = {
    "a": dict(value="5", create=1, mod=1, version=1),
    "b": dict(value="4", create=2, mod=6, version=2),
    "c": dict(value="3", create=3, mod=3, version=1),
    "d": dict(value="2", create=4, mod=4, version=1),
    "e": dict(value="1", create=5, mod=5, version=1),
}


def rng(*names: str, keys_only: bool = False) -> list[dict]:
    return [kv(f"rng/{n}", keys_only=keys_only, **RNG[n]) for n in names]


RANGE_CASES = [
    pytest.param({"key": b64("rng/missing")}, {}, id="missing-key"),
    pytest.param({"key": b64("rng/b")}, {"kvs": rng("b"), "count": "1"}, id="one-key"),
    pytest.param(prefix("rng/"), {"kvs": rng(*"abcde"), "count": "5"}, id="prefix"),
    pytest.param(
        {**prefix("rng/"), "limit": "2"},
        {"kvs": rng("a", "b"), "more": True, "count": "5"},
        id="limit-more-count",
    ),
    pytest.param(
        {**prefix("rng/"), "limit": 5}, {"kvs": rng(*"abcde"), "count": "5"}, id="limit-all"
    ),
    pytest.param(
        {**prefix("rng/"), "keys_only": True},
        {"kvs": rng(*"abcde", keys_only=True), "count": "5"},
        id="keys-only",
    ),
    pytest.param({**prefix("rng/"), "count_only": True}, {"count": "5"}, id="count-only"),
    pytest.param(
        {**prefix("rng/"), "count_only": True, "limit": 1}, {"count": "5"}, id="count-only-limit"
    ),
    pytest.param(
        {"key": b64("rng/b"), "range_end": b64("rng/d")},
        {"kvs": rng("b", "c"), "count": "2"},
        id="range-end-exclusive",
    ),
    pytest.param(
        {**prefix("rng/"), "sort_order": "DESCEND", "sort_target": "KEY"},
        {"kvs": rng(*"edcba"), "count": "5"},
        id="sort-key-descend",
    ),
    pytest.param(
        {**prefix("rng/"), "sort_order": 2, "sort_target": "MOD", "keys_only": True},
        {"kvs": rng(*"bedca", keys_only=True), "count": "5"},
        id="sort-mod-descend-as-number",
    ),
    pytest.param(
        {**prefix("rng/"), "sort_order": "ASCEND", "sort_target": "VALUE"},
        {"kvs": rng(*"edcba"), "count": "5"},
        id="sort-value",
    ),
    pytest.param(
        # A target other than KEY without an order sorts ascending.
        {**prefix("rng/"), "sort_target": "VALUE"},
        {"kvs": rng(*"edcba"), "count": "5"},
        id="sort-target-without-order",
    ),
    pytest.param(
        {**prefix("rng/"), "sort_order": "DESCEND", "sort_target": "VERSION", "limit": 1},
        {"kvs": rng("b"), "more": True, "count": "5"},
        id="sort-version-then-limit",
    ),
    pytest.param(
        {**prefix("rng/"), "sort_order": "DESCEND", "sort_target": "CREATE", "limit": "2"},
        {"kvs": rng("e", "d"), "more": True, "count": "5"},
        id="sort-create-then-limit",
    ),
    pytest.param(
        # The min/max revision filters thin out kvs but not count.
        {**prefix("rng/"), "max_create_revision": Rev(1)},
        {"kvs": rng("a"), "count": "5"},
        id="max-create-revision",
    ),
    pytest.param(
        {**prefix("rng/"), "min_create_revision": Rev(4)},
        {"kvs": rng("d", "e"), "count": "5"},
        id="min-create-revision",
    ),
    pytest.param(
        {**prefix("rng/"), "min_mod_revision": Rev(5)},
        {"kvs": rng("b", "e"), "count": "5"},
        id="min-mod-revision",
    ),
    pytest.param(
        {**prefix("rng/"), "max_mod_revision": Rev(2)},
        {"kvs": rng("a"), "count": "5"},
        id="max-mod-revision",
    ),
    pytest.param(
        {**prefix("rng/"), "min_mod_revision": Rev(100, number=True)},
        {"count": "5"},
        id="filters-drop-everything",
    ),
    pytest.param(
        # lowerCamelCase input names work; the reply keeps the .proto names.
        {"key": b64("rng/"), "rangeEnd": prefix_end("rng/"), "keysOnly": True, "limit": 1},
        {"kvs": rng("a", keys_only=True), "more": True, "count": "5"},
        id="lower-camel-case",
    ),
    pytest.param(
        {"key": b64("rng/"), "rangeEnd": prefix_end("rng/"), "countOnly": True},
        {"count": "5"},
        id="lower-camel-count-only",
    ),
    pytest.param(
        {**prefix("rng/"), "sortOrder": "DESCEND", "sortTarget": "MOD", "maxModRevision": Rev(5)},
        {"kvs": rng("e", "d", "c", "a"), "count": "5"},
        id="lower-camel-sort-and-filter",
    ),
    pytest.param(
        {**prefix("rng/"), "limit": 1, "bogus": {"nested": [1]}},
        {"kvs": rng("a"), "more": True, "count": "5"},
        id="unknown-field-ignored",
    ),
]


@pytest.mark.parametrize(("request_body", "expected"), RANGE_CASES)
def test_range_reply(gw: Gateway, five_keys: int, request_body: dict, expected: dict) -> None:
    base = five_keys
    now = gw.revision() - base  # base+7 unless a test in between wrote
    reply = gw.ok("kv/range", resolve(request_body, base))
    assert normalize(reply, base) == {"header": header(now), **expected}


def test_range_to_the_end_of_the_keyspace(gw: Gateway) -> None:
    base = gw.revision()
    # range_end NUL alone means "every key >= key"; \xff\xfe is past any other test's keys.
    gw.put(b"\xff\xfe/1", "x")
    gw.put(b"\xff\xfe/2", "y")
    assert normalize(gw.ok("kv/range", {"key": b64(b"\xff\xfe"), "range_end": "AA=="}), base) == {
        "header": header(2),
        "kvs": [
            kv(b"\xff\xfe/1", "x", create=1, mod=1, version=1),
            kv(b"\xff\xfe/2", "y", create=2, mod=2, version=1),
        ],
        "count": "2",
    }
    # key = range_end = NUL means every key: sorted, counted, ours included.
    everything = gw.ok("kv/range", {"key": "AA==", "range_end": "AA==", "keys_only": True})
    keys = [http.unb64(k["key"]) for k in everything["kvs"]]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert {b"\xff\xfe/1", b"\xff\xfe/2"} <= set(keys)
    assert everything["count"] == str(len(keys))
    assert all("value" not in k for k in everything["kvs"])


def test_historical_reads(gw: Gateway) -> None:
    base = gw.revision()
    for value in ("v1", "v2", "v3"):
        gw.put("hist/a", value)
    gw.ok("kv/deleterange", {"key": b64("hist/a")})

    def at(revision: int | str) -> dict:
        return normalize(gw.ok("kv/range", {**prefix("hist/"), "revision": revision}), base)

    assert at(base) == {"header": header(4)}  # before the key existed
    assert at(base + 1) == {
        "header": header(4),
        "kvs": [kv("hist/a", "v1", create=1, mod=1, version=1)],
        "count": "1",
    }
    assert at(str(base + 2))["kvs"] == [kv("hist/a", "v2", create=1, mod=2, version=2)]
    assert at(base + 3)["kvs"] == [kv("hist/a", "v3", create=1, mod=3, version=3)]
    assert at(base + 4) == {"header": header(4)}  # deleted at base+4
    assert at(0) == at(base + 4)  # revision 0 = the current revision

    reply = gw.post("kv/range", {"key": b64("hist/a"), "revision": base + 5})
    assert (reply.status, reply.json) == (400, FUTURE)

    # Re-creating a deleted key starts a new generation: version 1, a new create_revision.
    gw.put("hist/a", "v4")
    assert normalize(gw.range("hist/a"), base)["kvs"] == [
        kv("hist/a", "v4", create=5, mod=5, version=1)
    ]


# --- deleterange ------------------------------------------------------------------------


def test_deleterange_replies(gw: Gateway) -> None:
    base = gw.revision()
    for key, value in [("del/a", "1"), ("del/b", ""), ("del/c", "3"), ("del/d", "4")]:
        gw.put(key, value)

    def delete(body: dict) -> dict:
        return normalize(gw.ok("kv/deleterange", body), base)

    assert delete({"key": b64("del/a")}) == {"header": header(5), "deleted": "1"}
    # Nothing deleted: no "deleted" field and no new revision.
    assert delete({"key": b64("del/a")}) == {"header": header(5)}
    assert delete({"key": b64("del/zzz"), "prev_kv": True}) == {"header": header(5)}
    # Several keys go in one revision; prev_kvs omit the empty value.
    assert delete({"key": b64("del/b"), "range_end": b64("del/d"), "prev_kv": True}) == {
        "header": header(6),
        "deleted": "2",
        "prev_kvs": [
            kv("del/b", create=2, mod=2, version=1),
            kv("del/c", "3", create=3, mod=3, version=1),
        ],
    }
    assert delete({**prefix("del/"), "prevKv": True}) == {
        "header": header(7),
        "deleted": "1",
        "prev_kvs": [kv("del/d", "4", create=4, mod=4, version=1)],
    }
    assert normalize(gw.ok("kv/range", prefix("del/")), base) == {"header": header(7)}


# --- txn --------------------------------------------------------------------------------


def txn(gw: Gateway, base: int, body: dict) -> dict:
    return normalize(gw.ok("kv/txn", body), base)


def test_txn_compare_and_swap_on_mod_revision(gw: Gateway) -> None:
    base = gw.revision()
    gw.put("cas/a", "v1")
    cas = {
        "compare": [
            {"key": b64("cas/a"), "target": "MOD", "result": "EQUAL", "mod_revision": str(base + 1)}
        ],
        "success": [{"request_put": {"key": b64("cas/a"), "value": b64("v2"), "prev_kv": True}}],
        "failure": [{"request_range": {"key": b64("cas/a")}}],
    }
    assert txn(gw, base, cas) == {
        "header": header(2),
        "succeeded": True,
        "responses": [
            {
                "response_put": {
                    "header": {"revision": rev(2)},  # nested headers carry the revision only
                    "prev_kv": kv("cas/a", "v1", create=1, mod=1, version=1),
                }
            }
        ],
    }
    # The same CAS again fails: no "succeeded", the failure branch ran, no new revision.
    assert txn(gw, base, cas) == {
        "header": header(2),
        "responses": [
            {
                "response_range": {
                    "header": {"revision": rev(2)},
                    "kvs": [kv("cas/a", "v2", create=1, mod=2, version=2)],
                    "count": "1",
                }
            }
        ],
    }


def test_txn_create_if_absent(gw: Gateway) -> None:
    base = gw.revision()
    create = {
        "compare": [
            {"key": b64("cia/a"), "target": "CREATE", "result": "EQUAL", "create_revision": 0}
        ],
        "success": [{"request_put": {"key": b64("cia/a"), "value": b64("n")}}],
        "failure": [],
    }
    assert txn(gw, base, create) == {
        "header": header(1),
        "succeeded": True,
        "responses": [{"response_put": {"header": {"revision": rev(1)}}}],
    }
    assert txn(gw, base, create) == {"header": header(1)}  # failed, empty failure branch


def test_txn_version_and_value_compare_then_delete_and_count(gw: Gateway) -> None:
    base = gw.revision()
    gw.put("tvv/a", "n")
    gw.put("tvv/b", "m")
    body = {
        "compare": [
            {"key": b64("tvv/a"), "target": "VERSION", "result": "GREATER", "version": "0"},
            {"key": b64("tvv/a"), "target": "VALUE", "result": "EQUAL", "value": b64("n")},
        ],
        "success": [
            {"request_delete_range": {"key": b64("tvv/a"), "prev_kv": True}},
            {"request_range": {**prefix("tvv/"), "count_only": True}},
        ],
    }
    assert txn(gw, base, body) == {
        "header": header(3),
        "succeeded": True,
        "responses": [
            {
                "response_delete_range": {
                    "header": {"revision": rev(3)},
                    "deleted": "1",
                    "prev_kvs": [kv("tvv/a", "n", create=1, mod=1, version=1)],
                }
            },
            # Reads inside a txn see the txn's own writes.
            {"response_range": {"header": {"revision": rev(3)}, "count": "1"}},
        ],
    }


def test_txn_enums_as_numbers_and_nested_txn(gw: Gateway) -> None:
    base = gw.revision()
    gw.put("nest/a", "t1")
    body = {
        "compare": [{"key": b64("nest/a"), "target": 2, "result": 3, "mod_revision": 1}],
        "success": [
            {
                "request_txn": {
                    "compare": [
                        {
                            "key": b64("nest/a"),
                            "target": "VALUE",
                            "result": "LESS",
                            "value": b64("zz"),
                        }
                    ],
                    "success": [{"request_range": {"key": b64("nest/a")}}],
                }
            }
        ],
    }
    assert txn(gw, base, body) == {
        "header": header(1),
        "succeeded": True,
        "responses": [
            {
                "response_txn": {
                    "header": {},  # a nested txn's header is empty
                    "succeeded": True,
                    "responses": [
                        {
                            "response_range": {
                                "header": {"revision": rev(1)},
                                "kvs": [kv("nest/a", "t1", create=1, mod=1, version=1)],
                                "count": "1",
                            }
                        }
                    ],
                }
            }
        ],
    }
    # A nested txn that writes: one revision for all of it.
    body = {
        "success": [
            {"request_put": {"key": b64("nest/b"), "value": b64("1")}},
            {
                "request_txn": {
                    "failure": [{"request_put": {"key": b64("nest/c")}}],
                    "compare": [
                        {
                            "key": b64("nest/c"),
                            "target": "CREATE",
                            "result": "GREATER",
                            "create_revision": 0,
                        }
                    ],
                }
            },
        ]
    }
    assert txn(gw, base, body) == {
        "header": header(2),
        "succeeded": True,
        "responses": [
            {"response_put": {"header": {"revision": rev(2)}}},
            {
                "response_txn": {
                    "header": {},
                    "responses": [{"response_put": {"header": {"revision": rev(2)}}}],
                }
            },
        ],
    }
    assert normalize(gw.ok("kv/range", {**prefix("nest/"), "keys_only": True}), base)["kvs"] == [
        kv("nest/a", create=1, mod=1, version=1),
        kv("nest/b", create=2, mod=2, version=1),
        kv("nest/c", create=2, mod=2, version=1),
    ]


def test_txn_compare_over_a_range(gw: Gateway) -> None:
    base = gw.revision()
    gw.put("cmpr/a", "1")
    gw.put("cmpr/b", "2")
    every_version_positive = {
        "compare": [{**prefix("cmpr/"), "target": "VERSION", "result": "GREATER", "version": "0"}],
        "success": [{"request_range": {"key": b64("cmpr/a"), "keys_only": True}}],
    }
    assert txn(gw, base, every_version_positive) == {
        "header": header(2),
        "succeeded": True,
        "responses": [
            {
                "response_range": {
                    "header": {"revision": rev(2)},
                    "kvs": [kv("cmpr/a", create=1, mod=1, version=1)],
                    "count": "1",
                }
            }
        ],
    }
    # Every key in the range must satisfy the compare: cmpr/b's value is not "1".
    every_value_one = {
        "compare": [{**prefix("cmpr/"), "target": "VALUE", "result": "EQUAL", "value": b64("1")}]
    }
    assert txn(gw, base, every_value_one) == {"header": header(2)}


def test_txn_compares_on_a_missing_key(gw: Gateway) -> None:
    base = gw.revision()
    missing = b64("miss/none")
    # A missing key has version, create and mod revision 0 ...
    zeros = {
        "compare": [
            {"key": missing, "target": "VERSION", "result": "EQUAL", "version": 0},
            {"key": missing, "target": "CREATE", "result": "EQUAL"},
            {"key": missing, "target": "MOD", "result": "LESS", "mod_revision": 1},
        ]
    }
    assert txn(gw, base, zeros) == {"header": header(0), "succeeded": True}
    # ... but a VALUE compare on it always fails, even against the empty value.
    for result in ("EQUAL", "LESS", "NOT_EQUAL"):
        body = {"compare": [{"key": missing, "target": "VALUE", "result": result, "value": ""}]}
        assert txn(gw, base, body) == {"header": header(0)}, result


def test_txn_lease_compare_and_empty_txn(gw: Gateway) -> None:
    base = gw.revision()
    gw.put("tl/a", "1")
    no_lease = {
        "compare": [{"key": b64("tl/a"), "target": "LEASE", "result": "EQUAL", "lease": "0"}]
    }
    assert txn(gw, base, no_lease) == {"header": header(1), "succeeded": True}
    some_lease = {
        "compare": [{"key": b64("tl/a"), "target": "LEASE", "result": "EQUAL", "lease": 1234}]
    }
    assert txn(gw, base, some_lease) == {"header": header(1)}
    assert txn(gw, base, {}) == {"header": header(1), "succeeded": True}
    assert txn(gw, base, {"compare": [], "success": [], "failure": []}) == {
        "header": header(1),
        "succeeded": True,
    }


def test_txn_writes_share_one_revision_reads_alone_do_not_bump(gw: Gateway) -> None:
    base = gw.revision()
    gw.put("tw/a", "1")
    body = {
        "success": [
            {"request_put": {"key": b64("tw/b"), "value": b64("2")}},
            {"request_delete_range": {"key": b64("tw/a")}},
            {"request_range": {**prefix("tw/"), "keys_only": True}},
        ]
    }
    assert txn(gw, base, body) == {
        "header": header(2),
        "succeeded": True,
        "responses": [
            {"response_put": {"header": {"revision": rev(2)}}},
            {"response_delete_range": {"header": {"revision": rev(2)}, "deleted": "1"}},
            {
                "response_range": {
                    "header": {"revision": rev(2)},
                    "kvs": [kv("tw/b", create=2, mod=2, version=1)],
                    "count": "1",
                }
            },
        ],
    }
    reads_only = {"success": [{"request_range": {"key": b64("tw/b")}}]}
    assert txn(gw, base, reads_only)["header"] == header(2)
    # A delete that deletes nothing is no write either.
    nothing = {"success": [{"request_delete_range": {"key": b64("tw/none")}}]}
    assert txn(gw, base, nothing) == {
        "header": header(2),
        "succeeded": True,
        "responses": [{"response_delete_range": {"header": {"revision": rev(2)}}}],
    }


@pytest.mark.parametrize(
    "success",
    [
        pytest.param(
            [
                {"request_put": {"key": "eA==", "value": "MQ=="}},
                {"request_put": {"key": "eA==", "value": "Mg=="}},
            ],
            id="put-put",
        ),
        pytest.param(
            [
                {"request_put": {"key": b64("dup/a")}},
                {"request_delete_range": {"key": b64("dup/a")}},
            ],
            id="put-delete",
        ),
        pytest.param(
            [{"request_delete_range": prefix("dup/")}, {"request_put": {"key": b64("dup/b")}}],
            id="range-delete-covers-put",
        ),
        pytest.param(
            [
                {"request_put": {"key": b64("dup/c")}},
                {"request_txn": {"success": [{"request_put": {"key": b64("dup/c")}}]}},
            ],
            id="nested",
        ),
    ],
)
def test_txn_writing_a_key_twice_is_rejected(gw: Gateway, success: list) -> None:
    before = gw.revision()
    reply = gw.post("kv/txn", {"success": success})
    assert (reply.status, reply.json) == (
        400,
        error_body("etcdserver: duplicate key given in txn request", 3),
    )
    assert gw.revision() == before


# --- compaction -------------------------------------------------------------------------
# Compaction affects every key; the tests above only read revisions they wrote themselves,
# which are never older than the compaction below, so it runs last in this module.


def test_compaction_and_reads_at_compacted_revisions(gw: Gateway) -> None:
    base = gw.revision()
    for value in ("1", "2", "3", "4"):
        gw.put("cmp/a", value)

    def compact(body: dict) -> tuple[int, dict]:
        reply = gw.post("kv/compaction", body)
        return reply.status, normalize(reply.json, base)

    assert compact({"revision": str(base + 2)}) == (200, {"header": header(4)})
    assert compact({"revision": str(base + 2)}) == (400, COMPACTED)  # the same again
    assert compact({"revision": base + 1}) == (400, COMPACTED)  # older
    assert compact({"revision": base + 5}) == (400, FUTURE)
    assert compact({"revision": base + 3, "physical": True}) == (200, {"header": header(4)})

    reply = gw.post("kv/range", {"key": b64("cmp/a"), "revision": base + 2})
    assert (reply.status, reply.json) == (400, COMPACTED)
    # The compaction revision itself stays readable.
    assert normalize(gw.ok("kv/range", {"key": b64("cmp/a"), "revision": base + 3}), base) == {
        "header": header(4),
        "kvs": [kv("cmp/a", "3", create=1, mod=3, version=3)],
        "count": "1",
    }
    assert gw.revision() == base + 4  # compaction is not a write


# --- the gateway itself -----------------------------------------------------------------


def test_v3beta_is_the_same_gateway(store_cluster_module: StoreClusterHandle, gw: Gateway) -> None:
    base = gw.revision()
    beta = Gateway(store_cluster_module.endpoints[0], prefix="/v3beta")
    assert normalize(beta.put("beta/a", "1"), base) == {"header": header(1)}
    via_v3 = gw.post("kv/range", {"key": b64("beta/a")})
    via_beta = beta.post("kv/range", {"key": b64("beta/a")})
    assert (via_beta.status, via_beta.content_type) == (200, "application/json")
    assert via_beta.json == via_v3.json
    assert normalize(via_beta.json, base)["kvs"] == [kv("beta/a", "1", create=1, mod=1, version=1)]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/v3alpha/kv/range", 404),
        ("POST", "/v3/kv/nope", 404),
        ("POST", "/v4/kv/range", 404),
        ("GET", "/v3/kv/range", 405),
        ("GET", "/v3/kv/put", 405),
        ("GET", "/v3/watch", 405),
        ("GET", "/v3/lease/grant", 405),
    ],
)
def test_unknown_paths_and_methods_get_plain_text(
    gw: Gateway, method: str, path: str, status: int
) -> None:
    before = gw.revision()
    body = json.dumps({"key": b64("x"), "value": b64("y")}).encode() if method == "POST" else None
    code, headers, reply = http.request(gw.endpoint, path, method=method, body=body)
    assert code == status
    assert headers.get("Content-Type", "").startswith("text/plain")
    text = reply.decode().strip().lower()
    assert ("not found" if status == 404 else "method not allowed") in text
    assert gw.revision() == before


def test_version_and_health(gw: Gateway) -> None:
    code, headers, body = http.get(gw.endpoint, "/version")
    assert (code, headers.get("Content-Type")) == (200, "application/json")
    version = json.loads(body)
    assert set(version) == {"etcdserver", "etcdcluster"}
    assert re.fullmatch(r"3\.4\.\d+", version["etcdserver"]), version
    assert version["etcdcluster"] == "3.4.0"

    code, _, body = http.get(gw.endpoint, "/health")
    assert (code, json.loads(body)) == (200, {"health": "true"})


def test_replies_are_json_without_a_request_content_type(gw: Gateway) -> None:
    """etcd3gw sends txn bodies without Content-Type; a raw request has none at all."""
    base = gw.revision()
    body = json.dumps({"success": [{"request_put": {"key": b64("noct/a"), "value": b64("1")}}]})
    with ChunkedStream(gw.endpoint, "/v3/kv/txn", body.encode()) as reply:
        assert reply.status == 200
        assert reply.headers.get("content-type") == "application/json"
        assert normalize(json.loads(reply.body()), base) == {
            "header": header(1),
            "succeeded": True,
            "responses": [{"response_put": {"header": {"revision": rev(1)}}}],
        }


def test_int64_input_as_json_numbers_output_as_strings(gw: Gateway) -> None:
    base = gw.revision()
    gw.put("num/a", "1")
    gw.put("num/b", "2")
    reply = gw.ok(
        "kv/range", {**prefix("num/"), "limit": 1, "revision": base + 2, "min_mod_revision": 0}
    )
    assert normalize(reply, base) == {
        "header": header(2),
        "kvs": [kv("num/a", "1", create=1, mod=1, version=1)],
        "more": True,
        "count": "2",
    }
    raw = reply["kvs"][0]
    assert all(isinstance(raw[f], str) for f in ("create_revision", "mod_revision", "version"))
    assert isinstance(reply["count"], str) and isinstance(reply["header"]["revision"], str)
