"""Linearizability of a drill's history, checked per key with the Wing–Gong search.

A history is linearizable when every operation can be given one instant between its
invocation and its completion such that, taken in that order, the operations are a
legal run of the sequential model (a register, a list). Keys are independent objects,
so a history is linearizable exactly when each key's sub-history is (Herlihy and Wing's
locality; Porcupine's "P-compositionality"): each key is searched on its own.

The search is Wing and Gong's as Lowe improved it and Porcupine implements it: the
invocations and completions sit in one time-ordered linked list; the search repeatedly
picks an operation whose invocation comes before the first pending completion,
applies it to the model, unlinks it, and backtracks when it reaches a completion whose
operation no order could place. A cache of (set of placed operations as a bitset,
model state) prunes every configuration already explored. On top of Porcupine, moves
that cannot matter are not branched on and dead configurations are cut early (see
`_search`), which keeps histories of thousands of operations per key to well under a
second when written values are unique, as a workload should make them.

Outcomes of operations (see history.py):
- "fail" operations certainly did not take effect and are dropped, and so is a cas
  answered False (it did not take effect either; what it saw is not used);
- "unknown" writes may have taken effect at any instant after their invocation, or
  never: they are optional (a history is linearizable if all ok operations and some
  subset of the unknown ones linearize). One placed after every op that could see its
  value changes nothing anyone saw, so it is dropped past that point (`until`), and
  at once when no op sees its value;
- "unknown" reads constrain nothing and are dropped.

A search that passes its deadline reports the key as undecided, never as a violation.

When a key is not linearizable, the search knows the furthest completion it could
never get past. The counterexample is then shrunk to a small window, using only
changes that keep a non-linearizable history non-linearizable: dropping a read, making
a write optional from its invocation on (as if it had timed out), and cutting the
history at a time t0, after which the state is taken to be anything at all (every op
completed before t0 is linearized before every op invoked after it). What is left is a
handful of ok operations that no order can explain, whatever the state at the cut and
whenever the other writes took effect; `render` prints them as a timeline.

    verdict = check(history, RegisterModel(), deadline=10)
    if not verdict.ok:
        print(verdict.reason)
        print(render(verdict.counterexample, context=verdict.context))
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from provisioning.drills.history import History, Op

INF = math.inf
DEFAULT_DEADLINE = 10.0        # seconds of search per key (and again for shrinking)
CLOCK_EVERY = 2048             # search steps between two looks at the clock
MAX_CONTEXT = 6                # optional writes shown next to a counterexample


class _Any:
    """The state at a cut of the history: whatever it was (the first read decides)."""

    def __repr__(self) -> str:
        return "<any>"


ANY = _Any()


class _Unseen:
    """Every value that no op of the key reads or compares against (see normalize)."""

    def __repr__(self) -> str:
        return "<unseen>"


UNSEEN = _Unseen()
_EMPTY = ("empty list",)        # what a read of the empty list needs: no append yet
_NO = object()                  # no value needed, or none produced
_BOOL = ("bool",)              # tags booleans apart from 0 and 1 (True == 1 in Python)
_DICT = ("dict",)


def freeze(value: Any) -> Hashable:
    """A hashable stand-in for a JSON value, equal exactly when the values are equal."""
    if isinstance(value, bool):
        return (_BOOL, value)
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return (_DICT, tuple(sorted(((k, freeze(v)) for k, v in value.items()),
                                    key=lambda kv: str(kv[0]))))
    return value


def thaw(frozen: Any) -> Any:
    """The JSON value back from `freeze` (for messages)."""
    if isinstance(frozen, tuple):
        if len(frozen) == 2 and frozen[0] is _BOOL:
            return frozen[1]
        if len(frozen) == 2 and frozen[0] is _DICT:
            return {k: thaw(v) for k, v in frozen[1]}
        return [thaw(v) for v in frozen]
    return frozen


class Model(Protocol):
    """A sequential object: inputs are prepared once per op, states are hashable.

    Besides `step`, the search asks what an op makes (`effect`), needs (`need`, `holds`)
    and could see (`observes`), to prune orders that cannot matter.
    """

    name: str
    kinds: frozenset[str]
    cut_windows: bool               # whether a window may start from an unknown state
    grows: bool                     # states only grow: check `extends` for the next read

    def init(self, unknown: bool = False) -> Hashable: ...

    def prepare(self, op: Op) -> tuple: ...

    def step(self, state: Any, inp: tuple) -> tuple[bool, Any]: ...

    def effect(self, inp: tuple) -> Hashable: ...

    def observes(self, inp: tuple) -> tuple: ...

    def read_only(self, inp: tuple) -> bool: ...

    def need(self, inp: tuple) -> tuple: ...

    def holds(self, state: Any, need: Hashable) -> bool: ...

    def extends(self, state: Any, inp: tuple) -> bool: ...

    def normalize(self, inputs: list[tuple]) -> list[tuple]: ...

    def describe(self, state: Any) -> str: ...


class RegisterModel:
    """One key holding one value; None is "absent", the initial state.

    write v sets v; read returns the value; cas [e, n] sets n when the value is e.
    """

    name = "register"
    kinds = frozenset({"read", "write", "cas"})
    cut_windows = True
    grows = False

    def init(self, unknown: bool = False) -> Hashable:
        return ANY if unknown else None

    def prepare(self, op: Op) -> tuple:
        if op.kind == "read":
            return ("r", freeze(op.result))
        if op.kind == "write":
            return ("w", freeze(op.value))
        expected, new = op.value
        return ("c", freeze(expected), freeze(new))

    def step(self, state: Any, inp: tuple) -> tuple[bool, Any]:
        kind = inp[0]
        if kind == "r":
            return (state is ANY or state == inp[1]), inp[1]
        if kind == "w":
            return True, inp[1]
        return (state is ANY or state == inp[1]), inp[2]

    def effect(self, inp: tuple) -> Hashable:
        """The value a write or cas leaves."""
        return inp[-1]

    def observes(self, inp: tuple) -> tuple:
        """The values whose writes can make this op legal."""
        return (inp[1],) if inp[0] in ("r", "c") else ()

    def read_only(self, inp: tuple) -> bool:
        return inp[0] == "r"

    def need(self, inp: tuple) -> tuple:
        """The value the state must hold for the op to be legal, if there is one: (v,)."""
        return (inp[1],) if inp[0] in ("r", "c") else ()

    def holds(self, state: Any, need: Hashable) -> bool:
        return state is ANY or state == need

    def extends(self, state: Any, inp: tuple) -> bool:
        return True

    def normalize(self, inputs: list[tuple]) -> list[tuple]:
        """Values no op reads or compares against, all written as one value, UNSEEN.

        They are indistinguishable to every op of the key, and merging them lets the
        cache see that two orders of such writes lead to the same state.
        """
        seen = {inp[1] for inp in inputs if inp[0] in ("r", "c")}
        out = []
        for inp in inputs:
            if inp[0] == "w" and inp[1] not in seen:
                inp = ("w", UNSEEN)
            elif inp[0] == "c" and inp[2] not in seen:
                inp = ("c", inp[1], UNSEEN)
            out.append(inp)
        return out

    def describe(self, state: Any) -> str:
        if state is ANY:
            return "any value"
        if state is UNSEEN:
            return "a value no op read"
        return "the key absent" if state is None else f"value {_json(thaw(state))}"


@dataclass(frozen=True)
class _Tail:
    """A list known only to end with `suffix` (the state after a cut)."""

    suffix: tuple


class _Seq:
    """A list as a chain of interned cells: equal lists are the same object.

    States are hashed at every step of the search and read-lists compared with them;
    interning makes both O(1) however long the list grows.
    """

    __slots__ = ("prev", "item", "length")

    def __init__(self, prev: _Seq | None, item: Hashable) -> None:
        self.prev, self.item = prev, item
        self.length = prev.length + 1 if prev is not None else 0

    def items(self) -> tuple:
        out = []
        cell: _Seq | None = self
        while cell is not None and cell.prev is not None:
            out.append(cell.item)
            cell = cell.prev
        return tuple(reversed(out))


class ListModel:
    """One key holding a list: append adds an element at the end; read-list returns it all.

    A read-list result of None (the key absent) is the empty list.
    """

    name = "list"
    kinds = frozenset({"append", "read-list"})
    # From an unknown list every order of the pending appends is a different state, so
    # windows of a list always start from the beginning.
    cut_windows = False
    grows = True

    def __init__(self) -> None:
        self._empty = _Seq(None, None)
        self._cells: dict[tuple[_Seq, Hashable], _Seq] = {}

    def _append(self, seq: _Seq, item: Hashable) -> _Seq:
        cell = self._cells.get((seq, item))
        if cell is None:
            cell = self._cells[(seq, item)] = _Seq(seq, item)
        return cell

    def init(self, unknown: bool = False) -> Hashable:
        return _Tail(()) if unknown else self._empty

    def prepare(self, op: Op) -> tuple:
        if op.kind == "append":
            return ("a", freeze(op.value))
        seen = freeze(op.result if op.result is not None else [])
        prefixes = [self._empty]
        for item in seen:
            prefixes.append(self._append(prefixes[-1], item))
        return ("l", seen, prefixes[-1], tuple(prefixes))

    def step(self, state: Any, inp: tuple) -> tuple[bool, Any]:
        if inp[0] == "a":
            if type(state) is _Tail:
                return True, _Tail(state.suffix + (inp[1],))
            return True, self._append(state, inp[1])
        if type(state) is _Tail:
            seen, n = inp[1], len(state.suffix)
            return (len(seen) >= n and seen[len(seen) - n:] == state.suffix), inp[2]
        return state is inp[2], inp[2]

    def effect(self, inp: tuple) -> Hashable:
        """The element an append adds."""
        return inp[1]

    def observes(self, inp: tuple) -> tuple:
        return inp[1] if inp[0] == "l" else ()

    def read_only(self, inp: tuple) -> bool:
        return inp[0] == "l"

    def need(self, inp: tuple) -> tuple:
        """A read-list needs its last element appended last (lists only grow)."""
        if inp[0] != "l":
            return ()
        return (inp[1][-1] if inp[1] else _EMPTY,)

    def holds(self, state: Any, need: Hashable) -> bool:
        if type(state) is _Tail:
            return not state.suffix or state.suffix[-1] == need
        return state.item == need if state.length else need is _EMPTY

    def extends(self, state: Any, inp: tuple) -> bool:
        """Whether the read-list can still be legal later: the list is a prefix of it."""
        if type(state) is _Tail:
            return True
        prefixes = inp[3]
        return state.length < len(prefixes) and prefixes[state.length] is state

    def normalize(self, inputs: list[tuple]) -> list[tuple]:
        return inputs

    def describe(self, state: Any) -> str:
        if type(state) is _Tail:
            return f"a list ending with {_json(thaw(state.suffix))}"
        return f"list {_json(thaw(state.items()))}"


@dataclass(frozen=True)
class Verdict:
    ok: bool                        # every key was proven linearizable
    key: str | None                 # the key of the counterexample (or the undecided one)
    ops_checked: int
    counterexample: list[Op] | None
    reason: str
    timed_out: bool                 # some key's search hit the deadline: undecided
    context: list[Op] = field(default_factory=list)   # optional writes the reads refer to
    window_start: Op | None = None  # the counterexample holds from this op's invocation on
    failed_keys: tuple[str, ...] = ()
    undecided_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Item:
    op: Op
    inp: tuple
    invoke: float
    complete: float | None          # None: optional, may take effect any time after invoke
    until: float = INF              # optional: placing it later can no longer matter


@dataclass
class _Outcome:
    ok: bool
    timed_out: bool = False
    stuck: int = -1                 # item never placed at the furthest completion reached
    prefix: list[int] = field(default_factory=list)   # the longest partial linearization
    state: Any = None               # the model state after that prefix


def _search(model: Model, items: Sequence[_Item], state: Any, deadline_at: float,
            clock: Callable[[], float]) -> _Outcome:
    """Wing–Gong/Lowe search with Porcupine's (bitset, state) cache.

    Two moves are forced (never undone to try another candidate in their place, only
    by backtracking further):
    - an optional op met at its `until` unplaced is left out, unless an optional op
      that could still see its effect is pending (an unknown cas expecting its value):
      then the search looks past it, and leaves it out when it meets it again;
    - a read-only op that is legal in the current state is placed at once. It changes
      nothing, and any order that places it later can place it now instead: every op
      that had to precede it is placed already (it is a candidate), and the ops it
      would jump over see the same states.

    Optional ops with the same input are used in the order they were invoked: any order
    that uses a later one where an earlier one is unused, or before it, works as well
    with the two swapped.

    And a move is refused when it starves an op: when some unplaced ok op needs a value
    (a read's, a cas's expected one, a read-list's last element) that the state does
    not hold and that no unplaced op can produce any more. Counting the producers and
    needers left per value makes that test cheap, and it stops the search from piling
    writes on a configuration that is already dead. For lists, a move is also refused
    when the list is no longer a prefix of what the next read-list to complete saw
    (lists only grow), which keeps appends in the order the reads saw.

    On failure, `stuck` is the op at the furthest completion that no order got past:
    one where the search met an op it could not place, or the first completion of an
    op that a refused move would have starved.
    """
    n = len(items)
    if n == 0:
        return _Outcome(ok=True)
    optional = [it.complete is None for it in items]
    # Calls before completions at one instant (they overlap), and an optional op's end
    # after the completions of the ops it could serve.
    events = sorted([(it.invoke, 0, i) for i, it in enumerate(items)]
                    + [(it.until, 2, i) if optional[i] else (it.complete, 1, i)
                       for i, it in enumerate(items)])
    size = 2 * n
    tail = size + 1
    nxt = list(range(1, size + 2)) + [tail]
    prv = [0] + list(range(0, size + 1))
    node_item = [0] * (size + 2)
    is_call = [False] * (size + 2)
    partner = [0] * (size + 2)      # a call's completion node and back
    call_node = [0] * n
    for node, (_, kind, i) in enumerate(events, 1):
        node_item[node] = i
        if kind == 0:
            is_call[node] = True
            call_node[i] = node
        else:
            partner[call_node[i]] = node
            partner[node] = call_node[i]
    inputs = [it.inp for it in items]
    read_only = [model.read_only(inp) for inp in inputs]
    needs = [_NO if optional[i] else (model.need(inp) or (_NO,))[0]
             for i, inp in enumerate(inputs)]
    makes = [_NO if read_only[i] else model.effect(inp) for i, inp in enumerate(inputs)]
    producers: dict[Hashable, int] = {}
    needers: dict[Hashable, list[tuple[int, int]]] = {}    # value -> [(end node, item)]
    for i in range(n):
        if makes[i] is not _NO:
            producers[makes[i]] = producers.get(makes[i], 0) + 1
        if needs[i] is not _NO:
            needers.setdefault(needs[i], []).append((partner[call_node[i]], i))
            producers.setdefault(needs[i], 0)
    needers_left = {v: len(ends) for v, ends in needers.items()}
    for ends in needers.values():
        ends.sort()
    starved = {v for v, k in needers_left.items() if not producers[v]}
    holds = model.holds
    extends = model.extends
    prefix_checked = [model.grows and not optional[i] and read_only[i] for i in range(n)]
    prefix_checked_any = any(prefix_checked)
    # Optional ops with one input are interchangeable (one `until` too): use them in
    # order of invocation, so that no two orders of twins are searched.
    twin_before = [-1] * n
    latest: dict[tuple, int] = {}
    for i in sorted((i for i in range(n) if optional[i]), key=lambda i: items[i].invoke):
        twin_before[i] = latest.get(inputs[i], -1)
        latest[inputs[i]] = i
    step = model.step
    watchers = [[j for j in range(n) if optional[j] and j != i
                 and makes[i] in model.observes(inputs[j])] if optional[i] else []
                for i in range(n)]

    def account(i: int, delta: int) -> None:
        """Place (-1) or unplace (+1) item i in the counts, keeping `starved` exact."""
        v = makes[i]
        if v is not _NO:
            producers[v] += delta
            if needers_left.get(v) and not producers[v]:
                starved.add(v)
            else:
                starved.discard(v)
        v = needs[i]
        if v is not _NO:
            needers_left[v] += delta
            if needers_left[v] and not producers[v]:
                starved.add(v)
            else:
                starved.discard(v)

    linearized = 0
    cache: set = set()
    stack: list[tuple[int, Any, int, bool]] = []   # (node, state, linearized, forced)
    best = _Outcome(ok=False)
    best_node = -1
    entry = nxt[0]
    count = 0
    while nxt[0] != tail:
        if entry == tail:           # only optional ops are left
            break
        count += 1
        if count % CLOCK_EVERY == 0 and clock() > deadline_at:
            best.timed_out = True
            return best
        i = node_item[entry]
        stuck_at = -1
        if is_call[entry]:
            if twin_before[i] >= 0 and not linearized >> twin_before[i] & 1:
                entry = nxt[entry]
                continue
            valid, new_state = step(state, inputs[i])
            if not valid:
                entry = nxt[entry]
                continue
            forced = read_only[i] and new_state == state
        elif optional[i]:
            if any(not linearized >> j & 1 for j in watchers[i]):
                entry = nxt[entry]
                continue
            valid, new_state, forced = True, state, True
        else:
            valid, new_state, forced = False, None, False
            stuck_at = entry
        if valid and not forced and prefix_checked_any:
            # The first unplaced read-list to complete must still be reachable.
            node = nxt[0]
            while node != tail:
                j = node_item[node]
                if not is_call[node] and prefix_checked[j] and j != i:
                    if not extends(new_state, inputs[j]):
                        valid = False
                        stuck_at = node
                    break
                node = nxt[node]
        if valid:
            account(i, -1)
            dead = [v for v in starved if not holds(new_state, v)] if starved else None
            if dead:
                placed = linearized | (1 << i)
                stuck_at = min(next(end for end, j in needers[v] if not placed >> j & 1)
                               for v in dead)
                account(i, +1)
                valid = False
        if stuck_at > best_node:
            best_node = stuck_at
            best = _Outcome(ok=False, stuck=node_item[stuck_at],
                            prefix=[node_item[e] for e, _, _, _ in stack if is_call[e]],
                            state=state)
        if valid:
            placed = linearized | (1 << i)
            before = len(cache)
            cache.add((placed, new_state))
            if len(cache) != before:
                stack.append((entry, state, linearized, forced))
                state, linearized = new_state, placed
                a, b = entry, partner[entry]
                nxt[prv[a]] = nxt[a]
                prv[nxt[a]] = prv[a]
                nxt[prv[b]] = nxt[b]
                prv[nxt[b]] = prv[b]
                entry = nxt[0]
                continue
            account(i, +1)
        if not forced and is_call[entry]:
            entry = nxt[entry]
            continue
        # Backtrack: undo forced moves, then try the candidate after the last free one.
        while True:
            if not stack:
                return best
            entry, state, linearized, forced = stack.pop()
            account(node_item[entry], +1)
            a, b = entry, partner[entry]
            nxt[prv[b]] = b
            prv[nxt[b]] = b
            nxt[prv[a]] = a
            prv[nxt[a]] = a
            if not forced:
                entry = nxt[entry]
                break
    return _Outcome(ok=True)


def _counts(op: Op) -> bool:
    """Whether the op constrains the search: failed ops and reads of unknown outcome
    do not, nor a cas answered False (it did not take effect: a failed cas)."""
    if op.status == "fail" or (op.status == "unknown" and not op.is_write):
        return False
    return not (op.kind == "cas" and op.status == "ok" and op.result is False)


@dataclass(frozen=True)
class _Problem:
    """One key's ops as the search sees them: the history, or a relaxed window of it."""

    model: Model
    items: tuple[_Item, ...]
    init: Any

    @classmethod
    def of(cls, model: Model, ops: Iterable[Op]) -> _Problem:
        items = []
        for op in ops:
            if not _counts(op):
                continue
            complete = op.complete if op.status == "ok" else None
            items.append(_Item(op, model.prepare(op), op.invoke, complete))
        return cls(model, tuple(items), model.init()).bounded()

    def normalized(self) -> _Problem:
        inputs = self.model.normalize([it.inp for it in self.items])
        items = tuple(it if inp == it.inp else _Item(it.op, inp, it.invoke, it.complete, it.until)
                      for it, inp in zip(self.items, inputs, strict=True))
        return _Problem(self.model, items, self.init)

    def bounded(self) -> _Problem:
        """Each optional op's `until`: the last moment an op it could serve can be placed.

        An optional write placed after every op that could see its effect (a read of its
        value, a cas expecting it, a read-list holding the element) changes nothing
        anyone saw, so it may as well be left out: at `until` it is dropped, and one no
        op could see is dropped at once. This keeps the forever-pending unknown writes
        from multiplying the configurations the search visits. An optional cas serves
        until its own `until`, so the bounds are grown to a fixed point.
        """
        model = self.model
        last: dict[Hashable, float] = {}
        for it in self.items:
            if it.complete is None:
                continue
            for value in model.observes(it.inp):
                if it.complete > last.get(value, -INF):
                    last[value] = it.complete
        optional = [it for it in self.items if it.complete is None]
        until: dict[int, float] = {}
        for _ in range(len(optional) + 1):
            changed = False
            for j, it in enumerate(optional):
                bound = last.get(model.effect(it.inp), -INF)
                if bound < it.invoke or bound <= until.get(j, -INF):
                    continue
                until[j] = bound
                changed = True
                for value in model.observes(it.inp):
                    if bound > last.get(value, -INF):
                        last[value] = bound
            if not changed:
                break
        items = []
        j = 0
        for it in self.items:
            if it.complete is not None:
                items.append(it)
                continue
            if j in until:
                items.append(_Item(it.op, it.inp, it.invoke, None, until[j]))
            j += 1
        return _Problem(model, tuple(items), self.init)

    def search(self, deadline_at: float, clock: Callable[[], float]) -> _Outcome:
        problem = self.normalized()
        return _search(self.model, problem.items, self.init, deadline_at, clock)

    def window(self, strict: set[int], t0: float) -> _Problem:
        """Only the ops in `strict` (item positions) keep their results and completions.

        Ops completed before t0 are dropped and the state at t0 is taken to be anything
        (unless no op was invoked before t0); other writes become optional from their
        invocation; other reads are dropped.
        """
        items = []
        for i, it in enumerate(self.items):
            if i in strict:
                items.append(it)
            elif it.complete is not None and it.complete < t0:
                continue
            elif it.op.is_write:
                items.append(_Item(it.op, it.inp, it.invoke, None))
        cut = any(it.invoke < t0 for it in self.items)
        return _Problem(self.model, tuple(items), self.model.init(unknown=cut)).bounded()


@dataclass(frozen=True)
class _Failure:
    ops: list[Op]
    context: list[Op]
    since: Op | None                # the window starts at this op's invocation
    verified: bool                  # the ops were shown not linearizable on their own
    minimal: bool                   # and relaxing any one of them makes them linearizable
    prefix_len: int
    stuck: Op
    state: Any


def _shrink(problem: _Problem, outcome: _Outcome, deadline_at: float,
            clock: Callable[[], float]) -> _Failure:
    """A small window of ok ops that still cannot be linearized (see the module doc).

    First the window grows back in time from the op that could not be placed (1, 2, 4,
    ... more invocations) until it fails on its own; then its ops are relaxed in chunks
    of halving size, as delta debugging does, keeping each relaxation that still fails.
    """
    items = problem.items
    stuck = items[outcome.stuck]
    t1 = stuck.complete if stuck.complete is not None else INF
    by_invoke = sorted((it.invoke for it in items if it.invoke <= stuck.invoke), reverse=True)
    if not problem.model.cut_windows:
        by_invoke = []

    def fails(strict: set[int], t0: float) -> bool | None:
        result = problem.window(strict, t0).search(deadline_at, clock)
        return None if result.timed_out else not result.ok

    found: tuple[set[int], float] | None = None
    back = 0
    while True:
        t0 = by_invoke[back] if back < len(by_invoke) else -INF
        strict = {i for i, it in enumerate(items)
                  if it.complete is not None and it.invoke >= t0 and it.complete <= t1}
        verdict = fails(strict, t0)
        if verdict is None:
            break
        if verdict:
            found = (strict, t0)
            break
        if back >= len(by_invoke):
            break
        back = back * 2 if back else 1
    if found is None:
        # Undecided within the deadline: Porcupine's frontier, the op that could not be
        # placed next to the ops pending when it completed.
        pending = [it.op for it in items
                   if it.invoke <= t1 and (it.complete is None or it.complete >= t1)
                   and it is not stuck]
        ops = sorted([stuck.op, *pending], key=lambda op: (op.invoke, op.index))
        return _Failure(ops, [], None, False, False, len(outcome.prefix), stuck.op,
                        outcome.state)
    strict, t0 = found
    minimal = True
    chunk = max(1, len(strict) // 2)
    while minimal:
        order = sorted(strict, key=lambda i: -abs(items[i].invoke - stuck.invoke))
        removed = False
        for at in range(0, len(order), chunk):
            trial = strict - set(order[at:at + chunk])
            if not trial or trial == strict:
                continue
            verdict = fails(trial, t0)
            if verdict is None:
                minimal = False
                break
            if verdict:
                strict, removed = trial, True
        if not removed:
            if chunk == 1:
                break
            chunk //= 2
    # A window can hide a smaller story told from the beginning ("7 was never written"
    # rather than "2 was written, then 7 was read"): try each op away with no cut.
    if minimal and t0 != -INF:
        for i in sorted(strict, key=lambda i: -abs(items[i].invoke - stuck.invoke)):
            trial = strict - {i}
            verdict = fails(trial, -INF) if trial else False
            if verdict is None:
                break
            if verdict:
                strict, t0 = trial, -INF
    core = sorted(strict, key=lambda i: (items[i].invoke, items[i].op.index))
    window = problem.window(strict, t0)
    ops = [items[i].op for i in core]
    since = None
    if window.init != problem.init:
        since = min((it.op for it in items if it.invoke == t0), key=lambda op: op.index)
    return _Failure(ops, _context(window, ops), since, True, minimal,
                    len(outcome.prefix), stuck.op, outcome.state)


def _context(window: _Problem, core: list[Op]) -> list[Op]:
    """Optional writes of the window that the core's ops could have seen."""
    ids = {op.index for op in core}
    extra = [it.op for it in window.items if it.complete is None and it.op.index not in ids]
    return sorted(extra, key=lambda op: (op.invoke, op.index))[:MAX_CONTEXT]


def _model_for(ops: Sequence[Op], model: Model | None, key: str,
               models: Sequence[Model]) -> Model:
    if model is not None:
        return model
    kinds = {op.kind for op in ops}
    for candidate in models:
        if kinds <= candidate.kinds:
            return candidate
    raise ValueError(f"key {key!r} mixes register and list operations: {sorted(kinds)}")


def check(history_or_ops: History | Iterable[Op], model: Model | type | None = None, *,
          deadline: float = DEFAULT_DEADLINE,
          clock: Callable[[], float] = time.monotonic) -> Verdict:
    """Whether the history is linearizable, key by key, under `model`.

    `model` is a RegisterModel or a ListModel (class or instance); ops of kinds it does
    not know are left out (another call checks them). With no model, each key gets the
    one its ops need. Each key's search stops after `deadline` seconds (read from
    `clock`) and is then reported as undecided: `ok` is False and `timed_out` True, but
    no counterexample is claimed. When some key is not linearizable, the verdict
    carries the earliest-failing key's shrunk counterexample.
    """
    if isinstance(model, type):
        model = model()
    ops = list(history_or_ops)
    groups: dict[str, list[Op]] = {}
    for op in ops:
        if model is None or op.kind in model.kinds:
            groups.setdefault(op.key, []).append(op)
    models = (RegisterModel(), ListModel())
    checked = 0
    failed: list[tuple[float, str, _Problem, _Outcome]] = []
    undecided: list[str] = []
    for key in sorted(groups):
        key_model = _model_for(groups[key], model, key, models)
        problem = _Problem.of(key_model, groups[key])
        checked += sum(1 for op in groups[key] if _counts(op))
        outcome = problem.search(clock() + deadline, clock)
        if outcome.timed_out:
            undecided.append(key)
        elif not outcome.ok:
            when = problem.items[outcome.stuck].complete
            failed.append((INF if when is None else when, key, problem, outcome))
    nkeys = len(groups)
    if not failed and not undecided:
        return Verdict(True, None, checked, None,
                       f"linearizable: {checked} ops over {nkeys} keys", False)
    if not failed:
        return Verdict(False, undecided[0], checked, None,
                       f"undecided: the search on {len(undecided)} of {nkeys} keys "
                       f"({', '.join(undecided[:5])}) passed its {deadline:g} s deadline; "
                       "no violation was found", True, undecided_keys=tuple(undecided))
    failed.sort(key=lambda f: (f[0], f[1]))
    _, key, problem, outcome = failed[0]
    failure = _shrink(problem, outcome, clock() + deadline, clock)
    reason = _explain(key, problem, failure, len(failed), undecided)
    return Verdict(False, key, checked, failure.ops, reason, bool(undecided),
                   context=failure.context, window_start=failure.since,
                   failed_keys=tuple(f[1] for f in failed),
                   undecided_keys=tuple(undecided))


def _explain(key: str, problem: _Problem, failure: _Failure, nfailed: int,
             undecided: list[str]) -> str:
    model = problem.model
    lines = [f"key {key!r} is not linearizable ({model.name}, {len(problem.items)} ops): "
             f"no order of its ops gets past the completion of #{failure.stuck.index} "
             f"{failure.stuck.describe()}; the furthest one placed "
             f"{_count(failure.prefix_len, 'op')}, leaving {model.describe(failure.state)}."]
    if failure.verified:
        if failure.since is not None:
            start = (f"from whatever the key held when #{failure.since.index} was invoked "
                     "(every op completed by then took effect by then)")
        else:
            start = f"from the start ({model.describe(model.init())})"
        lines.append(f"These {len(failure.ops)} ok ops fit no order consistent with real "
                     f"time, {start}, even if every other write took effect at any moment "
                     "after its invocation, or never."
                     + ("" if failure.minimal else " (shrinking ran out of time: the "
                        "set may not be minimal)"))
    else:
        lines.append("The search ran out of time shrinking; shown are the op that could "
                     "not be placed and the ops pending when it completed.")
    if nfailed > 1:
        lines.append(f"{_count(nfailed - 1, 'more key')} not linearizable.")
    if undecided:
        lines.append(f"{_count(len(undecided), 'key')} undecided at the deadline.")
    return "\n".join(lines)


def render(counterexample: Sequence[Op] | None, *, context: Sequence[Op] = (),
           width: int = 48) -> str:
    """A text timeline of the ops, one per line, times relative to the first invocation.

    `context` ops (optional writes) are marked `~`: they may have taken effect at any
    moment after their invocation, so their bars run to the right edge.
    """
    ops = sorted(counterexample or [], key=lambda op: (op.invoke, op.index))
    extra = sorted(context, key=lambda op: (op.invoke, op.index))
    rows = [(op, " ") for op in ops] + [(op, "~") for op in extra]
    if not rows:
        return "(no ops)"
    rows.sort(key=lambda row: (row[0].invoke, row[0].index))
    t0 = min(op.invoke for op, _ in rows)
    ends = [op.complete for op, mark in rows if op.complete is not None and mark == " "
            and op.status == "ok"]
    t_end = max([t0, *ends, *(op.invoke for op, _ in rows)])
    span = (t_end - t0) or 1.0

    def column(t: float) -> int:
        return min(width - 1, max(0, round((t - t0) / span * (width - 1))))

    labels = [f"#{op.index} {op.describe()}" for op, _ in rows]
    pad = max(len(label) for label in labels)
    out = [f"{'':{pad}}    invoke  complete  (seconds from the first invocation)"]
    for (op, mark), label in zip(rows, labels, strict=True):
        a = column(op.invoke)
        open_ended = mark == "~" or op.status != "ok" or op.complete is None
        if open_ended:
            bar = " " * a + "[" + "-" * (width - a - 1) + ">"
            done = "?"
        else:
            b = max(a, column(op.complete))
            bar = " " * a + ("|" if a == b else "[" + "=" * (b - a - 1) + "]")
            done = f"{op.complete - t0:.3f}"
        out.append(f"{mark}{label:<{pad}}  {op.invoke - t0:>8.3f}  {done:>8}  {bar}".rstrip())
    return "\n".join(out)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _json(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= 60 else text[:57] + "..."
