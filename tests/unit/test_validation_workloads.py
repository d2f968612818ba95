"""Deployment, ReplicaSet, DaemonSet and Job validation, with Kubernetes' texts."""

from __future__ import annotations

import copy

import pytest

from apiserver import defaults, validation

MISMATCH = 'Invalid value: map[string]string{"app":"x"}: `selector` does not match template `labels`'


def workload(kind: str, labels: dict | None = None, selector: object = "default", **spec: object) -> dict:
    body: dict = {"template": {"metadata": {"labels": labels if labels is not None else {"app": "web"}},
                               "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    if selector == "default":
        body["selector"] = {"matchLabels": {"app": "web"}}
    elif selector is not None:
        body["selector"] = selector
    body.update(spec)
    obj = {"metadata": {"name": "web", "namespace": "default"}, "spec": body}
    defaults.apply_defaults(kind, obj)
    return obj


def lines(kind: str, obj: dict, old: dict | None = None) -> list[str]:
    return [f"{c['field']}: {c['message']}" for c in validation.validate(kind, obj, old)]


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "DaemonSet"])
def test_valid_workloads(kind: str) -> None:
    assert lines(kind, workload(kind)) == []


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "DaemonSet"])
def test_selector_must_match_template(kind: str) -> None:
    assert lines(kind, workload(kind, labels={"app": "x"})) == [f"spec.template.metadata.labels: {MISMATCH}"]


def test_missing_or_empty_selector() -> None:
    assert lines("Deployment", workload("Deployment", labels={"app": "x"}, selector=None)) == [
        "spec.selector: Required value", f"spec.template.metadata.labels: {MISMATCH}"]
    assert lines("ReplicaSet", workload("ReplicaSet", selector={})) == [
        "spec.selector: Invalid value: &LabelSelector{MatchLabels:map[string]string{},MatchExpressions:"
        "[]LabelSelectorRequirement{},}: empty selector is invalid for deployment"]
    bad_op = {"matchExpressions": [{"key": "app", "operator": "Near", "values": ["web"]}]}
    assert lines("Deployment", workload("Deployment", selector=bad_op)) == [
        'spec.selector.matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator',
        "spec.selector: Invalid value: &LabelSelector{MatchLabels:map[string]string{},MatchExpressions:"
        "[]LabelSelectorRequirement{LabelSelectorRequirement{Key:app,Operator:Near,Values:[web],},},}: "
        "invalid label selector",
    ]


def test_expression_selectors() -> None:
    selector = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]},
                                     {"key": "canary", "operator": "DoesNotExist"}]}
    assert lines("Deployment", workload("Deployment", selector=selector)) == []
    empty_in = {"matchExpressions": [{"key": "app", "operator": "In"}, {"key": "x", "operator": "Exists", "values": ["1"]}]}
    assert lines("Deployment", workload("Deployment", selector=empty_in))[:2] == [
        "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
        "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or "
        "'DoesNotExist'",
    ]


def test_replicas_restart_policy_and_strategy() -> None:
    obj = workload("Deployment", replicas=-1, progressDeadlineSeconds=5, minReadySeconds=10,
                   strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}})
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert lines("Deployment", obj) == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0%: may not be 0 when `maxSurge` is 0",
        "spec.progressDeadlineSeconds: Invalid value: 5: must be greater than minReadySeconds",
    ]
    odd = workload("Deployment", strategy={"type": "Canary"})
    assert lines("Deployment", odd) == [
        'spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:"Canary", RollingUpdate:'
        '(*apps.RollingUpdateDeployment)(nil)}: supported values: "Recreate", "RollingUpdate"']
    bad = workload("Deployment", strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "x", "maxUnavailable": "150%"}})
    assert lines("Deployment", bad) == [
        "spec.strategy.rollingUpdate.maxSurge: Invalid value: x: a valid percent string must be a numeric string "
        "followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 150%: must not be greater than 100%",
    ]
    recreate = workload("Deployment", strategy={"type": "Recreate", "rollingUpdate": {}})
    assert lines("Deployment", recreate) == [
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"]


def test_selector_is_immutable_in_apps_v1() -> None:
    old = workload("Deployment")
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert lines("Deployment", new, old) == []
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "fe"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "fe"
    assert lines("Deployment", new, old) == [
        "spec.selector: Invalid value: &LabelSelector{MatchLabels:map[string]string{app: web,tier: fe,},"
        "MatchExpressions:[]LabelSelectorRequirement{},}: field is immutable"]
    rs_old, rs_new = workload("ReplicaSet"), workload("ReplicaSet", selector={"matchLabels": {"app": "web"}, "matchExpressions": []})
    assert lines("ReplicaSet", rs_new, rs_old) == []  # an empty expression list is no change


def job(restart: str | None = "Never", uid: str = "u-1", **spec: object) -> dict:
    template_spec: dict = {"containers": [{"name": "c", "image": "perl"}]}
    if restart is not None:
        template_spec["restartPolicy"] = restart
    obj = {"metadata": {"name": "pi", "namespace": "default", "uid": uid},
           "spec": {"template": {"spec": template_spec}, **spec}}
    defaults.apply_defaults("Job", obj)
    defaults.generate_job_selector(obj)
    return obj


def test_job_restart_policy_messages() -> None:
    assert lines("Job", job()) == []
    expected = ['spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"']
    assert lines("Job", job(restart="Always")) == expected
    assert lines("Job", job(restart=None)) == expected
    assert lines("Job", job(restart="Sometimes")) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", '
        '"Never"',
        'spec.template.spec.restartPolicy: Unsupported value: "Sometimes": supported values: "OnFailure", "Never"',
    ]


def test_job_numbers_and_modes() -> None:
    obj = job(parallelism=-1, backoffLimit=-2, activeDeadlineSeconds=-3, completionMode="Indexed")
    obj["spec"]["completions"] = None
    assert lines("Job", obj) == [
        "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
        "spec.activeDeadlineSeconds: Invalid value: -3: must be greater than or equal to 0",
        "spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0",
        "spec.completions: Required value: when completion mode is Indexed",
    ]
    assert lines("Job", job(completionMode="Sometimes")) == [
        'spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"']


def test_job_selector_rules() -> None:
    manual = job(manualSelector=True, selector={"matchLabels": {"app": "other"}})
    manual["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    assert lines("Job", manual) == [
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"pi"}: `selector` does not match '
        "template `labels`"]
    tampered = job()
    tampered["spec"]["template"]["metadata"]["labels"]["job-name"] = "other"
    assert 'spec.template.metadata.labels[job-name]: Invalid value: map[string]string{' in lines("Job", tampered)[0]


def test_job_update_freezes_selector_template_and_completions() -> None:
    old = job()
    new = copy.deepcopy(old)
    new["spec"]["parallelism"] = 4
    new["spec"]["suspend"] = True
    assert lines("Job", new, old) == []
    new["spec"]["completions"] = 3
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:2"
    got = lines("Job", new, old)
    assert got[0] == "spec.completions: Invalid value: 3: field is immutable"
    assert got[1].startswith("spec.template: Invalid value: core.PodTemplateSpec{") and got[1].endswith(
        ": field is immutable")
