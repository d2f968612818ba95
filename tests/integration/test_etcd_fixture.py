"""The cluster fixtures themselves: real processes that can be broken and brought back.

These tests pin down what every other integration test relies on: members answer on
their endpoints, writes on one are read linearizably on another, killing the leader
leaves a cluster that elects a new one and takes writes, and a member restarted on its
data directory catches up.
"""

from __future__ import annotations

import json

from tests import http
from tests.clusters import EtcdCluster, StoreClusterHandle, wait_for_leader, wait_until

WRITE_TIMEOUT = 15.0


def put(endpoint: str, key: str, value: str) -> tuple[int, dict]:
    code, _, body = http.post_json(
        endpoint, "/v3/kv/put", {"key": http.b64(key), "value": http.b64(value)}
    )
    return code, json.loads(body)


def get(endpoint: str, key: str, *, serializable: bool = False) -> tuple[int, dict]:
    request = {"key": http.b64(key)}
    if serializable:
        request["serializable"] = True
    code, _, body = http.post_json(endpoint, "/v3/kv/range", request)
    return code, json.loads(body)


def values(reply: dict) -> list[bytes]:
    return [http.unb64(kv["value"]) for kv in reply.get("kvs", [])]


def put_eventually(endpoint: str, key: str, value: str, timeout: float = WRITE_TIMEOUT) -> dict:
    """Put, retrying while the cluster is between leaders; the reply of the put that took."""
    replies: list[dict] = []

    def attempt() -> bool:
        try:
            code, reply = put(endpoint, key, value)
        except OSError:
            return False
        if code != 200:
            return False
        replies.append(reply)
        return True

    wait_until(attempt, timeout, interval=0.2, what=f"a successful put on {endpoint}")
    return replies[-1]


def test_put_then_linearizable_read_on_another_member(etcd_cluster: EtcdCluster) -> None:
    assert len(etcd_cluster.endpoints) == 3
    assert len(set(etcd_cluster.endpoints)) == 3

    code, reply = put(etcd_cluster.endpoints[0], "fixture/a", "1")
    assert code == 200, reply
    revision = int(reply["header"]["revision"])

    code, reply = get(etcd_cluster.endpoints[1], "fixture/a")
    assert code == 200, reply
    assert values(reply) == [b"1"]
    assert int(reply["header"]["revision"]) >= revision


def test_leader_kill_then_write_on_survivor_then_restart(etcd_cluster: EtcdCluster) -> None:
    cluster = etcd_cluster
    code, _ = put(cluster.endpoints[0], "fixture/before", "x")
    assert code == 200

    old_leader = cluster.leader_index()
    cluster.kill(old_leader)
    survivors = [i for i in range(3) if i != old_leader]

    new_leader = wait_for_leader(cluster)
    assert new_leader in survivors

    writer, reader = survivors
    put_eventually(cluster.endpoints[writer], "fixture/after", "y")
    code, reply = get(cluster.endpoints[reader], "fixture/after")
    assert code == 200, reply
    assert values(reply) == [b"y"]

    cluster.start(old_leader)
    restarted = cluster.endpoints[old_leader]
    # The restarted member catches up from its peers: its own (serializable) view first,
    # then a linearizable read through it.
    wait_until(
        lambda: values(get(restarted, "fixture/after", serializable=True)[1]) == [b"y"],
        WRITE_TIMEOUT,
        what="the restarted member to catch up",
    )
    code, reply = get(restarted, "fixture/before")
    assert code == 200, reply
    assert values(reply) == [b"x"]
    put_eventually(restarted, "fixture/restarted", "z")


def test_every_handle_operation(store_cluster: StoreClusterHandle) -> None:
    """stop/start, pause/resume and leader_index work for every kind of store."""
    cluster = store_cluster
    first = wait_for_leader(cluster)

    follower = (first + 1) % 3
    cluster.pause(follower)
    put_eventually(cluster.endpoints[first], "handle/paused", "1")
    cluster.resume(follower)
    wait_until(
        lambda: values(get(cluster.endpoints[follower], "handle/paused")[1]) == [b"1"],
        WRITE_TIMEOUT,
        what="the resumed member to serve the write",
    )

    cluster.stop(follower)
    put_eventually(cluster.endpoints[first], "handle/stopped", "2")
    cluster.start(follower)
    wait_until(
        lambda: values(get(cluster.endpoints[follower], "handle/stopped")[1]) == [b"2"],
        WRITE_TIMEOUT,
        what="the restarted member to serve the write",
    )
    assert wait_for_leader(cluster) in range(3)
