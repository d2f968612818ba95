"""Node lifecycle reconcile: lease-based health, taints, eviction, recovery and flapping."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

from controllers import actions, meta, nodelifecycle
from tests.unit.controller_world import T0, make_pod

GRACE = timedelta(seconds=40)
EVICT = timedelta(minutes=5)
UNREACHABLE = nodelifecycle.UNREACHABLE


def _node(ready: str = "True", heartbeat: datetime = T0 - timedelta(hours=1),
          taints: list[dict] | None = None) -> dict:
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n1", "uid": "uid-n1", "resourceVersion": "5",
                         "creationTimestamp": meta.format_time(T0 - timedelta(days=1))},
            "spec": {"taints": taints} if taints else {},
            "status": {"conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
                 "lastHeartbeatTime": meta.format_time(heartbeat),
                 "lastTransitionTime": meta.format_time(heartbeat)},
                {"type": "Ready", "status": ready, "reason": "KubeletReady",
                 "lastHeartbeatTime": meta.format_time(heartbeat),
                 "lastTransitionTime": meta.format_time(heartbeat)}]}}
    return node


def _lease(renewed: datetime) -> dict:
    return {"metadata": {"name": "n1", "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": "n1", "renewTime": meta.format_time(renewed)}}


def _of(kind: type, todo: list[actions.Action]) -> list:
    return [a for a in todo if isinstance(a, kind)]


def _taints_after(node: dict, todo: list[actions.Action]) -> list[dict]:
    patches = [p for p in _of(actions.Patch, todo) if p.resource == "nodes"]
    if not patches:
        return list(node["spec"].get("taints") or [])
    return patches[-1].patch["spec"]["taints"] or []


def _bound_pod(name: str, tolerations: list[dict] | None = None) -> dict:
    pod = make_pod(name, {"app": "web"}, node="n1", ready_since=T0 - timedelta(hours=1))
    if tolerations is not None:
        pod["spec"]["tolerations"] = tolerations
    return pod


def test_a_fresh_lease_keeps_the_node_alone() -> None:
    todo = nodelifecycle.reconcile(_node(), _lease(T0 - timedelta(seconds=10)), [], T0, GRACE, EVICT)
    assert todo == [actions.RequeueAfter(31.0)]


def test_a_stale_lease_marks_unknown_taints_and_unreadies_pods() -> None:
    node = _node()
    pod = _bound_pod("web-1")
    todo = nodelifecycle.reconcile(node, _lease(T0 - timedelta(seconds=41)), [pod], T0, GRACE, EVICT)
    status = _of(actions.UpdateStatus, todo)[0]
    assert status.resource == "nodes" and status.obj["metadata"]["resourceVersion"] == "5"
    ready = meta.get_condition(status.obj["status"]["conditions"], "Ready")
    assert ready == {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                     "message": "Kubelet stopped posting node status.",
                     "lastHeartbeatTime": meta.format_time(T0 - timedelta(hours=1)),
                     "lastTransitionTime": meta.format_time(T0)}
    memory = meta.get_condition(status.obj["status"]["conditions"], "MemoryPressure")
    assert memory["status"] == "Unknown"
    assert _taints_after(node, todo) == [
        {"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": meta.format_time(T0)},
        {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": meta.format_time(T0)}]
    pod_update = [u for u in _of(actions.UpdateStatus, todo) if u.resource == "pods"]
    assert meta.get_condition(pod_update[0].obj["status"]["conditions"], "Ready")["status"] == "False"
    assert [e.event["reason"] for e in _of(actions.Emit, todo)] == ["NodeNotReady"]
    kinds = [type(a).__name__ for a in todo]
    assert kinds.index("UpdateStatus") < kinds.index("Patch")


def test_node_that_never_reported_gets_never_updated() -> None:
    node = _node()
    node["status"] = {}
    todo = nodelifecycle.reconcile(node, None, [], T0, GRACE, EVICT)
    ready = meta.get_condition(_of(actions.UpdateStatus, todo)[0].obj["status"]["conditions"],
                               "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusNeverUpdated")
    assert ready["lastHeartbeatTime"] == node["metadata"]["creationTimestamp"]


def test_pods_are_evicted_when_their_tolerations_run_out() -> None:
    added = T0 - timedelta(seconds=100)
    taints = [{"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": meta.format_time(added)},
              {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": meta.format_time(added)}]
    node = _node(ready="Unknown", taints=taints)
    node["status"]["conditions"][1]["reason"] = "NodeStatusUnknown"
    node["status"]["conditions"][0]["status"] = "Unknown"
    short = _bound_pod("short", [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
                                  "tolerationSeconds": 60}])
    default = _bound_pod("default", [{"key": UNREACHABLE, "operator": "Exists",
                                      "effect": "NoExecute", "tolerationSeconds": 300}])
    forever = _bound_pod("forever", [{"operator": "Exists"}])
    bare = _bound_pod("bare")
    elsewhere = _bound_pod("elsewhere")
    elsewhere["spec"]["nodeName"] = "n2"
    lease = _lease(T0 - timedelta(minutes=10))
    todo = nodelifecycle.reconcile(node, lease, [short, default, forever, bare, elsewhere], T0,
                                   GRACE, EVICT)
    assert [(d.name, d.uid_precondition) for d in _of(actions.Delete, todo)] == [
        ("short", "uid-short")]
    assert [e.event["reason"] for e in _of(actions.Emit, todo)] == ["TaintManagerEviction"]
    assert actions.requeue_after(todo) == 200.0
    later = nodelifecycle.reconcile(node, lease, [default, forever, bare], T0 + timedelta(seconds=200),
                                    GRACE, EVICT)
    assert sorted(d.name for d in _of(actions.Delete, later)) == ["bare", "default"]


def test_recovery_removes_taints_but_not_before_a_probe_period() -> None:
    added = T0 - timedelta(seconds=3)
    taints = [{"key": "example.com/mine", "effect": "NoSchedule"},
              {"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": meta.format_time(added)},
              {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": meta.format_time(added)}]
    node = _node(taints=taints)
    lease = _lease(T0 - timedelta(seconds=1))
    todo = nodelifecycle.reconcile(node, lease, [], T0, GRACE, EVICT)
    assert not _of(actions.Patch, todo), "a taint lives at least one probe period"
    todo = nodelifecycle.reconcile(node, lease, [], T0 + timedelta(seconds=3), GRACE, EVICT)
    assert _taints_after(node, todo) == [{"key": "example.com/mine", "effect": "NoSchedule"}]
    assert not _of(actions.UpdateStatus, todo), "the agent writes Ready itself"


def test_a_renewal_older_than_the_taint_is_no_recovery() -> None:
    added = T0 - timedelta(seconds=30)
    taints = [{"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": meta.format_time(added)}]
    node = _node(ready="Unknown", heartbeat=T0 - timedelta(seconds=35), taints=taints)
    todo = nodelifecycle.reconcile(node, _lease(T0 - timedelta(seconds=35)), [], T0, GRACE, EVICT)
    assert UNREACHABLE in {t["key"] for t in _taints_after(node, todo)}


def test_agent_reporting_not_ready_gets_not_ready_taints() -> None:
    node = _node(ready="False", heartbeat=T0 - timedelta(seconds=5))
    todo = nodelifecycle.reconcile(node, _lease(T0 - timedelta(seconds=5)), [], T0, GRACE, EVICT)
    assert {(t["key"], t["effect"]) for t in _taints_after(node, todo)} == {
        (nodelifecycle.NOT_READY, "NoSchedule"), (nodelifecycle.NOT_READY, "NoExecute")}
    assert not _of(actions.UpdateStatus, todo)


def test_flapping_lease_causes_no_taint_churn() -> None:
    """Renewals every 10 s with one 35 s gap (< grace): never tainted. Then outages broken
    by single renewals, one of them 2 s after the taint went on: reconciling every second,
    no taint is added or removed within a probe period of the last change."""
    node = _node()
    renewals = [T0 + timedelta(seconds=s) for s in (0, 10, 20, 55, 65, 75, 118, 200, 300)]
    changes: list[tuple[int, int]] = []
    now = T0
    while now < T0 + timedelta(seconds=330):
        seen = [r for r in renewals if r <= now]
        todo = nodelifecycle.reconcile(node, _lease(seen[-1]), [], now, GRACE, EVICT)
        for status in _of(actions.UpdateStatus, todo):
            node = copy.deepcopy(node)
            node["status"] = status.obj["status"]
        taints = _taints_after(node, todo)
        if taints != (node["spec"].get("taints") or []):
            changes.append((int((now - T0).total_seconds()), len(taints)))
            node = copy.deepcopy(node)
            node["spec"]["taints"] = taints
        now += timedelta(seconds=1)
    assert changes == [(116, 2), (121, 0), (159, 2), (200, 0), (241, 2), (300, 0)]
    gaps = [b[0] - a[0] for a, b in zip(changes, changes[1:], strict=False)]
    assert min(gaps) >= nodelifecycle.NODE_MONITOR_PERIOD.total_seconds()


def test_toleration_matching() -> None:
    taint = {"key": UNREACHABLE, "effect": "NoExecute"}
    assert nodelifecycle.tolerates({"operator": "Exists"}, taint)
    assert nodelifecycle.tolerates({"key": UNREACHABLE, "operator": "Exists"}, taint)
    assert not nodelifecycle.tolerates({"key": UNREACHABLE, "effect": "NoSchedule",
                                        "operator": "Exists"}, taint)
    assert nodelifecycle.tolerates({"key": "k", "value": "v"}, {"key": "k", "value": "v",
                                                               "effect": "NoExecute"})
    assert not nodelifecycle.tolerates({"key": "k", "value": "w"}, {"key": "k", "value": "v"})
