"""Defaulting: what a real apiserver fills in, checked field by field."""

from __future__ import annotations

import base64
import copy

import pytest

from apiserver import defaults, validation
from apiserver.defaults import admit_pod, apply_defaults, generate_job_selector


def pod(**spec: object) -> dict:
    base = {"containers": [{"name": "main", "image": "busybox"}]}
    base.update(spec)
    return {"metadata": {"name": "p", "namespace": "default"}, "spec": base}


def template_owner(kind: str, **spec: object) -> dict:
    body = {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}
    body.update(spec)
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": body}


def test_pod_defaults() -> None:
    obj = pod()
    obj["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    apply_defaults("Pod", obj)
    spec = obj["spec"]
    assert {k: spec[k] for k in ("restartPolicy", "dnsPolicy", "terminationGracePeriodSeconds", "schedulerName",
                                  "securityContext", "enableServiceLinks")} == {
        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30,
        "schedulerName": "default-scheduler", "securityContext": {}, "enableServiceLinks": True}
    assert spec["containers"][0] == {
        "name": "main", "image": "busybox", "imagePullPolicy": "Always", "resources": {},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
    }
    assert "priority" not in spec  # admission, not defaulting
    assert validation.validate("Pod", obj) == []


@pytest.mark.parametrize(("image", "policy"), [
    ("busybox", "Always"), ("busybox:latest", "Always"), ("busybox:1.36", "IfNotPresent"),
    ("registry.local:5000/team/app", "Always"), ("registry.local:5000/team/app:v2", "IfNotPresent"),
    ("busybox@sha256:" + "a" * 64, "IfNotPresent"), ("BusyBox", "IfNotPresent"), ("", "IfNotPresent"),
])
def test_image_pull_policy_follows_the_tag(image: str, policy: str) -> None:
    obj = pod(containers=[{"name": "c", "image": image}])
    apply_defaults("Pod", obj)
    assert obj["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_explicit_values_are_kept_and_defaulting_is_idempotent() -> None:
    obj = pod(restartPolicy="Never", terminationGracePeriodSeconds=0, enableServiceLinks=False)
    obj["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    apply_defaults("Pod", obj)
    once = copy.deepcopy(obj)
    apply_defaults("Pod", obj)
    assert obj == once
    assert obj["spec"]["restartPolicy"] == "Never" and obj["spec"]["terminationGracePeriodSeconds"] == 0
    assert obj["spec"]["enableServiceLinks"] is False and obj["spec"]["containers"][0]["imagePullPolicy"] == "Never"


def test_pod_resources_are_canonical_and_requests_come_from_limits() -> None:
    obj = pod()
    obj["spec"]["containers"][0]["resources"] = {"limits": {"cpu": 0.5, "memory": "1024Mi"}, "requests": {"cpu": "100u"}}
    apply_defaults("Pod", obj)
    assert obj["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "1m", "memory": "1Gi"}}


def test_host_network_ports_probes_volumes_env() -> None:
    obj = pod(hostNetwork=True, volumes=[{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "c"}}])
    container = obj["spec"]["containers"][0]
    container["ports"] = [{"containerPort": 8080}]
    container["livenessProbe"] = {"httpGet": {"port": 8080}}
    container["env"] = [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    apply_defaults("Pod", obj)
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP", "hostPort": 8080}]
    assert container["livenessProbe"] == {"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                          "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert obj["spec"]["volumes"] == [{"name": "scratch", "emptyDir": {}},
                                      {"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}}]
    assert container["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"


def test_pod_status_ip_pairs_follow_v1_conversion() -> None:
    obj = pod()
    obj["status"] = {"podIP": "10.0.0.7", "hostIPs": [{"ip": "192.168.1.5"}]}
    apply_defaults("Pod", obj)
    assert obj["status"] == {"podIP": "10.0.0.7", "podIPs": [{"ip": "10.0.0.7"}], "hostIP": "192.168.1.5",
                             "hostIPs": [{"ip": "192.168.1.5"}]}


def test_admission_adds_priority_and_default_tolerations() -> None:
    obj = pod(tolerations=[{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}])
    admit_pod(obj)
    spec = obj["spec"]
    assert spec["priority"] == 0 and spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert spec["tolerations"] == [
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    ]


def test_deployment_defaults() -> None:
    obj = template_owner("Deployment")
    apply_defaults("Deployment", obj)
    spec = obj["spec"]
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    template = spec["template"]["spec"]
    assert template["restartPolicy"] == "Always" and template["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert "enableServiceLinks" not in template  # SetDefaults_Pod is for Pods only
    recreate = template_owner("Deployment", strategy={"type": "Recreate"}, replicas=0)
    apply_defaults("Deployment", recreate)
    assert recreate["spec"]["strategy"] == {"type": "Recreate"} and recreate["spec"]["replicas"] == 0
    assert validation.validate("Deployment", obj) == []


def test_replica_set_and_daemon_set_defaults() -> None:
    rs = template_owner("ReplicaSet")
    apply_defaults("ReplicaSet", rs)
    assert rs["spec"]["replicas"] == 1 and rs["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    ds = template_owner("DaemonSet")
    apply_defaults("DaemonSet", ds)
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert ds["spec"]["revisionHistoryLimit"] == 10
    assert validation.validate("DaemonSet", ds) == []


def test_job_defaults_and_generated_selector() -> None:
    job = {"metadata": {"name": "pi", "namespace": "default", "uid": "1234"},
           "spec": {"template": {"metadata": {"labels": {"app": "pi"}},
                                 "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "perl"}]}}}}
    apply_defaults("Job", job)
    spec = job["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed" and spec["suspend"] is False
    assert job["metadata"]["labels"] == {"app": "pi"}
    generate_job_selector(job)
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "1234"}}
    assert spec["template"]["metadata"]["labels"] == {
        "app": "pi", "job-name": "pi", "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "1234", "batch.kubernetes.io/controller-uid": "1234"}
    assert validation.validate("Job", job) == []
    parallel = {"metadata": {"name": "x"}, "spec": {"parallelism": 3, "template": {"spec": {"containers": []}}}}
    apply_defaults("Job", parallel)
    assert "completions" not in parallel["spec"] and parallel["spec"]["parallelism"] == 3
    assert "restartPolicy" not in parallel["spec"]["template"]["spec"]


def test_service_defaults() -> None:
    svc = {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}, {"port": 443, "targetPort": "https"}]}}
    apply_defaults("Service", svc)
    assert svc["spec"] == {
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80},
                  {"port": 443, "targetPort": "https", "protocol": "TCP"}],
        "sessionAffinity": "None", "type": "ClusterIP", "internalTrafficPolicy": "Cluster"}
    lb = {"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [{"port": 80}]}}
    apply_defaults("Service", lb)
    assert lb["spec"]["externalTrafficPolicy"] == "Cluster" and lb["spec"]["allocateLoadBalancerNodePorts"] is True
    assert lb["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_namespace_node_secret_endpoints_rbac_defaults() -> None:
    ns = {"metadata": {"name": "shop"}}
    apply_defaults("Namespace", ns)
    assert ns == {"metadata": {"name": "shop", "labels": {"kubernetes.io/metadata.name": "shop"}},
                  "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
    node = {"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.244.1.0/24"},
            "status": {"capacity": {"cpu": "4", "memory": "8192Mi"}}}
    apply_defaults("Node", node)
    assert node["status"]["allocatable"] == {"cpu": "4", "memory": "8Gi"} and node["spec"]["podCIDRs"] == ["10.244.1.0/24"]
    secret = {"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}, "data": {"user": "YWRtaW4="}}
    apply_defaults("Secret", secret)
    assert secret == {"metadata": {"name": "s"}, "type": "Opaque",
                      "data": {"user": "YWRtaW4=", "password": base64.b64encode(b"hunter2").decode()}}
    endpoints = {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 8080}]}]}
    apply_defaults("Endpoints", endpoints)
    assert endpoints["subsets"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
    binding = {"roleRef": {"kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "default", "namespace": "a"}]}
    apply_defaults("ClusterRoleBinding", binding)
    assert binding["roleRef"]["apiGroup"] == defaults.RBAC_GROUP
    assert binding["subjects"][0]["apiGroup"] == defaults.RBAC_GROUP and "apiGroup" not in binding["subjects"][1]


def test_kinds_without_defaults_are_untouched() -> None:
    for kind in ("ConfigMap", "ServiceAccount", "Event", "Lease", "Role", "ClusterRole", "Widget"):
        obj = {"metadata": {"name": "x"}, "data": {"a": "b"}}
        apply_defaults(kind, obj)
        assert obj == {"metadata": {"name": "x"}, "data": {"a": "b"}}
