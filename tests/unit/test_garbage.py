"""Garbage collection: dangling dependents, foreground and orphan deletion."""

from __future__ import annotations

from controllers import actions, garbage, meta
from tests.unit.controller_world import T0, World, make_deployment, make_pod, make_rs


def _owned(obj: dict, owner: dict, kind: str, block: bool = True) -> dict:
    obj["metadata"]["ownerReferences"] = [{
        "apiVersion": owner.get("apiVersion", "apps/v1"), "kind": kind, "name": meta.name(owner),
        "uid": meta.uid(owner), "controller": True, "blockOwnerDeletion": block}]
    return obj


def _deleting(obj: dict, *finalizers: str) -> dict:
    obj["metadata"]["deletionTimestamp"] = meta.format_time(T0)
    obj["metadata"]["finalizers"] = list(finalizers)
    return obj


def _of(kind: type, todo: list[actions.Action]) -> list:
    return [a for a in todo if isinstance(a, kind)]


def test_dependents_of_a_gone_owner_are_deleted_in_the_background() -> None:
    rs = make_rs("web-1", 1, {"app": "web"})
    orphaned = _owned(make_pod("p1"), rs, "ReplicaSet")
    kept = _owned(make_pod("p2"), make_rs("web-2", 1, {}), "ReplicaSet")
    lone = make_pod("lone")
    todo = garbage.reconcile([orphaned, kept, lone], existing_uids={"uid-web-2"})
    (delete,) = _of(actions.Delete, todo)
    assert (delete.resource, delete.name, delete.uid_precondition, delete.propagation) == (
        "pods", "p1", "uid-p1", "Background")


def test_a_replicaset_with_its_own_pods_goes_with_its_deployment() -> None:
    d = make_deployment()
    rs = _owned(make_rs("web-1", 1, {"app": "web"}), d, "Deployment")
    pod = _owned(make_pod("p1"), rs, "ReplicaSet")
    todo = garbage.reconcile([rs, pod], existing_uids=set())
    assert [(x.resource, x.name) for x in _of(actions.Delete, todo)] == [("replicasets", "web-1")]


def test_dangling_reference_beside_a_live_owner_is_only_dropped() -> None:
    a = make_rs("a", 1, {})
    pod = make_pod("p")
    pod["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "uid-a"},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "uid-b"}]
    (patch,) = garbage.reconcile([a, pod], existing_uids={"uid-a"})
    assert patch.patch == {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "uid-b"}],
                                        "uid": "uid-p"}}


def test_foreground_deletes_dependents_then_releases_the_owner() -> None:
    world = World()
    d = world.add("deployments", make_deployment())
    rs = world.add("replicasets", _owned(make_rs("web-1", 1, {"app": "web"}), d, "Deployment"))
    world.add("pods", _owned(make_pod("p1"), rs, "ReplicaSet"))
    world.add("pods", _owned(make_pod("loose"), rs, "ReplicaSet", block=False))
    _deleting(world.objects[("deployments", "ns", "web")], "foregroundDeletion")
    _deleting(world.objects[("replicasets", "ns", "web-1")], "foregroundDeletion")

    def everything() -> list[dict]:
        return world.list("deployments") + world.list("replicasets") + world.list("pods")

    todo = garbage.reconcile(everything(), {meta.uid(o) for o in everything()})
    assert sorted(x.name for x in _of(actions.Delete, todo)) == ["loose", "p1"]
    assert not _of(actions.Patch, todo), "owners wait while blocking dependents exist"
    assert world.apply(todo) is None
    todo = garbage.reconcile(everything(), {meta.uid(o) for o in everything()})
    (release,) = _of(actions.Patch, todo)
    assert (release.resource, release.patch_type) == ("replicasets", actions.JSON_PATCH)
    assert release.patch[1] == {"op": "replace", "path": "/metadata/finalizers", "value": []}
    assert world.apply(todo) is None
    assert world.list("replicasets") == []
    todo = garbage.reconcile(everything(), {meta.uid(o) for o in everything()})
    assert world.apply(todo) is None
    assert everything() == []


def test_foreground_owner_takes_dependents_with_their_own_dependents_in_foreground() -> None:
    d = _deleting(make_deployment(), "foregroundDeletion")
    rs = _owned(make_rs("web-1", 1, {"app": "web"}), d, "Deployment")
    pod = _owned(make_pod("p1"), rs, "ReplicaSet")
    todo = garbage.reconcile([d, rs, pod], {"uid-web", "uid-web-1", "uid-p1"})
    (delete,) = _of(actions.Delete, todo)
    assert (delete.name, delete.propagation) == ("web-1", "Foreground")


def test_orphan_strips_references_then_the_finalizer() -> None:
    world = World()
    rs = world.add("replicasets", make_rs("web-1", 2, {"app": "web"}))
    world.add("pods", _owned(make_pod("p1"), rs, "ReplicaSet"))
    world.add("pods", _owned(make_pod("p2"), rs, "ReplicaSet"))
    _deleting(world.objects[("replicasets", "ns", "web-1")], "orphan")
    objects = world.list("replicasets") + world.list("pods")
    todo = garbage.reconcile(objects, {meta.uid(o) for o in objects})
    assert [type(a).__name__ for a in todo] == ["Patch", "Patch", "Patch"]
    assert todo[-1].resource == "replicasets"
    assert not _of(actions.Delete, todo)
    assert world.apply(todo) is None
    assert world.list("replicasets") == []
    assert [p["metadata"].get("ownerReferences") for p in world.list("pods")] == [[], []]


def test_finalizer_removal_fails_if_the_finalizers_changed() -> None:
    world = World()
    world.add("replicasets", make_rs("web-1", 0, {}))
    _deleting(world.objects[("replicasets", "ns", "web-1")], "orphan")
    todo = garbage.reconcile(world.list("replicasets"), {"uid-web-1"})
    world.objects[("replicasets", "ns", "web-1")]["metadata"]["finalizers"].append("example.com/x")
    assert world.apply(todo) is not None


def test_objects_being_deleted_are_not_deleted_again() -> None:
    pod = _deleting(_owned(make_pod("p1"), make_rs("gone", 1, {}), "ReplicaSet"))
    assert garbage.reconcile([pod], set()) == []
