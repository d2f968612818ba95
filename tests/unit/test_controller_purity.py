"""Every reconcile is a pure function: it never edits its inputs, and the same inputs
(time and generated names included) give the same actions."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from controllers import (
    deployment,
    endpoints,
    garbage,
    job,
    nodeipam,
    nodelifecycle,
    replicaset,
    serviceaccounts,
)
from tests.unit.controller_world import T0, make_deployment, make_pod, make_rs, suffixes

APP = {"app": "web"}


def _state() -> dict[str, Any]:
    rs = make_rs("web-1", 3, APP)
    rs["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": "web", "uid": "uid-web", "controller": True}]
    pods = [make_pod("a", APP, owner=rs, node="n1", ready_since=T0, ip="10.0.0.1"),
            make_pod("b", APP, node="n1", ip="10.0.0.2"),
            make_pod("c", APP, owner=rs, phase="Failed")]
    node = {"metadata": {"name": "n1", "uid": "n1", "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    service = {"metadata": {"name": "web", "namespace": "ns"},
               "spec": {"selector": APP, "ports": [{"port": 80, "targetPort": 8080}]}}
    job_obj = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "j", "namespace": "ns", "uid": "uid-j"},
               "spec": {"completions": 3, "parallelism": 2,
                        "selector": {"matchLabels": APP},
                        "template": {"metadata": {"labels": APP}, "spec": {"restartPolicy": "Never"}}},
               "status": {}}
    return {"rs": rs, "pods": pods, "node": node, "service": service, "job": job_obj,
            "deployment": make_deployment(replicas=5, image="nginx:2")}


CALLS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "replicaset": lambda s: replicaset.reconcile(s["rs"], s["pods"], T0, suffixes()),
    "deployment": lambda s: deployment.reconcile(s["deployment"], [s["rs"]], s["pods"], T0,
                                                 lambda h: f"custom-{h}"),
    "endpoints": lambda s: endpoints.reconcile(s["service"], s["pods"], None),
    "job": lambda s: job.reconcile(s["job"], s["pods"], T0, suffixes()),
    "nodelifecycle": lambda s: nodelifecycle.reconcile(
        s["node"], None, s["pods"], T0, timedelta(seconds=40), timedelta(minutes=5)),
    "nodeipam": lambda s: nodeipam.allocate([s["node"]], "10.244.0.0/16", 24, T0),
    "garbage": lambda s: garbage.reconcile(s["pods"], set()),
    "serviceaccounts": lambda s: serviceaccounts.reconcile(
        [{"metadata": {"name": "ns"}}], []),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_reconcile_leaves_inputs_alone_and_repeats_itself(name: str) -> None:
    state = _state()
    before = copy.deepcopy(state)
    first = CALLS[name](state)
    assert state == before
    assert CALLS[name](_state()) == first
    assert first, "each state was built to need some action"


def test_deployment_uses_the_given_replicaset_name() -> None:
    todo, _ = CALLS["deployment"](_state())
    names = [a.obj["metadata"]["name"] for a in todo if type(a).__name__ == "Create"]
    assert len(names) == 1 and names[0].startswith("custom-")
