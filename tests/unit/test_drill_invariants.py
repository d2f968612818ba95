"""The drill's record format and its non-linearizability checks, on hand-made records."""

from __future__ import annotations

import json

import pytest

from provisioning.drills import invariants
from provisioning.drills.history import History, Op, by_key, invoked_between, ok_ops
from provisioning.drills.invariants import (
    duplicate_appends,
    lost_writes,
    members_agree,
    watch_gaps,
)


def w(p: int, v, t0: float, t1: float | None, key: str = "x", status: str = "ok") -> Op:
    return Op(p, "write", key, v, t0, t1 if status == "ok" else None, status)


def app(p: int, x, t0: float, t1: float | None, key: str = "l", status: str = "ok") -> Op:
    return Op(p, "append", key, x, t0, t1 if status == "ok" else None, status)


def ops(*items: Op) -> list[Op]:
    return History(items).ops


# -- the record format -------------------------------------------------------------------


def test_history_numbers_ops_and_round_trips_through_json_lines(tmp_path):
    history = History()
    first = history.append(w(1, {"a": [1, 2]}, 0.5, 0.75))
    history.append(Op(2, "cas", "x", [{"a": [1, 2]}, 3], 1.0, 1.5, result=True))
    history.append(w(3, 4, 2.0, None, status="unknown"))
    history.append(Op(4, "read-list", "l", None, 2.5, 3.0, result=["e1", "e2"]))
    history.append(Op(5, "read", "x", None, 3.5, 4.0, "fail"))
    assert first.index == 0 and [op.index for op in history] == [0, 1, 2, 3, 4]
    path = tmp_path / "history.jsonl"
    history.to_jsonl(path)
    lines = path.read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[2])["complete"] is None
    again = History.from_jsonl(path)
    assert again.ops == history.ops


def test_reading_a_broken_history_names_the_line(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps({"process": 1, "kind": "read", "key": "x", "complete": 1.0})
                    + "\n{not json\n")
    with pytest.raises(ValueError, match=r"h.jsonl:2: not JSON"):
        History.from_jsonl(path)
    path.write_text(json.dumps({"process": 1, "kind": "read", "key": "x", "colour": 1}) + "\n")
    with pytest.raises(ValueError, match=r"h.jsonl:1: unknown fields \['colour'\]"):
        History.from_jsonl(path)


@pytest.mark.parametrize("op, message", [
    (Op(1, "read", "x", invoke=1.0, complete=None), "needs a completion time"),
    (Op(1, "read", "x", invoke=2.0, complete=1.0), "before it is invoked"),
    (Op(1, "delete", "x", complete=1.0), "unknown kind"),
    (Op(1, "read", "x", complete=1.0, status="maybe"), "unknown status"),
    (Op(1, "cas", "x", 5, complete=1.0), r"\[expected, new\]"),
])
def test_ops_the_checkers_could_not_read_are_refused_when_recorded(op, message):
    with pytest.raises(ValueError, match=message):
        History().append(op)


def test_selections_by_key_outcome_and_time():
    h = ops(w(1, 1, 0, 1, key="a"), w(2, 2, 1, None, key="b", status="unknown"),
            w(3, 3, 2, 3, key="a"), w(4, 4, 3, 4, key="b", status="fail"))
    history = History(h)
    assert {k: [op.index for op in v] for k, v in history.by_key().items()} == \
        {"a": [0, 2], "b": [1, 3]}
    assert by_key(h) == history.by_key()
    assert [op.index for op in history.ok_ops()] == [0, 2] == [op.index for op in ok_ops(h)]
    assert [op.index for op in history.invoked_between(1, 3)] == [1, 2]
    assert invoked_between(h, 0, 1) == [h[0]]


def test_ops_describe_themselves_in_one_line():
    assert Op(3, "cas", "r1", [1, 2], 0, 1, result=True).describe() == "p3 cas r1 [1,2] -> true"
    assert Op(1, "read", "r1", None, 0, None, "unknown").describe() == "p1 read r1 (unknown)"
    assert Op(1, "read", "r1", None, 0, 1, result=None).describe() == "p1 read r1 -> null"
    assert w(2, "v", 0, 1).describe() == "p2 write x 'v'"


# -- lost writes -------------------------------------------------------------------------


def test_no_write_is_lost_when_the_final_value_is_the_last_acknowledged_one():
    h = ops(w(1, 1, 0, 1), w(2, 2, 2, 3), w(3, 3, 4, 5))
    assert lost_writes(h, {"x": 3}) == []


def test_a_write_followed_by_nothing_that_could_overwrite_it_is_lost():
    h = ops(w(1, 1, 0, 1), w(2, 2, 2, 3), w(3, 3, 4, 5))
    # 1 was written before 2 and 3 were even sent: both were lost.
    assert [op.index for op in lost_writes(h, {"x": 1})] == [1, 2]
    assert [op.index for op in lost_writes(h, {"x": 2})] == [2]


def test_concurrent_writes_may_end_in_either_order():
    h = ops(w(1, 1, 0, 5), w(2, 2, 1, 6))
    assert lost_writes(h, {"x": 1}) == [] and lost_writes(h, {"x": 2}) == []


def test_an_unknown_write_may_be_the_last_one_and_a_failed_one_may_not():
    base = [w(1, 1, 0, 1), w(2, 2, 2, 3)]
    assert lost_writes(ops(*base, w(3, 9, 0.5, None, status="unknown")), {"x": 9}) == []
    lost = lost_writes(ops(*base, Op(3, "write", "x", 9, 0.5, 0.7, "fail")), {"x": 9})
    assert [op.value for op in lost] == [1, 2]


def test_a_key_absent_at_the_end_lost_every_acknowledged_write_unless_deleted():
    h = ops(w(1, 1, 0, 1), w(2, 2, 2, 3))
    assert [op.index for op in lost_writes(h, {})] == [0, 1]
    assert lost_writes(ops(*h, w(3, None, 4, 5)), {"x": None}) == []


def test_a_value_nobody_wrote_loses_every_acknowledged_write():
    assert len(lost_writes(ops(w(1, 1, 0, 1), w(2, 2, 2, 3)), {"x": "garbage"})) == 2


def test_cas_counts_as_a_write_when_it_succeeded():
    h = ops(w(1, 1, 0, 1), Op(2, "cas", "x", [1, 2], 2, 3, result=True))
    assert [op.kind for op in lost_writes(h, {"x": 1})] == ["cas"]
    assert lost_writes(h, {"x": 2}) == []
    refused = ops(w(1, 1, 0, 1), Op(2, "cas", "x", [5, 2], 2, 3, result=False))
    assert lost_writes(refused, {"x": 1}) == []


def test_acknowledged_appends_must_all_be_in_the_final_list():
    h = ops(app(1, "a", 0, 1), app(2, "b", 0, 1), app(3, "c", 2, None, status="unknown"),
            app(4, "d", 2, 3, status="fail"))
    assert lost_writes(h, {"l": ["b", "a"]}) == []
    assert [op.value for op in lost_writes(h, {"l": ["a", "c"]})] == ["b"]
    assert [op.value for op in lost_writes(h, {})] == ["a", "b"]


def test_an_element_appended_twice_must_be_there_twice():
    h = ops(app(1, "a", 0, 1), app(2, "a", 2, 3))
    assert [op.index for op in lost_writes(h, {"l": ["a"]})] == [1]
    assert lost_writes(h, {"l": ["a", "a"]}) == []


def test_keys_are_judged_separately_and_values_compare_as_json():
    h = ops(w(1, [1, 2], 0, 1, key="a"), w(1, 5, 0, 1, key="b"), app(1, {"k": 1}, 0, 1))
    assert lost_writes(History(h), {"a": (1, 2), "b": 5, "l": [{"k": 1}]}) == []
    assert [op.key for op in lost_writes(h, {"a": [1, 2], "b": True, "l": [{"k": 1}]})] == ["b"]


# -- duplicate appends -------------------------------------------------------------------


def test_duplicates_are_listed_once_each_in_order_of_appearance():
    assert duplicate_appends(["a", "b", "a", "c", "b", "a"]) == ["a", "b"]
    assert duplicate_appends(["a", "b"]) == [] and duplicate_appends(None) == []
    assert duplicate_appends([{"k": [1]}, {"k": [1]}, [1], (1,)]) == [{"k": [1]}, (1,)]
    assert duplicate_appends([1, True]) == []


# -- watch streams -----------------------------------------------------------------------


def test_a_clean_stream_across_a_reconnect_has_no_problems():
    events = [(5, "a"), (6, "b"), (7, "a"), (7, "b"), (9, "a")]   # a txn at 7; 8 elsewhere
    assert watch_gaps(events, 5, 9, expected_revisions=[5, 6, 7, 9]) == []


def test_a_resume_from_an_old_revision_delivers_duplicates():
    events = [(5, "a", "PUT"), (6, "a", "PUT"), (6, "a", "PUT"), (7, "a", "PUT")]
    problems = watch_gaps(events, 5, 7)
    assert [(p.kind, p.revision) for p in problems] == [("duplicate", 6)]
    assert "delivered again" in str(problems[0])


def test_revisions_going_back_are_out_of_order():
    problems = watch_gaps([(5, "a"), (8, "a"), (7, "b")], 5, 8)
    assert [(p.kind, p.revision, p.key) for p in problems] == [("out-of-order", 7, "b")]


def test_missing_revisions_are_reported_as_runs():
    events = [(10, "a"), (14, "a"), (20, "a")]
    problems = watch_gaps(events, 10, 25, expected_revisions=range(10, 30))
    assert [str(p) for p in problems] == [
        "gap: revisions 11-13 never delivered", "gap: revisions 15-19 never delivered",
        "gap: revisions 21-25 never delivered"]


def test_events_before_the_start_are_reported():
    problems = watch_gaps([(4, "a"), (5, "a")], 5, 5, expected_revisions=[5])
    assert [p.kind for p in problems] == ["before-start"]


def test_long_lists_of_problems_are_capped():
    problems = watch_gaps([(5, "a")] * 80, 5, 5, limit=10)
    assert len(problems) == 11 and str(problems[-1]) == "more: ... and 69 more problems"


# -- store members -----------------------------------------------------------------------


def test_members_holding_the_same_contents_agree():
    snap = {"/k1": (b"v1", 5), "/k2": (b"v2", 7)}
    assert members_agree({"m1": snap, "m2": dict(snap), "m3": dict(snap)},
                         {"m1": 7, "m2": 7, "m3": 7}) == []
    as_lists = {"/k1": [b"v1", 5], "/k2": [b"v2", 7]}
    assert members_agree({"m1": snap, "m2": as_lists}, {"m1": 7, "m2": 7}) == []


def test_each_disagreement_names_every_members_version():
    base = {"/k1": ("v1", 5), "/k2": ("v2", 7)}
    problems = members_agree(
        {"m1": base, "m2": {"/k1": ("v1", 5)}, "m3": {"/k1": ("v9", 5), "/k2": ("v2", 8)}},
        {"m1": 8, "m2": 7, "m3": 8})
    assert [p.kind for p in problems] == ["revision", "key", "key"]
    assert str(problems[0]) == "revision: members at different revisions: m1=8, m2=7, m3=8"
    assert problems[1].key == "/k1" and "m3=('v9' @ 5)" in problems[1].detail
    assert problems[2].detail == ("key '/k2': m1=('v2' @ 7), m2=absent, m3=('v2' @ 8)")


def test_a_member_without_a_revision_is_a_problem():
    problems = members_agree({"m1": {}, "m2": {}}, {"m1": 3})
    assert [str(p) for p in problems] == ["revision: members at different revisions: m1=3, m2=?"]


def test_member_problems_are_capped():
    problems = members_agree({"m1": {f"k{i}": (i, i) for i in range(30)}, "m2": {}},
                             {"m1": 30, "m2": 30}, limit=5)
    assert len(problems) == 6 and problems[-1].kind == "more"
    assert invariants.Problem("gap", "x").revision is None
