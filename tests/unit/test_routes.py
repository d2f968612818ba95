"""Routes to other nodes' podCIDRs, decided from Node objects."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agents.routes import desired_routes, diff_routes, internal_ip, pod_cidr


def node(name: str, cidr: str | None = None, ip: str | None = None,
         extra_addresses: list[dict[str, str]] | None = None) -> dict[str, Any]:
    addresses = list(extra_addresses or [])
    if ip is not None:
        addresses.append({"type": "InternalIP", "address": ip})
    spec = {"podCIDR": cidr} if cidr else {}
    return {"metadata": {"name": name}, "spec": spec, "status": {"addresses": addresses}}


def test_routes_to_every_other_node_with_a_pod_cidr_and_an_internal_ip() -> None:
    nodes = [
        node("me", "10.244.0.0/24", "10.0.0.1"),
        node("n2", "10.244.1.0/24", "10.0.0.2"),
        node("n3", "10.244.2.0/24", "10.0.0.3",
             extra_addresses=[{"type": "Hostname", "address": "n3"},
                              {"type": "ExternalIP", "address": "203.0.113.3"}]),
        node("no-cidr", None, "10.0.0.4"),
        node("no-ip", "10.244.4.0/24", None),
        node("v6-only", "10.244.5.0/24", "fd00::5"),
    ]
    assert desired_routes(nodes, "me") == {"10.244.1.0/24": "10.0.0.2",
                                           "10.244.2.0/24": "10.0.0.3"}


def test_pod_cidrs_list_and_unnormalised_cidr() -> None:
    n = {"metadata": {"name": "n"}, "spec": {"podCIDRs": ["fd00:1::/64", "10.244.3.7/24"]},
         "status": {"addresses": [{"type": "InternalIP", "address": "fd00::1"},
                                  {"type": "InternalIP", "address": "10.0.0.9"}]}}
    assert pod_cidr(n) == "10.244.3.0/24"
    assert internal_ip(n) == "10.0.0.9"


def test_two_nodes_claiming_one_cidr_resolve_the_same_way_everywhere() -> None:
    nodes = [node("zeta", "10.244.1.0/24", "10.0.0.26"),
             node("alpha", "10.244.1.0/24", "10.0.0.1")]
    assert desired_routes(nodes, "me") == {"10.244.1.0/24": "10.0.0.1"}
    assert desired_routes(list(reversed(nodes)), "me") == {"10.244.1.0/24": "10.0.0.1"}


def test_diff_adds_deletes_and_replaces() -> None:
    desired = {"10.244.1.0/24": "10.0.0.2", "10.244.2.0/24": "10.0.0.3",
               "10.244.3.0/24": "10.0.0.4"}
    actual = {"10.244.2.0/24": "10.0.0.3", "10.244.3.0/24": "10.0.0.9",
              "10.244.9.0/24": "10.0.0.10"}
    assert diff_routes(desired, actual) == (
        {"10.244.1.0/24": "10.0.0.2"},
        ["10.244.9.0/24"],
        {"10.244.3.0/24": "10.0.0.4"},
    )


def test_equal_destinations_spelt_differently_are_no_change() -> None:
    assert diff_routes({"10.244.1.5/24": "10.0.0.2"}, {"10.244.1.0/24": "10.0.0.2"}) \
        == ({}, [], {})


cidrs = st.integers(min_value=0, max_value=15).map(lambda i: f"10.244.{i}.0/24")
gateways = st.integers(min_value=1, max_value=4).map(lambda i: f"10.0.0.{i}")
tables = st.dictionaries(cidrs, gateways, max_size=10)


@given(tables, tables)
def test_applying_the_diff_gives_the_desired_table(desired: dict[str, str],
                                                   actual: dict[str, str]) -> None:
    to_add, to_delete, to_replace = diff_routes(desired, actual)
    result = dict(actual)
    for dst in to_delete:
        del result[dst]
    result.update(to_add)
    result.update(to_replace)
    assert result == desired
    assert not set(to_add) & set(actual)
    assert set(to_replace) <= set(actual)
