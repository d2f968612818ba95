"""Multi-version key-value store: revisions, key index, history, ranges, compaction.

Like etcd's mvcc package, every write transaction creates ONE new main revision (a
fresh store is at revision 1, so the first put creates revision 2), and all its changes
carry that revision. A key's versions form generations, e.g. for key "foo":

    put@2  put@4  del@5 | put@7      history["foo"] = [kv@2, kv@4, tomb@5, kv@7]
    version 1      2     -  |     1      (a tombstone has version 0)

Structures, chosen so the hot paths never scan history:

* `_current` (dict) and `_live` (SortedList of live keys): reads at the current
  revision; a count over a range is two bisects.
* `_history` (key -> versions, tombstones included) and `_indexed` (SortedList of every
  key with uncompacted history): reads at an older revision bisect each key's versions.
* `_events`: every change in commit order, for watches; replay from revision R is a
  bisect plus the events after it.

Compaction at C keeps, per key, the latest version <= C unless it is a tombstone, and
everything after C (etcd's keyIndex.compact). The event log is pruned the same way, so
a watch from C still sees the puts made at C but not the deletes (as in etcd, whose
backend no longer holds them), and events at C lose their prev_kv (etcd reads prev_kv
at C-1, which is compacted). Because of this the event log plus each key's oldest
version ("base") determine all of history, which is what snapshots store.

Writes happen between `begin()` and `end()`: changes apply immediately at revision
`revision + 1`, so reads in the same transaction see them (etcd's storeTxnWrite), and
`end()` moves the revision forward only if something changed.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from typing import NamedTuple

from sortedcontainers import SortedList

from store import errors
from store.kv_types import DELETE, PUT, Event, KeyValue, tombstone

ALL_END = b"\0"  # range_end meaning "every key >= key"

SORT_NONE, SORT_ASCEND, SORT_DESCEND = 0, 1, 2
SORT_KEYS = {  # RangeRequest.SortTarget -> sort key
    0: lambda kv: kv.key,
    1: lambda kv: kv.version,
    2: lambda kv: kv.create_revision,
    3: lambda kv: kv.mod_revision,
    4: lambda kv: kv.value,
}
_FILTERS = (  # (request field, KeyValue field, keep if kv value >= bound?)
    ("max_mod_revision", "mod_revision", False),
    ("min_mod_revision", "mod_revision", True),
    ("max_create_revision", "create_revision", False),
    ("min_create_revision", "create_revision", True),
)


def in_range(k: bytes, key: bytes, end: bytes) -> bool:
    """etcd's key/range_end rule: empty end = just `key`, b"\\0" = every key >= key."""
    if not end:
        return k == key
    if end == ALL_END:
        return k >= key
    return key <= k < end


def is_tombstone(kv: KeyValue) -> bool:
    return kv.version == 0


def _mod(kv: KeyValue) -> int:
    return kv.mod_revision


def _event_rev(ev: Event) -> int:
    return ev.kv.mod_revision


class RangeResult(NamedTuple):
    kvs: list[KeyValue]
    count: int  # every match, regardless of limit
    rev: int  # the store revision the read was served at


class MVCCStore:
    """The key space and its history. Pure: no I/O, no clock."""

    def __init__(self) -> None:
        self._rev = 1
        self._compact_rev = -1  # etcd's compactMainRev: -1 until the first compaction
        self._current: dict[bytes, KeyValue] = {}
        self._live: SortedList = SortedList()
        self._history: dict[bytes, list[KeyValue]] = {}
        self._indexed: SortedList = SortedList()
        self._dirty: set[bytes] = set()  # keys compaction may shrink
        self._events: list[Event] = []
        self._txn_start: int | None = None  # len(_events) when the open write began

    @property
    def revision(self) -> int:
        """The last committed revision (the txn's begin revision while one is open)."""
        return self._rev

    @property
    def compact_revision(self) -> int:
        return self._compact_rev

    @property
    def in_txn(self) -> bool:
        return self._txn_start is not None

    @property
    def read_revision(self) -> int:
        """The revision reads are served at: inside a write txn with changes, rev + 1."""
        pending = self._txn_start is not None and len(self._events) > self._txn_start
        return self._rev + 1 if pending else self._rev

    def __len__(self) -> int:
        return len(self._current)

    def current(self) -> Iterable[KeyValue]:
        """Every live key's current version (unordered)."""
        return self._current.values()

    # -- writes ----------------------------------------------------------------------

    def begin(self) -> None:
        assert self._txn_start is None, "write txn already open"
        self._txn_start = len(self._events)

    def end(self) -> list[Event]:
        """Close the write txn; return its events (empty if it changed nothing)."""
        start, self._txn_start = self._txn_start, None
        assert start is not None, "no write txn open"
        if len(self._events) == start:
            return []
        self._rev += 1
        return self._events[start:]

    def put(self, key: bytes, value: bytes, lease: int) -> tuple[KeyValue, KeyValue | None]:
        """Write a new version of `key`; return (new, previous or None)."""
        assert self._txn_start is not None, "put outside a write txn"
        rev = self._rev + 1
        prev = self._current.get(key)
        if prev is None:
            kv = KeyValue(key, rev, rev, 1, value, lease)
            self._live.add(key)
        else:
            kv = KeyValue(key, prev.create_revision, rev, prev.version + 1, value, lease)
        self._current[key] = kv
        self._record(PUT, kv, prev)
        return kv, prev

    def delete_range(self, key: bytes, end: bytes) -> list[KeyValue]:
        """Tombstone every live key in the range; return their last versions."""
        assert self._txn_start is not None, "delete outside a write txn"
        if not end:
            if key not in self._current:
                return []
            self._live.remove(key)
            keys = [key]
        else:
            lo, hi = self._bounds(self._live, key, end)
            keys = list(self._live.islice(lo, hi))
            del self._live[lo:hi]
        rev = self._rev + 1
        prevs = []
        for k in keys:
            prev = self._current.pop(k)
            self._record(DELETE, tombstone(k, rev), prev)
            prevs.append(prev)
        return prevs

    def _record(self, etype: int, kv: KeyValue, prev: KeyValue | None) -> None:
        history = self._history.get(kv.key)
        if history is None:
            self._history[kv.key] = history = []
            self._indexed.add(kv.key)
        history.append(kv)
        if len(history) > 1 or etype == DELETE:
            self._dirty.add(kv.key)
        self._events.append(Event(etype, kv, prev))

    # -- reads -----------------------------------------------------------------------

    @staticmethod
    def _bounds(keys: SortedList, key: bytes, end: bytes) -> tuple[int, int]:
        lo = keys.bisect_left(key)
        hi = len(keys) if end == ALL_END else keys.bisect_left(end)
        return lo, max(lo, hi)

    def _at(self, key: bytes, rev: int) -> KeyValue | None:
        history = self._history.get(key)
        if not history:
            return None
        i = bisect_right(history, rev, key=_mod)
        if i == 0 or is_tombstone(history[i - 1]):
            return None
        return history[i - 1]

    def range(
        self, key: bytes, end: bytes, rev: int = 0, limit: int = 0, count_only: bool = False
    ) -> RangeResult:
        """Keys in [key, end) at `rev` (0 = current), at most `limit` (0 = all), in key order."""
        cur = self.read_revision
        if rev > cur:
            raise errors.future_revision()
        if rev <= 0:
            rev = cur
        if rev < self._compact_rev:
            raise errors.compacted()
        if not end:
            kv = self._current.get(key) if rev == cur else self._at(key, rev)
            if kv is None:
                return RangeResult([], 0, cur)
            return RangeResult([] if count_only else [kv], 1, cur)
        if rev == cur:
            lo, hi = self._bounds(self._live, key, end)
            count = hi - lo
            if count_only:
                return RangeResult([], count, cur)
            stop = hi if limit <= 0 else min(hi, lo + limit)
            current = self._current
            return RangeResult([current[k] for k in self._live.islice(lo, stop)], count, cur)
        lo, hi = self._bounds(self._indexed, key, end)
        kvs: list[KeyValue] = []
        count = 0
        for k in self._indexed.islice(lo, hi):
            kv = self._at(k, rev)
            if kv is None:
                continue
            count += 1
            if not count_only and (limit <= 0 or len(kvs) < limit):
                kvs.append(kv)
        return RangeResult(kvs, count, cur)

    def range_request(self, req: dict) -> dict:
        """A RangeRequest as etcd's applier does it: fetch, filter, sort, then limit."""
        order, target, limit = req["sort_order"], req["sort_target"], req["limit"]
        if target not in SORT_KEYS or order not in (SORT_NONE, SORT_ASCEND, SORT_DESCEND):
            raise errors.invalid_argument("etcdserver: invalid sort option")
        filtered = any(req[name] for name, _, _ in _FILTERS)
        # etcd fetches everything when it must sort or filter, else one extra for `more`.
        fetch = 0 if order != SORT_NONE or filtered else limit + 1 if limit > 0 else 0
        rr = self.range(req["key"], req["range_end"], req["revision"], fetch, req["count_only"])
        kvs = rr.kvs
        for name, field, keep_above in _FILTERS:
            bound = req[name]
            if bound:
                if keep_above:
                    kvs = [kv for kv in kvs if getattr(kv, field) >= bound]
                else:
                    kvs = [kv for kv in kvs if getattr(kv, field) <= bound]
        if order == SORT_NONE and target != 0:
            order = SORT_ASCEND  # etcd's default when a non-key target is given
        if order != SORT_NONE and not (order == SORT_ASCEND and target == 0):
            kvs = sorted(kvs, key=SORT_KEYS[target], reverse=order == SORT_DESCEND)
        more = False
        if limit > 0 and len(kvs) > limit:
            kvs, more = kvs[:limit], True
        if req["keys_only"]:
            kvs = [kv._replace(value=b"") for kv in kvs]
        return {"header": {"revision": rr.rev}, "kvs": kvs, "more": more, "count": rr.count}

    def events_since(self, start: int, key: bytes, end: bytes) -> list[Event]:
        """Committed events at revision >= start on keys in range (start <= 0: none)."""
        if start <= 0:
            return []
        if start < self._compact_rev:
            raise errors.compacted()
        events = self._events
        stop = len(events) if self._txn_start is None else self._txn_start
        i = bisect_left(events, start, 0, stop, key=_event_rev)
        if not end:
            return [ev for ev in events[i:stop] if ev.kv.key == key]
        return [ev for ev in events[i:stop] if in_range(ev.kv.key, key, end)]

    # -- compaction ------------------------------------------------------------------

    def compact(self, rev: int) -> None:
        """Forget versions superseded at or before `rev` (etcd's rules and errors)."""
        assert self._txn_start is None, "compact inside a write txn"
        if rev <= self._compact_rev:
            raise errors.compacted()
        if rev > self._rev:
            raise errors.future_revision()
        self._compact_rev = rev
        for key in list(self._dirty):
            history = self._history[key]
            i = bisect_right(history, rev, key=_mod) - 1
            if i >= 0:
                del history[: i + 1 if is_tombstone(history[i]) else i]
            if not history:
                del self._history[key]
                self._indexed.remove(key)
                self._dirty.discard(key)
            elif len(history) == 1 and not is_tombstone(history[0]):
                self._dirty.discard(key)
        self._prune_events(rev)

    def _prune_events(self, rev: int) -> None:
        events = self._events
        del events[: bisect_left(events, rev, key=_event_rev)]
        at = bisect_right(events, rev, key=_event_rev)
        kept: list[Event] = []
        seen: set[bytes] = set()
        for ev in reversed(events[:at]):  # keep a key's last change at `rev` if a put
            if ev.kv.key not in seen:
                seen.add(ev.kv.key)
                if ev.type == PUT:
                    kept.append(Event(PUT, ev.kv, None))
        events[:at] = reversed(kept)

    # -- snapshot support ------------------------------------------------------------

    def base_versions(self) -> list[KeyValue]:
        """Versions older than the compact revision: the ones the event log lacks."""
        history, c = self._history, self._compact_rev
        return [history[k][0] for k in self._indexed if history[k][0].mod_revision < c]

    def event_log(self) -> list[Event]:
        """The committed event log, oldest first. Do not mutate."""
        assert self._txn_start is None
        return self._events

    @classmethod
    def restore(
        cls,
        revision: int,
        compact_revision: int,
        base: Iterable[KeyValue],
        changes: Iterable[KeyValue],
    ) -> MVCCStore:
        """Rebuild a store from `base_versions()` and the event log's kvs (in order)."""
        store = cls()
        store._rev, store._compact_rev = revision, compact_revision
        history: dict[bytes, list[KeyValue]] = {kv.key: [kv] for kv in base}
        events = store._events
        make_event = tuple.__new__  # Event(...) without the namedtuple wrapper: hot loop
        for kv in changes:  # version 0 marks a tombstone (is_tombstone, inlined)
            versions = history.get(kv.key)
            if versions is None:
                history[kv.key] = versions = [kv]
                prev = None
            else:
                prev = versions[-1]
                if prev.version == 0:
                    prev = None
                versions.append(kv)
            events.append(make_event(Event, (PUT if kv.version else DELETE, kv, prev)))
        store._history = history
        store._indexed = SortedList(history)
        store._current = {k: v[-1] for k, v in history.items() if v[-1].version}
        store._live = SortedList(store._current)
        store._dirty = {k for k, v in history.items() if len(v) > 1 or not v[-1].version}
        return store
