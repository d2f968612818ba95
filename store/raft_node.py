"""The bridge between pysyncobj's Raft thread and the asyncio server.

pysyncobj runs Raft in its own thread and calls replicated methods there. This module
owns everything that crosses that boundary:

* one `@replicated apply(batch)` entry point (pysyncobj numbers replicated methods by
  their sorted names; a single one keeps versions compatible), applying a batch of
  commands to the pure `StoreState` under `state_lock`;
* a `Proposer` on the asyncio side that groups concurrent requests into one Raft entry
  (one entry per batch, not per request: that is where the throughput comes from) and
  resolves each request's future when the entry is applied on this member;
* linearizable reads: a read waits until an entry proposed after the read arrived is
  applied here (a read barrier through the log), then reads local state. A member cut
  off from the majority cannot commit the barrier, so it can never serve a stale read;
* snapshots through our own serializer (`store.snapshot`), never pickling the object;
* peer traffic always encrypted and authenticated (pysyncobj's `password`, with
  `store.raft_wire`'s AES-GCM cipher, pickle protocol 5, no compression, and the journal
  synced off the GIL: see that module for why and how much).

Only this module (and its helper store.raft_wire) touches pysyncobj.
"""

from __future__ import annotations

import _socket
import asyncio
import collections
import contextlib
import io
import logging
import os
import pickle
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated
from pysyncobj.config import SERIALIZER_STATE  # noqa: F401  (documented hook type)

from store import errors, raft_wire, snapshot
from store.commands import CommandType
from store.kv_types import Event
from store.state_machine import StoreState

log = logging.getLogger(__name__)

# pysyncobj's TCP transport imports its win_inet_pton, which replaces socket.inet_ntop
# with a Windows-only function in every process that imports pysyncobj (psutil and
# others then fail with "not_windows() takes 0 positional arguments"): put it back.
socket.inet_ntop = _socket.inet_ntop


class _ReappendFilter(logging.Filter):
    """Downgrade pysyncobj's "truncating already-applied log entries" alarm.

    pysyncobj 0.3.17 truncates a follower's log after `prevLogIdx` whenever the leader
    re-sends entries, even when they match. It reaches that code only after the entry at
    `prevLogIdx` matched the leader's term, and a follower applies only committed
    entries, which every later leader holds unchanged; so the entries dropped and the
    ones appended in their place are identical and the state machine cannot diverge.
    Real divergence (a term mismatch) takes the other branch and is not affected.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.CRITICAL and "already-applied" in str(record.msg):
            record.levelno = logging.DEBUG
            record.levelname = "DEBUG"
            return logging.getLogger("pysyncobj.syncobj").isEnabledFor(logging.DEBUG)
        return True


logging.getLogger("pysyncobj.syncobj").addFilter(_ReappendFilter())

EventSink = Callable[[list[Event]], None]

_SNAPSHOT_MAGIC = b"KLRAFT1\n"


@dataclass
class RaftTimings:
    """Raft timing knobs, tuned for latency on a loopback or LAN control plane."""

    heartbeat: float = 0.1
    election_min: float = 0.8
    election_max: float = 1.6
    leader_fallback: float = 2.0
    connection_retry: float = 0.5
    snapshot_entries: int = 20000
    snapshot_seconds: float = 600.0
    journal_sync_interval: float = 0.05


class _SafeUnpickler(pickle.Unpickler):
    """Loads builtin containers only: a snapshot file can never name code to run."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"snapshot refers to {module}.{name}")


def _safe_loads(data: bytes) -> Any:
    return _SafeUnpickler(io.BytesIO(data)).load()


def write_snapshot_file(file_name: str, last_entry: tuple, prev_entry: tuple,
                        nodes: list[str], state_bytes: bytes) -> None:
    """Write a Raft snapshot: the two last applied entries, the members, the state."""
    meta = pickle.dumps((last_entry, prev_entry, nodes), protocol=5)
    with open(file_name, "wb") as f:
        f.write(_SNAPSHOT_MAGIC)
        f.write(struct.pack("<Q", len(meta)))
        f.write(meta)
        f.write(state_bytes)
        f.flush()
        os.fsync(f.fileno())


def write_restored_data_dir(data_dir: str, nodes: list[str], state_bytes: bytes) -> None:
    """Seed a fresh data dir from a backup, identically on every member restored from it.

    The snapshot claims two applied no-op entries at term 1, so every member starts from
    the same log prefix and Raft continues from there.
    """
    os.makedirs(data_dir, exist_ok=True)
    for name in os.listdir(data_dir):
        if name.startswith("raft."):
            raise FileExistsError(f"{data_dir} already holds store data ({name})")
    noop = struct.pack("B", _PYSYNCOBJ_NO_OP)
    write_snapshot_file(os.path.join(data_dir, "raft.snapshot"), (noop, 2, 1), (noop, 1, 1),
                        sorted(nodes), state_bytes)


_PYSYNCOBJ_NO_OP = 1  # pysyncobj's _COMMAND_TYPE.NO_OP, pinned with pysyncobj 0.3.17


class _ReplicatedStore(SyncObj):
    """The pysyncobj node. Holds no state of its own beyond the holder it is given."""

    def __init__(self, self_addr: str, partners: list[str], conf: SyncObjConf,
                 holder: RaftNode) -> None:
        self._holder = holder
        super().__init__(self_addr, partners, conf)

    @replicated
    def apply(self, batch: tuple) -> list:
        return self._holder._apply_batch(batch)

    def _applyCommand(self, command: bytes, callback: Any,  # noqa: N802 (pysyncobj's)
                      commandType: int | None = None) -> None:  # noqa: N803
        # Commands forwarded by followers (their callback is not a function) wait while
        # this leader hands leadership over; see RaftNode.holding_forwarded.
        if self._holder._holding_forwarded and not callable(callback):
            self._holder._held.append((command, callback, commandType))
            return
        super()._applyCommand(command, callback, commandType)

    def _checkCommandsToApply(self) -> None:  # noqa: N802 (pysyncobj's tick step)
        raft_wire.check_commands_coalesced(self, super()._checkCommandsToApply)


class RaftNode:
    """A store member's Raft state: the pure state, its lock, and the pysyncobj node."""

    def __init__(self, self_addr: str, partners: list[str], data_dir: str, secret: str,
                 timings: RaftTimings | None = None, on_events: EventSink | None = None,
                 on_restore: Callable[[], None] | None = None) -> None:
        self.timings = timings or RaftTimings()
        self.state = StoreState()
        self.state_lock = threading.Lock()
        self.self_addr = self_addr
        self.data_dir = data_dir
        self._on_events = on_events
        self._on_restore = on_restore
        self._applied_index = 0
        self._raft_thread_calls: collections.deque[Callable[[], None]] = collections.deque()
        self._holding_forwarded = False
        self._held: list[tuple] = []  # forwarded commands held back, in the Raft thread
        os.makedirs(data_dir, exist_ok=True)
        t = self.timings
        conf = raft_wire.CoalescingConf(  # appendEntriesUseBatch off, one round per tick
            password=secret,
            appendEntriesPeriod=t.heartbeat,
            raftMinTimeout=t.election_min,
            raftMaxTimeout=t.election_max,
            leaderFallbackTimeout=t.leader_fallback,
            connectionTimeout=max(3.5, t.election_max),
            connectionRetryTime=t.connection_retry,
            autoTickPeriod=0.02,
            journalFile=os.path.join(data_dir, "raft.journal"),
            fullDumpFile=os.path.join(data_dir, "raft.snapshot"),
            serializer=self._write_snapshot,
            deserializer=self._read_snapshot,
            logCompactionMinEntries=t.snapshot_entries,
            logCompactionMinTime=t.snapshot_seconds,
            dynamicMembershipChange=True,
            # Without a leader pysyncobj refuses a command at once (MISSING_LEADER) and
            # the Proposer retries until the request's deadline. Waiting in pysyncobj's
            # queue instead would propose it whenever a leader appears, perhaps long
            # after the client was told it timed out (e.g. when a partition heals).
            commandsWaitLeader=False,
            useFork=False,
            bindRetryTime=0.5,
        )
        raft_wire.install()  # cheaper pickling, compression and cipher for peer traffic
        self._journal_sync = raft_wire.JournalSync(os.path.join(data_dir, "raft.journal"),
                                                   self.timings.journal_sync_interval)
        self.node = _ReplicatedStore(self_addr, partners, conf, self)
        self.node.addOnTickCallback(self._sync_journal)
        self.node.addOnTickCallback(self._run_raft_thread_calls)

    # ---- called in the Raft thread -------------------------------------------------

    def _apply_batch(self, batch: tuple) -> list:
        results = []
        events: list[Event] = []
        with self.state_lock:
            for command in batch:
                result, produced = self.state.apply(command)
                results.append(result)
                if produced:
                    events.extend(produced)
            self._applied_index += 1
        if events and self._on_events is not None:
            self._on_events(events)
        return results

    def _sync_journal(self) -> None:
        """Bound the window in which an acknowledged write lives only in page cache.

        The sync itself runs in raft_wire.JournalSync's thread (fdatasync, GIL released),
        at most once per journal_sync_interval; mmap.flush() here would hold the GIL.
        """
        self._journal_sync.poke()

    def _run_raft_thread_calls(self) -> None:
        while self._raft_thread_calls:
            call = self._raft_thread_calls.popleft()
            try:
                call()
            except Exception:
                log.exception("call in the Raft thread failed")

    def _write_snapshot(self, file_name: str, raft_data: tuple) -> None:
        last_entry, prev_entry, cluster = raft_data
        nodes = sorted(str(getattr(n, "address", n)) for n in cluster)
        with self.state_lock:
            body = snapshot.dump(self.state)
        write_snapshot_file(file_name, tuple(last_entry), tuple(prev_entry), nodes, body)

    def _read_snapshot(self, file_name: str) -> tuple:
        with open(file_name, "rb") as f:
            data = f.read()
        if not data.startswith(_SNAPSHOT_MAGIC):
            raise ValueError(f"{file_name} is not a kubelite Raft snapshot")
        offset = len(_SNAPSHOT_MAGIC)
        (meta_len,) = struct.unpack_from("<Q", data, offset)
        offset += 8
        last_entry, prev_entry, nodes = _safe_loads(data[offset:offset + meta_len])
        state = snapshot.load(data[offset + meta_len:])
        with self.state_lock:
            self.state = state
        if self._on_restore is not None:
            self._on_restore()
        return last_entry, prev_entry, nodes

    # ---- read-only views, safe from any thread ----------------------------------------

    @property
    def is_leader(self) -> bool:
        return bool(self.node._isLeader())

    @property
    def leader_addr(self) -> str | None:
        leader = self.node._getLeader()
        return None if leader is None else str(getattr(leader, "address", leader))

    @property
    def term(self) -> int:
        return int(self.node.raftCurrentTerm)

    @property
    def raft_index(self) -> int:
        return int(self.node.raftCommitIndex)

    @property
    def applied_index(self) -> int:
        return int(self.node.raftLastApplied)

    def in_raft_thread(self, call: Callable[[], None]) -> None:
        """Run `call` in the Raft thread at its next tick.

        For pysyncobj calls that act at once instead of queueing a command (e.g.
        `transferLeadership`, which sends on connections the Raft thread also writes to).
        """
        self._raft_thread_calls.append(call)

    @contextlib.contextmanager
    def holding_forwarded(self) -> Iterator[None]:
        """Append no command that a follower forwards meanwhile (the leader's part).

        For a leadership hand-over: pysyncobj sends TimeoutNow only to a follower whose
        log matches the leader's, and an entry appended after it would make the old
        leader's log longer than the candidate's: it refuses its vote and, with a stale
        election timer, campaigns at once and wins again. Afterwards the held commands
        go through pysyncobj as usual: a leader appends them, a follower answers
        NOT_LEADER and the follower that sent them asks the new leader.
        """
        self._holding_forwarded = True
        try:
            yield
        finally:
            self.in_raft_thread(self._release_forwarded)

    def _release_forwarded(self) -> None:
        self._holding_forwarded = False
        held, self._held = self._held, []
        for command, callback, command_type in held:
            SyncObj._applyCommand(self.node, command, callback, command_type)

    def has_quorum(self) -> bool:
        return bool(self.node.hasQuorum)

    def peers(self) -> list[str]:
        return sorted(str(getattr(n, "address", n)) for n in self.node.otherNodes)

    def destroy(self) -> None:
        self.node.destroy()
        self._journal_sync.close()
        journal = getattr(self.node, "_SyncObj__raftLog", None)
        if journal is not None and hasattr(journal, "flush"):
            try:
                journal.flush()
            except ValueError:
                pass  # already closed by pysyncobj's own shutdown


class LoopInbox:
    """Calls from the Raft thread to run on the event loop, in the order posted.

    Like `loop.call_soon_threadsafe`, but one wake-up of the loop (a write to its
    self-pipe, a syscall) serves every call posted before the loop gets to them: a Raft
    tick that applies several entries posts an event batch and a completion for each.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._calls: list[tuple[Callable[..., Any], tuple]] = []

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            self._calls.append((fn, args))
            if len(self._calls) > 1:
                return  # the loop is already told to drain
        self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            calls, self._calls = self._calls, []
        for fn, args in calls:
            try:
                fn(*args)
            except Exception:
                log.exception("callback from the Raft thread failed")


class Proposer:
    """Groups concurrent commands into Raft entries and resolves them on apply.

    A batch is proposed at once when fewer than `max_inflight` batches are in flight;
    otherwise requests accumulate and go out together when one completes. Under load
    this makes entries large and few; idle, a lone request goes out immediately.

    A request that timed out has been answered with an error: if it is still waiting
    here it is dropped, never proposed later. And a batch that nobody waits for any more
    gives up its slot: pysyncobj never calls back for entries that an installed snapshot
    replaced, and such a batch must not hold the member's writes up forever.
    """

    def __init__(self, raft: RaftNode, loop: asyncio.AbstractEventLoop,
                 max_inflight: int = 2, max_batch: int = 512) -> None:
        self._raft = raft
        self._loop = loop
        self._max_inflight = max_inflight
        self._max_batch = max_batch
        self._pending: list[tuple[tuple, asyncio.Future | None]] = []
        self._inflight: list[_Batch] = []  # handed to pysyncobj, not called back yet
        self._paused = 0
        self._closed = False
        self._barrier_waiters: list[asyncio.Future] = []
        self.inbox = LoopInbox(loop)  # the Raft thread's way back to the loop, in order

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Propose nothing new meanwhile (requests wait, within their own timeouts)."""
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1
            self._maybe_flush()

    async def propose(self, command: tuple, timeout: float) -> Any:
        """Replicate one command; return its result once applied on this member.

        Failures that prove the command was not applied (discarded by a new leader,
        sent to a member that stopped leading) are retried until `timeout`; anything
        that may have been applied is reported, never retried.
        """
        return await self._until_applied(lambda f: self._pending.append((command, f)),
                                         timeout, write=True)

    async def read_barrier(self, timeout: float) -> None:
        """Return once every write acknowledged before this call is applied here."""
        # Look the list up on every try: _maybe_flush replaces it, and a retry appended to
        # the old one would never be proposed (the read hung until its deadline).
        await self._until_applied(lambda f: self._barrier_waiters.append(f), timeout,
                                  write=False)

    async def _until_applied(self, enqueue: Callable[[asyncio.Future], None],
                             timeout: float, write: bool) -> Any:
        deadline = self._loop.time() + timeout
        while True:
            if self._closed:
                raise errors.server_stopped()
            future: asyncio.Future = self._loop.create_future()
            enqueue(future)
            self._maybe_flush()
            # One timer on the future itself (wait_for + shield cost two more futures and
            # a task step per request); on expiry the future is done, so the batch skips it.
            timer = self._loop.call_at(max(deadline, self._loop.time() + 0.001),
                                       _expire, future)
            try:
                return await future
            except _Expired as exc:
                raise _timeout_error(write) from exc
            except ProposalFailed as exc:
                if self._closed:
                    raise errors.server_stopped() from exc
                if exc.maybe_applied or deadline - self._loop.time() < 0.1:
                    raise _timeout_error(write) from exc
                await asyncio.sleep(0.05)
            finally:
                timer.cancel()

    def close(self) -> None:
        """The member is stopping: answer every waiting request now, not at its timeout.

        Whatever was handed to Raft may still be applied elsewhere, so it is reported
        as etcd's ErrStopped, an outcome the client treats as unknown.
        """
        self._closed = True
        failure = ProposalFailed("STOPPED", maybe_applied=True)
        waiting = [f for _, f in self._pending] + self._barrier_waiters
        waiting += [f for batch in self._inflight for f in [*batch.futures, *batch.barriers]]
        self._pending, self._barrier_waiters, self._inflight = [], [], []
        for future in waiting:
            if future is not None and not future.done():
                future.set_exception(failure)

    def _maybe_flush(self) -> None:
        self._inflight = [b for b in self._inflight if not b.abandoned()]
        while not self._paused and len(self._inflight) < self._max_inflight:
            live = [(c, f) for c, f in self._pending if f is None or not f.done()]
            chunk, self._pending = live[:self._max_batch], live[self._max_batch:]
            barriers = [f for f in self._barrier_waiters if not f.done()]
            self._barrier_waiters = []
            if not chunk and not barriers:
                return
            commands = tuple(c for c, _ in chunk) or ((int(CommandType.NOOP),),)
            batch = _Batch([f for _, f in chunk], barriers)
            self._inflight.append(batch)
            self._raft.node.apply(commands, callback=self._make_callback(batch))

    def _make_callback(self, batch: _Batch) -> Callable[[Any, int], None]:
        post = self.inbox.post

        def done(result: Any, err: int) -> None:  # runs in the Raft thread
            post(self._complete, batch, result, err)

        return done

    def _complete(self, batch: _Batch, result: Any, err: int) -> None:
        if batch in self._inflight:
            self._inflight.remove(batch)
        if err == FAIL_REASON.SUCCESS:
            for future, value in zip(batch.futures, result or (), strict=False):
                if future is not None and not future.done():
                    future.set_result(value)
            for future in batch.barriers:
                if not future.done():
                    future.set_result(None)
        else:
            failure = _failure(err)
            for future in [*batch.futures, *batch.barriers]:
                if future is not None and not future.done():
                    future.set_exception(failure)
        self._maybe_flush()


@dataclass(eq=False)
class _Batch:
    """One Raft entry in flight: the requests waiting for it (compared by identity)."""

    futures: list[asyncio.Future | None]
    barriers: list[asyncio.Future]

    def abandoned(self) -> bool:
        """Every request waiting for this entry has given up (timed out)."""
        return all(f is None or f.done() for f in self.futures) and \
            all(f.done() for f in self.barriers)


class _Expired(Exception):
    """A request's deadline passed before its entry was applied here."""


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_exception(_Expired())


class ProposalFailed(Exception):
    """pysyncobj could not replicate a batch; `maybe_applied` says whether it may have."""

    def __init__(self, reason: str, maybe_applied: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_applied = maybe_applied


def _failure(err: int) -> ProposalFailed:
    names = {v: k for k, v in vars(FAIL_REASON).items() if isinstance(v, int)}
    maybe = err in (FAIL_REASON.UNKNOWN_OUTCOME, FAIL_REASON.LEADER_CHANGED)
    return ProposalFailed(names.get(err, str(err)), maybe)


def _timeout_error(write: bool) -> errors.EtcdError:
    """etcd's answers when a request cannot complete: writes 500, reads 503."""
    return errors.deadline_exceeded() if write else errors.request_timed_out()
