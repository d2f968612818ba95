"""The syncs between caches and runner: expectations, the collector's live check, flags."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controllers import manager
from controllers.context import Context, Options
from controllers.informers import Informers
from controllers.runner import Runner
from controllers.sync_garbage import GarbageSync
from controllers.sync_workloads import ReplicaSetSync
from tests.unit.controller_fake_api import FakeApi, error
from tests.unit.controller_world import World, make_pod, make_rs

Obj = dict[str, Any]


def _context(world: World) -> tuple[Context, FakeApi]:
    api = FakeApi(world)
    informers = Informers(api=None)  # type: ignore[arg-type]  # caches filled by hand
    return Context(api, informers, Runner(api, api), Options()), api


def _cache(informer: Any, *objs: Obj) -> None:
    for obj in objs:
        informer.cache.apply("ADDED", obj)


def _posts(api: FakeApi) -> int:
    return sum(1 for method, path in api.calls if method == "POST" and path.endswith("/pods"))


def test_a_replicaset_waits_for_its_pods_to_reach_the_cache() -> None:
    world = World()
    rs = world.add("replicasets", make_rs("web", 3, {"app": "web"}))
    ctx, api = _context(world)
    _cache(ctx.informers.replicasets, rs)
    sync = ReplicaSetSync(ctx)
    first = asyncio.run(sync.sync("ns/web"))
    assert first is not None and first.ok and _posts(api) == 3
    waiting = asyncio.run(sync.sync("ns/web"))  # the pod cache still shows nothing
    assert waiting is not None and waiting.requeue_after is not None
    assert _posts(api) == 3 and sync.expectations.pending("ns/web") == (3, 0)
    _cache(ctx.informers.pods, *world.list("pods"))
    _cache(ctx.informers.replicasets, world.get("replicasets", "ns", "web"))
    asyncio.run(sync.sync("ns/web"))
    assert _posts(api) == 3 and sync.expectations.pending("ns/web") == (0, 0)


def test_a_failed_create_still_reports_in_the_status() -> None:
    world = World()
    rs = world.add("replicasets", make_rs("web", 1, {"app": "web"}))
    ctx, api = _context(world)
    _cache(ctx.informers.replicasets, rs)
    api.fail("POST", "pods", lambda body: error(403, "Forbidden", "exceeded quota"))
    sync = ReplicaSetSync(ctx)
    assert not asyncio.run(sync.sync("ns/web")).ok  # type: ignore[union-attr]
    assert sync.errors["ns/web"] == "403 Forbidden: exceeded quota"
    (condition,) = world.get("replicasets", "ns", "web")["status"]["conditions"]
    assert (condition["type"], condition["reason"]) == ("ReplicaFailure", "FailedCreate")
    del api.failures[("POST", "pods")]
    _cache(ctx.informers.replicasets, world.get("replicasets", "ns", "web"))
    assert asyncio.run(sync.sync("ns/web")).ok  # type: ignore[union-attr]
    assert "ns/web" not in sync.errors


def test_the_collector_believes_a_live_owner_over_its_cache() -> None:
    world = World()
    live_rs = world.add("replicasets", make_rs("live", 1, {"app": "a"}, uid="u-live"))
    gone_rs = make_rs("gone", 1, {"app": "b"}, uid="u-gone")
    kept = world.add("pods", make_pod("kept", {"app": "a"}, owner=live_rs, uid="p1"))
    doomed = world.add("pods", make_pod("doomed", {"app": "b"}, owner=gone_rs, uid="p2"))
    ctx, api = _context(world)
    _cache(ctx.informers.pods, kept, doomed)  # neither ReplicaSet is in the cache
    outcome = asyncio.run(GarbageSync(ctx).sync("graph"))
    assert outcome is not None and outcome.ok and outcome.requeue_after is not None
    deletes = [path for method, path in api.calls if method == "DELETE"]
    assert deletes == ["/api/v1/namespaces/ns/pods/doomed"]
    assert ("pods", "ns", "kept") in world.objects


def test_controllers_flag_follows_kubernetes_syntax() -> None:
    assert manager.enabled_controllers("*") == list(manager.ALL_CONTROLLERS)
    assert "job" not in manager.enabled_controllers("*,-job")
    assert manager.enabled_controllers("job,endpoints") == ["job", "endpoints"]
    with pytest.raises(ValueError):
        manager.enabled_controllers("*,-nosuch")


def test_flags_become_options() -> None:
    args = manager.build_parser().parse_args([
        "--kubeconfig", "k", "--node-monitor-grace-period", "40s",
        "--pod-eviction-timeout", "1m", "--concurrent-replicaset-syncs", "7",
        "--concurrent-endpoint-syncs", "2", "--cluster-cidr", "10.0.0.0/8",
        "--node-cidr-mask-size", "20", "--leader-elect-lease-duration", "20s"])
    options = manager.options_from_args(args)
    assert options.node_monitor_grace_period.total_seconds() == 40
    assert options.pod_eviction_timeout.total_seconds() == 60
    assert options.concurrency["replicaset"] == 7 and options.concurrency["endpoints"] == 2
    assert (options.cluster_cidr, options.node_cidr_mask_size) == ("10.0.0.0/8", 20)
    assert args.leader_elect and args.leader_elect_lease_duration == 20
