"""Every filter on hand-built nodes and pods, each with the case that usually goes wrong."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from controllers.scheduling import filters
from controllers.scheduling.filters import Rejection
from controllers.scheduling.nodeinfo import NodeInfo
from controllers.scheduling.podinfo import PodInfo
from tests.unit.scheduling_objects import container, expr, node, pod, required_affinity, taint

DEFAULT_TOLERATIONS = [  # what admission adds to every pod
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
]


Filter = Callable[[PodInfo, NodeInfo], Rejection | None]


def check(check_fn: Filter, p: dict, n: dict, pods: Sequence[dict] = ()) -> Rejection | None:
    return check_fn(PodInfo(p), NodeInfo(n, pods))


# --- NodeUnschedulable --------------------------------------------------------------------

def test_cordoned_node_rejects_unless_the_unschedulable_taint_is_tolerated() -> None:
    cordoned = node("n", unschedulable=True)
    assert check(filters.node_unschedulable, pod("p"), cordoned) == Rejection(("node(s) were unschedulable",), True)
    tolerant = pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}])
    assert check(filters.node_unschedulable, tolerant, cordoned) is None
    assert check(filters.node_unschedulable, pod("p"), node("n")) is None


# --- NodeName -----------------------------------------------------------------------------

def test_preset_node_name_admits_only_that_node() -> None:
    pinned = pod("p", node_name="b")
    assert check(filters.node_name, pinned, node("b")) is None
    assert check(filters.node_name, pinned, node("a")) == Rejection(("node(s) didn't match the requested node name",), True)


# --- TaintToleration ----------------------------------------------------------------------

def test_untolerated_taint_is_named_with_key_and_value() -> None:
    n = node("n", taints=[taint("node-role.kubernetes.io/control-plane"), taint("dedicated", "gpu", "NoExecute")])
    assert check(filters.taint_toleration, pod("p"), n) == Rejection(
        ("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",), True)
    tolerates_first = pod("p", tolerations=[{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}])
    assert check(filters.taint_toleration, tolerates_first, n).reasons == ("node(s) had untolerated taint {dedicated: gpu}",)


def test_exists_with_an_empty_key_tolerates_every_taint() -> None:
    n = node("n", taints=[taint("a", "1"), taint("b", "2", "NoExecute")])
    assert check(filters.taint_toleration, pod("p", tolerations=[{"operator": "Exists"}]), n) is None
    # ...but an effect narrows it.
    only_no_schedule = pod("p", tolerations=[{"operator": "Exists", "effect": "NoSchedule"}])
    assert check(filters.taint_toleration, only_no_schedule, n).reasons == ("node(s) had untolerated taint {b: 2}",)


def test_equal_operator_needs_the_same_value() -> None:
    n = node("n", taints=[taint("dedicated", "gpu")])
    right = pod("p", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}])
    wrong = pod("p", tolerations=[{"key": "dedicated", "value": "cpu"}])
    assert check(filters.taint_toleration, right, n) is None
    assert check(filters.taint_toleration, wrong, n) is not None


def test_no_execute_toleration_with_seconds_still_tolerates_for_scheduling() -> None:
    n = node("n", taints=[taint("maintenance", "soon", "NoExecute")])
    p = pod("p", tolerations=[{"key": "maintenance", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}])
    assert check(filters.taint_toleration, p, n) is None


def test_prefer_no_schedule_never_filters() -> None:
    assert check(filters.taint_toleration, pod("p"), node("n", taints=[taint("spot", "true", "PreferNoSchedule")])) is None


# --- node Ready ---------------------------------------------------------------------------

@pytest.mark.parametrize("ready", ["False", "Unknown", None])
def test_a_node_that_is_not_ready_is_filtered(ready: str | None) -> None:
    p = pod("p", tolerations=DEFAULT_TOLERATIONS)  # NoExecute tolerations do not cover NoSchedule
    assert check(filters.node_ready, p, node("n", ready=ready)) == Rejection(("node(s) were not ready",), True)


def test_tolerating_the_implied_no_schedule_taint_admits_a_not_ready_node() -> None:
    unreachable = pod("p", tolerations=[{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}])
    assert check(filters.node_ready, unreachable, node("n", ready="Unknown")) is None
    assert check(filters.node_ready, unreachable, node("n", ready="False")) is not None


def test_the_not_ready_taint_is_reported_before_the_condition() -> None:
    n = node("n", ready="False", taints=[taint("node.kubernetes.io/not-ready")])
    assert filters.run_filters(PodInfo(pod("p")), NodeInfo(n)).reasons == (
        "node(s) had untolerated taint {node.kubernetes.io/not-ready: }",)


# --- NodeAffinity -------------------------------------------------------------------------

AFFINITY = Rejection(("node(s) didn't match Pod's node affinity/selector",), True)


def test_node_selector_needs_every_label() -> None:
    p = pod("p", node_selector={"disk": "ssd", "zone": "a"})
    assert check(filters.node_affinity, p, node("n", labels={"disk": "ssd", "zone": "a", "x": "y"})) is None
    assert check(filters.node_affinity, p, node("n", labels={"disk": "ssd"})) == AFFINITY


@pytest.mark.parametrize(("expression", "labels", "fits"), [
    (expr("zone", "In", "a", "b"), {"zone": "b"}, True),
    (expr("zone", "In", "a"), {}, False),
    (expr("zone", "NotIn", "a"), {"zone": "b"}, True),
    (expr("zone", "NotIn", "a"), {}, True),
    (expr("zone", "NotIn", "a"), {"zone": "a"}, False),
    (expr("gpu", "Exists"), {"gpu": ""}, True),
    (expr("gpu", "DoesNotExist"), {"gpu": "x"}, False),
    (expr("gpu", "DoesNotExist"), {}, True),
    (expr("cores", "Gt", "8"), {"cores": "16"}, True),
    (expr("cores", "Gt", "8"), {"cores": "8"}, False),
    (expr("cores", "Lt", "8"), {"cores": "4"}, True),
    (expr("cores", "Lt", "8"), {"cores": "many"}, False),
    (expr("cores", "Gt", "8"), {}, False),
])
def test_match_expressions(expression: dict, labels: dict, fits: bool) -> None:
    p = pod("p", affinity=required_affinity({"matchExpressions": [expression]}))
    assert (check(filters.node_affinity, p, node("n", labels=labels)) is None) is fits


def test_terms_are_ored_and_requirements_anded() -> None:
    p = pod("p", affinity=required_affinity(
        {"matchExpressions": [expr("zone", "In", "a"), expr("disk", "In", "ssd")]},
        {"matchFields": [expr("metadata.name", "In", "special")]},
    ))
    assert check(filters.node_affinity, p, node("n", labels={"zone": "a", "disk": "ssd"})) is None
    assert check(filters.node_affinity, p, node("n", labels={"zone": "a"})) == AFFINITY
    assert check(filters.node_affinity, p, node("special")) is None


def test_empty_terms_and_unknown_operators_match_nothing() -> None:
    assert check(filters.node_affinity, pod("p", affinity=required_affinity({})), node("n")) == AFFINITY
    weird = pod("p", affinity=required_affinity({"matchExpressions": [expr("zone", "Near", "a")]}))
    assert check(filters.node_affinity, weird, node("n", labels={"zone": "a"})) == AFFINITY


def test_node_selector_and_affinity_must_both_hold() -> None:
    p = pod("p", node_selector={"disk": "ssd"}, affinity=required_affinity({"matchFields": [expr("metadata.name", "NotIn", "a")]}))
    assert check(filters.node_affinity, p, node("b", labels={"disk": "ssd"})) is None
    assert check(filters.node_affinity, p, node("a", labels={"disk": "ssd"})) == AFFINITY
    assert check(filters.node_affinity, p, node("b")) == AFFINITY


# --- NodePorts ----------------------------------------------------------------------------

PORTS = Rejection(("node(s) didn't have free ports for the requested pod ports",), False)


def port_pod(name: str, port: int, protocol: str = "TCP", ip: str = "", **kw: Any) -> dict:
    spec = {"containerPort": port, "hostPort": port, "protocol": protocol}
    if ip:
        spec["hostIP"] = ip
    return pod(name, containers=[container(ports=[spec])], **kw)


@pytest.mark.parametrize(("held", "wanted", "conflict"), [
    (("TCP", ""), ("TCP", ""), True),
    (("TCP", ""), ("UDP", ""), False),  # another protocol is another port
    (("TCP", "10.0.0.1"), ("TCP", "10.0.0.2"), False),
    (("TCP", "10.0.0.1"), ("TCP", "0.0.0.0"), True),  # every address includes that one
    (("TCP", "0.0.0.0"), ("TCP", "10.0.0.2"), True),
    (("SCTP", "10.0.0.1"), ("SCTP", "10.0.0.1"), True),
])
def test_host_port_conflicts(held: tuple[str, str], wanted: tuple[str, str], conflict: bool) -> None:
    running = port_pod("running", 8080, *held)
    result = check(filters.node_ports, port_pod("new", 8080, *wanted), node("n"), [running])
    assert result == (PORTS if conflict else None)


def test_a_pod_being_deleted_still_holds_its_ports_until_gone() -> None:
    leaving = port_pod("leaving", 80, deleting=True)
    assert check(filters.node_ports, port_pod("new", 80), node("n"), [leaving]) == PORTS
    finished = port_pod("done", 80, phase="Succeeded")
    assert check(filters.node_ports, port_pod("new", 80), node("n"), [finished]) is None


# --- NodeResourcesFit ---------------------------------------------------------------------

def test_insufficient_cpu_and_memory_are_separate_reasons() -> None:
    busy = [pod("a", cpu="3", memory="6Gi")]
    assert check(filters.node_resources_fit, pod("p", cpu="2", memory="4Gi"), node("n"), busy) == Rejection(
        ("Insufficient cpu", "Insufficient memory"), False)
    assert check(filters.node_resources_fit, pod("p", cpu="1", memory="2Gi"), node("n"), busy) is None


def test_a_request_larger_than_the_node_is_unresolvable() -> None:
    assert check(filters.node_resources_fit, pod("p", cpu="5"), node("n")) == Rejection(("Insufficient cpu",), True)


def test_too_many_pods_counts_even_best_effort_pods() -> None:
    full = node("n", pods="2")
    assert check(filters.node_resources_fit, pod("p"), full, [pod("a"), pod("b")]) == Rejection(("Too many pods",), False)
    assert check(filters.node_resources_fit, pod("p"), full, [pod("a")]) is None


def test_extended_resources() -> None:
    gpu_node = node("n", extra={"nvidia.com/gpu": "2"})
    gpu = pod("p", containers=[container(requests={"nvidia.com/gpu": "1"})])
    assert check(filters.node_resources_fit, gpu, gpu_node, [gpu | {"metadata": {"name": "a", "uid": "a"}}]) is None
    taken = [dict(gpu, metadata={"name": n, "uid": n}) for n in ("a", "b")]
    assert check(filters.node_resources_fit, gpu, gpu_node, taken) == Rejection(("Insufficient nvidia.com/gpu",), False)
    assert check(filters.node_resources_fit, gpu, node("n")) == Rejection(("Insufficient nvidia.com/gpu",), True)


def test_init_container_bigger_than_the_containers_decides_the_fit() -> None:
    p = pod("p", cpu="100m", init=[container("migrate", cpu="3")])
    assert check(filters.node_resources_fit, p, node("n"), [pod("a", cpu="2")]) == Rejection(("Insufficient cpu",), False)


def test_pods_being_deleted_still_count_and_finished_ones_do_not() -> None:
    leaving = pod("a", cpu="3", deleting=True)
    assert check(filters.node_resources_fit, pod("p", cpu="2"), node("n"), [leaving]) is not None
    done = pod("b", cpu="3", phase="Failed")
    assert check(filters.node_resources_fit, pod("p", cpu="2"), node("n"), [done]) is None


def test_a_pod_requesting_nothing_fits_an_overcommitted_node() -> None:
    over = [pod("a", cpu="6", memory="1Gi")]  # bound by someone else, beyond allocatable
    assert check(filters.node_resources_fit, pod("p", memory="1Gi"), node("n"), over) is None
    assert check(filters.node_resources_fit, pod("p", cpu="1m"), node("n"), over) == Rejection(("Insufficient cpu",), False)


def test_first_failing_filter_wins() -> None:
    n = node("n", unschedulable=True, taints=[taint("x")], labels={})
    assert filters.run_filters(PodInfo(pod("p", cpu="99", node_selector={"a": "b"})), NodeInfo(n)).reasons == (
        "node(s) were unschedulable",)
