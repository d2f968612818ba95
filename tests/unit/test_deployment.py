"""Deployment reconcile on hand-built states: creation, rollout steps, rollback, pause,
proportional scaling, Recreate, history clean-up, conditions and collisions."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from controllers import actions, deployment, meta
from controllers import deployment_status as ds
from controllers import deployment_util as du
from tests.unit.controller_world import (
    T0,
    World,
    edit,
    make_all_ready,
    make_deployment,
    make_pod,
    make_rs,
    suffixes,
    sync_deployment,
    sync_replicasets,
)


def _of(kind: type, todo: list[actions.Action]) -> list:
    return [a for a in todo if isinstance(a, kind)]


def _messages(todo: list[actions.Action]) -> list[str]:
    return [e.event["message"] for e in _of(actions.Emit, todo)]


def _rolled_out(replicas: int = 4, **kwargs: object) -> tuple[World, object]:
    """A world where `web` has finished its first rollout, every pod ready."""
    world = World()
    world.add("deployments", make_deployment(replicas=replicas, **kwargs))  # type: ignore[arg-type]
    names = suffixes()
    for _ in range(3):
        sync_deployment(world)
        sync_replicasets(world, names)
        make_all_ready(world)
        world.tick(1)
    sync_deployment(world)
    return world, names


def _sizes(world: World) -> dict[str, int]:
    return {meta.name(rs): rs["spec"]["replicas"] for rs in world.list("replicasets")}


def _new_image(world: World, image: str) -> None:
    def change(d: dict) -> None:
        d["spec"]["template"]["spec"]["containers"][0]["image"] = image
    edit(world, "deployments", "web", change)


# --- hashing and fenceposts -----------------------------------------------------------


def test_template_hash_is_stable_and_safe_encoded() -> None:
    template = make_deployment()["spec"]["template"]
    h = du.template_hash(template)
    assert h == du.template_hash(copy.deepcopy(template))
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789") and 6 <= len(h) <= 10
    noisy = copy.deepcopy(template)
    noisy["metadata"]["creationTimestamp"] = None
    noisy["spec"]["containers"][0]["args"] = []
    assert du.template_hash(noisy) == h
    assert du.template_hash(template, 1) != h
    other = copy.deepcopy(template)
    other["spec"]["containers"][0]["image"] = "nginx:2"
    assert du.template_hash(other) != h
    labelled = copy.deepcopy(template)
    labelled["metadata"]["labels"][du.HASH_LABEL] = h
    assert du.equal_ignore_hash(labelled, template)
    assert not du.equal_ignore_hash(other, template)


@pytest.mark.parametrize(("replicas", "surge", "unavailable", "expected"), [
    (10, "25%", "25%", (3, 2)),
    (4, "25%", "25%", (1, 1)),
    (3, "25%", "25%", (1, 0)),
    (3, 0, 0, (0, 1)),
    (5, "0%", "100%", (0, 5)),
    (5, 2, 7, (2, 5)),
    (0, "25%", "25%", (0, 0)),
])
def test_fenceposts_round_surge_up_and_unavailable_down(replicas: int, surge: object,
                                                       unavailable: object,
                                                       expected: tuple[int, int]) -> None:
    d = make_deployment(replicas=replicas, surge=surge, unavailable=unavailable)
    assert (du.max_surge(d), du.max_unavailable(d)) == expected


def test_recreate_has_no_fenceposts() -> None:
    d = make_deployment(strategy="Recreate")
    assert (du.max_surge(d), du.max_unavailable(d)) == (0, 0)


# --- creation and rollout -------------------------------------------------------------


def test_first_sync_creates_the_new_replicaset() -> None:
    d = make_deployment(replicas=3)
    todo, status = deployment.reconcile(d, [], [], T0)
    (create,) = _of(actions.Create, todo)
    rs = create.obj
    h = du.template_hash(d["spec"]["template"])
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["metadata"]["labels"] == {"app": "web", du.HASH_LABEL: h}
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", du.HASH_LABEL: h}}
    assert rs["spec"]["template"]["metadata"]["labels"][du.HASH_LABEL] == h
    assert rs["spec"]["replicas"] == 3
    assert rs["metadata"]["annotations"] == {du.REVISION: "1", du.DESIRED_REPLICAS: "3",
                                             du.MAX_REPLICAS: "4"}
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert _messages(todo) == [f"Scaled up replica set web-{h} from 0 to 3"]
    progressing = meta.get_condition(status["conditions"], ds.PROGRESSING)
    assert (progressing["status"], progressing["reason"]) == ("True", ds.NEW_RS_CREATED)
    assert progressing["message"] == f'Created new replica set "web-{h}"'
    assert status["observedGeneration"] == 1
    kinds = [type(a).__name__ for a in todo]
    assert kinds == ["Create", "Emit", "UpdateStatus", "Patch", "RequeueAfter"]
    patch = _of(actions.Patch, todo)[0]
    assert patch.patch == {"metadata": {"annotations": {du.REVISION: "1"}}}


def test_rollout_status_fields_when_complete() -> None:
    world, _ = _rolled_out(replicas=3)
    status = world.get("deployments", "ns", "web")["status"]
    assert {k: status[k] for k in ("observedGeneration", "replicas", "updatedReplicas",
                                   "readyReplicas", "availableReplicas")} == {
        "observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
        "availableReplicas": 3}
    assert "unavailableReplicas" not in status
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("Available", "True", ds.MIN_AVAILABLE), ("Progressing", "True", ds.NEW_RS_AVAILABLE)]
    assert ds.complete(world.get("deployments", "ns", "web"), status)


def test_rolling_update_steps_within_surge_and_unavailability() -> None:
    world, names = _rolled_out(replicas=4)  # 25%/25%: surge 1, unavailable 1
    (old_name,) = _sizes(world)
    _new_image(world, "nginx:2")
    todo = sync_deployment(world)
    sizes = _sizes(world)
    new_name = next(n for n in sizes if n != old_name)
    assert sizes == {old_name: 3, new_name: 1}
    assert _messages(todo) == [f"Scaled up replica set {new_name} from 0 to 1",
                               f"Scaled down replica set {old_name} from 4 to 3"]
    new_rs = world.get("replicasets", "ns", new_name)
    assert new_rs["metadata"]["annotations"][du.REVISION] == "2"
    assert world.get("deployments", "ns", "web")["metadata"]["annotations"][du.REVISION] == "2"
    sync_replicasets(world, names)
    sync_deployment(world)  # new pod not ready: new RS may grow into the surge only
    assert _sizes(world) == {old_name: 3, new_name: 2}
    sync_replicasets(world, names)
    sync_deployment(world)  # still nothing ready: 5 pods, 3 available, stuck
    assert _sizes(world) == {old_name: 3, new_name: 2}
    make_all_ready(world)
    sync_deployment(world)
    assert _sizes(world) == {old_name: 1, new_name: 2}


def test_old_replicasets_lose_unhealthy_pods_first() -> None:
    world, names = _rolled_out(replicas=4)
    (old_name,) = _sizes(world)
    victim = world.list("pods")[0]
    victim["status"]["conditions"][0]["status"] = "False"
    world.objects[("pods", "ns", meta.name(victim))] = victim
    _new_image(world, "nginx:2")
    sync_deployment(world)
    # 3 available of 4: new RS gets the surge, old RS sheds its unready pod only
    assert _sizes(world)[old_name] == 3
    sync_replicasets(world, names)
    remaining = [p for p in world.list("pods") if meta.name(p) == meta.name(victim)]
    assert remaining == []


def test_rollback_reuses_the_old_replicaset_with_a_new_revision() -> None:
    world, names = _rolled_out(replicas=2)
    (first,) = _sizes(world)
    _new_image(world, "nginx:2")
    for _ in range(4):
        sync_deployment(world)
        sync_replicasets(world, names)
        make_all_ready(world)
    second = next(n for n in _sizes(world) if n != first)
    assert _sizes(world) == {first: 0, second: 2}
    _new_image(world, "nginx:1")  # kubectl rollout undo: the old template again
    todo = sync_deployment(world)
    assert not _of(actions.Create, todo)
    rs = world.get("replicasets", "ns", first)
    assert rs["metadata"]["annotations"][du.REVISION] == "3"
    assert rs["metadata"]["annotations"][du.REVISION_HISTORY] == "1"
    assert rs["spec"]["replicas"] == 1
    assert world.get("deployments", "ns", "web")["metadata"]["annotations"][du.REVISION] == "3"
    for _ in range(4):
        sync_deployment(world)
        sync_replicasets(world, names)
        make_all_ready(world)
    assert _sizes(world) == {first: 2, second: 0}


def test_paused_deployment_scales_but_does_not_roll() -> None:
    world, names = _rolled_out(replicas=2)
    (only,) = _sizes(world)
    edit(world, "deployments", "web", lambda d: d["spec"].update(paused=True))
    _new_image(world, "nginx:2")
    edit(world, "deployments", "web", lambda d: d["spec"].update(replicas=5))
    todo = sync_deployment(world)
    assert not _of(actions.Create, todo)
    assert _sizes(world) == {only: 5}
    status = world.get("deployments", "ns", "web")["status"]
    progressing = meta.get_condition(status["conditions"], ds.PROGRESSING)
    assert (progressing["status"], progressing["reason"]) == ("Unknown", ds.PAUSED)
    edit(world, "deployments", "web", lambda d: d["spec"].update(paused=False))
    todo = sync_deployment(world)
    assert len(_of(actions.Create, todo)) == 1
    status = world.get("deployments", "ns", "web")["status"]
    assert meta.get_condition(status["conditions"], ds.PROGRESSING)["reason"] == ds.NEW_RS_CREATED


def test_replicas_change_mid_rollout_scales_proportionally() -> None:
    d = make_deployment(replicas=10)  # surge 3, unavailable 2
    old = make_rs("web-old", 8, {"app": "web"}, uid="uid-old")
    new = make_rs("web-new", 5, {"app": "web"}, uid="uid-new")
    new["spec"]["template"] = copy.deepcopy(d["spec"]["template"])
    old["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:0"
    new["metadata"]["creationTimestamp"] = meta.format_time(T0 + timedelta(minutes=1))
    for rs, revision in ((old, "1"), (new, "2")):
        rs["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": "web", "uid": "uid-web", "controller": True}]
        rs["metadata"]["annotations"] = {du.REVISION: revision, du.DESIRED_REPLICAS: "10",
                                         du.MAX_REPLICAS: "13"}
    d["spec"]["replicas"] = 20  # surge becomes 5: 25 allowed, 12 to add
    todo, _ = deployment.reconcile(d, [old, new], [], T0)
    updates = {u.obj["metadata"]["name"]: u.obj for u in _of(actions.Update, todo)}
    assert {n: o["spec"]["replicas"] for n, o in updates.items()} == {"web-old": 15, "web-new": 10}
    assert all(o["metadata"]["annotations"][du.DESIRED_REPLICAS] == "20"
               and o["metadata"]["annotations"][du.MAX_REPLICAS] == "25" for o in updates.values())
    assert _messages(todo) == ["Scaled up replica set web-old from 8 to 15",
                               "Scaled up replica set web-new from 5 to 10"]
    d["spec"]["replicas"] = 4  # down: surge 1, allowed 5, 8 to remove from 13
    todo, _ = deployment.reconcile(d, [old, new], [], T0)
    sizes = {u.obj["metadata"]["name"]: u.obj["spec"]["replicas"] for u in _of(actions.Update, todo)}
    assert sum(sizes.values()) == 5 and sizes["web-old"] > sizes["web-new"]


def test_recreate_waits_for_old_pods_before_creating() -> None:
    world, names = _rolled_out(replicas=2, strategy="Recreate")
    (old_name,) = _sizes(world)
    _new_image(world, "nginx:2")
    todo = sync_deployment(world)
    assert not _of(actions.Create, todo) and _sizes(world) == {old_name: 0}
    for pod in world.list("pods"):
        world.objects[("pods", "ns", meta.name(pod))]["metadata"]["deletionTimestamp"] = \
            meta.format_time(world.now)
    todo = sync_deployment(world)
    assert not _of(actions.Create, todo), "terminating old pods still run"
    for pod in world.list("pods"):
        del world.objects[("pods", "ns", meta.name(pod))]
    todo = sync_deployment(world)
    (create,) = _of(actions.Create, todo)
    assert create.obj["spec"]["replicas"] == 2


def test_history_limit_deletes_the_oldest_idle_replicasets() -> None:
    world, names = _rolled_out(replicas=1, history=1, surge=1, unavailable=0)
    for image in ("nginx:2", "nginx:3"):
        _new_image(world, image)
        for _ in range(4):
            world.tick(1)
            sync_deployment(world)
            sync_replicasets(world, names)
            make_all_ready(world)
    remaining = world.list("replicasets")
    assert [(m["metadata"]["annotations"][du.REVISION], m["spec"]["replicas"]) for m in
            sorted(remaining, key=lambda r: r["metadata"]["annotations"][du.REVISION])] == [
        ("2", 0), ("3", 1)]


def test_progress_deadline_exceeded_without_progress() -> None:
    world, names = _rolled_out(replicas=2, deadline=60)
    _new_image(world, "nginx:2")
    sync_deployment(world)
    sync_replicasets(world, names)
    world.tick(1)
    sync_deployment(world)  # the new pod exists: progress, lastUpdateTime moves
    world.tick(30)
    todo = sync_deployment(world)  # no progress since: look again when the deadline passes
    assert actions.requeue_after(todo) == 31.0
    status = world.get("deployments", "ns", "web")["status"]
    assert meta.get_condition(status["conditions"], ds.PROGRESSING)["reason"] == ds.RS_UPDATED
    world.tick(31)
    sync_deployment(world)
    status = world.get("deployments", "ns", "web")["status"]
    progressing = meta.get_condition(status["conditions"], ds.PROGRESSING)
    assert (progressing["status"], progressing["reason"]) == ("False", ds.TIMED_OUT)
    assert progressing["message"].endswith("has timed out progressing.")
    available = meta.get_condition(status["conditions"], ds.AVAILABLE)
    assert available["status"] == "True"


def test_min_ready_seconds_delays_availability() -> None:
    d = make_deployment(replicas=1, min_ready=10)
    world = World()
    world.add("deployments", d)
    names = suffixes()
    sync_deployment(world)
    sync_replicasets(world, names)
    make_all_ready(world)
    todo = sync_deployment(world)
    status = world.get("deployments", "ns", "web")["status"]
    assert status["readyReplicas"] == 1 and "availableReplicas" not in status
    assert actions.requeue_after(todo) == 11.0
    world.tick(11)
    sync_deployment(world)
    assert world.get("deployments", "ns", "web")["status"]["availableReplicas"] == 1


def test_deleting_deployment_only_refreshes_status() -> None:
    world, _ = _rolled_out(replicas=2)
    edit(world, "deployments", "web",
         lambda d: d["metadata"].update(deletionTimestamp=meta.format_time(T0)))
    _new_image(world, "nginx:2")
    todo = sync_deployment(world)
    assert not _of(actions.Create, todo) and not _of(actions.Update, todo)


def test_empty_selector_is_refused_with_a_warning() -> None:
    d = make_deployment()
    d["spec"]["selector"] = {}
    d["metadata"]["generation"] = 2
    todo, status = deployment.reconcile(d, [], [], T0)
    assert [e.event["reason"] for e in _of(actions.Emit, todo)] == ["SelectingAll"]
    assert status["observedGeneration"] == 2
    assert not _of(actions.Create, todo)


def test_hash_collision_bumps_collision_count() -> None:
    d = make_deployment()
    h = du.template_hash(d["spec"]["template"])
    squatter = make_rs(f"web-{h}", 1, {"app": "other"})
    todo, status = deployment.reconcile(d, [squatter], [], T0)
    assert not _of(actions.Create, todo)
    assert status["collisionCount"] == 1
    todo, status = deployment.reconcile(dict(d, status=status), [squatter], [], T0)
    (create,) = _of(actions.Create, todo)
    assert create.obj["metadata"]["name"] == f"web-{du.template_hash(d['spec']['template'], 1)}"


def test_adopts_orphan_replicaset_and_its_pods_count() -> None:
    d = make_deployment(replicas=1)
    h = du.template_hash(d["spec"]["template"])
    rs = make_rs(f"web-{h}", 1, {"app": "web", du.HASH_LABEL: h})
    rs["spec"]["template"] = copy.deepcopy(d["spec"]["template"])
    rs["spec"]["template"]["metadata"]["labels"][du.HASH_LABEL] = h
    pod = make_pod("p", {"app": "web", du.HASH_LABEL: h}, owner=rs, node="n1", ready_since=T0)
    todo, status = deployment.reconcile(d, [rs], [pod], T0)
    (adopt,) = _of(actions.Patch, todo)
    assert (adopt.resource, adopt.name) == ("replicasets", f"web-{h}")
    assert [type(a).__name__ for a in todo] == ["Patch", "RequeueAfter"], "adoption comes alone"
    rs["metadata"]["ownerReferences"] = adopt.patch["metadata"]["ownerReferences"]
    todo, status = deployment.reconcile(d, [rs], [pod], T0)
    assert not _of(actions.Create, todo)
    assert status["availableReplicas"] == 1 and status["updatedReplicas"] == 1


def test_replica_failure_of_the_new_replicaset_is_copied_up() -> None:
    world, _ = _rolled_out(replicas=2)
    (name,) = _sizes(world)
    rs = world.objects[("replicasets", "ns", name)]
    rs["status"]["conditions"] = [{"type": "ReplicaFailure", "status": "True",
                                   "lastTransitionTime": meta.format_time(T0),
                                   "reason": "FailedCreate", "message": "quota exceeded"}]
    sync_deployment(world)
    status = world.get("deployments", "ns", "web")["status"]
    failure = meta.get_condition(status["conditions"], "ReplicaFailure")
    assert (failure["reason"], failure["message"]) == ("FailedCreate", "quota exceeded")
    rs["status"].pop("conditions")
    _new_image(world, "nginx:2")
    sync_deployment(world)
    status = world.get("deployments", "ns", "web")["status"]
    assert meta.get_condition(status["conditions"], "ReplicaFailure") is None


def test_pods_above_an_old_replicasets_size_do_not_count_as_available() -> None:
    # The pod cache may still show pods the old RS's controller has just deleted (their
    # deletion not observed yet). They are going: counting them would let the rollout
    # scale the old RS down again and dip below replicas - maxUnavailable.
    world, names = _rolled_out(replicas=4)  # surge 1, unavailable 1
    (old_name,) = _sizes(world)
    _new_image(world, "nginx:2")
    sync_deployment(world)  # old 4 -> 3, new 0 -> 1
    stale_pods = world.list("pods")  # still 4 old pods
    sync_replicasets(world, names)  # one old pod deleted, one new pod created
    make_all_ready(world)
    new_pods = [p for p in world.list("pods") if p not in stale_pods]
    for _ in range(2):  # new 1 -> 2 (its pod is available), then the old RS's turn
        todo, _ = deployment.reconcile(world.get("deployments", "ns", "web"),
                                       world.list("replicasets"), stale_pods + new_pods,
                                       world.now)
        assert world.apply(todo) is None
    assert _sizes(world)[old_name] == 2  # 2 old + 1 new available = 3 = 4 - 1
