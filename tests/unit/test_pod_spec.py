"""What a container asks the runtime for: argv, environment, limits (agents.pod_spec)."""

from __future__ import annotations

import pytest

from agents import pod_spec

POD = {"metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1",
                    "labels": {"app": "web"}},
       "spec": {"nodeName": "node-1", "serviceAccountName": "default"}}


def svc(name: str, namespace: str, ip: str, *ports: dict) -> dict:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterIP": ip, "ports": list(ports)}}


def test_expand_follows_kubernetes_rules() -> None:
    env = {"A": "x", "B": "y"}
    assert pod_spec.expand("$(A)-$(B)", env) == "x-y"
    assert pod_spec.expand("$(MISSING)", env) == "$(MISSING)"
    assert pod_spec.expand("$$(A)", env) == "$(A)"
    assert pod_spec.expand("cost $5", env) == "cost $5"


def test_env_refers_to_earlier_variables_and_downward_api() -> None:
    container = {"name": "c", "command": ["run"], "env": [
        {"name": "FIRST", "value": "one"},
        {"name": "SECOND", "value": "$(FIRST)-two"},
        {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {
            "fieldPath": "metadata.labels['app']"}}},
    ]}
    env = pod_spec.container_env(POD, container, services=[], pod_ip="10.244.1.5",
                                 host_ip="10.0.0.1")
    assert env["SECOND"] == "one-two"
    assert (env["ME"], env["NODE"], env["IP"], env["APP"]) == \
        ("web-1", "node-1", "10.244.1.5", "web")
    assert env["HOSTNAME"] == "web-1" and "PATH" in env


def test_service_links_for_own_namespace_and_the_kubernetes_service() -> None:
    services = [svc("redis-main", "shop", "10.96.0.9", {"port": 6379, "name": "db"}),
                svc("other", "elsewhere", "10.96.0.8", {"port": 80}),
                svc("kubernetes", "default", "10.96.0.1", {"port": 443, "name": "https"}),
                svc("headless", "shop", "None", {"port": 1})]
    env = pod_spec.service_env(services, "shop", enable_links=True)
    assert env["REDIS_MAIN_SERVICE_HOST"] == "10.96.0.9"
    assert env["REDIS_MAIN_SERVICE_PORT"] == "6379"
    assert env["REDIS_MAIN_SERVICE_PORT_DB"] == "6379"
    assert env["REDIS_MAIN_PORT"] == "tcp://10.96.0.9:6379"
    assert env["REDIS_MAIN_PORT_6379_TCP_ADDR"] == "10.96.0.9"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert not any(k.startswith(("OTHER_", "HEADLESS_")) for k in env)
    without = pod_spec.service_env(services, "shop", enable_links=False)
    assert set(k.split("_")[0] for k in without) == {"KUBERNETES"}


def test_argv_expands_command_and_args() -> None:
    container = {"name": "c", "command": ["echo"], "args": ["$(GREETING)", "$$HOME"]}
    assert pod_spec.container_argv(container, {"GREETING": "hi"}) == ["echo", "hi", "$HOME"]


def test_args_alone_are_run_as_the_command() -> None:
    assert pod_spec.container_argv({"name": "c", "args": ["sleep", "1"]}, {}) == \
        ["sleep", "1"]


def test_no_command_is_a_config_error_naming_the_image() -> None:
    with pytest.raises(pod_spec.ConfigError, match="nginx:1.25"):
        pod_spec.container_argv({"name": "c", "image": "nginx:1.25"}, {})


def test_unsupported_references_are_config_errors() -> None:
    container = {"name": "c", "command": ["x"], "env": [
        {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}
    with pytest.raises(pod_spec.ConfigError, match="secretKeyRef"):
        pod_spec.container_env(POD, container, services=[], pod_ip="", host_ip="")
    with pytest.raises(pod_spec.ConfigError, match="fieldPath"):
        pod_spec.field_ref(POD, "spec.nonsense", "", "")


def test_limits_and_resource_field_refs() -> None:
    container = {"name": "c", "command": ["x"],
                 "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}}
    assert pod_spec.limits(container) == (500, 64 * 1024 * 1024)
    assert pod_spec.limits({"name": "c"}) == (None, None)
    assert pod_spec.resource_ref(container, {"resource": "limits.memory",
                                             "divisor": "1Mi"}) == "64"
    assert pod_spec.resource_ref(container, {"resource": "limits.cpu"}) == "1"
    assert pod_spec.resource_ref(container, {"resource": "limits.cpu",
                                             "divisor": "1m"}) == "500"


def test_grace_period_prefers_the_deletion_grace() -> None:
    assert pod_spec.grace_seconds({"spec": {}}) == 30
    assert pod_spec.grace_seconds({"spec": {"terminationGracePeriodSeconds": 5}}) == 5
    assert pod_spec.grace_seconds({"metadata": {"deletionGracePeriodSeconds": 0},
                                   "spec": {"terminationGracePeriodSeconds": 5}}) == 0


def test_plan_combines_everything() -> None:
    container = {"name": "c", "command": ["sh", "-c", "echo $(ME)"], "workingDir": "/srv",
                 "env": [{"name": "ME", "valueFrom": {"fieldRef": {
                     "fieldPath": "metadata.namespace"}}}],
                 "resources": {"limits": {"memory": "1Gi"}}}
    plan = pod_spec.plan_container(POD, container, services=[], pod_ip="", host_ip="")
    assert plan.argv == ["sh", "-c", "echo shop"]
    assert plan.working_dir == "/srv"
    assert (plan.cpu_limit_millicores, plan.memory_limit_bytes) == (None, 1 << 30)
