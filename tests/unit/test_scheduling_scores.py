"""Score formulas on worked numbers, and the fused hot-path score against the plain ones."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.scheduling import scores
from controllers.scheduling.nodeinfo import NodeInfo
from controllers.scheduling.podinfo import PodInfo
from tests.unit.scheduling_objects import container, expr, node, pod, preferred_affinity, taint


def test_least_allocated_averages_the_free_share_of_cpu_and_memory() -> None:
    n = NodeInfo(node("n", cpu="4", memory="8Gi"), [pod("a", cpu="1", memory="2Gi")])
    assert scores.least_allocated(PodInfo(pod("p", cpu="1", memory="2Gi")), n) == 50
    # cpu (4000-1500)*100//4000 = 62, memory (8-6)*100//8 = 25 -> 87 // 2
    assert scores.least_allocated(PodInfo(pod("p", cpu="500m", memory="4Gi")), n) == 43


def test_least_allocated_uses_the_non_zero_defaults() -> None:
    empty = NodeInfo(node("n", cpu="4", memory="8Gi"))
    # 100m and 200Mi: (3900*100)//4000 = 97, (7992*100)//8192 = 97
    assert scores.least_allocated(PodInfo(pod("p")), empty) == 97
    over = NodeInfo(node("n", cpu="1", memory="1Gi"), [pod("a", cpu="2", memory="2Gi")])
    assert scores.least_allocated(PodInfo(pod("p", cpu="1", memory="1Gi")), over) == 0


def test_balanced_allocation_is_one_minus_half_the_fraction_gap() -> None:
    n = NodeInfo(node("n", cpu="4", memory="8Gi"))
    assert scores.balanced_allocation(PodInfo(pod("p", cpu="1", memory="4Gi")), n) == 87  # |0.25-0.5|/2
    assert scores.balanced_allocation(PodInfo(pod("p", cpu="1", memory="2Gi")), n) == 100
    # fractions are capped at 1: cpu 8/4 -> 1, memory 0.25
    assert scores.balanced_allocation(PodInfo(pod("p", cpu="8", memory="2Gi")), n) == 62
    assert scores.balanced_allocation(PodInfo(pod("p")), n) == 0  # best-effort pods skip it


def test_spread_favours_nodes_with_fewer_pods_of_the_same_controller() -> None:
    mine = [pod(f"m{i}", owner="web") for i in range(3)]
    nodes = [NodeInfo(node("a")), NodeInfo(node("b"), mine[:1]), NodeInfo(node("c"), mine[1:] + [pod("x", owner="db")])]
    p = PodInfo(pod("p", owner="web"))
    assert [scores.spread_count(p, n) for n in nodes] == [0, 1, 2]
    assert scores.normalize_spread([0, 1, 2]) == [100, 50, 0]
    assert scores.normalize_spread([0, 0]) == [100, 100]
    assert scores.spread_count(PodInfo(pod("orphan")), nodes[2]) == 0


def test_terminating_pods_do_not_count_for_spreading() -> None:
    n = NodeInfo(node("a"), [pod("m", owner="web", deleting=True)])
    assert scores.spread_count(PodInfo(pod("p", owner="web")), n) == 0


def test_preferred_affinity_sums_matching_weights_then_scales_to_100() -> None:
    p = PodInfo(pod("p", affinity=preferred_affinity(
        (20, {"matchExpressions": [expr("zone", "In", "a")]}),
        (30, {"matchExpressions": [expr("disk", "In", "ssd")]}),
        (99, {}),  # an empty preference matches nothing
    )))
    nodes = [NodeInfo(node("x")), NodeInfo(node("y", labels={"zone": "a"})), NodeInfo(node("z", labels={"zone": "a", "disk": "ssd"}))]
    raw = [scores.node_affinity_raw(p, n) for n in nodes]
    assert raw == [0, 20, 50]
    assert scores.normalize(raw) == [0, 40, 100]
    assert scores.normalize([0, 0]) == [0, 0]


def test_prefer_no_schedule_taints_count_against_a_node() -> None:
    p = PodInfo(pod("p", tolerations=[{"key": "spot", "operator": "Exists", "effect": "PreferNoSchedule"}]))
    nodes = [
        NodeInfo(node("a")),
        NodeInfo(node("b", taints=[taint("spot", "1", "PreferNoSchedule"), taint("old", "1", "PreferNoSchedule")])),
        NodeInfo(node("c", taints=[taint("old", "1", "PreferNoSchedule"), taint("x", "1", "PreferNoSchedule")])),
    ]
    raw = [scores.taint_toleration_raw(p, n) for n in nodes]
    assert raw == [0, 1, 2]
    assert scores.normalize(raw, reverse=True) == [100, 50, 0]
    assert scores.normalize([0, 0], reverse=True) == [100, 100]


def test_total_is_the_weighted_sum() -> None:
    n = NodeInfo(node("n", cpu="4", memory="8Gi"))
    p = PodInfo(pod("p", cpu="1", memory="4Gi", owner="web"))
    # least (75+50)//2 = 62, balanced 87, spread 100*2, no affinity, taints 100*3
    assert scores.total_scores(p, [n]) == [62 + 87 + 200 + 300]


quantity = st.integers(min_value=0, max_value=64)


@settings(max_examples=300, deadline=None)
@given(
    node_cpu=quantity, node_mem=quantity, used_cpu=quantity, used_mem=quantity,
    pod_cpu=st.none() | quantity, pod_mem=st.none() | quantity,
)
def test_resource_score_is_least_plus_balanced(node_cpu: int, node_mem: int, used_cpu: int, used_mem: int,
                                               pod_cpu: int | None, pod_mem: int | None) -> None:
    def requests(cpu: int | None, mem: int | None) -> dict:
        return {"cpu": None if cpu is None else f"{cpu * 250}m", "memory": None if mem is None else f"{mem * 128}Mi"}

    n = NodeInfo(node("n", cpu=f"{node_cpu * 500}m", memory=f"{node_mem * 256}Mi"),
                 [pod("a", containers=[container(**requests(used_cpu, used_mem))])])
    p = PodInfo(pod("p", containers=[container(**requests(pod_cpu, pod_mem))]))
    assert scores.resource_score(p, n) == (
        scores.LEAST_ALLOCATED_WEIGHT * scores.least_allocated(p, n)
        + scores.BALANCED_ALLOCATION_WEIGHT * scores.balanced_allocation(p, n)
    )
