"""kubelite-only limits: answers stay bounded however much a range matches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import http
from tests.kubelite_cluster import KubeliteCluster

KEYS = 1500
VALUE = "v" * 200


@pytest.fixture
def small_cluster(tmp_path: Path) -> Iterator[KubeliteCluster]:
    cluster = KubeliteCluster(3, tmp_path, extra_args=("--max-response-bytes", "200000"))
    try:
        yield cluster
    finally:
        cluster.close()


def _put_many(endpoint: str) -> None:
    # 100 puts per txn keeps the set-up fast; the txn limit is 128 operations.
    for start in range(0, KEYS, 100):
        ops = [{"request_put": {"key": http.b64(f"big/{i:05d}"), "value": http.b64(VALUE)}}
               for i in range(start, min(start + 100, KEYS))]
        code, _, body = http.post_json(endpoint, "/v3/kv/txn", {"success": ops})
        assert code == 200, body


def test_a_huge_range_gets_code_8_and_paging_still_works(small_cluster: KubeliteCluster) -> None:
    endpoint = small_cluster.endpoints[0]
    _put_many(endpoint)
    everything = {"key": http.b64("big/"), "range_end": http.b64("big0")}
    code, _, body = http.post_json(endpoint, "/v3/kv/range", everything)
    reply = json.loads(body)
    assert code == 429
    assert reply["code"] == 8
    assert "larger than max" in reply["error"]

    code, _, body = http.post_json(endpoint, "/v3/kv/range", {**everything, "limit": 500})
    page = json.loads(body)
    assert code == 200
    assert len(page["kvs"]) == 500
    assert page["more"] is True
    assert page["count"] == str(KEYS)

    code, _, body = http.post_json(endpoint, "/v3/kv/range", {**everything, "count_only": True})
    assert code == 200
    assert json.loads(body)["count"] == str(KEYS)
