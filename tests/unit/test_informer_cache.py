"""The informer's cache: watch events, indexes, and the deltas a re-list produces.

The model for `replace`: whatever the old contents and the new list, applying the
returned deltas to the old contents gives exactly the new list, each key changes at
most once, and nothing unchanged is reported.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from apiserver.informer_cache import Cache, Delta, key_of


def pod(name: str, rv: int, node: str | None = None, namespace: str = "default",
        labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": str(rv),
                         "labels": labels or {}},
            "spec": {"nodeName": node} if node else {}}


def by_node(obj: dict[str, Any]) -> str | None:
    return obj.get("spec", {}).get("nodeName")


def test_keys_follow_client_go() -> None:
    assert key_of(pod("p", 1)) == "default/p"
    assert key_of({"metadata": {"name": "n1"}}) == "n1"


def test_events_update_objects_and_indexes() -> None:
    cache = Cache({"by_node": by_node})
    assert cache.apply("ADDED", pod("a", 2, "n1")) == Delta("add", pod("a", 2, "n1"))
    cache.apply("ADDED", pod("b", 3, "n1"))
    cache.apply("ADDED", pod("c", 4))
    assert [p["metadata"]["name"] for p in cache.by_index("by_node", "n1")] == ["a", "b"]
    assert cache.index_values("by_node") == ["n1"]

    delta = cache.apply("MODIFIED", pod("a", 5, "n2"))
    assert delta == Delta("update", pod("a", 5, "n2"), pod("a", 2, "n1"))
    assert cache.index_keys("by_node", "n1") == ["default/b"]
    assert cache.index_keys("by_node", "n2") == ["default/a"]

    assert cache.apply("DELETED", pod("b", 6, "n1")) == Delta("delete", pod("b", 6, "n1"))
    assert cache.index_values("by_node") == ["n2"]  # empty values disappear
    assert cache.apply("DELETED", pod("zzz", 7)) is None  # unknown: nothing to report
    assert cache.keys() == ["default/a", "default/c"]
    assert len(cache) == 2 and "default/c" in cache


def test_modified_unknown_object_is_an_add_and_added_known_is_an_update() -> None:
    cache = Cache()
    assert cache.apply("MODIFIED", pod("a", 2)).kind == "add"
    assert cache.apply("ADDED", pod("a", 3)).kind == "update"


def test_index_functions_may_return_several_values_or_fail() -> None:
    def by_label_values(obj: dict[str, Any]) -> list[str]:
        return sorted(obj["metadata"]["labels"].values())

    def broken(obj: dict[str, Any]) -> str:
        raise KeyError("boom")

    cache = Cache({"labels": by_label_values, "broken": broken})
    cache.apply("ADDED", pod("a", 1, labels={"x": "red", "y": "blue", "z": "red"}))
    assert cache.index_values("labels") == ["blue", "red"]
    assert cache.index_values("broken") == []  # logged, left out, informer goes on
    assert cache.get("default/a") is not None


def test_replace_reports_changes_relative_to_the_old_contents() -> None:
    cache = Cache({"by_node": by_node})
    for p in (pod("a", 1, "n1"), pod("b", 1, "n1"), pod("c", 1, "n2")):
        cache.apply("ADDED", p)
    deltas = cache.replace([pod("b", 1, "n1"), pod("c", 7, "n1"), pod("d", 8, "n3")])
    assert deltas == [
        Delta("update", pod("c", 7, "n1"), pod("c", 1, "n2")),
        Delta("add", pod("d", 8, "n3")),
        Delta("delete", pod("a", 1, "n1")),  # its last known state
    ]
    assert cache.keys() == ["default/b", "default/c", "default/d"]
    assert cache.index_keys("by_node", "n1") == ["default/b", "default/c"]
    assert cache.index_values("by_node") == ["n1", "n3"]


names = st.sampled_from(["a", "b", "c", "d", "e"])
states = st.dictionaries(names, st.integers(1, 4), max_size=5)


@given(old=states, new=states)
def test_replace_deltas_turn_the_old_contents_into_the_new(old: dict[str, int],
                                                           new: dict[str, int]) -> None:
    cache = Cache({"by_node": by_node})
    for name, rv in old.items():
        cache.apply("ADDED", pod(name, rv, f"n{rv % 2}"))
    listed = [pod(name, rv, f"n{rv % 2}") for name, rv in new.items()]
    deltas = cache.replace(listed)

    model = {name: pod(name, rv, f"n{rv % 2}") for name, rv in old.items()}
    for delta in deltas:
        name = delta.obj["metadata"]["name"]
        if delta.kind == "add":
            assert name not in model
            model[name] = delta.obj
        elif delta.kind == "update":
            assert model[name] == delta.old and delta.old != delta.obj
            model[name] = delta.obj
        else:
            assert model.pop(name) == delta.obj
    assert model == {name: pod(name, rv, f"n{rv % 2}") for name, rv in new.items()}
    touched = [d.obj["metadata"]["name"] for d in deltas]
    assert len(touched) == len(set(touched))
    assert len(deltas) == sum(1 for n in set(old) | set(new) if old.get(n) != new.get(n))
    # The index agrees with the contents.
    for node in ("n0", "n1"):
        assert cache.index_keys("by_node", node) == sorted(
            f"default/{n}" for n, rv in new.items() if f"n{rv % 2}" == node)
