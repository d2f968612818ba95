"""The PodScheduled condition and the FailedScheduling / Scheduled events, as dicts."""

from __future__ import annotations

from datetime import UTC, datetime

from controllers.scheduling import events
from controllers.scheduling.schedule import Decision
from tests.unit.scheduling_objects import pod

NOW = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
MESSAGE = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."


def test_unschedulable_condition() -> None:
    condition = events.pod_scheduled_condition(Decision(None, MESSAGE), NOW)
    assert condition == {
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": MESSAGE,
        "lastProbeTime": None, "lastTransitionTime": "2024-05-01T12:00:00Z",
    }


def test_transition_time_moves_only_with_the_status() -> None:
    earlier = {"type": "PodScheduled", "status": "False", "lastTransitionTime": "2024-04-01T00:00:00Z"}
    assert events.pod_scheduled_condition(Decision(None, MESSAGE), NOW, earlier)["lastTransitionTime"] == "2024-04-01T00:00:00Z"
    scheduled = events.pod_scheduled_condition(Decision("n1"), NOW, earlier)
    assert scheduled == {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": "2024-05-01T12:00:00Z"}


def test_failed_scheduling_event() -> None:
    p = pod("web-1", namespace="shop")
    p["metadata"]["resourceVersion"] = "42"
    event = events.failed_scheduling_event(p, MESSAGE, NOW)
    assert event == {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web-1.17cb5b99ffbf4a00", "namespace": "shop"},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": "shop", "name": "web-1",
                           "uid": "uid-shop-web-1", "resourceVersion": "42"},
        "reason": "FailedScheduling",
        "message": MESSAGE,
        "type": "Warning",
        "source": {"component": "default-scheduler"},
        "firstTimestamp": "2024-05-01T12:00:00Z",
        "lastTimestamp": "2024-05-01T12:00:00Z",
        "count": 1,
        "action": "Scheduling",
        "reportingComponent": "default-scheduler",
        "reportingInstance": "",
    }
    assert int("17cb5b99ffbf4a00", 16) == 1714564800123456000


def test_long_messages_are_cut_to_what_an_event_holds() -> None:
    event = events.failed_scheduling_event(pod("p"), "x" * 2000, NOW, instance="sched-1")
    assert len(event["message"]) == 1024 and event["message"].endswith("x ...")
    assert event["source"] == {"component": "default-scheduler", "host": "sched-1"}
    assert event["reportingInstance"] == "sched-1"


def test_scheduled_event() -> None:
    event = events.scheduled_event(pod("web-1", namespace="shop"), "node-7", NOW)
    assert (event["reason"], event["type"], event["action"]) == ("Scheduled", "Normal", "Binding")
    assert event["message"] == "Successfully assigned shop/web-1 to node-7"
    assert event["involvedObject"]["name"] == "web-1" and event["metadata"]["namespace"] == "shop"
