"""Node IPAM: podCIDRs from the cluster CIDR, never two alike, reused after node deletion."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controllers import actions, meta, nodeipam
from tests.unit.controller_world import T0


def _node(name: str, cidr: str | None = None, age: int = 0) -> dict:
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "3",
                         "creationTimestamp": meta.format_time(T0 - timedelta(seconds=age))},
            "spec": {}}
    if cidr:
        node["spec"] = {"podCIDR": cidr, "podCIDRs": [cidr]}
    return node


def _given(todo: list[actions.Action]) -> dict[str, str]:
    return {u.obj["metadata"]["name"]: u.obj["spec"]["podCIDR"]
            for u in todo if isinstance(u, actions.Update)}


def test_allocates_lowest_free_subnets_oldest_node_first() -> None:
    nodes = [_node("young", age=1), _node("has", "10.244.0.0/24"), _node("old", age=100)]
    todo = nodeipam.allocate(nodes, "10.244.0.0/16", 24, T0)
    assert _given(todo) == {"old": "10.244.1.0/24", "young": "10.244.2.0/24"}
    update = todo[0]
    assert update.obj["spec"]["podCIDRs"] == ["10.244.1.0/24"]
    assert update.obj["metadata"]["resourceVersion"] == "3", "a conflict must fail the write"


def test_a_deleted_nodes_subnet_is_free_again() -> None:
    nodes = [_node("a", "10.244.0.0/24"), _node("c", "10.244.2.0/24"), _node("new")]
    assert _given(nodeipam.allocate(nodes, "10.244.0.0/16", 24, T0)) == {"new": "10.244.1.0/24"}


def test_exhaustion_is_a_warning_event() -> None:
    nodes = [_node("a", "10.0.0.0/25"), _node("b", "10.0.0.128/25"), _node("c")]
    (emit,) = nodeipam.allocate(nodes, "10.0.0.0/24", 25, T0)
    assert isinstance(emit, actions.Emit)
    assert (emit.event["reason"], emit.event["type"]) == ("CIDRNotAvailable", "Warning")
    assert emit.event["message"] == "Node c status is now: CIDRNotAvailable"
    assert emit.event["involvedObject"]["kind"] == "Node"


def test_foreign_and_odd_cidrs_are_ignored_and_kept() -> None:
    nodes = [_node("a", "192.168.0.0/24"), _node("b", "10.244.0.0/23"), _node("c")]
    assert _given(nodeipam.allocate(nodes, "10.244.0.0/16", 24, T0)) == {"c": "10.244.0.0/24"}


def test_ipv6_and_bad_masks() -> None:
    todo = nodeipam.allocate([_node("a")], "fd00:10::/56", 64, T0)
    assert _given(todo) == {"a": "fd00:10::/64"}
    with pytest.raises(ValueError):
        nodeipam.allocate([], "10.0.0.0/24", 16, T0)


@given(st.lists(st.booleans(), min_size=1, max_size=40), st.integers(min_value=0, max_value=2**31))
def test_never_two_alike(preset: list[bool], seed: int) -> None:
    """However many nodes already hold subnets, the allocator never repeats one."""
    nodes = []
    for i, has in enumerate(preset):
        cidr = f"10.0.{(i * 7 + seed) % 64}.0/24" if has else None
        if cidr and any(n["spec"].get("podCIDR") == cidr for n in nodes):
            cidr = None
        nodes.append(_node(f"n{i}", cidr, age=i))
    todo = nodeipam.allocate(nodes, "10.0.0.0/18", 24, T0)
    given_now = _given(todo)
    held = [n["spec"]["podCIDR"] for n in nodes if n["spec"].get("podCIDR")]
    assert len(set(held) | set(given_now.values())) == len(held) + len(given_now)
    assert len(given_now) + sum(isinstance(a, actions.Emit) for a in todo) == preset.count(False)
