"""Cluster-level replies (member list, status) and which member answers what.

Every member serves the gateway: reads carry the member_id of the member that served
them, writes sent to a follower are forwarded to the leader, and a default (linearizable)
read on any member sees every write acknowledged before it started, wherever that write
was sent. IDs and URLs differ between runs, so the tests check formats and how the
values relate (the leader is a member, each endpoint is one member's client URL).
"""

from __future__ import annotations

import re

import pytest

from tests.clusters import StoreClusterHandle, wait_for_leader, wait_until
from tests.compat_helpers import (
    DECIMAL,
    Gateway,
    b64,
    create_request,
    header,
    kv,
    next_result,
    normalize,
    open_watch,
)

STATUS_FIELDS = {
    "header",
    "version",
    "dbSize",
    "leader",
    "raftIndex",
    "raftTerm",
    "raftAppliedIndex",
    "dbSizeInUse",
}
LINEARIZABLE_ROUNDS = 20


@pytest.fixture
def cluster(store_cluster_module: StoreClusterHandle) -> StoreClusterHandle:
    return store_cluster_module


def member_ids(cluster: StoreClusterHandle) -> dict[str, str]:
    """endpoint → member ID, from the member list."""
    members = Gateway(cluster.endpoints[0]).ok("cluster/member/list", {})["members"]
    ids = {}
    for member in members:
        for url in member.get("clientURLs", []):
            ids[url] = member["ID"]
    return ids


def is_uint64(text: object) -> bool:
    return isinstance(text, str) and bool(DECIMAL.match(text)) and 0 < int(text) < 2**64


def test_member_list(cluster: StoreClusterHandle) -> None:
    seen = []
    for endpoint in cluster.endpoints:
        reply = Gateway(endpoint).ok("cluster/member/list", {})
        assert set(reply) == {"header", "members"}
        assert normalize(reply, 0)["header"] == header(None)  # no revision
        members = reply["members"]
        assert len(members) == len(cluster.endpoints)
        for member in members:
            assert set(member) == {"ID", "name", "peerURLs", "clientURLs"}, (
                member
            )  # isLearner false: absent
            assert is_uint64(member["ID"]) and member["name"]
            assert member["peerURLs"] and all(isinstance(u, str) for u in member["peerURLs"])
        assert len({m["ID"] for m in members}) == len({m["name"] for m in members}) == len(members)
        assert sorted(u for m in members for u in m["clientURLs"]) == sorted(cluster.endpoints)
        # The member that answered is the one this endpoint belongs to.
        [me] = [m for m in members if m["ID"] == reply["header"]["member_id"]]
        assert me["clientURLs"] == [endpoint]
        seen.append((reply["header"]["cluster_id"], sorted((m["ID"], m["name"]) for m in members)))
    assert all(s == seen[0] for s in seen), "members disagree about the cluster"


def test_status(cluster: StoreClusterHandle) -> None:
    ids = member_ids(cluster)
    wait_for_leader(cluster)
    replies = {
        endpoint: Gateway(endpoint).ok("maintenance/status", {}) for endpoint in cluster.endpoints
    }
    cluster_ids = set()
    for endpoint, reply in replies.items():
        assert set(reply) == STATUS_FIELDS, reply
        assert re.fullmatch(r"3\.4\.\d+", reply["version"]), reply
        head = reply["header"]
        assert set(head) == {"cluster_id", "member_id", "revision", "raft_term"}
        assert head["member_id"] == ids[endpoint]
        assert reply["leader"] in ids.values()
        assert reply["raftTerm"] == head["raft_term"]
        for field in ("dbSize", "dbSizeInUse", "raftIndex", "raftAppliedIndex"):
            assert is_uint64(reply[field]), (field, reply)
        assert int(reply["dbSizeInUse"]) <= int(reply["dbSize"])
        cluster_ids.add(head["cluster_id"])
    assert len(cluster_ids) == 1

    def one_leader() -> bool:
        leaders = {Gateway(e).ok("maintenance/status", {})["leader"] for e in cluster.endpoints}
        return len(leaders) == 1

    wait_until(one_leader, timeout=10.0, what="every member naming the same leader")


def test_alarm_list_is_empty_without_a_header(cluster: StoreClusterHandle) -> None:
    assert Gateway(cluster.endpoints[0]).ok("maintenance/alarm", {}) == {}


def test_every_member_answers_reads_with_its_own_member_id(cluster: StoreClusterHandle) -> None:
    ids = member_ids(cluster)
    first = Gateway(cluster.endpoints[0])
    base = first.revision()
    first.put("cl/a", "1")
    expected = {
        "header": header(1),
        "kvs": [kv("cl/a", "1", create=1, mod=1, version=1)],
        "count": "1",
    }
    cluster_ids = set()
    for endpoint in cluster.endpoints:
        gw = Gateway(endpoint)
        for serializable in (False, True):  # linearizable first: then the member has it
            reply = gw.range("cl/a", serializable=serializable)
            assert reply["header"]["member_id"] == ids[endpoint], (endpoint, serializable)
            assert normalize(reply, base) == expected, (endpoint, serializable)
            cluster_ids.add(reply["header"]["cluster_id"])
    assert len(cluster_ids) == 1


def test_a_write_on_a_follower_is_read_at_once_on_another_follower(
    cluster: StoreClusterHandle,
) -> None:
    ids = member_ids(cluster)
    leader = wait_for_leader(cluster)
    writer_endpoint, reader_endpoint = [e for i, e in enumerate(cluster.endpoints) if i != leader]
    writer, reader = Gateway(writer_endpoint), Gateway(reader_endpoint)
    for i in range(LINEARIZABLE_ROUNDS):
        put = writer.put("cl/follower", str(i))
        assert put["header"]["member_id"] == ids[writer_endpoint]
        got = reader.range("cl/follower")
        assert got["header"]["member_id"] == ids[reader_endpoint]
        assert got["kvs"][0]["value"] == b64(str(i)), f"round {i}: stale read {got}"
        assert int(got["header"]["revision"]) >= int(put["header"]["revision"])
    # The same for a txn written on a follower and a delete.
    txn = writer.ok(
        "kv/txn", {"success": [{"request_put": {"key": b64("cl/txn"), "value": b64("t")}}]}
    )
    assert txn["succeeded"] is True
    assert reader.range("cl/txn")["kvs"][0]["value"] == b64("t")
    writer.ok("kv/deleterange", {"key": b64("cl/txn")})
    assert "kvs" not in reader.range("cl/txn")


def test_a_watch_on_one_member_sees_writes_sent_to_another(cluster: StoreClusterHandle) -> None:
    ids = member_ids(cluster)
    watcher_endpoint, writer_endpoint = cluster.endpoints[1], cluster.endpoints[2]
    writer = Gateway(writer_endpoint)
    base = writer.revision()
    with open_watch(watcher_endpoint, create_request("cl/w")) as stream:
        assert normalize(next_result(stream), base) == {"header": header(0), "created": True}
        writer.put("cl/w", "1")
        event = next_result(stream)
        assert event["header"]["member_id"] == ids[watcher_endpoint]
        assert normalize(event, base) == {
            "header": header(1),
            "events": [{"kv": kv("cl/w", "1", create=1, mod=1, version=1)}],
        }
