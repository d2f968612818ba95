"""schedule() and schedule_many(): Kubernetes' FitError text, choices, and a plain reference."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controllers.scheduling import filters, scores
from controllers.scheduling.cache import Snapshot
from controllers.scheduling.fit_error import fit_error_message
from controllers.scheduling.nodeinfo import NodeInfo
from controllers.scheduling.podinfo import PodInfo
from controllers.scheduling.resources import resource_list
from controllers.scheduling.schedule import Decision, schedule, schedule_many
from tests.unit.scheduling_objects import (
    container,
    expr,
    node,
    pod,
    preferred_affinity,
    required_affinity,
    taint,
)

CONTROL_PLANE = taint("node-role.kubernetes.io/control-plane")


def cluster(*nodes: dict, pods: Sequence[dict] = ()) -> Snapshot:
    return Snapshot(nodes, pods)


# --- the failure message ------------------------------------------------------------------

def test_fit_error_counts_reasons_per_node_and_sorts_them_as_strings() -> None:
    nodes = [node(f"w{i}", cpu="1") for i in range(3)] + [node(f"cp{i}", taints=[CONTROL_PLANE]) for i in range(2)]
    busy = [pod(f"b{i}", cpu="800m", node_name=f"w{i}") for i in range(3)]
    decision = schedule(pod("p", cpu="500m"), cluster(*nodes, pods=busy))
    assert decision.node_name is None
    assert decision.message == (
        "0/5 nodes are available: 2 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "3 Insufficient cpu. preemption: 0/5 nodes are available: 2 Preemption is not helpful for scheduling, "
        "3 No preemption victims found for incoming pod."
    )
    assert decision.per_node_reasons["w0"].reasons == ("Insufficient cpu",)


def test_a_pod_bigger_than_every_node_is_not_helped_by_preemption() -> None:
    nodes = [node(f"w{i}", cpu="1") for i in range(3)] + [node(f"cp{i}", taints=[CONTROL_PLANE]) for i in range(2)]
    assert schedule(pod("p", cpu="2"), cluster(*nodes)).message == (
        "0/5 nodes are available: 2 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "3 Insufficient cpu. preemption: 0/5 nodes are available: 5 Preemption is not helpful for scheduling."
    )


def test_every_reason_of_a_node_counts_and_ten_sorts_before_two() -> None:
    nodes = [node(f"n{i:02}", cpu="1", memory="1Gi", pods="1") for i in range(12)]
    busy = [pod(f"b{i}", cpu="1", memory="1Gi", node_name=f"n{i:02}") for i in range(10)]
    message = schedule(pod("p", cpu="1", memory="1Gi"), cluster(*nodes, pods=busy)).message
    # Ten full nodes lack cpu, memory and a pod slot; two are empty and take the pod.
    assert message == ""
    message = schedule(pod("p", cpu="2", memory="512Mi"), cluster(*nodes, pods=busy)).message
    assert message == (
        "0/12 nodes are available: 10 Insufficient memory, 10 Too many pods, 12 Insufficient cpu. "
        "preemption: 0/12 nodes are available: 12 Preemption is not helpful for scheduling."
    )


def test_no_nodes_at_all() -> None:
    assert schedule(pod("p"), cluster()) == Decision(None, "no nodes available to schedule pods", {})


def test_preemption_policy_never() -> None:
    p = pod("p", cpu="8", preemptionPolicy="Never")
    assert schedule(p, cluster(node("a"))).message == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    )


def test_not_ready_cordoned_and_mismatched_nodes() -> None:
    nodes = [node("a", ready="False"), node("b", unschedulable=True), node("c", labels={"disk": "hdd"})]
    assert schedule(pod("p", node_selector={"disk": "ssd"}), cluster(*nodes)).message == (
        "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) were not ready, 1 node(s) were unschedulable. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )


def test_pinning_node_names_narrows_the_nodes_looked_at() -> None:
    daemon = pod("d", cpu="8", affinity=required_affinity({"matchFields": [expr("metadata.name", "In", "b")]}))
    decision = schedule(daemon, cluster(node("a"), node("b"), node("c")))
    assert decision.message == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )
    fits = pod("d", affinity=required_affinity({"matchFields": [expr("metadata.name", "In", "b")]}))
    assert schedule(fits, cluster(node("a"), node("b"), node("c"))).node_name == "b"


def test_conflicting_node_name_terms_fail_before_filtering() -> None:
    conflict = pod("d", affinity=required_affinity(
        {"matchFields": [expr("metadata.name", "In", "a"), expr("metadata.name", "In", "b")]}))
    assert schedule(conflict, cluster(node("a"), node("b"), node("c"))).message == (
        "0/3 nodes are available: pod affinity terms conflict. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )


def test_fit_error_message_without_reasons() -> None:
    assert fit_error_message(2, {}) == "0/2 nodes are available: preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."


# --- choosing -----------------------------------------------------------------------------

def test_least_allocated_node_wins() -> None:
    snapshot = cluster(node("a"), node("b"), pods=[pod("x", cpu="2", memory="4Gi", node_name="a")])
    assert schedule(pod("p", cpu="1", memory="1Gi"), snapshot).node_name == "b"


def test_spreading_beats_a_slightly_emptier_node() -> None:
    snapshot = cluster(node("a"), node("b"), pods=[
        pod("web-1", cpu="100m", owner="web", node_name="a"),
        pod("other", cpu="1", node_name="b"),
    ])
    assert schedule(pod("web-2", cpu="100m", owner="web"), snapshot).node_name == "b"
    assert schedule(pod("db-1", cpu="100m", owner="db"), snapshot).node_name == "a"


def test_preferred_affinity_and_soft_taints_steer() -> None:
    snapshot = cluster(node("a"), node("b", labels={"zone": "z1"}), node("c", taints=[taint("spot", "", "PreferNoSchedule")]))
    likes_z1 = pod("p", affinity=preferred_affinity((10, {"matchExpressions": [expr("zone", "In", "z1")]})))
    assert schedule(likes_z1, snapshot).node_name == "b"
    assert schedule(pod("q"), snapshot, tie_breaker=0).node_name == "a"
    assert schedule(pod("q"), snapshot, tie_breaker=1).node_name == "b"
    assert schedule(pod("q"), snapshot, tie_breaker=2).node_name == "a"  # c is never tied with them


def test_ties_rotate_in_node_order() -> None:
    snapshot = cluster(node("c"), node("a"), node("b"))
    assert [schedule(pod("p"), snapshot, tie_breaker=t).node_name for t in range(4)] == ["a", "b", "c", "a"]
    assert schedule(pod("p"), [NodeInfo(node("z")), NodeInfo(node("y"))]).node_name == "z"


def test_a_single_feasible_node_is_taken() -> None:
    assert schedule(pod("p", cpu="3"), cluster(node("a", cpu="1"), node("b"))).node_name == "b"


def test_schedule_many_assumes_each_placement() -> None:
    snapshot = cluster(node("a", cpu="1"), node("b", cpu="1"))
    decisions = schedule_many([pod(f"p{i}", cpu="400m", owner="web") for i in range(5)], snapshot)
    assert [d.node_name for d in decisions] == ["a", "b", "a", "b", None]
    assert decisions[-1].message.startswith("0/2 nodes are available: 2 Insufficient cpu.")
    assert snapshot.is_assumed(pod("p0")) and snapshot.get("a").requested_cpu == 800


def test_schedule_many_over_plain_node_infos_updates_them() -> None:
    infos = [NodeInfo(node("a", cpu="1"))]
    assert [d.node_name for d in schedule_many([pod("p", cpu="1"), pod("q", cpu="1")], infos)] == ["a", None]
    assert infos[0].requested_cpu == 1000


# --- a plain reference, and properties on random clusters ----------------------------------

def reference(pod_obj: dict, nodes: list[NodeInfo], tie_breaker: int) -> Decision:
    """Filter and score node by node with the plain functions: what schedule() must equal."""
    info = PodInfo(pod_obj)
    if not nodes:
        return Decision(None, fit_error_message(0, {}))
    names = info.prefilter_names
    if names is not None and not names:
        return Decision(None, fit_error_message(len(nodes), {}, prefilter_message=filters.AFFINITY_CONFLICT,
                                                preemption_never=info.preemption_never))
    rejections, feasible = {}, []
    for n in nodes:
        rejection = filters.Rejection((filters.PREFILTER_AFFINITY,), True) if names is not None and n.name not in names \
            else filters.run_filters(info, n)
        if rejection is None:
            feasible.append(n)
        else:
            rejections[n.name] = rejection
    if not feasible:
        return Decision(None, fit_error_message(len(nodes), rejections, preemption_never=info.preemption_never), rejections)
    totals = scores.total_scores(info, feasible)
    ties = [n for n, t in zip(feasible, totals, strict=True) if t == max(totals)]
    return Decision(ties[tie_breaker % len(ties)].name, "", rejections)


TAINTS = [taint("dedicated", "gpu"), taint("spot", "1", "PreferNoSchedule"), taint("old", "", "PreferNoSchedule"),
          taint("evict", "now", "NoExecute")]
TOLERATIONS = [{"key": "dedicated", "operator": "Exists"}, {"key": "spot", "operator": "Equal", "value": "1"},
               {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}, {"key": "node.kubernetes.io/unreachable", "operator": "Exists"}]

def pod_lists(max_size: int) -> st.SearchStrategy[list[dict]]:
    """Pods with distinct uids: one pod decided twice would move, not double."""
    return st.lists(pod_strategy(), max_size=max_size, unique_by=lambda p: p["metadata"]["uid"])


node_strategy = st.builds(
    lambda i, cpu, mem, pods, zone, taints, ready, cordoned, gpus: node(
        f"n{i}", cpu=f"{cpu * 500}m", memory=f"{mem}Gi", pods=str(pods), labels={"zone": zone},
        taints=taints, ready=ready, unschedulable=cordoned, extra={"example.com/gpu": str(gpus)} if gpus else None),
    st.integers(0, 99), st.integers(0, 8), st.integers(0, 8), st.integers(0, 6), st.sampled_from(["a", "b"]),
    st.lists(st.sampled_from(TAINTS), max_size=2, unique_by=lambda t: t["key"]),
    st.sampled_from(["True", "True", "True", "False", "Unknown", None]), st.booleans(), st.integers(0, 2),
)


@st.composite
def pod_strategy(draw: st.DrawFn, index: int = 0) -> dict:
    requests = {}
    if draw(st.booleans()):
        requests["cpu"] = f"{draw(st.integers(0, 6)) * 250}m"
    if draw(st.booleans()):
        requests["memory"] = f"{draw(st.integers(0, 6)) * 512}Mi"
    if draw(st.integers(0, 4)) == 0:
        requests["example.com/gpu"] = str(draw(st.integers(1, 2)))
    ports = [{"containerPort": 80, "hostPort": 80}] if draw(st.integers(0, 5)) == 0 else []
    extra = {}
    choice = draw(st.integers(0, 6))
    if choice == 0:
        extra["node_selector"] = {"zone": draw(st.sampled_from(["a", "b"]))}
    elif choice == 1:
        extra["affinity"] = preferred_affinity((draw(st.integers(1, 100)), {"matchExpressions": [expr("zone", "In", "b")]}))
    elif choice == 2:
        names = draw(st.lists(st.sampled_from([f"n{i}" for i in range(5)]), min_size=1, max_size=3))
        extra["affinity"] = required_affinity({"matchFields": [expr("metadata.name", "In", *names)]})
    return pod(
        f"p{index}-{draw(st.integers(0, 10**6))}",
        containers=[container(requests=requests, ports=ports)],
        owner=draw(st.sampled_from([None, "web", "db"])),
        tolerations=draw(st.lists(st.sampled_from(TOLERATIONS), max_size=3)),
        **extra,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nodes=st.lists(node_strategy, max_size=6, unique_by=lambda n: n["metadata"]["name"]),
    pods=pod_lists(14),
    relabel=st.integers(0, 13),
    tie_breaker=st.integers(0, 5),
)
def test_schedule_matches_the_plain_reference_as_pods_land(nodes: list, pods: list, relabel: int, tie_breaker: int) -> None:
    snapshot = Snapshot(nodes)
    for i, p in enumerate(pods):
        if i == relabel and nodes:  # a node object changes between decisions
            changed = copy.deepcopy(nodes[0])
            changed["metadata"]["labels"]["zone"] = "b" if changed["metadata"]["labels"]["zone"] == "a" else "a"
            changed["spec"]["taints"] = []
            snapshot.set_node(changed)
        expected = reference(p, [copy.copy(n) for n in snapshot.node_infos], tie_breaker + i)
        decision = schedule(p, snapshot, tie_breaker=tie_breaker + i)
        assert decision == expected
        if decision.node_name:
            snapshot.assume(p, decision.node_name)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=st.lists(node_strategy, min_size=1, max_size=6, unique_by=lambda n: n["metadata"]["name"]),
       pods=pod_lists(30))
def test_schedule_many_never_overcommits_a_node(nodes: list, pods: list) -> None:
    decisions = schedule_many(pods, Snapshot(nodes))
    for n in nodes:
        placed = [p for p, d in zip(pods, decisions, strict=True) if d.node_name == n["metadata"]["name"]]
        allocatable = resource_list(n["status"]["allocatable"])
        assert len(placed) <= allocatable["pods"]
        for name in ("cpu", "memory", "example.com/gpu"):
            used = sum(PodInfo(p).requests.get(name, 0) for p in placed)
            assert used <= allocatable.get(name, 0) or used == 0


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=st.lists(node_strategy, min_size=1, max_size=5, unique_by=lambda n: n["metadata"]["name"]),
       pods=pod_lists(12), tie_breaker=st.integers(0, 3))
def test_schedule_many_equals_deciding_one_by_one(nodes: list, pods: list, tie_breaker: int) -> None:
    batch = schedule_many(pods, Snapshot(nodes), tie_breaker=tie_breaker)
    snapshot = Snapshot(nodes)
    for i, p in enumerate(pods):
        decision = schedule(p, snapshot, tie_breaker=tie_breaker + i)
        assert decision == batch[i]
        if decision.node_name:
            snapshot.assume(p, decision.node_name)
