"""ReplicaSet reconcile: counts, slow-start creates, ranked deletes, status, failures."""

from __future__ import annotations

from datetime import timedelta

from controllers import actions, meta, replicaset
from tests.unit.controller_world import T0, World, make_pod, make_rs, set_ready, suffixes

APP = {"app": "web"}


def _of(kind: type, todo: list[actions.Action]) -> list:
    return [a for a in todo if isinstance(a, kind)]


def test_creates_missing_pods_from_the_template_in_slow_start_batches() -> None:
    rs = make_rs("web", 7, APP)
    todo, status = replicaset.reconcile(rs, [], T0, suffixes())
    creates = _of(actions.Create, todo)
    assert [c.batch for c in creates] == [0, 1, 1, 2, 2, 2, 2]
    pod = creates[0].obj
    assert pod["metadata"]["name"] == "web-p1"
    assert pod["metadata"]["generateName"] == "web-"
    assert pod["metadata"]["labels"] == APP
    assert pod["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "uid-web",
        "controller": True, "blockOwnerDeletion": True}]
    assert pod["spec"] == rs["spec"]["template"]["spec"]
    groups = actions.batches(todo)
    assert [len(g) for g in groups][:4] == [1, 1, 2, 1]  # create, its event, 2 creates, event
    events = [e.event["message"] for e in _of(actions.Emit, todo)]
    assert events[:2] == ["Created pod: web-p1", "Created pod: web-p2"]
    assert status == {"replicas": 0, "observedGeneration": 1}


def test_a_failing_batch_stops_the_rest_and_the_next_pass_reports_it() -> None:
    world = World()
    rs = world.add("replicasets", make_rs("web", 7, APP))
    world.add("pods", make_pod("web-p2", APP))  # a name clash makes the second batch fail
    todo, _ = replicaset.reconcile(rs, [], T0, suffixes())
    error = world.apply(todo)
    assert error == "web-p2 already exists"
    # batch 1 ran both its creates (p3 got through); batch 2 never started
    assert sorted(meta.name(p) for p in world.list("pods")) == ["web-p1", "web-p2", "web-p3"]
    _, status = replicaset.reconcile(world.get("replicasets", "ns", "web"), world.list("pods"), T0,
                                     suffixes("q"), manage_error=error)
    failure = meta.get_condition(status["conditions"], "ReplicaFailure")
    assert failure == {"type": "ReplicaFailure", "status": "True",
                       "lastTransitionTime": "2026-01-01T12:00:00Z", "reason": "FailedCreate",
                       "message": "web-p2 already exists"}
    _, healed = replicaset.reconcile(dict(rs, status=status), world.list("pods"), T0, suffixes("r"))
    assert "conditions" not in healed


def test_deletes_the_lowest_ranked_pods_with_uid_preconditions() -> None:
    rs = make_rs("web", 2, APP)
    pods = [
        make_pod("ready-old", APP, owner=rs, node="n1", ready_since=T0 - timedelta(hours=1)),
        make_pod("pending", APP, owner=rs, node="n1"),
        make_pod("unassigned", APP, owner=rs),
        make_pod("ready-new", APP, owner=rs, node="n2", ready_since=T0 - timedelta(seconds=5)),
    ]
    todo, status = replicaset.reconcile(rs, pods, T0, suffixes())
    deletes = _of(actions.Delete, todo)
    assert [(d.name, d.uid_precondition) for d in deletes] == [
        ("unassigned", "uid-unassigned"), ("pending", "uid-pending")]
    assert [e.event["reason"] for e in _of(actions.Emit, todo)] == ["SuccessfulDelete"] * 2
    assert status["replicas"] == 4 and status["readyReplicas"] == 2


def test_exact_count_means_no_writes_but_status() -> None:
    rs = make_rs("web", 2, APP)
    pods = [make_pod(f"p{i}", APP, owner=rs, node="n1", ready_since=T0) for i in range(2)]
    rs["status"] = {"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 2,
                    "availableReplicas": 2, "observedGeneration": 1}
    assert replicaset.reconcile(rs, pods, T0 + timedelta(seconds=1), suffixes()) == ([], rs["status"])


def test_failed_and_terminating_pods_are_replaced() -> None:
    rs = make_rs("web", 2, APP)
    failed = make_pod("failed", APP, owner=rs, phase="Failed")
    going = make_pod("going", APP, owner=rs, phase="Running")
    going["metadata"]["deletionTimestamp"] = meta.format_time(T0)
    todo, status = replicaset.reconcile(rs, [failed, going], T0, suffixes())
    assert len(_of(actions.Create, todo)) == 2
    assert status["replicas"] == 0


def test_status_counts_with_min_ready_seconds_and_requeues() -> None:
    rs = make_rs("web", 3, APP, min_ready=10)
    rs["metadata"]["generation"] = 4
    labels_missing = make_pod("bare", {"app": "web", "x": "y"}, owner=rs, node="n1")
    rs["spec"]["template"]["metadata"]["labels"] = {"app": "web", "tier": "fe"}
    pods = [
        make_pod("avail", {"app": "web", "tier": "fe"}, owner=rs, node="n1",
                 ready_since=T0 - timedelta(seconds=30)),
        make_pod("warming", {"app": "web", "tier": "fe"}, owner=rs, node="n1",
                 ready_since=T0 - timedelta(seconds=4)),
        labels_missing,
    ]
    todo, status = replicaset.reconcile(rs, pods, T0, suffixes())
    assert status == {"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 2,
                      "availableReplicas": 1, "observedGeneration": 4}
    assert _of(actions.UpdateStatus, todo)[0].obj["status"] == status
    assert actions.requeue_after(todo) == 7.0


def test_a_deleting_rs_creates_nothing() -> None:
    rs = make_rs("web", 3, APP)
    rs["metadata"]["deletionTimestamp"] = meta.format_time(T0)
    todo, _ = replicaset.reconcile(rs, [], T0, suffixes())
    assert not _of(actions.Create, todo)


def test_burst_limit_caps_one_pass() -> None:
    todo, _ = replicaset.reconcile(make_rs("web", 1200, APP), [], T0, suffixes())
    assert len(_of(actions.Create, todo)) == replicaset.BURST_REPLICAS


def test_converges_in_a_world_with_replacement() -> None:
    world = World()
    world.add("replicasets", make_rs("web", 5, APP))
    names = suffixes()
    for _ in range(3):
        rs = world.get("replicasets", "ns", "web")
        todo, _ = replicaset.reconcile(rs, world.list("pods"), world.now, names)
        assert world.apply(todo) is None
    assert len(world.list("pods")) == 5
    victim = world.list("pods")[0]
    world.objects[("pods", "ns", meta.name(victim))] = set_ready(victim, world.now)
    world.objects[("pods", "ns", meta.name(victim))]["status"]["phase"] = "Failed"
    todo, _ = replicaset.reconcile(world.get("replicasets", "ns", "web"), world.list("pods"),
                                   world.now, names)
    assert len(_of(actions.Create, todo)) == 1
