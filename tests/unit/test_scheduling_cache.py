"""NodeInfo aggregates and the Snapshot's assume/forget bookkeeping, including cached views."""

from __future__ import annotations

from controllers.scheduling.cache import Snapshot
from controllers.scheduling.nodeinfo import NodeInfo
from controllers.scheduling.schedule import schedule
from tests.unit.scheduling_objects import container, expr, node, pod, preferred_affinity, taint


def test_node_info_keeps_running_totals() -> None:
    info = NodeInfo(node("n"), [pod("a", cpu="1", memory="1Gi", owner="web"), pod("b")])
    assert (info.requested_cpu, info.requested_memory, info.pod_count) == (1000, 1024**3, 2)
    assert (info.nonzero_cpu, info.nonzero_memory) == (1100, 1024**3 + 200 * 1024**2)
    assert info.owner_counts == {"uid-web": 1}
    assert info.free_cpu == 3000 and info.free_pods == 108
    info.remove_pod(pod("a"))
    assert (info.requested_cpu, info.owner_counts, info.pod_count) == (0, {}, 1)
    assert info.remove_pod("nope") is None
    assert info.add_pod(pod("b")) is None  # the same pod twice counts once


def test_ports_are_released_when_the_last_user_goes() -> None:
    web = pod("web", containers=[container(ports=[{"containerPort": 80, "hostPort": 80}])])
    info = NodeInfo(node("n"), [web])
    assert info.used_ports == {("TCP", 80): {"0.0.0.0": 1}}
    info.remove_pod(web)
    assert info.used_ports == {}


def test_set_node_keeps_pods_and_forgets_static_verdicts() -> None:
    info = NodeInfo(node("n"), [pod("a", cpu="1")])
    info.static_cache["k"] = (None, 0, 0)
    before = info.generation
    info.set_node(node("n", cpu="8"))
    assert info.static_cache == {} and info.free_cpu == 7000 and info.generation > before


def test_assume_then_confirm_then_delete() -> None:
    snapshot = Snapshot([node("a"), node("b")])
    p = pod("p", cpu="1")
    snapshot.assume(p, "a")
    assert snapshot.is_assumed(p) and snapshot.get("a").requested_cpu == 1000
    snapshot.add_pod(pod("p", cpu="1", node_name="a"))  # the informer sees the binding
    assert not snapshot.is_assumed(p) and snapshot.get("a").pod_count == 1
    snapshot.forget(p)  # too late: it is bound
    assert snapshot.get("a").pod_count == 1
    snapshot.remove_pod(p)
    assert snapshot.get("a").pod_count == 0


def test_forget_undoes_a_failed_binding() -> None:
    snapshot = Snapshot([node("a")])
    snapshot.assume(pod("p", cpu="1"), "a")
    snapshot.forget(pod("p"))
    assert snapshot.get("a").requested_cpu == 0 and not snapshot.is_assumed("uid-default-p")


def test_pods_move_and_finish() -> None:
    snapshot = Snapshot([node("a"), node("b")], [pod("p", cpu="1", node_name="a")])
    snapshot.update_pod(pod("p", cpu="1", node_name="b"))
    assert (snapshot.get("a").pod_count, snapshot.get("b").pod_count) == (0, 1)
    snapshot.update_pod(pod("p", cpu="1", node_name="b", phase="Succeeded"))
    assert snapshot.get("b").pod_count == 0


def test_pods_of_unknown_nodes_wait_for_them() -> None:
    snapshot = Snapshot([], [pod("p", cpu="1", node_name="late")])
    assert len(snapshot) == 0
    snapshot.set_node(node("late"))
    assert snapshot.get("late").requested_cpu == 1000
    snapshot.remove_node("late")
    snapshot.set_node(node("late"))
    assert snapshot.get("late").requested_cpu == 1000


def test_nodes_stay_in_name_order() -> None:
    snapshot = Snapshot([node("b"), node("c"), node("a")])
    assert [n.name for n in snapshot] == ["a", "b", "c"]


def test_cached_views_follow_node_changes() -> None:
    # "c" is tainted away at first; untainted later it must be scored with its preference.
    likes_b = preferred_affinity((10, {"matchExpressions": [expr("zone", "In", "b")]}))
    snapshot = Snapshot([node("a", labels={"zone": "b"}), node("c", labels={"zone": "b"}, taints=[taint("x")]),
                         node("d", labels={"zone": "a"})])
    first = schedule(pod("p1", cpu="1", affinity=likes_b), snapshot)
    assert first.node_name == "a"
    snapshot.assume(pod("p1", cpu="1", affinity=likes_b), "a")
    snapshot.set_node(node("c", labels={"zone": "b"}))
    assert schedule(pod("p2", cpu="1", affinity=likes_b), snapshot).node_name == "c"
    snapshot.assume(pod("p2", cpu="1", affinity=likes_b), "c")
    snapshot.set_node(node("e", labels={"zone": "b"}))  # a new node reshapes every view
    assert schedule(pod("p3", cpu="1", affinity=likes_b), snapshot).node_name == "e"
