"""Invariants a drill checks besides linearizability, each a plain function of records.

- `lost_writes`: no acknowledged write is lost. Judged against the final state read
  once the fleet is healed and every client has stopped (see the function for the exact
  rule: it flags only writes that are certainly lost, whatever the order of the
  concurrent ones).
- `duplicate_appends`: no element appears twice in a list whose appends carry unique
  elements (a retried append applied twice).
- `watch_gaps`: a watch stream, followed across its reconnects, delivers every revision
  of its range exactly once and in order.
- `members_agree`: once healed, every store member holds the same keys, values and
  mod_revisions, at the same revision.

Each returns what is wrong (an empty list when all is well), so a report can print it.
Values are compared as JSON values (lists and tuples alike, True distinct from 1).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provisioning.drills.history import History, Op
from provisioning.drills.linearizability import freeze

ABSENT = object()              # a key a member does not hold
LIST_KINDS = frozenset({"append", "read-list"})


@dataclass(frozen=True)
class Problem:
    kind: str                  # "gap" | "duplicate" | "out-of-order" | "before-start" | "revision" | "key" | "more"
    detail: str
    revision: int | None = None
    key: Any = None

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def _acknowledged(op: Op) -> bool:
    """An op known to have taken effect (a cas answered False changed nothing)."""
    return op.status == "ok" and (op.kind in ("write", "append")
                                  or (op.kind == "cas" and op.result is not False))


def _new_value(op: Op) -> Any:
    return op.value[1] if op.kind == "cas" else op.value


def lost_writes(history: History | Iterable[Op], final_state: Mapping[Any, Any]) -> list[Op]:
    """Acknowledged writes, cas and appends whose effect is missing from `final_state`.

    `final_state` maps each key to the value (register) or list read once the fleet is
    healed and no client writes any more; a key missing from it is taken as absent (as
    a range over the workload's prefix returns it), so pass every key that was read.

    Lists: every acknowledged append must appear in the final list (as many times as it
    was acknowledged).

    Registers: the final value F must have been written by some write X (ok or unknown,
    a write or a cas setting F; the initial absence counts as a write of None before
    everything) that is not followed in real time by an acknowledged write. So an
    acknowledged write W is lost when every such X completed before W was invoked: then
    nothing could have overwritten W after it took effect, yet F is not W's value.
    This flags only certain losses; the linearizability check of the same history with
    the final read in it catches the rest.
    """
    lost: list[Op] = []
    for key, ops in _group(history).items():
        final = final_state.get(key)
        if any(op.kind in LIST_KINDS for op in ops):
            lost.extend(_lost_appends(ops, final))
        else:
            lost.extend(_lost_register_writes(ops, final))
    return sorted(lost, key=lambda op: (op.invoke, op.index))


def _group(history: History | Iterable[Op]) -> dict[Any, list[Op]]:
    groups: dict[Any, list[Op]] = {}
    for op in history:
        groups.setdefault(op.key, []).append(op)
    return groups


def _lost_register_writes(ops: Sequence[Op], final: Any) -> list[Op]:
    target = freeze(final)
    writers = [op for op in ops if op.kind in ("write", "cas") and op.status != "fail"
               and (op.kind != "cas" or op.result is not False)
               and freeze(_new_value(op)) == target]
    # When a writer may have taken effect at or after `t`, a write invoked at `t` may
    # have been overwritten by it: the latest such moment decides.
    latest = max((float("inf") if op.status == "unknown" or op.complete is None
                  else op.complete for op in writers), default=float("-inf"))
    acked = [op for op in ops if op.kind in ("write", "cas") and _acknowledged(op)]
    return [op for op in acked if op.invoke > latest]


def _lost_appends(ops: Sequence[Op], final: Any) -> list[Op]:
    present = Counter(freeze(x) for x in (final or []))
    lost = []
    for op in sorted((op for op in ops if op.kind == "append" and _acknowledged(op)),
                     key=lambda op: (op.invoke, op.index)):
        element = freeze(op.value)
        if present[element] > 0:
            present[element] -= 1
        else:
            lost.append(op)
    return lost


def duplicate_appends(final_list: Iterable[Any] | None) -> list[Any]:
    """Elements appearing more than once in the list, each once, in order of appearance.

    Every append of the workload carries a unique element, so a duplicate means one
    append was applied twice (a retry after an unknown outcome, or a replayed entry).
    """
    counts: Counter[Hashable] = Counter()
    duplicates = []
    for element in final_list or []:
        frozen = freeze(element)
        counts[frozen] += 1
        if counts[frozen] == 2:
            duplicates.append(element)
    return duplicates


def watch_gaps(events: Sequence[Sequence[Any]], start_rev: int, end_rev: int,
               expected_revisions: Iterable[int] | None = None, *,
               limit: int = 50) -> list[Problem]:
    """What one watch stream got wrong, followed across its reconnects.

    `events` are what the stream delivered, in delivery order, each `(revision, key,
    ...)` (further fields ignored). The stream watched from `start_rev` and should have
    covered everything up to `end_rev` (both inclusive). Checked:
    - in order: revisions never go back (one transaction may yield several events, for
      different keys, at one revision);
    - exactly once: no (revision, key) twice, e.g. after resuming from the wrong revision;
    - nothing before `start_rev`;
    - no gaps: every revision of `expected_revisions` (those the runner knows changed
      the watched range, e.g. its acknowledged writes) within [start_rev, end_rev] was
      delivered. Without it only order and duplicates are checked: revisions are
      store-wide, so a watched range sees a sparse subset of them.
    """
    problems: list[Problem] = []
    seen: set[tuple[int, Any]] = set()
    delivered: set[int] = set()
    last: int | None = None
    for n, event in enumerate(events):
        revision, key = int(event[0]), event[1]
        if revision < start_rev:
            problems.append(Problem("before-start", f"event {n} at revision {revision} "
                                    f"(key {key!r}) precedes the start {start_rev}",
                                    revision, key))
        if last is not None and revision < last:
            problems.append(Problem("out-of-order", f"event {n} at revision {revision} "
                                    f"(key {key!r}) after revision {last}", revision, key))
        if (revision, key) in seen:
            problems.append(Problem("duplicate", f"event {n}: revision {revision} of key "
                                    f"{key!r} delivered again", revision, key))
        seen.add((revision, key))
        delivered.add(revision)
        last = revision if last is None else max(last, revision)
    if expected_revisions is not None:
        missing = sorted({r for r in expected_revisions
                          if start_rev <= r <= end_rev and r not in delivered})
        for lo, hi in _runs(missing):
            what = f"revision {lo}" if lo == hi else f"revisions {lo}-{hi}"
            problems.append(Problem("gap", f"{what} never delivered", lo))
    return _capped(problems, limit)


def _runs(numbers: Sequence[int]) -> list[tuple[int, int]]:
    """[3, 4, 5, 9] -> [(3, 5), (9, 9)]: consecutive missing revisions as one gap."""
    runs: list[tuple[int, int]] = []
    for x in numbers:
        if runs and x == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], x)
        else:
            runs.append((x, x))
    return runs


def members_agree(snapshots: Mapping[str, Mapping[Any, Sequence[Any]]],
                  revisions: Mapping[str, int], *, limit: int = 50) -> list[Problem]:
    """Where the store's members disagree once healed.

    `snapshots` maps each member to its contents, `{key: (value, mod_revision)}` (read
    with serializable ranges against each member, so each answers from its own copy),
    and `revisions` each member's current revision. Every member must be at the same
    revision and hold the same keys with the same values and mod_revisions; each key
    that differs is one problem listing every member's version (or "absent").
    """
    problems: list[Problem] = []
    members = sorted(set(snapshots) | set(revisions))
    distinct = {revisions[m] for m in members if m in revisions}
    if len(distinct) > 1 or any(m not in revisions for m in members):
        listed = ", ".join(f"{m}={revisions.get(m, '?')}" for m in members)
        problems.append(Problem("revision", f"members at different revisions: {listed}"))
    keys: set = set()
    for contents in snapshots.values():
        keys.update(contents)
    for key in _sorted_keys(keys):
        versions = {m: snapshots.get(m, {}).get(key, ABSENT) for m in members}
        frozen = {m: ABSENT if v is ABSENT else freeze(tuple(v)) for m, v in versions.items()}
        if len(set(frozen.values())) > 1:
            listed = ", ".join(f"{m}={_version(v)}" for m, v in versions.items())
            problems.append(Problem("key", f"key {key!r}: {listed}", key=key))
    return _capped(problems, limit)


def _version(v: Any) -> str:
    if v is ABSENT:
        return "absent"
    value, mod_revision = v
    return f"({value!r} @ {mod_revision})"


def _sorted_keys(keys: set) -> list:
    try:
        return sorted(keys)
    except TypeError:
        return sorted(keys, key=repr)


def _capped(problems: list[Problem], limit: int) -> list[Problem]:
    if len(problems) <= limit:
        return problems
    more = len(problems) - limit
    return problems[:limit] + [Problem("more", f"... and {more} more problems")]
