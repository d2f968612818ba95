"""The scheduler's queue on a fake clock, and the runner's small pure helpers."""

from __future__ import annotations

from typing import Any

from apiserver.client_policy import ApiStatusError, ApiUnavailable, status_body
from controllers.scheduler_queue import SchedulerQueue
from controllers.scheduler_runner import node_changed, spec_changed
from controllers.scheduler_term import certainly_failed, condition_changes, pending
from tests.unit.scheduling_objects import node, pod


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ready_keys(queue: SchedulerQueue, now: float) -> list[str]:
    queue.work.state.promote(now)
    keys = []
    while (key := queue.work.state.pop()) is not None:
        keys.append(key)
        queue.work.done(key)
    return keys


def test_parked_pods_wait_for_a_move_then_for_their_back_off() -> None:
    clock = Clock()
    queue = SchedulerQueue(clock=clock)
    queue.add("ns/a")
    assert ready_keys(queue, clock.now) == ["ns/a"]
    queue.park("ns/a")  # 1st failure: 1 s back-off
    assert ready_keys(queue, clock.now + 60) == []  # parked: no retry without a change
    clock.now += 0.25
    assert queue.move_all() == 1
    assert ready_keys(queue, clock.now) == []  # 0.75 s of back-off left
    assert ready_keys(queue, clock.now + 0.75) == ["ns/a"]
    queue.park("ns/a")  # 2nd failure: 2 s
    clock.now += 5
    queue.move_all()
    assert ready_keys(queue, clock.now) == ["ns/a"]  # back-off long over


def test_back_off_doubles_to_ten_seconds_and_resets_on_success() -> None:
    clock = Clock()
    queue = SchedulerQueue(clock=clock)
    for _ in range(6):
        queue.park("k")
    assert queue.parked["k"][1] - clock.now == 10.0
    queue.succeeded("k")
    assert "k" not in queue.parked
    queue.park("k")
    assert queue.parked["k"][1] - clock.now == 1.0


def test_flush_retries_only_pods_parked_long_enough() -> None:
    clock = Clock()
    queue = SchedulerQueue(clock=clock, max_parked=30)
    queue.park("old")
    clock.now += 20
    queue.park("new")
    clock.now += 10
    assert queue.flush() == 1
    assert ready_keys(queue, clock.now) == ["old"]
    assert list(queue.parked) == ["new"]


def test_updates_of_parked_pods_move_them_only_if_the_spec_changed() -> None:
    clock = Clock()
    queue = SchedulerQueue(clock=clock)
    queue.park("a")
    queue.pod_updated("a", spec_changed=False)  # e.g. our own PodScheduled=False write
    assert "a" in queue.parked
    queue.pod_updated("a", spec_changed=True)
    assert "a" not in queue.parked
    assert ready_keys(queue, clock.now + 1) == ["a"]


def test_a_pod_in_back_off_keeps_it_when_updated() -> None:
    clock = Clock()
    queue = SchedulerQueue(clock=clock)
    queue.requeue("a")
    queue.pod_updated("a", spec_changed=True)
    assert ready_keys(queue, clock.now) == []
    assert ready_keys(queue, clock.now + 1) == ["a"]


def test_dropped_pods_are_forgotten() -> None:
    queue = SchedulerQueue(clock=Clock())
    queue.park("a")
    queue.drop("a")
    assert queue.move_all() == 0
    assert len(queue) == 0


# --- helpers ------------------------------------------------------------------------------


def test_pending_means_no_node_ours_and_alive() -> None:
    assert pending(pod("a"), "default-scheduler")
    assert not pending(pod("a", node_name="n1"), "default-scheduler")
    assert not pending(pod("a", deleting=True), "default-scheduler")
    other = pod("a", schedulerName="other")
    assert not pending(other, "default-scheduler")
    assert pending(other, "other")


def test_node_changes_that_matter() -> None:
    base = node("n1")
    heartbeat: dict[str, Any] = {**base, "status": {**base["status"], "conditions": [
        {"type": "Ready", "status": "True", "lastHeartbeatTime": "later"}]}}
    assert not node_changed(base, heartbeat)
    assert node_changed(base, node("n1", cpu="8"))
    assert node_changed(base, node("n1", unschedulable=True))
    assert node_changed(base, node("n1", ready="False"))
    assert node_changed(base, node("n1", labels={"disk": "ssd"}))
    assert node_changed(base, node("n1", taints=[{"key": "k", "effect": "NoSchedule"}]))


def test_spec_changes_that_matter() -> None:
    before = pod("a", "1")
    status_only = {**before, "status": {"conditions": [{"type": "PodScheduled"}]}}
    assert not spec_changed(before, status_only)
    assert spec_changed(before, pod("a", "500m"))


def err(code: int) -> ApiStatusError:
    return ApiStatusError(code, "X", status_body(code, "X", "m"))


def test_which_binding_failures_are_certain() -> None:
    assert certainly_failed(err(404))
    assert certainly_failed(err(422))
    assert certainly_failed(err(429))
    assert not certainly_failed(err(409))  # maybe our own earlier attempt landed
    assert not certainly_failed(err(500))
    assert certainly_failed(ApiUnavailable("x", maybe_applied=False, causes=[]))
    assert not certainly_failed(ApiUnavailable("x", maybe_applied=True, causes=[]))


def test_the_condition_is_rewritten_only_when_it_says_something_new() -> None:
    old = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "m",
           "lastTransitionTime": "t0"}
    assert not condition_changes(old, {**old, "lastTransitionTime": "t1"})
    assert condition_changes(old, {**old, "message": "m2"})
    assert condition_changes(None, old)
