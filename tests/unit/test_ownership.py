"""Controller references, adoption and release, and Kubernetes' order of pod deletion."""

from __future__ import annotations

import random
from datetime import timedelta

from apiserver.selectors import label_selector_from_dict
from controllers import actions, meta, ownership, replicaset
from tests.unit.controller_world import T0, World, make_pod, make_rs, suffixes

APP = {"app": "web"}


def _claim(rs: dict, pods: list[dict]) -> tuple[list[dict], list[actions.Action]]:
    selector = label_selector_from_dict(rs["spec"]["selector"])
    return ownership.claim(rs, "ReplicaSet", "apps/v1", selector, pods, "pods", "v1")


def test_claim_keeps_adopts_releases_and_ignores() -> None:
    rs = make_rs("a", 3, APP)
    other = make_rs("b", 3, APP)
    ours = make_pod("ours", APP, owner=rs)
    stray = make_pod("stray", {"app": "db"}, owner=rs)
    orphan = make_pod("orphan", APP)
    theirs = make_pod("theirs", APP, owner=other)
    elsewhere = make_pod("elsewhere", APP, namespace="other")
    claimed, writes = _claim(rs, [ours, stray, orphan, theirs, elsewhere])
    assert [meta.name(p) for p in claimed] == ["ours", "orphan"]
    assert ownership.is_controlled_by(claimed[1], rs)
    assert [(type(w).__name__, w.name) for w in writes] == [("Patch", "stray"), ("Patch", "orphan")]
    release, adopt = writes
    assert release.patch == {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "uid-a"}],
                                          "uid": "uid-stray"}}
    assert adopt.patch_type == actions.STRATEGIC_MERGE_PATCH
    assert adopt.patch["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "uid-a",
        "controller": True, "blockOwnerDeletion": True}]


def test_an_owner_being_deleted_neither_adopts_nor_releases() -> None:
    rs = make_rs("a", 3, APP)
    rs["metadata"]["deletionTimestamp"] = meta.format_time(T0)
    claimed, writes = _claim(rs, [make_pod("orphan", APP), make_pod("stray", {}, owner=rs)])
    assert claimed == [] and writes == []


def test_terminating_orphans_are_not_adopted() -> None:
    pod = make_pod("going", APP)
    pod["metadata"]["deletionTimestamp"] = meta.format_time(T0)
    assert _claim(make_rs("a", 1, APP), [pod]) == ([], [])


def test_pod_matching_two_owners_stays_with_its_controller() -> None:
    """Both selectors match; only the RS that already controls the pod counts it."""
    a, b = make_rs("a", 1, APP), make_rs("b", 1, APP)
    pod = make_pod("p", APP, owner=a, node="n1", phase="Running", ready_since=T0)
    acts_a, status_a = replicaset.reconcile(a, [pod], T0, suffixes())
    acts_b, status_b = replicaset.reconcile(b, [pod], T0, suffixes())
    assert status_a["replicas"] == 1
    assert not [x for x in acts_a if isinstance(x, actions.Create | actions.Patch)]
    assert status_b["replicas"] == 0
    assert [x for x in acts_b if isinstance(x, actions.Patch)] == []
    assert len([x for x in acts_b if isinstance(x, actions.Create)]) == 1


def test_unowned_pod_is_adopted_by_the_first_reconciler_only() -> None:
    world = World()
    a = world.add("replicasets", make_rs("a", 1, APP, uid="uid-a"))
    b = world.add("replicasets", make_rs("b", 1, APP, uid="uid-b"))
    world.add("pods", make_pod("p", APP))
    pods = world.list("pods")
    acts_a, _ = replicaset.reconcile(a, pods, T0, suffixes("a"))
    acts_b, _ = replicaset.reconcile(b, pods, T0, suffixes("b"))
    assert world.apply(acts_a) is None
    error = world.apply(acts_b)
    assert error is not None and "Only one reference" in error
    pod = world.get("pods", "ns", "p")
    assert ownership.controller_of(pod)["uid"] == "uid-a"
    assert [meta.name(p) for p in world.list("pods")] == ["p"], "the loser created nothing"
    acts_b, status_b = replicaset.reconcile(world.get("replicasets", "ns", "b"),
                                            world.list("pods"), T0, suffixes("b"))
    assert world.apply(acts_b) is None
    assert status_b["replicas"] == 0
    assert len(world.list("pods")) == 2


def test_rank_for_deletion_follows_kubernetes_order() -> None:
    base = {"labels": APP}
    unassigned = make_pod("unassigned", **base)
    pending = make_pod("pending", node="n1", **base)
    unknown = make_pod("unknown", node="n1", phase="Unknown", **base)
    not_ready = make_pod("not-ready", node="n1", phase="Running", **base)
    costly = make_pod("costly", node="n2", ready_since=T0 - timedelta(hours=1), **base)
    costly["metadata"]["annotations"] = {ownership.DELETION_COST: "100"}
    doubled = [make_pod(f"doubled-{i}", node="n3", ready_since=T0 - timedelta(hours=1),
                        created=T0 - timedelta(hours=2 + 20 * i), **base) for i in range(2)]
    young = make_pod("young-ready", node="n4", ready_since=T0 - timedelta(seconds=3), **base)
    old = make_pod("old-ready", node="n5", ready_since=T0 - timedelta(hours=1), **base)
    restarts = make_pod("restarts", node="n6", ready_since=T0 - timedelta(hours=1), restarts=4,
                        **base)
    pods = [unassigned, pending, unknown, not_ready, *doubled, young, old, restarts, costly]
    expected = ["unassigned", "pending", "unknown", "not-ready", "doubled-0", "doubled-1",
                "young-ready", "restarts", "old-ready", "costly"]
    for seed in range(5):
        shuffled = list(pods)
        random.Random(seed).shuffle(shuffled)
        ranked = ownership.rank_for_deletion(shuffled, T0)
        assert [meta.name(p) for p in ranked] == expected


def test_rank_puts_not_yet_available_before_available() -> None:
    fresh = make_pod("fresh", APP, node="n1", ready_since=T0 - timedelta(seconds=9), uid="z")
    settled = make_pod("settled", APP, node="n2", ready_since=T0 - timedelta(seconds=11), uid="a")
    ranked = ownership.rank_for_deletion([settled, fresh], T0, min_ready_seconds=10)
    assert [meta.name(p) for p in ranked] == ["fresh", "settled"]


def test_rank_compares_ages_in_log_buckets_with_uid_ties() -> None:
    a = make_pod("a", APP, node="n1", ready_since=T0 - timedelta(seconds=40), uid="u2")
    b = make_pod("b", APP, node="n2", ready_since=T0 - timedelta(seconds=50), uid="u1")
    assert [meta.name(p) for p in ownership.rank_for_deletion([a, b], T0)] == ["b", "a"]


def test_active_pods_exclude_terminal_and_terminating() -> None:
    done = make_pod("done", phase="Succeeded")
    failed = make_pod("failed", phase="Failed")
    going = make_pod("going", phase="Running")
    going["metadata"]["deletionTimestamp"] = meta.format_time(T0)
    running = make_pod("running", phase="Running")
    assert [meta.name(p) for p in ownership.filter_active_pods([done, failed, going, running])] \
        == ["running"]
