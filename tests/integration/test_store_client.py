"""store.client against a real 3-member cluster of every store kind (real etcd 3.4 first).

Each test is a plain function that runs one coroutine with `asyncio.run`, bounded by
TEST_TIMEOUT. The failure tests break members through the fixture (kill = crash,
pause = hung process) and check what the client promises: reads fail over, writes fail
over only when nothing was sent, and a watch resumes elsewhere with every revision
delivered exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import psutil
import pytest

from store import errors
from store.client import (
    Compare,
    DeleteResult,
    Op,
    PutResult,
    SortOrder,
    SortTarget,
    StoreClient,
    StoreUnavailable,
    WatchBatch,
    WatchCompacted,
    prefix_range_end,
)
from store.kv_types import DELETE, PUT
from tests import ports
from tests.clusters import StoreClusterHandle, wait_for_leader

TEST_TIMEOUT = 90.0
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, TEST_TIMEOUT)

    return asyncio.run(bounded())


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.05)


def follower_index(cluster: StoreClusterHandle) -> int:
    return (wait_for_leader(cluster) + 1) % len(cluster.endpoints)


def endpoints_starting_with(cluster: StoreClusterHandle, first: int) -> list[str]:
    """All endpoints, `first` in front: the client tries it first."""
    rest = [e for i, e in enumerate(cluster.endpoints) if i != first]
    return [cluster.endpoints[first], *rest]


# --- KV ---------------------------------------------------------------------------------------


def test_put_get_range_delete(store_cluster: StoreClusterHandle) -> None:
    async def body() -> None:
        async with StoreClient(store_cluster.endpoints) as store:
            first = await store.put(b"kv/a", b"1")
            second = await store.put("kv/a", "2", prev_kv=True)
            assert second.revision == first.revision + 1
            assert second.prev_kv is not None and second.prev_kv.value == b"1"
            assert (await store.put(b"kv/b", b"", prev_kv=True)).prev_kv is None
            await store.put(b"kv/c", b"\x00\xff")

            kv = await store.get(b"kv/a")
            assert kv is not None
            assert (kv.key, kv.value, kv.version) == (b"kv/a", b"2", 2)
            assert (kv.create_revision, kv.mod_revision) == (first.revision, second.revision)
            assert await store.get(b"kv/missing") is None
            old = await store.get(b"kv/a", revision=first.revision)
            assert old is not None and old.value == b"1"
            assert (await store.get(b"kv/a", serializable=True)) is not None

            page = await store.get_prefix(b"kv/", limit=2)
            assert [k.key for k in page.kvs] == [b"kv/a", b"kv/b"]
            assert (page.more, page.count) == (True, 3)
            assert page.revision >= second.revision + 2
            counted = await store.get_prefix(b"kv/", count_only=True)
            assert (counted.kvs, counted.count) == ([], 3)
            keys = await store.range(
                b"kv/", prefix_range_end(b"kv/"), keys_only=True,
                sort_order=SortOrder.DESCEND, sort_target=SortTarget.KEY,
            )
            assert [(k.key, k.value) for k in keys.kvs] == [
                (b"kv/c", b""), (b"kv/b", b""), (b"kv/a", b"")
            ]
            assert [k.value for k in (await store.get_prefix("kv/")).kvs] == [b"2", b"", b"\x00\xff"]

            deleted = await store.delete(b"kv/a", b"kv/c", prev_kv=True)
            assert deleted.deleted == 2
            assert [k.key for k in deleted.prev_kvs] == [b"kv/a", b"kv/b"]
            again = await store.delete(b"kv/a")
            assert again == DeleteResult(deleted.revision, 0, [])  # no new revision

    run(body())


def test_errors_come_back_as_etcd_errors(store_cluster: StoreClusterHandle) -> None:
    async def body() -> None:
        async with StoreClient(store_cluster.endpoints) as store:
            rev = (await store.put(b"e/a", b"1")).revision
            with pytest.raises(errors.EtcdError) as future:
                await store.get(b"e/a", revision=rev + 1000)
            assert future.value == errors.future_revision()
            with pytest.raises(errors.EtcdError) as no_lease:
                await store.put(b"e/b", b"1", lease=999)
            assert no_lease.value == errors.lease_not_found()
            with pytest.raises(errors.EtcdError) as duplicate:
                await store.txn([], [Op.put(b"e/c", b"1"), Op.put(b"e/c", b"2")])
            assert duplicate.value == errors.duplicate_key()

    run(body())


def test_txn_compare_and_swap(store_cluster: StoreClusterHandle) -> None:
    async def increment(store: StoreClient, key: bytes) -> int:
        """Optimistic concurrency as the apiserver does it: read, CAS, retry on conflict."""
        for attempts in range(1, 50):
            kv = await store.get(key)
            assert kv is not None
            new = str(int(kv.value) + 1).encode()
            result = await store.txn(
                [Compare.mod_revision(key, "=", kv.mod_revision)], [Op.put(key, new)],
                [Op.get(key)],
            )
            if result.succeeded:
                return attempts
            assert result.responses[0].kvs[0].mod_revision > kv.mod_revision  # type: ignore[union-attr]
        raise AssertionError("CAS never succeeded")

    async def body() -> None:
        async with StoreClient(store_cluster.endpoints) as store:
            created = await store.txn(
                [Compare.create_revision(b"t/n", "=", 0)], [Op.put(b"t/n", b"0")], []
            )
            assert created.succeeded and isinstance(created.responses[0], PutResult)
            not_again = await store.txn(
                [Compare.create_revision(b"t/n", "=", 0)], [Op.put(b"t/n", b"0")], []
            )
            assert not not_again.succeeded and not_again.responses == []
            attempts = await asyncio.gather(*(increment(store, b"t/n") for _ in range(8)))
            kv = await store.get(b"t/n")
            assert kv is not None and kv.value == b"8" and kv.version == 9
            assert max(attempts) > 1  # the conflicts really happened and were retried

            guarded = await store.txn(
                [Compare.value(b"t/n", "=", b"8"), Compare.version(b"t/n", ">", 0),
                 Compare.lease(b"t/n", "=", 0)],
                [Op.delete(b"t/n", prev_kv=True), Op.txn([], [Op.get(b"t/", b"t0", count_only=True)])],
            )
            assert guarded.succeeded
            removed, nested = guarded.responses
            assert isinstance(removed, DeleteResult) and removed.prev_kvs[0].value == b"8"
            assert nested.responses[0].count == 0  # type: ignore[union-attr]
            read_only = await store.txn([], [Op.get(b"t/n")])
            assert read_only.succeeded and read_only.revision == guarded.revision

    run(body())


def test_compact(store_cluster: StoreClusterHandle) -> None:
    async def body() -> None:
        async with StoreClient(store_cluster.endpoints) as store:
            first = (await store.put(b"c/a", b"1")).revision
            second = (await store.put(b"c/a", b"2")).revision
            assert await store.compact(second, physical=True) >= second
            with pytest.raises(errors.EtcdError) as old:
                await store.get(b"c/a", revision=first)
            assert old.value == errors.compacted()
            with pytest.raises(errors.EtcdError) as twice:
                await store.compact(second)
            assert twice.value == errors.compacted()
            assert (await store.get(b"c/a", revision=second)) is not None

    run(body())


# --- leases -------------------------------------------------------------------------------------


def test_leases_attach_keepalive_and_revoke(store_cluster: StoreClusterHandle) -> None:
    async def body() -> None:
        async with StoreClient(store_cluster.endpoints) as store:
            lease, ttl = await store.lease_grant(30)
            assert lease > 0 and ttl == 30
            chosen, _ = await store.lease_grant(20, id=777)
            assert chosen == 777
            with pytest.raises(errors.EtcdError) as exists:
                await store.lease_grant(20, id=777)
            assert exists.value == errors.lease_exists()
            assert {lease, 777} <= set(await store.leases())

            await store.put(b"l/a", b"1", lease=lease)
            await store.put(b"l/b", b"2", lease=lease)
            await store.put(b"l/keep", b"3")
            kv = await store.get(b"l/a")
            assert kv is not None and kv.lease == lease
            info = await store.lease_time_to_live(lease, keys=True)
            assert (info.id, info.granted_ttl) == (lease, 30) and 0 < info.ttl <= 30
            assert sorted(info.keys) == [b"l/a", b"l/b"]
            assert await store.lease_keepalive_once(lease) == 30

            await store.lease_revoke(lease)
            assert [k.key for k in (await store.get_prefix(b"l/")).kvs] == [b"l/keep"]
            assert (await store.lease_time_to_live(lease)).ttl == -1
            with pytest.raises(errors.EtcdError) as gone:
                await store.lease_keepalive_once(lease)
            assert gone.value == errors.lease_not_found()
            with pytest.raises(errors.EtcdError) as revoked:
                await store.lease_revoke(lease)
            assert revoked.value == errors.lease_not_found()
            assert lease not in await store.leases()

    run(body())


# --- cluster and maintenance -------------------------------------------------------------------


def test_members_status_and_leader(store_cluster: StoreClusterHandle) -> None:
    wait_for_leader(store_cluster)

    async def body() -> None:
        async with StoreClient(store_cluster.endpoints) as store:
            members = await store.member_list()
            assert sorted(u for m in members for u in m.client_urls) == sorted(
                store_cluster.endpoints
            )
            statuses = [await store.status(e) for e in store_cluster.endpoints]
            assert [s.endpoint for s in statuses] == store_cluster.endpoints
            assert {s.member_id for s in statuses} == {m.id for m in members}
            (leader_id,) = {s.leader for s in statuses}
            (leader,) = [s for s in statuses if s.is_leader]
            assert leader.member_id == leader_id and leader.version
            assert await store.leader_endpoint() == leader.endpoint
            assert store_cluster.endpoints[store_cluster.leader_index()] == leader.endpoint
            assert (await store.status()).leader == leader_id

            spare = ports.free_port()
            try:
                added, after_add = await store.member_add(
                    [f"http://127.0.0.1:{spare}"], is_learner=True
                )
                assert added.id and added.is_learner and added.name == ""
                assert added.id in {m.id for m in after_add} and len(after_add) == 4
                after_remove = await store.member_remove(added.id)
                assert {m.id for m in after_remove} == {m.id for m in members}
            finally:
                ports.release([spare])
            with pytest.raises(errors.EtcdError) as unknown:
                await store.member_remove(added.id)
            assert unknown.value.code == errors.GrpcCode.NOT_FOUND

    run(body())


# --- watch ----------------------------------------------------------------------------------


def test_watch_replays_history_then_live_with_prev_kv(store_cluster: StoreClusterHandle) -> None:
    async def body() -> None:
        async with StoreClient(store_cluster.endpoints) as store:
            start = (await store.put(b"w/a", b"1")).revision
            await store.put(b"w/a", b"2")
            await store.delete(b"w/a")
            await store.txn([], [Op.put(b"w/b", b"1"), Op.put(b"w/c", b"1")])
            await store.put(b"other", b"x")
            async with store.watch_prefix(b"w/", start_revision=start, prev_kv=True) as watch:
                seen: list[tuple[int, int, bytes, bytes | None]] = []

                async def collect(count: int) -> None:
                    async for batch in watch:
                        for e in batch.events:
                            prev = e.prev_kv.value if e.prev_kv else None
                            seen.append((e.kv.mod_revision, e.type, e.kv.key, prev))
                        if len(seen) >= count:
                            return

                await collect(5)
                assert seen == [
                    (start, PUT, b"w/a", None),
                    (start + 1, PUT, b"w/a", b"1"),
                    (start + 2, DELETE, b"w/a", b"2"),
                    (start + 3, PUT, b"w/b", None),
                    (start + 3, PUT, b"w/c", None),
                ]
                live = (await store.put(b"w/b", b"2")).revision
                await collect(6)
                assert seen[-1] == (live, PUT, b"w/b", b"1")

            async with store.watch(b"w/b", filters=["NOPUT"]) as deletes_only:
                await store.put(b"w/b", b"3")
                gone = (await store.delete(b"w/b")).revision
                batch = await anext(deletes_only)
                assert [(e.type, e.kv.mod_revision) for e in batch.events] == [(DELETE, gone)]

    run(body())


def test_watch_from_compacted_revision_raises(store_cluster: StoreClusterHandle) -> None:
    async def body() -> None:
        async with StoreClient(store_cluster.endpoints) as store:
            first = (await store.put(b"wc/a", b"1")).revision
            latest = (await store.put(b"wc/a", b"2")).revision
            await store.compact(latest)
            with pytest.raises(WatchCompacted) as info:
                async with store.watch_prefix(b"wc/", start_revision=first) as watch:
                    async for _ in watch:
                        pass
            assert info.value.compact_revision == latest
            async with store.watch_prefix(b"wc/", start_revision=latest) as watch:
                batch = await anext(watch)
                assert [e.kv.mod_revision for e in batch.events] == [latest]

    run(body())


def established_connections(port: int) -> int:
    return sum(
        1 for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


def test_cancelling_the_consumer_closes_the_stream(store_cluster: StoreClusterHandle) -> None:
    endpoint = store_cluster.endpoints[0]
    port = int(endpoint.rsplit(":", 1)[1])

    async def body() -> None:
        async with StoreClient([endpoint]) as store:
            watch = store.watch(b"x/")
            await watch.__aenter__()
            assert established_connections(port) == 1

            async def consume() -> list[WatchBatch]:
                return [batch async for batch in watch]

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await eventually(
                lambda: asyncio.sleep(0, established_connections(port) == 0), 5, "stream closed"
            )
            assert watch.endpoint == ""

    run(body())


async def put_surely(store: StoreClient, key: bytes, value: bytes) -> int:
    """Put a key no one else writes; after an unknown outcome, read back before retrying."""
    for _ in range(100):
        try:
            return (await store.put(key, value)).revision
        except StoreUnavailable as unavailable:
            if unavailable.maybe_applied:
                try:
                    kv = await store.get(key)
                except StoreUnavailable:
                    kv = None
                if kv is not None and kv.value == value:
                    return kv.mod_revision
        await asyncio.sleep(0.1)
    raise AssertionError(f"could not write {key!r}")


@pytest.mark.parametrize("victim", ["follower", "leader"])
def test_watch_resumes_after_its_member_is_killed(
    store_cluster: StoreClusterHandle, victim: str
) -> None:
    """Kill the watch's member after 20 events, write 5 more while the consumer is held
    back (so they can only come from a replay on another member), then 35 live ones."""
    total, kill_at, held = 60, 20, 5
    leader = wait_for_leader(store_cluster)
    index = leader if victim == "leader" else (leader + 1) % 3
    others = [e for i, e in enumerate(store_cluster.endpoints) if i != index]

    async def body() -> None:
        async with (
            StoreClient(endpoints_starting_with(store_cluster, index), timeout=20) as watcher,
            StoreClient(others, timeout=20) as writer,
        ):
            start = (await writer.put(b"before", b"")).revision + 1
            received: list[int] = []
            written: list[int] = []
            release = asyncio.Event()
            async with watcher.watch_prefix(b"r/", start_revision=start) as watch:
                assert watch.endpoint == store_cluster.endpoints[index]

                async def consume() -> None:
                    async for batch in watch:
                        received.extend(e.kv.mod_revision for e in batch.events)
                        if len(received) >= kill_at:
                            await release.wait()
                        if len(received) >= total:
                            return

                consumer = asyncio.create_task(consume())
                for n in range(total):
                    if n == kill_at:
                        await eventually(
                            lambda: asyncio.sleep(0, len(received) == kill_at), 10, "live events"
                        )
                        store_cluster.kill(index)
                    if n == kill_at + held:
                        release.set()
                    written.append(await put_surely(writer, f"r/{n:03d}".encode(), b"v"))
                    await asyncio.sleep(0.01)
                await asyncio.wait_for(consumer, 30)
                assert watch.endpoint in others
            assert received == written
            assert len(set(received)) == total

    run(body())


def test_watch_moves_off_a_hung_member(store_cluster: StoreClusterHandle) -> None:
    """A paused member keeps the TCP stream open but says nothing: the idle probe notices."""
    index = follower_index(store_cluster)
    others = [e for i, e in enumerate(store_cluster.endpoints) if i != index]

    async def body() -> None:
        async with (
            StoreClient(
                endpoints_starting_with(store_cluster, index), timeout=10,
                read_attempt_timeout=1, watch_idle_probe=0.5,
            ) as watcher,
            StoreClient(others) as writer,
            watcher.watch_prefix(b"hw/") as watch,
        ):
            assert watch.endpoint == store_cluster.endpoints[index]
            first = (await writer.put(b"hw/a", b"1")).revision
            assert [e.kv.mod_revision for e in (await anext(watch)).events] == [first]
            store_cluster.pause(index)
            try:
                second = (await writer.put(b"hw/a", b"2")).revision
                batch = await asyncio.wait_for(anext(watch), 8)
                assert [e.kv.mod_revision for e in batch.events] == [second]
                assert watch.endpoint in others
            finally:
                store_cluster.resume(index)

    run(body())


# --- failover -----------------------------------------------------------------------------------


def test_reads_fail_over_from_a_killed_member(store_cluster: StoreClusterHandle) -> None:
    victim = follower_index(store_cluster)

    async def body() -> None:
        async with StoreClient(endpoints_starting_with(store_cluster, victim), timeout=5) as store:
            await store.put(b"f/a", b"1")
            store_cluster.kill(victim)
            began = time.monotonic()
            kv = await store.get(b"f/a")
            assert kv is not None and kv.value == b"1"
            assert len((await store.get_prefix(b"f/")).kvs) == 1
            assert await store.lease_time_to_live(1) is not None
            assert len(await store.member_list()) == 3
            assert time.monotonic() - began < 3
            with pytest.raises(StoreUnavailable) as dead:
                await store.status(store_cluster.endpoints[victim])
            assert not dead.value.maybe_applied

    run(body())


def test_reads_fail_over_from_a_hung_member(store_cluster: StoreClusterHandle) -> None:
    victim = follower_index(store_cluster)

    async def body() -> None:
        endpoints = endpoints_starting_with(store_cluster, victim)
        async with StoreClient(endpoints, timeout=4, read_attempt_timeout=1) as store:
            await store.put(b"h/a", b"1")
            store_cluster.pause(victim)
            try:
                began = time.monotonic()
                kv = await store.get(b"h/a")
                assert kv is not None and kv.value == b"1"
                assert 0.9 < time.monotonic() - began < 3
            finally:
                store_cluster.resume(victim)

    run(body())


def test_put_fails_over_only_when_the_connect_failed(store_cluster: StoreClusterHandle) -> None:
    victim = follower_index(store_cluster)
    nobody = ports.free_port()

    async def body() -> None:
        endpoints = endpoints_starting_with(store_cluster, victim)
        # Refused connect: nothing was sent, so the put goes to the next endpoint.
        async with StoreClient([f"http://127.0.0.1:{nobody}", *endpoints], timeout=5) as store:
            assert (await store.put(b"p/a", b"1")).revision > 0
        # Nothing anywhere: StoreUnavailable within the timeout, certainly not applied.
        async with StoreClient([f"http://127.0.0.1:{nobody}"], timeout=1) as store:
            began = time.monotonic()
            with pytest.raises(StoreUnavailable) as refused:
                await store.put(b"p/b", b"1")
            assert not refused.value.maybe_applied and time.monotonic() - began < 2
        # Hung member: the request went out and no answer came: outcome unknown, and the
        # client must not send it to another member.
        async with StoreClient(endpoints, timeout=2) as store:
            store_cluster.pause(victim)
            try:
                with pytest.raises(StoreUnavailable) as unknown:
                    await store.put(b"p/c", b"1")
                assert unknown.value.maybe_applied
                async with StoreClient(endpoints[1:]) as others:
                    assert await others.get(b"p/c") is None
            finally:
                store_cluster.resume(victim)
        # Killed member: refused again, so the put fails over.
        store_cluster.kill(victim)
        async with StoreClient(endpoints, timeout=5) as store:
            assert (await store.put(b"p/d", b"1")).revision > 0

    try:
        run(body())
    finally:
        ports.release([nobody])
