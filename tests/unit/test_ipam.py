"""Pod IPAM: addresses from the podCIDR, one per uid, kept across restarts."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import ipam
from agents.ipam import Ipam, IpamError, RangeFull

A = ipaddress.IPv4Address


def test_gateway_and_range_skip_network_gateway_and_broadcast() -> None:
    assert ipam.gateway("10.244.1.0/24") == A("10.244.1.1")
    assert ipam.pod_range("10.244.1.0/24") == (A("10.244.1.2"), A("10.244.1.254"))
    assert ipam.pod_range("10.244.1.7/30") == (A("10.244.1.6"), A("10.244.1.6"))


@pytest.mark.parametrize("bad", ["10.244.1.0/31", "10.244.1.1/32", "fd00::/64", "nonsense"])
def test_unusable_pod_cidrs_are_refused(bad: str, tmp_path: Path) -> None:
    with pytest.raises(IpamError):
        Ipam(bad, tmp_path)


def test_next_free_is_round_robin_after_the_last() -> None:
    cidr = "10.0.0.0/29"  # pods .2 .. .6
    assert ipam.next_free(cidr, []) == A("10.0.0.2")
    assert ipam.next_free(cidr, [A("10.0.0.2")], last=A("10.0.0.2")) == A("10.0.0.3")
    # After the last address it wraps around, skipping what is in use.
    assert ipam.next_free(cidr, [A("10.0.0.2"), A("10.0.0.6")], last=A("10.0.0.6")) \
        == A("10.0.0.3")
    with pytest.raises(RangeFull):
        ipam.next_free(cidr, [A(f"10.0.0.{i}") for i in range(2, 7)])


def test_allocate_is_idempotent_and_release_frees(tmp_path: Path) -> None:
    table = Ipam("10.244.1.0/24", tmp_path)
    first = table.allocate("uid-1")
    assert first == A("10.244.1.2")
    assert table.allocate("uid-1") == first
    second = table.allocate("uid-2")
    assert second == A("10.244.1.3")
    assert table.allocations() == {"uid-1": first, "uid-2": second}
    assert table.release("uid-1") == first
    assert table.release("uid-1") is None
    # A released address is not handed out again at once (round robin).
    assert table.allocate("uid-3") == A("10.244.1.4")
    assert table.lookup("uid-1") is None


def test_full_range_raises_a_clear_error(tmp_path: Path) -> None:
    table = Ipam("10.0.0.0/29", tmp_path)
    for i in range(5):
        table.allocate(f"uid-{i}")
    with pytest.raises(RangeFull, match="10.0.0.0/29 is full"):
        table.allocate("one-too-many")
    table.release("uid-2")
    assert table.allocate("one-too-many") == A("10.0.0.4")


def test_table_survives_a_restart(tmp_path: Path) -> None:
    table = Ipam("10.244.1.0/24", tmp_path)
    a, b = table.allocate("a"), table.allocate("b")
    table.release("a")
    again = Ipam("10.244.1.0/24", tmp_path)
    assert again.allocations() == {"b": b}
    assert again.allocate("b") == b
    assert again.allocate("c") == A("10.244.1.4")  # continues after the last, not at a
    assert a == A("10.244.1.2")
    on_disk = json.loads((tmp_path / ipam.FILE_NAME).read_text())
    assert on_disk["allocations"] == {"b": str(b), "c": "10.244.1.4"}
    assert not [p for p in tmp_path.iterdir() if p.name != ipam.FILE_NAME]  # no temp files


def test_allocations_outside_a_changed_pod_cidr_are_dropped(tmp_path: Path) -> None:
    Ipam("10.244.1.0/24", tmp_path).allocate("old")
    moved = Ipam("10.244.7.0/24", tmp_path)
    assert moved.allocations() == {}
    assert moved.allocate("new") == A("10.244.7.2")


def test_a_corrupt_table_is_an_error_not_a_silent_reset(tmp_path: Path) -> None:
    (tmp_path / ipam.FILE_NAME).write_text("{not json")
    with pytest.raises(IpamError, match="cannot read"):
        Ipam("10.244.1.0/24", tmp_path)


ops = st.lists(st.tuples(st.sampled_from(["allocate", "release", "restart"]),
                         st.integers(min_value=0, max_value=7)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_model_unique_in_range_addresses(tmp_path_factory: pytest.TempPathFactory,
                                         steps: list[tuple[str, int]]) -> None:
    cidr = "10.9.0.0/29"  # 5 pod addresses for 8 uids: fills up and frees often
    data_dir = tmp_path_factory.mktemp("ipam")
    table = Ipam(cidr, data_dir)
    model: dict[str, A] = {}
    first, final = ipam.pod_range(cidr)
    for op, n in steps:
        uid = f"uid-{n}"
        if op == "allocate":
            try:
                got = table.allocate(uid)
            except RangeFull:
                assert len(model) == 5 and uid not in model
                continue
            assert model.setdefault(uid, got) == got
            assert first <= got <= final
        elif op == "release":
            assert table.release(uid) == model.pop(uid, None)
        else:
            table = Ipam(cidr, data_dir)
        assert table.allocations() == model
        assert len(set(model.values())) == len(model)
