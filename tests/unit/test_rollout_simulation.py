"""A rolling update stepped through the deployment and ReplicaSet reconciles together.

Each step runs the deployment reconcile, then every ReplicaSet's, applying their writes
to an in-memory world; then hypothesis picks which new pods become ready and how much
time passes. At every step of the rollout:

- total active pods <= replicas + maxSurge (and so is the sum of ReplicaSet sizes);
- available pods >= replicas - maxUnavailable;

and once every pod gets ready the rollout completes as `kubectl rollout status` reads it.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controllers import deployment_status as ds
from controllers import deployment_util as du
from controllers import meta, ownership, podutil
from tests.unit.controller_world import (
    World,
    edit,
    make_all_ready,
    make_deployment,
    set_ready,
    suffixes,
    sync_deployment,
    sync_replicasets,
)

FENCEPOST = st.one_of(st.integers(min_value=0, max_value=3),
                      st.sampled_from(["0%", "10%", "25%", "50%", "100%"]))


def _active(world: World) -> list[dict]:
    return ownership.filter_active_pods(world.list("pods", "ns"))


def _available(world: World, min_ready: int) -> int:
    return sum(1 for p in _active(world) if podutil.is_available(p, min_ready, world.now))


def _step(world: World, names: object) -> None:
    sync_deployment(world)
    sync_replicasets(world, names)


def _settle(world: World, names: object, min_ready: int, steps: int = 60) -> None:
    """Every pod gets ready, time passes, until the rollout is complete (or steps run out)."""
    for _ in range(steps):
        _step(world, names)
        d = world.get("deployments", "ns", "web")
        done = meta.get_condition(d["status"].get("conditions"), ds.PROGRESSING)
        if ds.complete(d, d["status"]) and done and done["reason"] == ds.NEW_RS_AVAILABLE:
            return
        make_all_ready(world)
        world.tick(min_ready + 1)


def _check(world: World, max_total: int, min_available: int, min_ready: int) -> None:
    sizes = sum(rs["spec"]["replicas"] for rs in world.list("replicasets", "ns"))
    assert sizes <= max_total, f"ReplicaSets sum to {sizes} > {max_total}"
    active = len(_active(world))
    assert active <= max_total, f"{active} pods > replicas + maxSurge = {max_total}"
    available = _available(world, min_ready)
    assert available >= min_available, f"{available} available < {min_available}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(replicas=st.integers(min_value=1, max_value=7), surge=FENCEPOST, unavailable=FENCEPOST,
       min_ready=st.sampled_from([0, 5]), data=st.data())
def test_rolling_update_stays_within_surge_and_unavailability(
        replicas: int, surge: object, unavailable: object, min_ready: int,
        data: st.DataObject) -> None:
    world = World()
    world.add("deployments", make_deployment(replicas=replicas, surge=surge,
                                             unavailable=unavailable, min_ready=min_ready))
    names = suffixes()
    _settle(world, names, min_ready)
    d = world.get("deployments", "ns", "web")
    assert ds.complete(d, d["status"]), d["status"]
    max_total = replicas + du.max_surge(d)
    min_available = replicas - du.max_unavailable(d)

    def change(obj: dict) -> None:
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    edit(world, "deployments", "web", change)
    for _ in range(25):
        _step(world, names)
        _check(world, max_total, min_available, min_ready)
        for pod in _active(world):
            if not podutil.is_ready(pod) and data.draw(st.booleans(), label="ready"):
                live = world.objects[("pods", "ns", meta.name(pod))]
                live.setdefault("spec", {})["nodeName"] = "n1"
                set_ready(live, world.now)
        world.tick(data.draw(st.integers(min_value=0, max_value=6), label="seconds"))
        _check(world, max_total, min_available, min_ready)
    _settle(world, names, min_ready)
    d = world.get("deployments", "ns", "web")
    status = d["status"]
    assert status["observedGeneration"] >= meta.generation(d)
    assert status["updatedReplicas"] == replicas == status["replicas"]
    assert status["availableReplicas"] >= status["updatedReplicas"]
    progressing = meta.get_condition(status["conditions"], ds.PROGRESSING)
    assert progressing["reason"] == ds.NEW_RS_AVAILABLE
    sizes = sorted(rs["spec"]["replicas"] for rs in world.list("replicasets", "ns"))
    assert sizes == [0, replicas]
