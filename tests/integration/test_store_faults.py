"""The store's fault-tolerance claims, proven against real `kubelite store` processes.

Each test breaks a live cluster the way machines break, while a concurrent write load
(`tests.write_load`) records exactly which writes were acknowledged, and then holds the
store to its promises:

- a crashed leader (SIGKILL) costs at most a few seconds of writes, and no
  acknowledged write; the restarted member catches up;
- a crash of every member at once loses nothing that was acknowledged;
- a member cut off from the majority (a real network partition between network
  namespaces) never serves a stale linearizable read, and a cut-off leader stops
  taking writes while the majority elects a new one;
- membership changes (3 -> 5 -> 3, removing the leader once) under writes;
- a backup taken under writes restores into a fresh cluster with everything
  acknowledged before it began, and a corrupted backup is refused;
- restart time stays bounded as history grows, because the log is snapshotted.

Every test owns its clusters, which are closed (processes killed by PID, namespaces
deleted) even when it fails; their member logs are printed then.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import json
import re
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from store.client import StoreClient
from tests import http
from tests.clusters import wait_for_leader, wait_until
from tests.conftest import _managed
from tests.kubelite_cluster import KubeliteCluster
from tests.netns_cluster import NetnsKubeliteCluster, NetnsUnavailable
from tests.write_load import WriteLoad, check_history, read_prefix

T = TypeVar("T")
C = TypeVar("C", bound=KubeliteCluster)

RESUME_LIMIT = 3.0  # seconds from a leader crash to the first write accepted again
CATCH_UP_LIMIT = 15.0


def run(coro: Coroutine[Any, Any, T], timeout: float) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


@pytest.fixture
def make_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """A factory for clusters owned by the test: closed (logs shown on failure) after it."""
    with contextlib.ExitStack() as stack:
        count = 0

        def make(cls: type[C] = KubeliteCluster, **kwargs: Any) -> C:  # type: ignore[assignment]
            nonlocal count
            count += 1
            directory = tmp_path / f"cluster{count}"
            directory.mkdir()
            cluster = cls(tmp_dir=directory, **kwargs)
            return stack.enter_context(contextlib.contextmanager(_managed)(request, cluster))

        yield make


def others(cluster: KubeliteCluster, i: int) -> list[int]:
    return [j for j in cluster.live() if j != i]


def endpoints_of(cluster: KubeliteCluster, indexes: list[int]) -> list[str]:
    return [cluster.endpoints[i] for i in indexes]


async def wait_caught_up(endpoint: str, prefix: bytes, expected_keys: set[bytes],
                         revision: int, timeout: float) -> float:
    """Poll serializable reads on one member until it shows `revision` and the keys."""
    start = time.monotonic()
    last: tuple[int, int] = (0, 0)
    while True:
        try:
            kvs, seen = await read_prefix([endpoint], prefix, serializable=True, timeout=2.0)
        except Exception as exc:  # still starting: keep polling
            last = (-1, -1)
            error = repr(exc)
        else:
            error = ""
            last = (seen, len(kvs))
            if seen == revision and {kv.key for kv in kvs} == expected_keys:
                return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(
                f"{endpoint} did not catch up within {timeout} s: wanted revision {revision} "
                f"and {len(expected_keys)} keys, last saw {last} {error}")
        await asyncio.sleep(0.1)


async def assert_converged(cluster: KubeliteCluster, indexes: list[int], prefix: bytes,
                           timeout: float = CATCH_UP_LIMIT) -> None:
    """Every member in `indexes` holds the same keys, values and revisions (no
    divergence), as seen by serializable reads of its own state."""
    deadline = time.monotonic() + timeout
    while True:
        views = {}
        for i in indexes:
            kvs, revision = await read_prefix([cluster.endpoints[i]], prefix, serializable=True)
            views[i] = (revision, sorted((kv.key, kv.value, kv.mod_revision) for kv in kvs))
        if len({repr(v) for v in views.values()}) == 1:
            return
        if time.monotonic() > deadline:
            summary = {i: (rev, len(kvs)) for i, (rev, kvs) in views.items()}
            raise AssertionError(f"members never converged: (revision, keys) {summary}")
        await asyncio.sleep(0.2)


# --- 1. the leader crashes under load ---------------------------------------------------


def test_leader_crash_under_write_load(make_cluster: Callable[..., KubeliteCluster]) -> None:
    cluster = make_cluster(size=3)
    leader = wait_for_leader(cluster)
    survivors = others(cluster, leader)
    prefix = b"/faults/leader-crash"

    async def body() -> None:
        # The leader first: the client sticks to it, so the crash forces a failover.
        async with WriteLoad(endpoints_of(cluster, [leader, *survivors]), prefix) as load:
            await load.wait_for_acks(400, timeout=20)
            killed_at = time.monotonic()
            cluster.kill(leader)
            await load.wait_for_acks(400, timeout=20)
            await load.stop()
        before = load.last_ack_before(killed_at)
        after = load.first_ack_sent_after(killed_at)
        assert before is not None and after is not None
        resumed = after.at - killed_at
        print(f"acks {len(load.acks)}, failures {len(load.failures)}; "
              f"last ack {killed_at - before.at:.3f} s before the kill, "
              f"writes resumed {resumed:.3f} s after it")
        assert resumed <= RESUME_LIMIT, (
            f"writes resumed {resumed:.2f} s after the leader crash (limit {RESUME_LIMIT} s)")

        kvs, revision = await read_prefix(endpoints_of(cluster, survivors), prefix)
        check_history(load, kvs)
        assert revision >= load.max_acked_revision()

        await asyncio.to_thread(cluster.start, leader)
        took = await wait_caught_up(cluster.endpoints[leader], prefix,
                                    {kv.key for kv in kvs}, revision, CATCH_UP_LIMIT)
        print(f"restarted member caught up {took:.2f} s after answering")
        await assert_converged(cluster, cluster.live(), prefix)

    run(body(), timeout=90)


# --- 2. every member crashes at once ----------------------------------------------------


def test_whole_cluster_crash_loses_no_acknowledged_write(
        make_cluster: Callable[..., KubeliteCluster]) -> None:
    cluster = make_cluster(size=3)
    wait_for_leader(cluster)
    prefix = b"/faults/cluster-crash"

    async def body() -> None:
        async with WriteLoad(cluster.endpoints, prefix) as load:
            await load.wait_for_acks(600, timeout=20)
            cluster.kill_all()
            await load.stop()
        print(f"acks {len(load.acks)}, failures {len(load.failures)} when all were killed")

        for i in range(3):
            await asyncio.to_thread(cluster.start, i)
        await asyncio.to_thread(wait_for_leader, cluster)
        kvs, revision = await read_prefix(cluster.endpoints, prefix)
        check_history(load, kvs)
        assert revision >= load.max_acked_revision(), (
            f"revision {revision} after the restart is below the highest acknowledged "
            f"revision {load.max_acked_revision()}")
        await assert_converged(cluster, cluster.live(), prefix)

    run(body(), timeout=90)


# --- 3. network partitions --------------------------------------------------------------

PARTITION_REQUEST_TIMEOUT = 2.0  # --request-timeout of the partition cluster (etcd: 7 s)
PARTITION_SNAPSHOT_COUNT = 50
LOST_WRITES = 6
STEP_DOWN_LIMIT = 5.0  # a cut-off leader's leader_fallback is 2 s
ELECTION_LIMIT = 6.0


def gateway(endpoint: str, path: str, body: dict[str, Any],
            timeout: float = PARTITION_REQUEST_TIMEOUT + 5) -> tuple[int, dict[str, Any], float]:
    """POST to one member; (HTTP status, JSON body, seconds taken). Never hangs."""
    start = time.monotonic()
    status, _, raw = http.post_json(endpoint, f"/v3/{path}", body, timeout=timeout)
    return status, json.loads(raw or b"{}"), time.monotonic() - start


def put(endpoint: str, key: bytes, value: bytes) -> tuple[int, dict[str, Any], float]:
    return gateway(endpoint, "kv/put", {"key": http.b64(key), "value": http.b64(value)})


def get(endpoint: str, key: bytes, *, serializable: bool) -> tuple[int, bytes | None, float]:
    """(status, the key's value or None, seconds): one range on one member."""
    status, body, took = gateway(endpoint, "kv/range",
                                 {"key": http.b64(key), "serializable": serializable})
    kvs = body.get("kvs") or []
    return status, (base64.b64decode(kvs[0].get("value", "")) if kvs else None), took


def put_ok(endpoint: str, key: bytes, value: bytes) -> None:
    status, body, _ = put(endpoint, key, value)
    assert status == 200, f"put {key!r} on {endpoint}: {status} {body}"


def sees(endpoint: str, key: bytes, value: bytes | None, *, serializable: bool) -> bool:
    try:
        status, found, _ = get(endpoint, key, serializable=serializable)
    except OSError:
        return False
    return status == 200 and found == value


def leader_among(cluster: KubeliteCluster, indexes: list[int]) -> int | None:
    """The member among `indexes` whose status names itself leader (None if none)."""
    for i in indexes:
        try:
            status, body, _ = gateway(cluster.endpoints[i], "maintenance/status", {}, timeout=1)
        except OSError:
            continue
        member_id = body.get("header", {}).get("member_id")
        if status == 200 and member_id and body.get("leader") == member_id:
            return i
    return None


def assert_no_stale_read(endpoint: str, key: bytes, old: bytes) -> None:
    """A linearizable range on a cut-off member fails as etcd's does: 503, code 14."""
    status, body, took = gateway(endpoint, "kv/range", {"key": http.b64(key)})
    assert status != 200 or old not in json.dumps(body).encode(), (
        f"STALE READ: a cut-off member answered a linearizable range with {body}")
    assert (status, body.get("code"), body.get("message")) == (
        503, 14, "etcdserver: request timed out"), (
        f"linearizable range on a cut-off member: {status} {body} (etcd: 503, code 14, "
        "'etcdserver: request timed out')")
    assert took <= PARTITION_REQUEST_TIMEOUT + 1.5, f"it took {took:.2f} s to fail"


@pytest.fixture
def netns_cluster(make_cluster: Callable[..., Any]) -> NetnsKubeliteCluster:
    try:
        return make_cluster(NetnsKubeliteCluster, size=3, extra_args=(
            "--request-timeout", str(PARTITION_REQUEST_TIMEOUT),
            "--snapshot-count", str(PARTITION_SNAPSHOT_COUNT)))
    except NetnsUnavailable as exc:
        pytest.fail(f"partition tests need network namespaces and could not set them up: "
                    f"{exc}", pytrace=False)


def test_partitioned_follower_serves_no_stale_linearizable_read(
        netns_cluster: NetnsKubeliteCluster) -> None:
    cluster = netns_cluster
    leader = wait_for_leader(cluster)
    x = others(cluster, leader)[0]
    key = b"/faults/partition/follower"
    put_ok(cluster.endpoints[leader], key, b"old")
    wait_until(lambda: sees(cluster.endpoints[x], key, b"old", serializable=True), 10,
               what="the follower applied the first value")

    cluster.partition(x)
    put_ok(cluster.endpoints[leader], key, b"new")  # the majority goes on without x
    assert_no_stale_read(cluster.endpoints[x], key, b"old")
    status, found, _ = get(cluster.endpoints[x], key, serializable=True)
    assert (status, found) == (200, b"old"), "a serializable read may be stale, not fail"
    time.sleep(2.0)  # past x's election timeout: now a candidate with no leader
    assert_no_stale_read(cluster.endpoints[x], key, b"old")
    assert sees(cluster.endpoints[leader], key, b"new", serializable=False)

    cluster.heal(x)
    wait_until(lambda: sees(cluster.endpoints[x], key, b"new", serializable=False), 15,
               what="the healed member serves the new value")
    assert sees(cluster.endpoints[x], key, b"new", serializable=True)


def test_partitioned_leader_stops_taking_writes(netns_cluster: NetnsKubeliteCluster) -> None:
    cluster = netns_cluster
    old = wait_for_leader(cluster)
    majority = others(cluster, old)
    key, lost = b"/faults/partition/leader", b"/faults/partition/lost/"
    put_ok(cluster.endpoints[old], key, b"old")
    for i in majority:
        wait_until(lambda i=i: sees(cluster.endpoints[i], key, b"old", serializable=True), 10,
                   what=f"member {i} applied the first value")

    cluster.partition(old)
    cut_at = time.monotonic()
    # Concurrent writes: some go into Raft entries, the rest wait in the member's queue.
    with concurrent.futures.ThreadPoolExecutor(LOST_WRITES) as pool:
        replies = list(pool.map(lambda n: put(cluster.endpoints[old], lost + b"%d" % n,
                                              b"sent-while-leader"), range(LOST_WRITES)))
    for status, body, took in replies:
        assert status != 200, f"a cut-off leader acknowledged a write: {body}"
        assert took <= PARTITION_REQUEST_TIMEOUT + 2, f"a write took {took:.2f} s to fail"
    print(f"writes to the cut-off leader failed after at most "
          f"{max(r[2] for r in replies):.2f} s: {replies[0][:2]}")

    found: list[int | None] = []
    wait_until(lambda: found.append(leader_among(cluster, majority)) or found[-1] is not None,
               ELECTION_LIMIT, what="a new leader on the majority side")
    new = found[-1]
    assert new is not None
    print(f"new leader m{new} {time.monotonic() - cut_at:.2f} s after the cut")
    wait_until(lambda: leader_among(cluster, [old]) is None,
               max(0.0, STEP_DOWN_LIMIT - (time.monotonic() - cut_at)),
               what="the cut-off leader stepping down")
    put_ok(cluster.endpoints[new], key, b"new")
    # Move the majority past a snapshot: the former leader will catch up from it.
    for n in range(2 * PARTITION_SNAPSHOT_COUNT):
        put_ok(cluster.endpoints[new], b"/faults/partition/filler/%d" % n, b"x")
    status, body, took = put(cluster.endpoints[old], lost + b"late", b"sent-after-stepping-down")
    assert status != 200, f"a cut-off former leader acknowledged a write: {body}"
    assert took <= PARTITION_REQUEST_TIMEOUT + 2, f"the write took {took:.2f} s to fail"
    assert_no_stale_read(cluster.endpoints[old], key, b"old")

    cluster.heal(old)
    wait_until(lambda: sees(cluster.endpoints[old], key, b"new", serializable=False), 15,
               what="the healed former leader serves the new value")
    wait_until(lambda: put(cluster.endpoints[old], b"/faults/partition/after", b"ok")[0] == 200,
               10, what="the healed former leader taking writes again")
    time.sleep(1.0)  # let anything still queued anywhere surface
    for i in cluster.live():
        status, body, _ = gateway(cluster.endpoints[i], "kv/range", {
            "key": http.b64(lost), "range_end": http.b64(lost[:-1] + b"0")})
        assert status == 200 and not body.get("kvs"), (
            f"member {i} (the former leader is {old}) holds writes that were sent to the "
            f"cut-off member and failed there: {body.get('kvs')}")


# --- 4. membership changes under writes -------------------------------------------------

MEMBERSHIP_GAP_LIMIT = 4.0  # longest time without an acknowledged write
MEMBERSHIP_FAILURE_LIMIT = 100
REMOVED_EXIT_LIMIT = 15.0


async def member_table(endpoint: str) -> set[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    async with StoreClient([endpoint], timeout=3.0) as client:
        members = await client.member_list()
    return {(m.name, tuple(m.peer_urls), tuple(m.client_urls)) for m in members}


def expected_table(cluster: KubeliteCluster, indexes: list[int], unstarted: tuple[int, ...] = ()
                   ) -> set[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """What member/list must say: started members with name and client URL; members
    added but not started yet with neither (as etcd lists them)."""
    return {("", (cluster.peer_url(i),), ()) if i in unstarted else
            (cluster.members[i].name, (cluster.peer_url(i),), (cluster.endpoints[i],))
            for i in indexes}


async def wait_member_tables(cluster: KubeliteCluster, indexes: list[int],
                             unstarted: tuple[int, ...] = (), timeout: float = 15.0) -> None:
    """Until the member/list of every started member in `indexes` is the expected one."""
    want = expected_table(cluster, indexes, unstarted)
    deadline = time.monotonic() + timeout
    while True:
        seen = {}
        for i in indexes:
            if i in unstarted:
                continue
            try:
                seen[i] = await member_table(cluster.endpoints[i])
            except Exception as exc:  # shown if it never settles
                seen[i] = {("error", (repr(exc),), ())}
        if all(table == want for table in seen.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"member/list never became {sorted(want)}; last: {seen}")
        await asyncio.sleep(0.2)


async def wait_exit(cluster: KubeliteCluster, i: int, timeout: float) -> None:
    """A removed member stops by itself (as etcd's does)."""
    proc = cluster.members[i].proc
    assert proc is not None
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"member {i} still runs {timeout} s after its removal")
        await asyncio.sleep(0.1)


def test_membership_grow_and_shrink_under_writes(
        make_cluster: Callable[..., KubeliteCluster]) -> None:
    cluster = make_cluster(size=3)
    wait_for_leader(cluster)
    new_members = (cluster.add_member(), cluster.add_member())  # addresses only, for now
    prefix = b"/faults/membership"

    async def body() -> None:
        admin = StoreClient(list(cluster.endpoints), timeout=15.0)
        # The writers know all five client URLs from the start; unstarted ones refuse
        # connections, which the client skips.
        async with admin, WriteLoad(list(cluster.endpoints), prefix, writers=4,
                                    pace=0.005) as load:
            started = time.monotonic()
            await load.wait_for_acks(100, timeout=20)
            in_cluster = [0, 1, 2]
            for new in new_members:
                added, members = await admin.member_add([cluster.peer_url(new)])
                in_cluster.append(new)
                assert added.peer_urls == [cluster.peer_url(new)] and not added.is_learner
                assert {tuple(m.peer_urls) for m in members} == {
                    (cluster.peer_url(i),) for i in in_cluster}
                await wait_member_tables(cluster, in_cluster, unstarted=(new,))
                await asyncio.to_thread(cluster.start, new)
                await wait_member_tables(cluster, in_cluster)
                await load.wait_for_acks(100, timeout=20)
                print(f"{time.monotonic() - started:.2f} grew to {len(in_cluster)} members")

            leader = await asyncio.to_thread(wait_for_leader, cluster)
            follower = next(i for i in range(3) if i != leader)
            for gone in (leader, follower):
                member_id = next(m.id for m in await admin.member_list()
                                 if m.peer_urls == [cluster.peer_url(gone)])
                print(f"{time.monotonic() - started:.2f} removing m{gone}")
                remaining = await admin.member_remove(member_id)
                print(f"{time.monotonic() - started:.2f} removed m{gone}")
                cluster.mark_removed(gone)
                in_cluster.remove(gone)
                assert {tuple(m.peer_urls) for m in remaining} == {
                    (cluster.peer_url(i),) for i in in_cluster}
                await wait_exit(cluster, gone, REMOVED_EXIT_LIMIT)
                await wait_member_tables(cluster, in_cluster)
                await load.wait_for_acks(100, timeout=20)
                print(f"{time.monotonic() - started:.2f} m{gone} "
                      f"({'the leader' if gone == leader else 'a follower'}) has stopped")
            await load.stop()
            ended = time.monotonic()

        gap = load.longest_gap(started, ended)
        times = sorted(a.at for a in load.acks)
        gaps = sorted(((b - a, a - started) for a, b in zip(times, times[1:], strict=False)),
                      reverse=True)[:3]
        print("longest gaps (length, start):", [(round(g, 2), round(t, 2)) for g, t in gaps])
        print(f"acks {len(load.acks)}, failures {len(load.failures)}, longest gap {gap:.2f} s")
        assert gap <= MEMBERSHIP_GAP_LIMIT, f"no write acknowledged for {gap:.2f} s"
        assert len(load.failures) <= MEMBERSHIP_FAILURE_LIMIT, load.failures[:5]
        kvs, revision = await read_prefix(endpoints_of(cluster, cluster.live()), prefix)
        check_history(load, kvs)
        assert revision >= load.max_acked_revision()
        await assert_converged(cluster, cluster.live(), prefix)

    run(body(), timeout=150)


# --- 5. backup and restore --------------------------------------------------------------


def test_backup_under_writes_restores_into_a_fresh_cluster(
        make_cluster: Callable[..., KubeliteCluster], tmp_path: Path) -> None:
    source = make_cluster(size=3)
    wait_for_leader(source)
    prefix = b"/faults/backup"
    backup = tmp_path / "store.backup"

    async def write_and_back_up() -> tuple[WriteLoad, float, subprocess.CompletedProcess[str]]:
        async with WriteLoad(source.endpoints, prefix, writers=8) as load:
            await load.wait_for_acks(300, timeout=20)
            began = time.monotonic()
            saved = await asyncio.to_thread(source.run_cli, "store", "backup", "--endpoints",
                                            ",".join(source.endpoints), str(backup))
            await load.wait_for_acks(100, timeout=20)  # writes went on meanwhile
            await load.stop()
        return load, began, saved

    load, began, saved = run(write_and_back_up(), timeout=90)
    assert saved.returncode == 0, f"backup failed: {saved.stdout} {saved.stderr}"
    match = re.search(r"revision (\d+)", saved.stdout)
    assert match, saved.stdout
    backup_revision = int(match.group(1))
    before = [a for a in load.acks if a.at <= began]
    assert before and max(a.revision for a in before) <= backup_revision

    def restore(cluster: KubeliteCluster) -> None:
        for m in cluster.members:
            done = cluster.run_cli("store", "restore", str(backup), "--data-dir",
                                   str(m.data_dir), "--name", m.name,
                                   "--initial-cluster", cluster.initial_cluster())
            assert done.returncode == 0, f"restore failed: {done.stdout} {done.stderr}"

    restored = make_cluster(size=3, before_start=restore)

    async def check_restored() -> None:
        kvs, revision = await read_prefix(restored.endpoints, prefix)
        assert revision == backup_revision, (
            f"restored cluster is at revision {revision}, the backup at {backup_revision}")
        present = {kv.key: kv for kv in kvs}
        for ack in load.acks:  # the backup is the state at its revision, exactly
            kv = present.get(ack.key)
            if ack.revision <= backup_revision:
                assert kv is not None and (kv.value, kv.mod_revision) == (
                    ack.value, ack.revision), f"{ack} restored as {kv}"
            else:
                assert kv is None, f"{ack} is after the backup's revision yet restored"
        assert all(kv.mod_revision <= backup_revision for kv in kvs)
        await assert_converged(restored, restored.live(), prefix)
        # The restored cluster is made of its own members only, as after etcd's restore.
        assert await member_table(restored.endpoints[0]) == expected_table(
            restored, restored.live()), "member/list of the restored cluster"
        async with StoreClient(restored.endpoints) as client:  # and it takes writes
            assert (await client.put(prefix + b"/after-restore", b"ok")).revision == (
                backup_revision + 1)

    run(check_restored(), timeout=60)

    data = backup.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    for name, content in (("flipped", bytes(flipped)), ("truncated", data[:len(data) // 2])):
        bad = tmp_path / f"{name}.backup"
        bad.write_bytes(content)
        target = tmp_path / f"restore-{name}"
        refused = source.run_cli("store", "restore", str(bad), "--data-dir", str(target),
                                 "--name", "m0", "--initial-cluster", "m0=127.0.0.1:2380")
        assert refused.returncode != 0, f"a {name} backup was restored: {refused.stdout}"
        assert "corrupt" in refused.stderr or "truncated" in refused.stderr, refused.stderr
        assert not target.exists() or not any(target.iterdir()), (
            f"a refused restore left files in {target}")


# --- 6. restart time as history grows ---------------------------------------------------

HISTORY_KEYS = 30_000
HISTORY_SNAPSHOT_COUNT = 200
RESTART_ANSWER_LIMIT = 5.0
RESTART_CATCH_UP_LIMIT = 10.0


def test_restart_stays_fast_as_history_grows(
        make_cluster: Callable[..., KubeliteCluster]) -> None:
    cluster = make_cluster(size=3, extra_args=(
        "--snapshot-count", str(HISTORY_SNAPSHOT_COUNT)))
    leader = wait_for_leader(cluster)
    victim = others(cluster, leader)[0]
    prefix = b"/faults/history"

    async def fill() -> WriteLoad:
        async with WriteLoad([cluster.endpoints[leader]], prefix, writers=32) as load:
            await load.wait_for_acks(HISTORY_KEYS, timeout=120)
            await load.stop()
        return load

    load = run(fill(), timeout=150)
    assert not load.failures, load.failures[:5]
    data_dir = cluster.members[victim].data_dir
    journal = data_dir / "raft.journal"
    print(f"{len(load.acks)} keys; {victim}'s data dir: "
          f"{sorted((p.name, p.stat().st_size) for p in data_dir.iterdir())}")
    assert (data_dir / "raft.snapshot").is_file(), "no Raft snapshot after many entries"

    cluster.kill(victim)
    started = time.monotonic()
    cluster.start(victim)  # returns once it answers (a serializable range)
    answered = time.monotonic() - started
    print(f"member answered {answered:.2f} s after the restart; journal "
          f"{journal.stat().st_size} bytes")
    assert answered <= RESTART_ANSWER_LIMIT, f"restart took {answered:.2f} s to answer"

    async def caught_up() -> None:
        kvs, revision = await read_prefix([cluster.endpoints[leader]], prefix)
        took = await wait_caught_up(cluster.endpoints[victim], prefix,
                                    {kv.key for kv in kvs}, revision, RESTART_CATCH_UP_LIMIT)
        print(f"and held all {len(kvs)} keys {took:.2f} s later")
        check_history(load, kvs)

    run(caught_up(), timeout=60)
