"""A running store member: Raft node, proposer, watch hub, and the leader's duties.

The HTTP handlers see only this object. It also runs the few things a member does on
its own: the leader expires leases (deciding with its clock, applying through the log
so every replica agrees) and extends all leases when it takes over, each member
publishes its name and client URLs into the replicated member table, and a member that
finds itself removed from the cluster stops.

pysyncobj drops a node from the Raft group before the member table's MEMBER_REMOVE entry
is committed, so a removed voter never receives that entry and never hears the answer
to a removal it asked for itself. Hence: a member cut off (no leader, or no quorum of
connected peers) for a while asks the others' member/list whether it still is listed
(etcd's removed member learns it from its peers too), and a member asked to remove
itself lets the leader do it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import zlib
from dataclasses import dataclass, field

import aiohttp
import orjson

from store import codec, errors, membership
from store.commands import CommandType
from store.raft_node import Proposer, RaftNode, RaftTimings
from store.watch_hub import WatchHub

log = logging.getLogger(__name__)

API_VERSION = "3.4.23"
GC_FREEZE_EVERY = 30.0
REMOVAL_PROBE_AFTER = 1.0  # seconds cut off before asking the others
REMOVAL_PROBE_EVERY = 1.0
REMOVAL_PROBE_TIMEOUT = 1.0


@dataclass
class MemberConfig:
    name: str
    data_dir: str
    client_urls: list[str]
    peer_addr: str
    initial_cluster: list[membership.InitialMember]
    secret: str
    initial_cluster_state: str = "new"
    cluster_token: str = "kubelite-cluster"
    request_timeout: float = 7.0
    progress_interval: float = 600.0
    max_response_bytes: int = 512 * 1024 * 1024
    timings: RaftTimings = field(default_factory=RaftTimings)


class Member:
    def __init__(self, config: MemberConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.loop = loop
        self.member_id = membership.member_id(config.peer_addr)
        self.cluster_id = membership.cluster_id([], config.cluster_token)
        self.request_timeout = config.request_timeout
        self.progress_interval = config.progress_interval
        self.max_response_bytes = config.max_response_bytes
        self.stopped = asyncio.Event()
        self._hub_ready = False
        self._published = False
        self._was_leader = False
        self._cut_off_since: float | None = None
        self._last_removal_probe = 0.0
        self._tasks: list[asyncio.Task] = []
        self._size = 0
        self._size_at = 0.0
        partners = [m.peer_addr for m in config.initial_cluster
                    if m.peer_addr != config.peer_addr]
        self.raft = RaftNode(config.peer_addr, partners, config.data_dir, config.secret,
                             config.timings, on_events=self._on_events,
                             on_restore=self._on_restore)
        self.hub = WatchHub(lambda: self.raft.state, self.raft.state_lock, self.header)
        self.proposer = Proposer(self.raft, loop)

    # ---- the Raft thread's callbacks (hand over to the loop, keep order) -------------

    def _on_events(self, events: list) -> None:
        if self._hub_ready:
            self.proposer.inbox.post(self.hub.publish, events)  # keeps apply order

    def _on_restore(self) -> None:
        if self._hub_ready:
            self.proposer.inbox.post(self.hub.resync_all)

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._hub_ready = True
        self.hub.start()
        self._tasks.append(self.loop.create_task(self._duties(), name="member-duties"))
        for task in self._tasks:
            task.add_done_callback(_log_crash)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self.raft.destroy)

    async def _duties(self) -> None:
        """Leader: lease expiry and take-over; everyone: publish self, notice removal."""
        last_freeze = self.loop.time()
        while True:
            await asyncio.sleep(0.2)
            if self.loop.time() - last_freeze > GC_FREEZE_EVERY:
                last_freeze = self.loop.time()
                # History (KeyValue/Event tuples) only grows and holds no cycles: moving
                # it out of the collector's sight keeps full collections, which otherwise
                # scan every revision ever kept, from pausing the member for 100+ ms.
                gc.freeze()
            try:
                await self._duties_once()
            except errors.EtcdError as err:
                log.debug("member duty postponed: %s", err.message)

    async def _duties_once(self) -> None:
        leader = self.raft.is_leader
        if leader and not self._was_leader:
            log.info("member %s became leader (term %d)", self.config.name, self.raft.term)
            await self.proposer.propose((int(CommandType.LEASE_EXTEND_ALL), time.time()),
                                        self.request_timeout)
            await self._seed_members()
        self._was_leader = leader
        if leader:
            now = time.time()
            with self.raft.state_lock:
                expired = self.raft.state.expired_leases(now)
            if expired:
                await self.proposer.propose(
                    (int(CommandType.LEASE_EXPIRE), tuple(expired), now), self.request_timeout)
        if self.raft.leader_addr is None or not self.raft.has_quorum():
            await self._probe_removed()
            if self.raft.leader_addr is None:
                return
        else:
            self._cut_off_since = None
        mine = self._my_entry()
        if not self._published or mine is None or mine["clientURLs"] != self.config.client_urls:
            if mine is None and self._published:
                log.warning("member %s was removed from the cluster; stopping",
                            self.config.name)
                self.stopped.set()
                return
            await self.proposer.propose(
                (int(CommandType.MEMBER_PUBLISH), self.member_id, self.config.name,
                 (membership.peer_url(self.config.peer_addr),),
                 tuple(self.config.client_urls)), self.request_timeout)
            self._published = True

    async def _probe_removed(self) -> None:
        """Stop if, cut off for a while, we hear from another member that it no longer
        lists us. (The others drop a removed member's connections; it may still believe
        in its old leader.) A member that is merely cut off hears nothing, or that it is
        listed.
        """
        now = self.loop.time()
        if self.stopped.is_set():
            return
        if self._cut_off_since is None:
            self._cut_off_since = now
        if (not self._published or now - self._cut_off_since < REMOVAL_PROBE_AFTER
                or now - self._last_removal_probe < REMOVAL_PROBE_EVERY):
            return
        self._last_removal_probe = now
        urls = [m["clientURLs"][0] for m in self.members()
                if m["ID"] != self.member_id and m["clientURLs"]]
        timeout = aiohttp.ClientTimeout(total=REMOVAL_PROBE_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for url in urls:
                try:
                    async with session.post(url.rstrip("/") + "/v3/cluster/member/list",
                                            data=b"{}") as resp:
                        if resp.status != 200:
                            continue
                        listed = codec.decode("MemberListResponse", await resp.read())
                except (aiohttp.ClientError, TimeoutError, errors.EtcdError):
                    continue
                ids = {m["ID"] for m in listed["members"]}
                if ids and self.member_id not in ids:
                    log.warning("member %s was removed from the cluster (%s no longer lists "
                                "it); stopping", self.config.name, url)
                    self.stopped.set()
                    return

    async def _seed_members(self) -> None:
        """Record the initial members (etcd lists unstarted members too).

        MEMBER_ADD of a member that already published itself fails harmlessly, so this
        never overwrites what a member said about itself.
        """
        with self.raft.state_lock:
            known = self.raft.state.members()
        if known:
            return
        for m in self.config.initial_cluster:
            await self.proposer.propose(
                (int(CommandType.MEMBER_ADD), membership.member_id(m.peer_addr),
                 (membership.peer_url(m.peer_addr),), False), self.request_timeout)

    def _my_entry(self) -> dict | None:
        with self.raft.state_lock:
            members = self.raft.state.members()
        return next((m for m in members if m["ID"] == self.member_id), None)

    # ---- headers and views -----------------------------------------------------------

    def header(self, revision: int) -> dict:
        return {"cluster_id": self.cluster_id, "member_id": self.member_id,
                "revision": revision, "raft_term": self.raft.term}

    def fill_header(self, header: dict, revision: bool = True) -> None:
        header["cluster_id"] = self.cluster_id
        header["member_id"] = self.member_id
        header["raft_term"] = self.raft.term
        if not revision:
            header.pop("revision", None)
        elif not header.get("revision"):
            with self.raft.state_lock:
                header["revision"] = self.raft.state.revision

    def members(self) -> list[dict]:
        with self.raft.state_lock:
            members = self.raft.state.members()
        if members:
            return members
        return [{"ID": membership.member_id(m.peer_addr), "name": m.name,
                 "peerURLs": [membership.peer_url(m.peer_addr)],
                 "clientURLs": list(self.config.client_urls)
                 if m.peer_addr == self.config.peer_addr else [], "isLearner": False}
                for m in self.config.initial_cluster]

    def leader_id(self) -> int:
        addr = self.raft.leader_addr
        return membership.member_id(addr) if addr else 0

    def status(self) -> dict:
        with self.raft.state_lock:
            revision = self.raft.state.revision
        size = self._db_size()
        resp = {"header": {"revision": revision}, "version": API_VERSION, "dbSize": size,
                "leader": self.leader_id(), "raftIndex": self.raft.raft_index,
                "raftTerm": self.raft.term, "raftAppliedIndex": self.raft.applied_index,
                "dbSizeInUse": size}
        if not resp["leader"]:
            resp["errors"] = ["etcdserver: no leader"]
        return resp

    def _db_size(self) -> int:
        """Bytes of live keys and values plus per-key overhead; recomputed at most 1/s."""
        now = time.monotonic()
        if now - self._size_at > 1.0:
            with self.raft.state_lock:
                kvs = list(self.raft.state.kv.current())
            self._size = 4096 + sum(len(kv.key) + len(kv.value) + 64 for kv in kvs)
            self._size_at = now
        return self._size

    def hash(self) -> dict:
        crc = 0
        with self.raft.state_lock:
            revision = self.raft.state.revision
            kvs = self.raft.state.range(_ALL_KEYS)["kvs"]
        for kv in kvs:
            crc = zlib.crc32(kv.key, crc)
            crc = zlib.crc32(kv.value, crc)
        return {"header": {"revision": revision}, "hash": crc}

    def published(self) -> bool:
        """True once this member's name and client URLs are in the member table."""
        mine = self._my_entry()
        return mine is not None and mine.get("clientURLs") == self.config.client_urls

    async def healthy(self) -> bool:
        if not self.published():
            return False
        try:
            await self.proposer.read_barrier(min(self.request_timeout, 1.0))
        except errors.EtcdError:
            return False
        return True

    def metrics_text(self) -> str:
        with self.raft.state_lock:
            revision = self.raft.state.revision
        lines = [
            ("kubelite_store_revision", revision),
            ("kubelite_store_is_leader", int(self.raft.is_leader)),
            ("kubelite_store_has_leader", int(self.raft.leader_addr is not None)),
            ("kubelite_store_raft_term", self.raft.term),
            ("kubelite_store_raft_applied_index", self.raft.applied_index),
            ("kubelite_store_watchers", len(self.hub)),
        ]
        return "".join(f"{name} {value}\n" for name, value in lines)

    # ---- membership changes ------------------------------------------------------------

    async def add_member(self, peer_urls: list[str], is_learner: bool) -> dict:
        """Add a voter, or record a learner that joins the Raft group when promoted."""
        if len(peer_urls) != 1:
            raise errors.invalid_argument("kubelite: a member has exactly one peer URL")
        try:
            addr = membership.peer_addr(peer_urls[0])
        except ValueError as exc:
            raise errors.invalid_argument(str(exc)) from exc
        new_id = membership.member_id(addr)
        url = membership.peer_url(addr)
        result = await self.proposer.propose(
            (int(CommandType.MEMBER_ADD), new_id, (url,), is_learner), self.request_timeout)
        if isinstance(result, errors.EtcdError):
            raise result
        if not is_learner:
            await self._change_cluster(self.raft.node.addNodeToCluster, addr)
        return {"header": {}, "member": {"ID": new_id, "peerURLs": [url],
                                         "isLearner": is_learner},
                "members": self.members()}

    async def promote_member(self, target_id: int) -> dict:
        target = next((m for m in self.members() if m["ID"] == target_id), None)
        if target is None:
            raise errors.member_not_found()
        if not target.get("isLearner"):
            raise errors.EtcdError("etcdserver: can only promote a learner member",
                                   errors.GrpcCode.FAILED_PRECONDITION)
        await self._change_cluster(self.raft.node.addNodeToCluster,
                                   membership.peer_addr(target["peerURLs"][0]))
        result = await self.proposer.propose((int(CommandType.MEMBER_PROMOTE), target_id),
                                             self.request_timeout)
        if isinstance(result, errors.EtcdError):
            raise result
        return {"header": {}, "members": self.members()}

    async def remove_member(self, target_id: int) -> dict:
        target = next((m for m in self.members() if m["ID"] == target_id), None)
        if target is None:
            raise errors.member_not_found()
        addr = membership.peer_addr(target["peerURLs"][0])
        if target_id == self.member_id and not target.get("isLearner"):
            return await self._remove_self_through_leader()
        if not target.get("isLearner"):
            if target_id == self.leader_id():
                await self._step_aside(target_id)
            await self._change_cluster(self.raft.node.removeNodeFromCluster, addr)
        result = await self.proposer.propose((int(CommandType.MEMBER_REMOVE), target_id),
                                             self.request_timeout)
        if isinstance(result, errors.EtcdError):
            raise result
        return {"header": {}, "members": self.members()}

    async def _remove_self_through_leader(self) -> dict:
        """The Raft group drops us before it could answer us: let the leader remove us."""
        if self.raft.is_leader:
            await self._step_aside(self.member_id)
        leader = next((m for m in self.members() if m["ID"] == self.leader_id()), None)
        if leader is None or not leader["clientURLs"]:
            raise errors.no_leader()
        url = leader["clientURLs"][0].rstrip("/") + "/v3/cluster/member/remove"
        timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, \
                    session.post(url, data=orjson.dumps({"ID": str(self.member_id)})) as resp:
                status, raw = resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise errors.request_timed_out() from exc
        if status != 200:
            try:
                body = orjson.loads(raw)
                err = errors.EtcdError(body["message"], errors.GrpcCode(body["code"]))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                err = errors.EtcdError(f"kubelite: leader answered HTTP {status}",
                                       errors.GrpcCode.UNKNOWN)
            raise err
        reply = codec.decode("MemberRemoveResponse", raw)
        return {"header": {}, "members": reply["members"]}

    async def _step_aside(self, leader_id: int) -> None:
        """The leader cannot remove itself in pysyncobj: hand leadership over first.

        A hand-over can still fail (the chosen follower loses its election and the old
        leader wins again): ask again after an election's time, until the deadline.
        """
        deadline = self.loop.time() + self.request_timeout
        settle = 2.0 * self.config.timings.election_max
        while self.loop.time() < deadline:
            try:
                if leader_id == self.member_id:
                    if self.raft.is_leader:
                        await self.transfer_leadership(0, deadline)
                else:
                    await self._ask_leader_to_transfer(leader_id)
            except (errors.EtcdError, aiohttp.ClientError, TimeoutError) as exc:
                log.debug("leadership transfer not done yet: %r", exc)
            until = min(deadline, self.loop.time() + settle)
            while self.loop.time() < until:
                if self.leader_id() not in (0, leader_id):
                    return
                await asyncio.sleep(0.05)
        raise errors.request_timed_out()

    async def _ask_leader_to_transfer(self, leader_id: int) -> None:
        leader = next((m for m in self.members() if m["ID"] == leader_id), None)
        if leader is None or not leader["clientURLs"]:
            raise errors.no_leader()
        url = leader["clientURLs"][0].rstrip("/") + "/v3/maintenance/transfer-leadership"
        timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.post(url, data=b"{}") as resp:
            await resp.read()

    async def transfer_leadership(self, target_id: int, deadline: float | None = None) -> None:
        if not self.raft.is_leader:
            raise errors.EtcdError("etcdserver: not leader", errors.GrpcCode.FAILED_PRECONDITION)
        target = None
        if target_id:
            found = next((m for m in self.members() if m["ID"] == target_id), None)
            if found is None:
                raise errors.member_not_found()
            target = membership.peer_addr(found["peerURLs"][0])
        # pysyncobj hands leadership only to a follower whose log matches the leader's up
        # to the last entry, and refuses (REQUEST_DENIED) otherwise. As etcd's leader does
        # during a transfer, append nothing new meanwhile (neither this member's requests
        # nor those followers forward) and keep asking until the request deadline.
        if deadline is None:
            deadline = self.loop.time() + self.request_timeout
        log.info("member %s hands leadership over to %s", self.config.name,
                 target or "the most caught-up follower")
        with self.proposer.paused(), self.raft.holding_forwarded():
            while True:
                try:
                    await self._raft_call(lambda cb: self.raft.in_raft_thread(
                        lambda: self.raft.node.transferLeadership(target, callback=cb)))
                except errors.EtcdError:
                    if self.loop.time() > deadline or not self.raft.is_leader:
                        raise
                    await asyncio.sleep(0.01)
                    continue
                break
            # Still propose nothing until the follower won its election: an entry added
            # here meanwhile would leave the other followers' logs longer than its own.
            until = min(deadline, self.loop.time() + 2.0 * self.config.timings.election_max)
            while self.raft.is_leader and self.loop.time() < until:
                await asyncio.sleep(0.02)
        if self.raft.is_leader:
            log.warning("member %s is still leader after handing leadership over",
                        self.config.name)

    async def _change_cluster(self, change, addr: str) -> None:
        deadline = self.loop.time() + self.request_timeout
        while True:
            try:
                await self._raft_call(lambda cb: change(addr, callback=cb))
                return
            except errors.EtcdError:
                if self.loop.time() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def _raft_call(self, start) -> None:
        future: asyncio.Future = self.loop.create_future()

        def done(result, err) -> None:
            self.loop.call_soon_threadsafe(_settle, future, err)

        start(done)
        try:
            await asyncio.wait_for(future, self.request_timeout)
        except TimeoutError as exc:
            raise errors.request_timed_out() from exc


def _settle(future: asyncio.Future, err: int) -> None:
    if future.done():
        return
    if err == 0:
        future.set_result(None)
    else:
        future.set_exception(errors.EtcdError(f"kubelite: cluster change refused (reason {err})",
                                              errors.GrpcCode.FAILED_PRECONDITION))


_ALL_KEYS = {"key": b"\0", "range_end": b"\0", "limit": 0, "revision": 0, "sort_order": 0,
             "sort_target": 0, "serializable": True, "keys_only": False, "count_only": False,
             "min_mod_revision": 0, "max_mod_revision": 0, "min_create_revision": 0,
             "max_create_revision": 0}


def _log_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s crashed", task.get_name(), exc_info=task.exception())
