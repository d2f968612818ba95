"""The linearizability checker on hand-made histories that are and are not linearizable.

Each history is written out with its timestamps, so the reason for each verdict can be
read off: an op is `[invoke, complete]`, and an op can be linearized anywhere inside its
interval (anywhere after its invocation when its outcome is unknown). Property tests run
a real sequential execution, blur it with random concurrency windows (always
linearizable), then corrupt one read (never linearizable).
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from provisioning.drills.history import History, Op
from provisioning.drills.linearizability import ListModel, RegisterModel, check, render


def ops(*items: Op) -> list[Op]:
    """The ops as a recorded history numbers them."""
    return History(items).ops


def w(p: int, v: Any, t0: float, t1: float | None, key: str = "x",
      status: str = "ok") -> Op:
    return Op(p, "write", key, v, t0, t1 if status == "ok" else None, status)


def r(p: int, seen: Any, t0: float, t1: float, key: str = "x", status: str = "ok") -> Op:
    return Op(p, "read", key, None, t0, t1 if status == "ok" else None, status, result=seen)


def cas(p: int, expected: Any, new: Any, t0: float, t1: float | None, key: str = "x",
        status: str = "ok", result: Any = True) -> Op:
    return Op(p, "cas", key, [expected, new], t0, t1 if status == "ok" else None, status,
              result=result if status == "ok" else None)


def app(p: int, x: Any, t0: float, t1: float | None, key: str = "l",
        status: str = "ok") -> Op:
    return Op(p, "append", key, x, t0, t1 if status == "ok" else None, status)


def rl(p: int, seen: list | None, t0: float, t1: float, key: str = "l") -> Op:
    return Op(p, "read-list", key, None, t0, t1, result=seen)


def linearizable(history: list[Op], model: Any = None) -> bool:
    verdict = check(history, model)
    assert not verdict.timed_out
    assert verdict.ok == (verdict.counterexample is None)
    return verdict.ok


# -- registers ---------------------------------------------------------------------------


def test_a_sequential_history_is_linearizable_and_every_op_is_checked():
    h = ops(w(1, 1, 0, 1), r(2, 1, 2, 3), w(1, 2, 4, 5), r(2, 2, 6, 7), r(3, 2, 8, 9))
    verdict = check(h, RegisterModel())
    assert verdict.ok and verdict.key is None and verdict.ops_checked == 5
    assert "linearizable" in verdict.reason


def test_an_empty_history_is_linearizable():
    assert check([], RegisterModel).ok


@pytest.mark.parametrize("seen", [None, 1, 2])
def test_a_read_concurrent_with_two_writes_may_see_either_or_neither(seen):
    h = ops(w(1, 1, 0, 3), w(2, 2, 1, 4), r(3, seen, 2, 5))
    assert linearizable(h)


@pytest.mark.parametrize("seen", [1, 2])
def test_after_two_concurrent_writes_a_read_sees_either_but_not_the_initial_state(seen):
    assert linearizable(ops(w(1, 1, 0, 3), w(2, 2, 1, 4), r(3, seen, 5, 6)))
    assert not linearizable(ops(w(1, 1, 0, 3), w(2, 2, 1, 4), r(3, None, 5, 6)))


def test_reads_after_concurrent_writes_agree_on_one_order():
    # 1 then 2 is fine (w1 first, w2 between the reads) ...
    assert linearizable(ops(w(1, 1, 0, 10), w(2, 2, 0, 10), r(3, 1, 1, 2), r(3, 2, 3, 4)))
    # ... but the value cannot flip back: each write takes effect once.
    h = ops(w(1, 1, 0, 10), w(2, 2, 0, 10), r(3, 1, 1, 2), r(3, 2, 3, 4), r(3, 1, 5, 6))
    assert not linearizable(h)


def test_a_stale_read_after_a_completed_write_is_not_linearizable():
    h = ops(w(1, 1, 0, 1), w(2, 2, 2, 3), r(3, 1, 4, 5))
    verdict = check(h, RegisterModel())
    assert not verdict.ok and not verdict.timed_out and verdict.key == "x"
    # The whole story: 2 was written and acknowledged, then a read saw the old value.
    assert [op.index for op in verdict.counterexample] == [1, 2]
    assert "completion of #2 p3 read x -> 1" in verdict.reason


def test_a_read_of_the_initial_state_after_a_completed_write_is_stale_too():
    verdict = check(ops(w(1, 1, 0, 1), r(2, None, 2, 3)), RegisterModel())
    assert not verdict.ok
    assert [op.index for op in verdict.counterexample] == [0, 1]
    assert "the key absent" in verdict.reason


def test_a_read_of_a_value_never_written_is_not_linearizable_and_is_its_own_counterexample():
    h = ops(w(1, 1, 0, 1), r(2, 1, 2, 3), w(1, 2, 4, 5), r(2, 7, 6, 7), r(3, 2, 8, 9))
    verdict = check(h, RegisterModel())
    assert not verdict.ok
    assert [op.index for op in verdict.counterexample] == [3]


def test_a_write_that_failed_is_dropped_so_seeing_its_value_is_not_linearizable():
    assert linearizable(ops(w(1, 1, 0, 1), w(2, 2, 2, 3, status="fail"), r(3, 1, 4, 5)))
    assert not linearizable(ops(w(1, 1, 0, 1), w(2, 2, 2, 3, status="fail"), r(3, 2, 4, 5)))


def test_a_read_with_an_unknown_outcome_constrains_nothing():
    assert linearizable(ops(w(1, 1, 0, 1), r(2, 99, 2, 3, status="unknown"), r(3, 1, 4, 5)))


def test_cas_races_let_only_one_of_two_identical_cas_succeed():
    base = [w(1, 0, 0, 1), cas(2, 0, 1, 2, 5), r(4, 1, 6, 7)]
    assert linearizable(ops(*base, cas(3, 0, 2, 3, 6, status="fail")))
    assert not linearizable(ops(*base, cas(3, 0, 2, 3, 6)))


def test_concurrent_cas_chain_is_ordered_by_the_values():
    # cas 1->2 can only follow cas 0->1, although it was invoked first.
    h = ops(w(1, 0, 0, 1), cas(2, 1, 2, 2, 6), cas(3, 0, 1, 3, 5), r(4, 2, 7, 8))
    assert linearizable(h)
    h = ops(w(1, 0, 0, 1), cas(2, 1, 2, 2, 3), cas(3, 0, 1, 4, 5), r(4, 2, 7, 8))
    assert not linearizable(h)


def test_a_cas_answered_false_is_a_failed_cas():
    assert linearizable(ops(w(1, 0, 0, 1), cas(2, 0, 1, 2, 3, result=False), r(3, 0, 4, 5)))
    assert not linearizable(ops(w(1, 0, 0, 1), cas(2, 0, 1, 2, 3, result=False), r(3, 1, 4, 5)))


def test_an_unknown_write_that_later_shows_up_is_linearizable():
    h = ops(w(1, 1, 0, 1), w(2, 2, 2, None, status="unknown"), r(3, 1, 3, 4), r(3, 2, 9, 10),
            r(4, 2, 11, 12))
    assert linearizable(h)


def test_an_unknown_write_that_never_shows_up_is_linearizable():
    h = ops(w(1, 1, 0, 1), w(2, 2, 2, None, status="unknown"), r(3, 1, 3, 4), r(3, 1, 9, 10))
    assert linearizable(h)


def test_an_unknown_write_takes_effect_at_most_once_and_not_before_it_was_sent():
    flip_back = ops(w(1, 1, 0, 1), w(2, 2, 2, None, status="unknown"), r(3, 2, 3, 4),
                    r(3, 1, 5, 6))
    assert not linearizable(flip_back)
    too_early = ops(r(3, 2, 0, 1), w(2, 2, 2, None, status="unknown"))
    assert not linearizable(too_early)


def test_an_unknown_cas_may_have_happened_only_from_its_expected_value():
    assert linearizable(ops(w(1, 1, 0, 1), cas(2, 1, 2, 2, None, status="unknown"),
                            r(3, 2, 5, 6)))
    assert linearizable(ops(w(1, 1, 0, 1), cas(2, 1, 2, 2, None, status="unknown"),
                            r(3, 1, 5, 6)))
    assert not linearizable(ops(w(1, 3, 0, 1), cas(2, 1, 2, 2, None, status="unknown"),
                                r(3, 2, 5, 6)))


def test_values_compare_as_json_lists_tuples_alike_and_true_apart_from_one():
    assert linearizable(ops(w(1, [1, {"a": 2}], 0, 1), r(2, ((1, {"a": 2})), 2, 3)))
    assert not linearizable(ops(w(1, True, 0, 1), r(2, 1, 2, 3)))


def test_keys_are_checked_independently_and_the_failing_key_is_named():
    h = ops(w(1, 1, 0, 1, key="a"), r(2, 1, 2, 3, key="a"),
            w(1, 1, 0, 1, key="b"), w(2, 2, 2, 3, key="b"), r(3, 1, 4, 5, key="b"),
            w(1, 5, 0, 1, key="c"), r(3, 5, 2, 3, key="c"))
    verdict = check(h, RegisterModel())
    assert not verdict.ok and verdict.key == "b" and verdict.failed_keys == ("b",)
    assert {op.key for op in verdict.counterexample} == {"b"}
    assert verdict.ops_checked == 7


def test_the_earliest_failure_is_reported_when_several_keys_fail():
    h = ops(w(1, 1, 0, 1, key="a"), r(2, 9, 20, 21, key="a"),
            w(1, 1, 0, 1, key="b"), r(2, 8, 10, 11, key="b"))
    verdict = check(h)
    assert verdict.key == "b" and set(verdict.failed_keys) == {"a", "b"}
    assert "1 more key" in verdict.reason


# -- lists -------------------------------------------------------------------------------


def test_list_reads_see_a_prefix_of_one_append_order():
    h = ops(app(1, "a", 0, 5), app(2, "b", 1, 6), rl(3, ["b"], 2, 7), rl(3, ["b", "a"], 8, 9),
            app(1, "c", 10, 11), rl(4, ["b", "a", "c"], 12, 13))
    assert linearizable(h, ListModel())


def test_an_absent_list_reads_as_empty():
    assert linearizable(ops(rl(1, None, 0, 1), app(2, "a", 2, 3), rl(1, ["a"], 4, 5)))


def test_a_lost_append_is_not_linearizable():
    h = ops(app(1, "a", 0, 1), app(2, "b", 2, 3), rl(3, ["b"], 4, 5))
    verdict = check(h, ListModel())
    assert not verdict.ok
    assert [op.index for op in verdict.counterexample] == [0, 2]


def test_lists_in_two_orders_are_not_linearizable():
    h = ops(app(1, "a", 0, 10), app(2, "b", 0, 10), rl(3, ["a", "b"], 11, 12),
            rl(4, ["b", "a"], 13, 14))
    verdict = check(h, ListModel())
    assert not verdict.ok
    assert [op.index for op in verdict.counterexample] == [2, 3]


def test_an_element_seen_twice_was_appended_twice():
    assert not linearizable(ops(app(1, "a", 0, 1), rl(2, ["a", "a"], 2, 3)))
    assert linearizable(ops(app(1, "a", 0, 1), app(2, "a", 0, 1), rl(2, ["a", "a"], 2, 3)))


def test_an_unknown_append_may_show_up_or_not_but_not_disappear():
    assert linearizable(ops(app(1, "a", 0, None, status="unknown"), rl(2, [], 1, 2),
                            rl(2, ["a"], 3, 4)))
    assert not linearizable(ops(app(1, "a", 0, None, status="unknown"), rl(2, ["a"], 1, 2),
                                rl(2, [], 3, 4)))


# -- models, deadline, rendering ---------------------------------------------------------


def test_with_no_model_each_key_gets_the_one_its_ops_need():
    h = ops(w(1, 1, 0, 1, key="r"), r(2, 1, 2, 3, key="r"), app(1, 1, 0, 1, key="l"),
            rl(2, [1], 2, 3, key="l"))
    assert check(h).ok and check(h).ops_checked == 4
    assert check(h, RegisterModel()).ops_checked == 2
    assert check(h, ListModel).ops_checked == 2
    with pytest.raises(ValueError, match="mixes"):
        check(ops(w(1, 1, 0, 1, key="k"), app(1, 1, 0, 1, key="k")))


def test_a_search_past_its_deadline_is_undecided_not_a_violation():
    ticks = iter(range(1_000_000))
    h = ops(*[w(1, i, 2 * i, 2 * i + 1) for i in range(3000)])
    verdict = check(h, RegisterModel(), deadline=0.5, clock=lambda: float(next(ticks)))
    assert verdict.timed_out and not verdict.ok
    assert verdict.counterexample is None and verdict.undecided_keys == ("x",)
    assert "undecided" in verdict.reason
    assert check(h, RegisterModel()).ok


def test_render_draws_a_timeline_with_open_ended_optional_writes():
    h = ops(w(1, 1, 0, 1), w(2, 2, 2, None, status="unknown"), r(3, 2, 3, 4), r(3, 1, 5, 6))
    verdict = check(h, RegisterModel())
    assert not verdict.ok
    text = render(verdict.counterexample, context=verdict.context)
    lines = text.splitlines()
    assert len(lines) == 1 + len(verdict.counterexample) + len(verdict.context)
    for op in verdict.counterexample:
        assert any(f"#{op.index} {op.describe()}" in line for line in lines)
    assert "[" in text and "]" in text
    print(verdict.reason)
    print(text)
    unknown = render([w(2, 2, 2, None, status="unknown")])
    assert unknown.splitlines()[1].endswith(">") and "?" in unknown
    assert render(None) == "(no ops)"


def test_the_reason_names_the_completion_no_order_gets_past():
    h = ops(w(1, 1, 0, 1), r(2, 1, 2, 3), w(1, 2, 4, 5), r(2, 1, 6, 7))
    verdict = check(h, RegisterModel())
    assert "gets past the completion of #3 p2 read x -> 1;" in verdict.reason
    assert "placed 2 ops, leaving value 1" in verdict.reason


# -- generated histories -----------------------------------------------------------------

ACTIONS = ["read", "write", "cas", "cas-miss", "unknown-applied", "unknown-lost"]
SPEC = st.tuples(st.sampled_from(["r0", "r1", "l0"]), st.sampled_from(ACTIONS),
                 st.integers(0, 3), st.integers(0, 35), st.integers(0, 35))


def execute(specs: list[tuple[str, str, int, int, int]]) -> list[Op]:
    """Run the ops one at a time at t = 10, 20, ...; blur each into [t - a, t + b].

    Registers "r*" get reads, writes, cas (on the current value, or on another one,
    recorded as failed or answered False); lists "l*" get appends of unique elements and
    read-lists. Some writes time out: recorded as unknown, applied or not.
    """
    state: dict[str, Any] = {}
    out = []
    for i, (key, action, value, before, after) in enumerate(specs):
        t = 10.0 * (i + 1)
        t0, t1 = t - before, t + after
        unknown = action.startswith("unknown")
        status = "unknown" if unknown else "ok"
        applied = action != "unknown-lost"
        if key.startswith("l"):
            items = state.setdefault(key, [])
            if action in ("read", "cas-miss"):
                out.append(rl(i, list(items), t0, t1, key=key))
                continue
            element = f"e{i}"
            if applied:
                items.append(element)
            out.append(app(i, element, t0, t1, key=key, status=status))
            continue
        current = state.get(key)
        if action == "read":
            out.append(r(i, current, t0, t1, key=key))
        elif action == "cas":
            state[key] = value
            out.append(cas(i, current, value, t0, t1, key=key))
        elif action == "cas-miss":
            other = "other"
            if value % 2:
                out.append(cas(i, other, value, t0, t1, key=key, status="fail"))
            else:
                out.append(cas(i, other, value, t0, t1, key=key, result=False))
        else:
            if applied:
                state[key] = value
            out.append(w(i, value, t0, t1, key=key, status=status))
    return ops(*out)


def corrupt(history: list[Op], which: int) -> tuple[list[Op], Op]:
    """The history with one ok read changed to see something no op ever wrote."""
    reads = [op for op in history if op.kind in ("read", "read-list") and op.status == "ok"]
    victim = reads[which % len(reads)]
    bad = ["never"] if victim.kind == "read" else [*victim.result, "never"]
    changed = Op(victim.process, victim.kind, victim.key, None, victim.invoke,
                 victim.complete, "ok", result=bad[0] if victim.kind == "read" else bad,
                 index=victim.index)
    return [changed if op is victim else op for op in history], changed


@settings(max_examples=300, deadline=None)
@given(st.lists(SPEC, max_size=40))
def test_a_real_execution_seen_through_concurrency_windows_is_linearizable(specs):
    verdict = check(execute(specs))
    assert verdict.ok, (verdict.reason, render(verdict.counterexample))


@settings(max_examples=300, deadline=None)
@given(st.lists(SPEC, min_size=1, max_size=40), st.integers(0, 1000))
def test_one_read_seeing_an_impossible_value_is_caught_and_is_the_counterexample(specs, which):
    history = execute(specs)
    assume(any(op.kind in ("read", "read-list") and op.status == "ok" for op in history))
    bad, changed = corrupt(history, which)
    verdict = check(bad)
    assert not verdict.ok and not verdict.timed_out
    assert verdict.key == changed.key
    assert verdict.counterexample == [changed]


# -- against brute force -----------------------------------------------------------------

ANY_STATE = ("any",)


def legal(state: Any, op: Op) -> tuple[bool, Any]:
    """The sequential register and list, written out again independently of the models."""
    if op.kind in ("read", "read-list"):
        seen = op.result if op.kind == "read" else tuple(op.result or ())
        if state == ANY_STATE:
            return True, seen
        if isinstance(state, tuple) and state[:1] == ("tail",):
            n = len(state[1])
            return len(seen) >= n and seen[len(seen) - n:] == state[1], seen
        return state == seen, seen
    if op.kind == "write":
        return True, op.value
    if op.kind == "append":
        if state == ANY_STATE:
            return True, ("tail", (op.value,))
        if state[:1] == ("tail",):
            return True, ("tail", state[1] + (op.value,))
        return True, state + (op.value,)
    expected, new = op.value
    return state in (ANY_STATE, expected), new


def brute_force(strict: list[Op], optional: list[Op], init: Any) -> bool:
    """Try every order: all `strict` ops within their intervals, any of `optional` after
    their invocation (or never)."""
    ops = strict + optional
    n_strict = len(strict)
    dead: set = set()

    def go(placed: frozenset, state: Any) -> bool:
        if all(i in placed for i in range(n_strict)):
            return True
        if (placed, state) in dead:
            return False
        for i, op in enumerate(ops):
            if i in placed:
                continue
            if any(j not in placed and strict[j].complete < op.invoke for j in range(n_strict)):
                continue
            ok, after = legal(state, op)
            if ok and go(placed | {i}, after):
                return True
        dead.add((placed, state))
        return False

    return go(frozenset(), init)


def initial(key_ops: list[Op]) -> Any:
    return () if any(op.kind in ("append", "read-list") for op in key_ops) else None


def took_effect_or_may_have(op: Op) -> bool:
    return op.status != "fail" and not (op.kind == "cas" and op.result is False)


def brute_force_history(history: list[Op]) -> bool:
    for key in {op.key for op in history}:
        key_ops = [op for op in history if op.key == key and took_effect_or_may_have(op)]
        strict = [op for op in key_ops if op.status == "ok"]
        optional = [op for op in key_ops if op.status == "unknown" and op.is_write]
        if not brute_force(strict, optional, initial(key_ops)):
            return False
    return True


def window_fails(history: list[Op], core: list[Op], start: Op | None) -> bool:
    """The counterexample's claim: the core alone, from the cut, with writes relaxed."""
    key_ops = [op for op in history if op.key == core[0].key and took_effect_or_may_have(op)]
    t0 = start.invoke if start is not None else float("-inf")
    ids = {op.index for op in core}
    relaxed = [op for op in key_ops if op.index not in ids and op.is_write
               and not (op.status == "ok" and op.complete < t0)]
    init = initial(key_ops)
    if start is not None:
        init = ANY_STATE
    return not brute_force(list(core), relaxed, init)


RANDOM_OP = st.tuples(st.sampled_from(["read", "write", "cas", "cas"]),
                      st.sampled_from([None, 1, 2]), st.sampled_from([None, 1, 2]),
                      st.sampled_from(["ok", "ok", "unknown", "fail"]),
                      st.integers(0, 8), st.integers(0, 4), st.booleans())
RANDOM_LIST_OP = st.tuples(st.sampled_from(["append", "read-list"]),
                           st.sampled_from(["a", "b", "c"]),
                           st.sampled_from([[], ["a"], ["b"], ["a", "b"], ["b", "a"],
                                            ["a", "b", "c"], ["a", "a"], None]),
                           st.sampled_from(["ok", "ok", "ok", "unknown", "fail"]),
                           st.integers(0, 8), st.integers(0, 4))


def random_register_history(specs) -> list[Op]:
    out = []
    for p, (kind, a, b, status, t0, length, flag) in enumerate(specs):
        t1 = t0 + length if status == "ok" else None
        if kind == "read":
            out.append(Op(p, "read", "x", None, t0, t1, status, result=a))
        elif kind == "write":
            out.append(Op(p, "write", "x", a, t0, t1, status))
        else:
            result = flag if status == "ok" else None
            out.append(Op(p, "cas", "x", [a, b], t0, t1, status, result=result))
    return ops(*out)


def random_list_history(specs) -> list[Op]:
    out = []
    for p, (kind, element, seen, status, t0, length) in enumerate(specs):
        t1 = t0 + length if status == "ok" else None
        if kind == "append":
            out.append(Op(p, "append", "l", element, t0, t1, status))
        else:
            out.append(Op(p, "read-list", "l", None, t0, t1, status, result=seen))
    return ops(*out)


def agrees_with_brute_force(history: list[Op]) -> None:
    verdict = check(history)
    assert not verdict.timed_out
    assert verdict.ok == brute_force_history(history), verdict.reason
    if verdict.ok:
        return
    core = verdict.counterexample
    assert core and all(op.status == "ok" and op.key == verdict.key for op in core)
    assert window_fails(history, core, verdict.window_start), verdict.reason
    if "may not be minimal" not in verdict.reason:
        for op in core:
            rest = [o for o in core if o is not op]
            assert not rest or not window_fails(history, rest, verdict.window_start)


@settings(max_examples=1500, deadline=None)
@given(st.lists(RANDOM_OP, max_size=7))
def test_random_register_histories_get_the_brute_force_verdict(specs):
    agrees_with_brute_force(random_register_history(specs))


@settings(max_examples=1000, deadline=None)
@given(st.lists(RANDOM_LIST_OP, max_size=6))
def test_random_list_histories_get_the_brute_force_verdict(specs):
    agrees_with_brute_force(random_list_history(specs))


def generate(seed: int, n: int, keys: int, concurrency: float) -> list[Op]:
    """A register workload: one op per time unit, each blurred over ~`concurrency` units."""
    rng = random.Random(seed)
    specs = []
    for _ in range(n):
        roll = rng.random()
        action = ("read" if roll < 0.5 else "write" if roll < 0.85 else "cas" if roll < 0.93
                  else "cas-miss" if roll < 0.96 else "unknown-applied" if roll < 0.98
                  else "unknown-lost")
        specs.append((f"r{rng.randrange(keys)}", action, rng.randrange(1_000_000),
                      rng.randint(0, int(10 * concurrency)), rng.randint(0, int(10 * concurrency))))
    return execute(specs)


@pytest.mark.parametrize("in_flight", [10, 200])
def test_ten_thousand_ops_over_twenty_keys_check_in_seconds(in_flight):
    # 10 in flight: ten clients over twenty keys; 200: ten in flight on every key.
    history = generate(seed=7, n=10_000, keys=20, concurrency=in_flight)
    start = time.monotonic()
    verdict = check(history, RegisterModel(), deadline=120)
    took = time.monotonic() - start
    print(f"\n10k ops / 20 keys / {in_flight} in flight: {verdict.ops_checked} ops in "
          f"{took:.2f} s")
    assert verdict.ok and not verdict.timed_out
    assert verdict.ops_checked > 9_000
    bad, changed = corrupt(history, 4321)
    start = time.monotonic()
    verdict = check(bad, RegisterModel(), deadline=120)
    print(f"same with one corrupted read: {time.monotonic() - start:.2f} s")
    assert not verdict.ok and verdict.counterexample == [changed]
