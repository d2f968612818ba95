"""PyPI's etcd3gw client (2.7.0) against the store: the checks of the etcd anchor README.

etcd3gw is a real, unforgiving user of the JSON gateway: it discovers the prefix from
GET /version, sends int64s as JSON numbers, reads absence as zero (`'deleted' in
reply`), uses the kv/lease/* alias paths, `json.loads` every watch chunk, and builds
its Lock from a txn. Whatever it needs, a store that claims to be etcd must provide.

etcd3gw's watch iterator blocks without a timeout, so events are taken on a helper
thread with a bounded wait, and the watch is cancelled (which unblocks it) either way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import etcd3gw
import pytest
from etcd3gw import exceptions
from etcd3gw.client import Etcd3Client

from tests.clusters import StoreClusterHandle, wait_until
from tests.compat_helpers import DECIMAL

EVENT_TIMEOUT = 10.0
EXPIRY_TIMEOUT = 15.0


@pytest.fixture
def client(store_cluster_module: StoreClusterHandle) -> Iterator[Etcd3Client]:
    url = urlsplit(store_cluster_module.endpoints[0])
    assert url.hostname is not None and url.port is not None
    c = etcd3gw.client(host=url.hostname, port=url.port, timeout=10)
    try:
        yield c
    finally:
        c.session.close()


def take_events(
    watch: tuple[Iterator[dict], Callable[[], None]],
    count: int,
    then: Callable[[], Any] | None = None,
) -> list[dict]:
    """`count` events from an etcd3gw watch, after running `then`; cancels the watch."""
    events_iter, cancel = watch
    got: list[dict] = []
    done = threading.Event()

    def collect() -> None:
        try:
            for event in events_iter:
                got.append(event)
                if len(got) == count:
                    break
        finally:
            done.set()

    reader = threading.Thread(target=collect, name="etcd3gw-watch-reader", daemon=True)
    reader.start()
    try:
        if then is not None:
            then()
        finished = done.wait(EVENT_TIMEOUT)
    finally:
        cancel()
        reader.join(EVENT_TIMEOUT)
    assert finished, f"{len(got)} of {count} events within {EVENT_TIMEOUT} s: {got}"
    return got


def summary(event: dict) -> tuple:
    """(type, key, value) of an etcd3gw event; etcd3gw decodes key and value to bytes."""
    return event.get("type", "PUT"), event["kv"]["key"], event["kv"].get("value", b"")


# --- kv ---------------------------------------------------------------------------------


def test_put_get_get_prefix_get_all(client: Etcd3Client) -> None:
    assert client.put("/gw/kv/a", "1") is True
    assert client.put("/gw/kv/b", b"\x00\xff") is True
    assert client.put("/gw/kv/c", "") is True
    assert client.get("/gw/kv/a") == [b"1"]
    assert client.get("/gw/kv/missing") == []

    [(value, meta)] = client.get("/gw/kv/a", metadata=True)
    assert value == b"1" and meta["key"] == b"/gw/kv/a"
    assert meta["version"] == "1" and DECIMAL.match(meta["mod_revision"])

    prefix = client.get_prefix("/gw/kv/")
    assert [(meta["key"], value) for value, meta in prefix] == [
        (b"/gw/kv/a", b"1"),
        (b"/gw/kv/b", b"\x00\xff"),
        (b"/gw/kv/c", b""),
    ]
    descending = client.get_prefix("/gw/kv/", sort_order="descend", sort_target="key")
    assert [meta["key"] for _, meta in descending] == [b"/gw/kv/c", b"/gw/kv/b", b"/gw/kv/a"]

    everything = {meta["key"]: value for value, meta in client.get_all()}
    assert everything[b"/gw/kv/a"] == b"1" and everything[b"/gw/kv/c"] == b""


def test_create_and_replace(client: Etcd3Client) -> None:
    assert client.create("/gw/cas/a", "1") is True
    assert client.create("/gw/cas/a", "2") is False
    assert client.get("/gw/cas/a") == [b"1"]
    assert client.replace("/gw/cas/a", "1", "3") is True
    assert client.replace("/gw/cas/a", "1", "4") is False
    assert client.replace("/gw/cas/missing", "", "x") is False  # VALUE compare on a missing key
    assert client.get("/gw/cas/a") == [b"3"]


def test_delete_and_delete_prefix(client: Etcd3Client) -> None:
    for key in ("/gw/del/a", "/gw/del/b", "/gw/del/c"):
        client.put(key, "x")
    assert client.delete("/gw/del/a") is True
    assert client.delete("/gw/del/a") is False  # relies on "deleted" being absent
    assert client.delete_prefix("/gw/del/") is True
    assert client.delete_prefix("/gw/del/") is False
    assert client.get_prefix("/gw/del/") == []


# --- leases -----------------------------------------------------------------------------


def test_lease_grant_ttl_keys_refresh_revoke(client: Etcd3Client) -> None:
    lease = client.lease(ttl=30)
    assert lease.id > 0
    assert 28 <= lease.ttl() <= 30
    assert lease.keys() == []
    client.put("/gw/lease/a", "1", lease=lease)
    client.put("/gw/lease/b", "2", lease=lease)
    assert sorted(lease.keys()) == [b"/gw/lease/a", b"/gw/lease/b"]
    assert lease.refresh() == 30
    [(_, meta)] = client.get("/gw/lease/a", metadata=True)
    assert meta["lease"] == str(lease.id)

    assert lease.revoke() is True
    assert client.get_prefix("/gw/lease/") == []
    assert lease.ttl() == -1
    assert lease.refresh() == -1  # keepalive of a gone lease: TTL absent
    with pytest.raises(exceptions.Etcd3Exception):
        lease.revoke()  # 404


def test_lease_expiry(client: Etcd3Client) -> None:
    lease = client.lease(ttl=3)
    client.put("/gw/expire/a", "1", lease=lease)
    assert client.get("/gw/expire/a") == [b"1"]
    wait_until(lambda: client.get("/gw/expire/a") == [], EXPIRY_TIMEOUT, what="lease expiry")
    assert lease.ttl() == -1


def test_error_classes(client: Etcd3Client) -> None:
    grant = client.get_url("/lease/grant")
    client.post(grant, json={"TTL": 30, "ID": 4242})
    with pytest.raises(exceptions.PreconditionFailedError):  # 412: lease exists
        client.post(grant, json={"TTL": 30, "ID": 4242})
    client.post(client.get_url("/kv/lease/revoke"), json={"ID": 4242})
    with pytest.raises(exceptions.Etcd3Exception) as unknown_lease:  # 404
        client.put("/gw/err/a", "1", lease=etcd3gw.Lease(999, client))
    assert type(unknown_lease.value) is exceptions.Etcd3Exception
    assert client.get("/gw/err/a") == []


# --- watch ------------------------------------------------------------------------------


def test_watch(client: Etcd3Client) -> None:
    def writes() -> None:
        client.put("/gw/watch/a", "1")
        client.put("/gw/watch/other", "x")
        client.put("/gw/watch/a", "2")
        client.delete("/gw/watch/a")

    events = take_events(client.watch("/gw/watch/a"), 3, then=writes)
    assert [summary(e) for e in events] == [
        ("PUT", b"/gw/watch/a", b"1"),
        ("PUT", b"/gw/watch/a", b"2"),
        ("DELETE", b"/gw/watch/a", b""),
    ]


def test_watch_prefix(client: Etcd3Client) -> None:
    def writes() -> None:
        client.put("/gw/wp/a", "1")
        client.put("/gw/wq", "outside")
        client.put("/gw/wp/b", "2")

    events = take_events(client.watch_prefix("/gw/wp/"), 2, then=writes)
    assert [summary(e) for e in events] == [("PUT", b"/gw/wp/a", b"1"), ("PUT", b"/gw/wp/b", b"2")]


def test_watch_with_start_revision_replays_history(client: Etcd3Client) -> None:
    client.put("/gw/ws/a", "1")
    [(_, meta)] = client.get("/gw/ws/a", metadata=True)
    first = int(meta["mod_revision"])
    client.put("/gw/ws/a", "2")
    client.delete("/gw/ws/a")
    events = take_events(client.watch("/gw/ws/a", start_revision=first), 3)
    assert [summary(e) for e in events] == [
        ("PUT", b"/gw/ws/a", b"1"),
        ("PUT", b"/gw/ws/a", b"2"),
        ("DELETE", b"/gw/ws/a", b""),
    ]
    prefix_events = take_events(client.watch_prefix("/gw/ws/", start_revision=first + 1), 2)
    assert [summary(e) for e in prefix_events] == [
        ("PUT", b"/gw/ws/a", b"2"),
        ("DELETE", b"/gw/ws/a", b""),
    ]


def test_watch_once(client: Etcd3Client) -> None:
    client.put("/gw/wo/a", "1")
    [(_, meta)] = client.get("/gw/wo/a", metadata=True)
    event = client.watch_once(
        "/gw/wo/a", timeout=EVENT_TIMEOUT, start_revision=int(meta["mod_revision"])
    )
    assert summary(event) == ("PUT", b"/gw/wo/a", b"1")
    assert event["kv"]["version"] == "1"
    with pytest.raises(exceptions.WatchTimedOut):
        client.watch_once("/gw/wo/never", timeout=0.3)


# --- lock, status, members --------------------------------------------------------------


def test_lock(client: Etcd3Client) -> None:
    first = client.lock("gw-lock", ttl=30)
    second = client.lock("gw-lock", ttl=30)
    third = client.lock("gw-other", ttl=30)
    try:
        assert first.acquire() is True
        assert first.is_acquired() is True
        assert second.acquire() is False
        assert second.is_acquired() is False
        assert first.refresh() == 30
        assert first.release() is True
        assert first.release() is False  # no longer ours
        assert second.acquire() is True
        with third:
            assert third.is_acquired() is True
        assert third.is_acquired() is False
    finally:
        for lock in (first, second, third):
            if lock.lease is not None:
                lock.lease.revoke()
    assert client.get("/locks/gw-lock") == []


def test_status_and_members(client: Etcd3Client, store_cluster_module: StoreClusterHandle) -> None:
    status = client.status()
    assert status["version"].startswith("3.4.")
    members = client.members()
    assert len(members) == len(store_cluster_module.endpoints)
    ids = {m["ID"] for m in members}
    assert status["leader"] in ids
    assert status["header"]["member_id"] in ids
    assert sorted(url for m in members for url in m["clientURLs"]) == sorted(
        store_cluster_module.endpoints
    )
