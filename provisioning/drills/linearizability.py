"""Linearizability of a drill's history, checked per key with the Wing–Gong search.

A history is linearizable when every operation can be given one instant between its
invocation and its completion such that, taken in that order, the operations are a
legal run of the sequential model (a register, a list). Keys are independent objects,
so a history is linearizable exactly when each key's sub-history is (Herlihy and Wing's
locality; Porcupine's "P-compositionality"): each key is searched on its own, which
keeps the search small.

The search is Wing and Gong's as Lowe improved it and Porcupine implements it: the
invocations and completions sit in one time-ordered linked list; the search repeatedly
picks an operation whose invocation comes before the first pending completion,
applies it to the model, unlinks it, and backtracks when it reaches a completion whose
operation no order could place. A cache of (set of placed operations as a bitset,
model state) prunes every configuration already explored, which is what makes the
search practical.

Outcomes of operations (see history.py):
- "fail" operations certainly did not take effect and are dropped;
- "unknown" writes may have taken effect at any instant after their invocation, or
  never: their completion is +inf and they are optional (a history is linearizable if
  all ok operations and some subset of the unknown ones linearize). The search reaches
  the completions of optional operations only after every ok one is placed, so meeting
  one means success;
- "unknown" reads constrain nothing and are dropped;
- an optional write whose value no read ever sees (nor a cas expects) is dropped too:
  it can always be left out of a linearization, and dropping it saves the search from
  trying it everywhere.

When a key is not linearizable, the search knows the furthest completion it could
never get past. The counterexample is then shrunk to a small window, using only
changes that keep a non-linearizable history non-linearizable: dropping a read, making
a write optional from its invocation on (as if it had timed out), and cutting the
history at a time t0, after which the state is taken to be anything at all (every op
completed before t0 is linearized before every op invoked after it). What is left is a
handful of ok operations that no order can explain, whatever happened before the cut
and whenever the other writes took effect; `render` prints them as a timeline.

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
    """A sequential object: inputs are prepared once per op, states are hashable."""

    name: str
    kinds: frozenset[str]

    def init(self, unknown: bool = False) -> Hashable: ...

    def prepare(self, op: Op) -> tuple: ...

    def step(self, state: Any, inp: tuple) -> tuple[bool, Any]: ...

    def observed(self, inputs: Iterable[tuple]) -> set | None: ...

    def matters(self, inp: tuple, observed: set | None) -> bool: ...

    def describe(self, state: Any) -> str: ...


class RegisterModel:
    """One key holding one value; None is "absent", the initial state.

    write v sets v; read returns the value; cas [e, n] sets n when the value is e (an ok
    cas has result True; an ok cas with result False observed a value other than e and
    changed nothing).
    """

    name = "register"
    kinds = frozenset({"read", "write", "cas"})

    def init(self, unknown: bool = False) -> Hashable:
        return ANY if unknown else None

    def prepare(self, op: Op) -> tuple:
        if op.kind == "read":
            return ("r", freeze(op.result))
        if op.kind == "write":
            return ("w", freeze(op.value))
        expected, new = op.value
        if op.status == "ok" and op.result is False:
            return ("cf", freeze(expected))
        return ("c", freeze(expected), freeze(new))

    def step(self, state: Any, inp: tuple) -> tuple[bool, Any]:
        kind = inp[0]
        if kind == "r":
            return (state is ANY or state == inp[1]), inp[1]
        if kind == "w":
            return True, inp[1]
        if kind == "c":
            return (state is ANY or state == inp[1]), inp[2]
        return (state is ANY or state != inp[1]), state

    def observed(self, inputs: Iterable[tuple]) -> set | None:
        """Values some op depends on; None when any value may matter (a failed cas)."""
        seen: set = set()
        for inp in inputs:
            if inp[0] == "cf":
                return None
            if inp[0] in ("r", "c"):
                seen.add(inp[1])
        return seen

    def matters(self, inp: tuple, observed: set | None) -> bool:
        return observed is None or inp[-1] in observed

    def describe(self, state: Any) -> str:
        if state is ANY:
            return "any value"
        return "the key absent" if state is None else f"value {_json(thaw(state))}"


@dataclass(frozen=True)
class _Tail:
    """A list known only to end with `suffix` (the state after a cut)."""

    suffix: tuple


class ListModel:
    """One key holding a list: append adds an element at the end; read-list returns it all.

    A read-list result of None (the key absent) is the empty list.
    """

    name = "list"
    kinds = frozenset({"append", "read-list"})

    def init(self, unknown: bool = False) -> Hashable:
        return _Tail(()) if unknown else ()

    def prepare(self, op: Op) -> tuple:
        if op.kind == "append":
            return ("a", freeze(op.value))
        return ("l", freeze(op.result if op.result is not None else []))

    def step(self, state: Any, inp: tuple) -> tuple[bool, Any]:
        if inp[0] == "a":
            if type(state) is _Tail:
                return True, _Tail(state.suffix + (inp[1],))
            return True, state + (inp[1],)
        seen = inp[1]
        if type(state) is _Tail:
            n = len(state.suffix)
            return (len(seen) >= n and seen[len(seen) - n:] == state.suffix), seen
        return state == seen, seen

    def observed(self, inputs: Iterable[tuple]) -> set | None:
        return {x for inp in inputs if inp[0] == "l" for x in inp[1]}

    def matters(self, inp: tuple, observed: set | None) -> bool:
        return observed is None or inp[1] in observed

    def describe(self, state: Any) -> str:
        if type(state) is _Tail:
            return f"a list ending with {_json(thaw(state.suffix))}"
        return f"list {_json(thaw(state))}"


MODELS: tuple[Model, ...] = (RegisterModel(), ListModel())


@dataclass(frozen=True)
class Verdict:
    ok: bool                        # every key was proven linearizable
    key: str | None                 # the key of the counterexample (or the undecided one)
    ops_checked: int
    counterexample: list[Op] | None
    reason: str
    timed_out: bool                 # some key's search hit the deadline: undecided
    context: list[Op] = field(default_factory=list)   # optional writes the reads refer to
    failed_keys: tuple[str, ...] = ()
    undecided_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Item:
    op: Op
    inp: tuple
    invoke: float
    complete: float | None          # None: optional, may take effect any time after invoke


@dataclass
class _Outcome:
    ok: bool
    timed_out: bool = False
    stuck: int = -1                 # item never placed at the furthest completion reached
    prefix: list[int] = field(default_factory=list)   # the longest partial linearization
    state: Any = None               # the model state after that prefix


def _search(model: Model, items: Sequence[_Item], state: Any, deadline_at: float,
            clock: Callable[[], float]) -> _Outcome:
    """Wing–Gong/Lowe search with Porcupine's (bitset, state) cache."""
    n = len(items)
    if n == 0:
        return _Outcome(ok=True)
    events = sorted([(it.invoke, 0, i) for i, it in enumerate(items)]
                    + [(INF if it.complete is None else it.complete, 1, i)
                       for i, it in enumerate(items)])
    size = 2 * n
    nxt = list(range(1, size + 2)) + [size + 1]
    prv = [0] + list(range(0, size + 1))
    node_item = [0] * (size + 2)
    is_call = [False] * (size + 2)
    partner = [0] * (size + 2)
    call_node = [0] * n
    for node, (_, kind, i) in enumerate(events, 1):
        node_item[node] = i
        if kind == 0:
            is_call[node] = True
            call_node[i] = node
        else:
            partner[call_node[i]] = node
    optional = [it.complete is None for it in items]
    inputs = [it.inp for it in items]
    step = model.step

    linearized = 0
    cache: set = set()
    stack: list[tuple[int, Any, int]] = []
    best = _Outcome(ok=False)
    best_node = -1
    entry = nxt[0]
    count = 0
    while nxt[0] != size + 1:
        count += 1
        if count % CLOCK_EVERY == 0 and clock() > deadline_at:
            best.timed_out = True
            return best
        if is_call[entry]:
            i = node_item[entry]
            valid, new_state = step(state, inputs[i])
            if valid:
                placed = linearized | (1 << i)
                memo = (placed, new_state)
                if memo not in cache:
                    cache.add(memo)
                    stack.append((entry, state, linearized))
                    state, linearized = new_state, placed
                    ret = partner[entry]
                    nxt[prv[entry]] = nxt[entry]
                    prv[nxt[entry]] = prv[entry]
                    nxt[prv[ret]] = nxt[ret]
                    prv[nxt[ret]] = prv[ret]
                    entry = nxt[0]
                    continue
            entry = nxt[entry]
            continue
        i = node_item[entry]
        if optional[i]:
            return _Outcome(ok=True)
        if entry > best_node:
            best_node = entry
            best = _Outcome(ok=False, stuck=i, prefix=[node_item[e] for e, _, _ in stack],
                            state=state)
        if not stack:
            return best
        entry, state, linearized = stack.pop()
        ret = partner[entry]
        nxt[prv[ret]] = ret
        prv[nxt[ret]] = ret
        nxt[prv[entry]] = entry
        prv[nxt[entry]] = entry
        entry = nxt[entry]
    return _Outcome(ok=True)


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
            if op.status == "fail" or (op.status == "unknown" and not op.is_write):
                continue
            complete = op.complete if op.status == "ok" else None
            items.append(_Item(op, model.prepare(op), op.invoke, complete))
        return cls(model, tuple(items), model.init()).pruned()

    def pruned(self) -> _Problem:
        """Without the optional writes no read or cas depends on."""
        observed = self.model.observed(it.inp for it in self.items if it.complete is not None)
        keep = tuple(it for it in self.items
                     if it.complete is not None or self.model.matters(it.inp, observed))
        return _Problem(self.model, keep, self.init)

    def search(self, deadline_at: float, clock: Callable[[], float]) -> _Outcome:
        return _search(self.model, self.items, self.init, deadline_at, clock)

    def window(self, strict: set[int], t0: float) -> _Problem:
        """Only the ops in `strict` (item positions) keep their results and completions.

        Ops completed before t0 are dropped and the state at t0 is taken to be anything
        (unless no op was invoked before t0); other writes become optional from their
        invocation; other reads are dropped; writes invoked after every strict op
        completed are dropped, as they can always be placed last.
        """
        last = max((self.items[i].complete for i in strict), default=-INF)
        items = []
        for i, it in enumerate(self.items):
            if i in strict:
                items.append(it)
            elif it.complete is not None and it.complete < t0:
                continue
            elif it.op.is_write and it.invoke <= last:
                items.append(_Item(it.op, it.inp, it.invoke, None))
        cut = any(it.invoke < t0 for it in self.items)
        return _Problem(self.model, tuple(items), self.model.init(unknown=cut)).pruned()


@dataclass(frozen=True)
class _Failure:
    ops: list[Op]
    context: list[Op]
    cut: bool                       # the state before the first op is left open
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
        return _Failure(ops, [], False, False, False, len(outcome.prefix), stuck.op,
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
    return _Failure(ops, _context(window, ops), window.init != problem.init, True, minimal,
                    len(outcome.prefix), stuck.op, outcome.state)


def _context(window: _Problem, core: list[Op]) -> list[Op]:
    """Optional writes of the window whose values the core's reads saw."""
    strict_inputs = [it.inp for it in window.items if it.complete is not None]
    observed = window.model.observed(strict_inputs) or set()
    ids = {op.index for op in core}
    extra = [it.op for it in window.items
             if it.complete is None and it.op.index not in ids
             and window.model.matters(it.inp, observed)]
    return sorted(extra, key=lambda op: (op.invoke, op.index))[:MAX_CONTEXT]


def _model_for(ops: Sequence[Op], model: Model | None, key: str) -> Model:
    if model is not None:
        return model
    kinds = {op.kind for op in ops}
    for candidate in MODELS:
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
    checked = 0
    failed: list[tuple[float, str, _Problem, _Outcome]] = []
    undecided: list[str] = []
    for key in sorted(groups):
        key_model = _model_for(groups[key], model, key)
        problem = _Problem.of(key_model, groups[key])
        checked += len(problem.items)
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
                   context=failure.context, failed_keys=tuple(f[1] for f in failed),
                   undecided_keys=tuple(undecided))


def _explain(key: str, problem: _Problem, failure: _Failure, nfailed: int,
             undecided: list[str]) -> str:
    model = problem.model
    lines = [f"key {key!r} is not linearizable ({model.name}, {len(problem.items)} ops): "
             f"the longest linearizable prefix places {_count(failure.prefix_len, 'op')}, leaving "
             f"{model.describe(failure.state)}, and then "
             f"#{failure.stuck.index} {failure.stuck.describe()} cannot be placed."]
    if failure.verified:
        start = "whatever the state before the first of them" if failure.cut \
            else f"starting from {model.describe(model.init())}"
        lines.append(f"No order of these {len(failure.ops)} ok ops fits their real-time "
                     f"order, {start}, with any other write taking effect at any moment "
                     "after its invocation or never."
                     + ("" if failure.minimal else " (shrinking ran out of time: the "
                        "set may not be minimal)"))
    else:
        lines.append("The search ran out of time shrinking; shown are the op that could "
                     "not be placed and the ops pending when it completed.")
    if nfailed > 1:
        lines.append(f"{nfailed - 1} more keys are not linearizable.")
    if undecided:
        lines.append(f"{len(undecided)} keys were undecided at the deadline.")
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
    out = [f"{'':{pad}}    invoke  complete  (s after {t0:.3f})"]
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
