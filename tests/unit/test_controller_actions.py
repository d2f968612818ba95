"""Action records, the runner's grouping rules, events, and the condition helpers."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from controllers import actions, meta
from tests.unit.controller_world import T0, make_pod


def test_slow_start_sizes_double_until_the_rest() -> None:
    assert actions.slow_start_sizes(0) == []
    assert actions.slow_start_sizes(1) == [1]
    assert actions.slow_start_sizes(7) == [1, 2, 4]
    assert actions.slow_start_sizes(10) == [1, 2, 4, 3]


@given(st.integers(min_value=0, max_value=600))
def test_slow_start_sizes_sum_to_the_count(count: int) -> None:
    sizes = actions.slow_start_sizes(count)
    assert sum(sizes) == count
    assert all(b <= 2 * a for a, b in zip(sizes, sizes[1:], strict=False))


def test_batches_group_creates_of_one_batch_only() -> None:
    creates = [actions.Create("pods", "v1", "ns", {"n": i}) for i in range(4)]
    numbered = actions.batched_creates(creates)
    emit = actions.Emit({})
    todo = [*numbered[:1], emit, *numbered[1:], actions.RequeueAfter(3), actions.Delete("pods", "v1", "ns", "x")]
    groups = actions.batches(todo)
    assert [len(g) for g in groups] == [1, 1, 2, 1, 1]
    assert actions.requeue_after(todo) == 3


def test_delete_body_carries_preconditions_and_policy() -> None:
    body = actions.delete_body(actions.Delete("pods", "v1", "ns", "p", "u1", actions.FOREGROUND))
    assert body["preconditions"] == {"uid": "u1"}
    assert body["propagationPolicy"] == "Foreground"
    assert "preconditions" not in actions.delete_body(actions.Delete("pods", "v1", "ns", "p"))


def test_actions_are_frozen_and_hashable_despite_dict_fields() -> None:
    a = actions.Create("pods", "v1", "ns", {"x": 1})
    assert a == actions.Create("pods", "v1", "ns", {"x": 1})
    assert hash(a) == hash(actions.Create("pods", "v1", "ns", {"y": 2}))


def test_event_is_a_v1_event_about_the_object() -> None:
    pod = make_pod("web-1")
    emit = actions.event(pod, "Killing", "Stopping container main", now=T0, component="kubelet",
                         type=actions.WARNING)
    ev = emit.event
    assert ev["involvedObject"] == {"kind": "Pod", "apiVersion": "v1", "namespace": "ns",
                                    "name": "web-1", "uid": "uid-web-1", "resourceVersion": "1"}
    assert (ev["reason"], ev["type"], ev["count"]) == ("Killing", "Warning", 1)
    assert ev["source"] == {"component": "kubelet"}
    assert ev["firstTimestamp"] == ev["lastTimestamp"] == "2026-01-01T12:00:00Z"
    assert ev["metadata"]["namespace"] == "ns"
    assert ev["metadata"]["name"].startswith("web-1.")


def test_events_at_the_same_instant_get_different_names() -> None:
    pod = make_pod("web-1")
    names = {actions.event(pod, "SuccessfulCreate", f"Created pod: p{i}", now=T0,
                           component="c").event["metadata"]["name"] for i in range(50)}
    assert len(names) == 50


def test_cluster_scoped_events_go_to_default() -> None:
    node = {"kind": "Node", "apiVersion": "v1", "name": "n1", "uid": "n1"}
    assert actions.event(node, "R", "m", now=T0, component="c").event["metadata"]["namespace"] \
        == "default"


def test_set_condition_keeps_transition_time_when_status_holds() -> None:
    first = {"type": "Available", "status": "True", "reason": "A",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}
    other = {"type": "Progressing", "status": "True", "reason": "P"}
    same = meta.set_condition([first, other], dict(first, lastTransitionTime="later"))
    assert same == [first, other]
    changed = meta.set_condition([first, other], {"type": "Available", "status": "True",
                                                  "reason": "B", "lastTransitionTime": "later"})
    assert changed[-1]["reason"] == "B"
    assert changed[-1]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert changed[0] == other
    flipped = meta.set_condition([first], {"type": "Available", "status": "False",
                                           "reason": "B", "lastTransitionTime": "later"})
    assert flipped[0]["lastTransitionTime"] == "later"


def test_time_round_trip_is_whole_seconds_utc() -> None:
    stamp = meta.format_time(T0 + timedelta(microseconds=900))
    assert stamp == "2026-01-01T12:00:00Z"
    assert meta.parse_time(stamp) == T0
