"""Real kubectl (1.32 through the dispatcher, and Debian's 1.20) against real apiservers.

Every test runs for both binaries over apiservers on both store kinds (real etcd and
kubelite's store): discovery and short names, the `create <kind>` generators (protobuf
bodies on 1.32), client-side apply twice (strategic merge keeps what the manifest does
not repeat), every `get` output, `get -w`, scale through the subresource, the patch
types, the error lines kubectl prints from our Status bodies, deletion that waits, and
cordon. What kubectl prints is checked against REQUIREMENTS.md (§4, §7, §9); what it
did is checked through the API.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
import yaml

from tests.apiserver_cluster import ApiserverCluster
from tests.apiserver_http import Api, configmap, namespace_body, pod
from tests.kubectl import Kubectl, table

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: {name}, tier: {tier}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "echo {say}; sleep 3600"]
        ports: [{{containerPort: 8080}}]
"""

BAD_SELECTOR = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: bad, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: one}}}}
  template:
    metadata: {{labels: {{app: other}}}}
    spec: {{containers: [{{name: main, image: busybox}}]}}
"""

NO_CONTAINERS = """\
apiVersion: v1
kind: Pod
metadata: {{name: badpod, namespace: {ns}}}
spec: {{containers: []}}
"""

BAD_NAME = """\
apiVersion: v1
kind: ConfigMap
metadata: {{name: Invalid_Name, namespace: {ns}}}
"""

DNS1123 = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
           "characters, '-' or '.', and must start and end with an alphanumeric character")


@pytest.fixture(params=["1.32", "1.20"])
def kubectl(request: pytest.FixtureRequest, apiservers_module: ApiserverCluster,
            tmp_path: Path) -> Kubectl:
    return Kubectl(request.param, apiservers_module.kubeconfig, tmp_path / "home")


def manifest(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def deployment_yaml(ns: str, name: str = "web", replicas: int = 2, say: str = "v1",
                    tier: str = "fe") -> str:
    return DEPLOYMENT.format(ns=ns, name=name, replicas=replicas, say=say, tier=tier)


def api_resources(out: str) -> dict[str, list[str]]:
    """`kubectl api-resources` rows by name: [shortnames, apiversion, namespaced, kind]."""
    lines = out.splitlines()
    header = lines[0]
    starts = [header.index(c) for c in ("SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND")]
    rows = {}
    for line in lines[1:]:
        bounds = [0, *starts, len(line)]
        cells = [line[a:b].strip() for a, b in zip(bounds, bounds[1:], strict=False)]
        rows[cells[0]] = cells[1:]
    return rows


def test_discovery_and_short_names(kubectl: Kubectl, namespace: str) -> None:
    rows = api_resources(kubectl.ok("api-resources"))
    assert rows["pods"] == ["po", "v1", "true", "Pod"]
    assert rows["deployments"] == ["deploy", "apps/v1", "true", "Deployment"]
    assert rows["services"] == ["svc", "v1", "true", "Service"]
    assert rows["nodes"] == ["no", "v1", "false", "Node"]
    assert rows["namespaces"] == ["ns", "v1", "false", "Namespace"]
    assert rows["configmaps"] == ["cm", "v1", "true", "ConfigMap"]
    result = kubectl.run("get", "po,deploy,svc,cm,job", "-n", namespace)
    assert result.returncode == 0, result.stderr
    assert f"No resources found in {namespace} namespace." in result.stderr
    assert "ns/" + namespace in kubectl.ok("get", "ns", namespace, "-o", "name").replace(
        "namespace/", "ns/")


def test_create_namespace_and_generators(kubectl: Kubectl, admin_api: Api) -> None:
    # kubectl 1.32 sends every one of these as a protobuf body (REQUIREMENTS §1.3).
    ns = f"generators-{kubectl.version.replace('.', '-')}"
    assert kubectl.ok("create", "namespace", ns).strip() == f"namespace/{ns} created"
    assert admin_api.ok("GET", f"/api/v1/namespaces/{ns}")["status"]["phase"] == "Active"

    out = kubectl.ok("create", "configmap", "cm1", "-n", ns, "--from-literal=a=1",
                     "--from-literal=b=two")
    assert out.strip() == "configmap/cm1 created"
    assert admin_api.ok("GET", f"/api/v1/namespaces/{ns}/configmaps/cm1")["data"] == {
        "a": "1", "b": "two"}

    out = kubectl.ok("create", "secret", "generic", "s1", "-n", ns,
                     "--from-literal=password=hunter2")
    assert out.strip() == "secret/s1 created"
    secret = admin_api.ok("GET", f"/api/v1/namespaces/{ns}/secrets/s1")
    assert (secret["type"], secret["data"]) == ("Opaque", {"password": "aHVudGVyMg=="})

    out = kubectl.ok("create", "service", "clusterip", "svc1", "-n", ns, "--tcp=80:8080")
    assert out.strip() == "service/svc1 created"
    svc = admin_api.ok("GET", f"/api/v1/namespaces/{ns}/services/svc1")
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["selector"] == {"app": "svc1"}
    [port] = svc["spec"]["ports"]
    assert (port["port"], port["targetPort"], port["protocol"]) == (80, 8080, "TCP")
    cluster_ip = svc["spec"]["clusterIP"]  # allocated from the default service range
    assert ipaddress.ip_address(cluster_ip) in ipaddress.ip_network("10.96.0.0/12")
    header, rows = table(kubectl.ok("get", "svc", "svc1", "-n", ns))
    assert rows[0][header.index("CLUSTER-IP")] == cluster_ip

    out = kubectl.ok("create", "job", "j1", "-n", ns, "--image=busybox", "--", "echo", "hi")
    assert out.strip() == "job.batch/j1 created"
    job = admin_api.ok("GET", f"/apis/batch/v1/namespaces/{ns}/jobs/j1")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"]["matchLabels"] == {"batch.kubernetes.io/controller-uid": uid}
    assert job["spec"]["template"]["metadata"]["labels"]["job-name"] == "j1"

    out = kubectl.ok("create", "deployment", "d1", "-n", ns, "--image=busybox",
                     "--replicas=2")
    assert out.strip() == "deployment.apps/d1 created"
    dep = admin_api.ok("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/d1")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "d1"}}

    names = kubectl.ok("get", "cm,secret,svc,job,deploy", "-n", ns, "-o", "name").split()
    assert names == ["configmap/cm1", "secret/s1", "service/svc1", "job.batch/j1",
                     "deployment.apps/d1"]


def test_apply_twice_keeps_what_the_manifest_does_not_repeat(
        kubectl: Kubectl, namespace: str, admin_api: Api, tmp_path: Path) -> None:
    first = manifest(tmp_path, "v1", deployment_yaml(namespace))
    second = manifest(tmp_path, "v2", deployment_yaml(namespace, replicas=4, say="v2"))
    assert kubectl.ok("apply", "-f", first).strip() == "deployment.apps/web created"
    assert kubectl.ok("apply", "-f", first).strip() == "deployment.apps/web unchanged"
    assert kubectl.ok("apply", "-f", second).strip() == "deployment.apps/web configured"

    dep = admin_api.ok("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/web")
    assert dep["spec"]["replicas"] == 4
    [main] = dep["spec"]["template"]["spec"]["containers"]
    assert main["command"] == ["sh", "-c", "echo v2; sleep 3600"]
    # A JSON merge patch would have replaced the container with {name, command} only.
    assert main["image"] == "busybox"
    assert main["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert dep["metadata"]["generation"] == 2
    applied = json.loads(
        dep["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert applied["spec"]["replicas"] == 4


def test_get_as_table_json_yaml_with_selectors(
        kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    kubectl.ok("apply", "-f", manifest(tmp_path, "web", deployment_yaml(namespace)))
    kubectl.ok("apply", "-f", manifest(tmp_path, "api", deployment_yaml(
        namespace, name="api", replicas=3, tier="be")))

    header, rows = table(kubectl.ok("get", "deployments", "-n", namespace))
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert [r[:4] for r in rows] == [["api", "0/3", "0", "0"], ["web", "0/2", "0", "0"]]

    listed = json.loads(kubectl.ok("get", "deploy", "-n", namespace, "-o", "json"))
    assert listed["kind"] == "List"
    assert [d["metadata"]["name"] for d in listed["items"]] == ["api", "web"]
    assert all(d["kind"] == "Deployment" for d in listed["items"])

    one = yaml.safe_load(kubectl.ok("get", "deploy", "web", "-n", namespace, "-o", "yaml"))
    assert (one["kind"], one["metadata"]["name"], one["spec"]["replicas"]) == (
        "Deployment", "web", 2)

    header, rows = table(kubectl.ok("get", "deploy", "-n", namespace, "-l", "tier=be"))
    assert [r[0] for r in rows] == ["api"]
    header, rows = table(kubectl.ok("get", "deploy", "-n", namespace, "-l", "tier!=be,app"))
    assert [r[0] for r in rows] == ["web"]

    header, rows = table(kubectl.ok("get", "deploy", "-n", namespace, "--show-labels"))
    assert header[-1] == "LABELS"
    assert {r[0]: r[-1] for r in rows} == {"api": "app=api,tier=be", "web": "app=web,tier=fe"}

    header, rows = table(kubectl.ok("get", "deploy", "-A"))
    assert header[:2] == ["NAMESPACE", "NAME"]
    assert sorted(r[1] for r in rows if r[0] == namespace) == ["api", "web"]

    # Short names and kinds resolve through discovery, single objects print as tables.
    header, rows = table(kubectl.ok("get", "deploy/web", "-n", namespace))
    assert (header[0], rows[0][:2]) == ("NAME", ["web", "0/2"])


def test_get_watch_prints_changes(
        kubectl: Kubectl, namespace: str, admin_api: Api, tmp_path: Path) -> None:
    kubectl.ok("apply", "-f", manifest(tmp_path, "web", deployment_yaml(namespace)))
    watch = kubectl.background("get", "deploy", "-n", namespace, "-w", "--request-timeout=30s")
    try:
        first = watch.wait_for_lines(2)
        assert len(first) == 2, (first, watch.proc.poll())
        base = f"/apis/apps/v1/namespaces/{namespace}/deployments/web"
        admin_api.ok("PATCH", base + "/scale", {"spec": {"replicas": 5}},
                     content_type="application/merge-patch+json")
        admin_api.ok("PATCH", base, {"spec": {"replicas": 7}},
                     content_type="application/merge-patch+json")
        lines = watch.wait_for_lines(4)
    finally:
        lines, stderr = watch.stop()
    assert table(lines[0])[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], stderr
    ready = [table("H\n" + line)[1][0][1] for line in lines[1:]]
    assert ready[:3] == ["0/2", "0/5", "0/7"], (lines, stderr)


def test_scale_label_annotate_patch(
        kubectl: Kubectl, namespace: str, admin_api: Api, tmp_path: Path) -> None:
    kubectl.ok("apply", "-f", manifest(tmp_path, "web", deployment_yaml(namespace)))
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments/web"

    assert kubectl.ok("scale", "deploy/web", "-n", namespace, "--replicas=5").strip() == \
        "deployment.apps/web scaled"
    scale = json.loads(kubectl.ok("get", "--raw", base + "/scale"))
    assert (scale["kind"], scale["apiVersion"]) == ("Scale", "autoscaling/v1")
    assert scale["spec"] == {"replicas": 5}
    assert scale["status"]["selector"] == "app=web"

    assert kubectl.ok("label", "deploy", "web", "-n", namespace, "team=blue").strip() == \
        "deployment.apps/web labeled"
    assert kubectl.ok("annotate", "deploy", "web", "-n", namespace, "note=hi").strip() == \
        "deployment.apps/web annotated"
    out = kubectl.ok("patch", "deploy", "web", "-n", namespace, "--type", "merge",
                     "-p", '{"spec":{"replicas":2}}')
    assert out.strip() == "deployment.apps/web patched"
    kubectl.ok("patch", "deploy", "web", "-n", namespace, "--type", "json",
               "-p", '[{"op":"add","path":"/metadata/labels/via","value":"json-patch"}]')
    kubectl.ok("patch", "deploy", "web", "-n", namespace, "--type", "strategic", "-p",
               '{"spec":{"template":{"spec":{"containers":[{"name":"main",'
               '"image":"busybox:1.36"}]}}}}')

    dep = admin_api.ok("GET", base)
    assert dep["spec"]["replicas"] == 2
    assert dep["metadata"]["labels"] == {"app": "web", "tier": "fe", "team": "blue",
                                         "via": "json-patch"}
    assert dep["metadata"]["annotations"]["note"] == "hi"
    [main] = dep["spec"]["template"]["spec"]["containers"]
    assert main["image"] == "busybox:1.36"  # strategic: merged into the container by name
    assert main["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert main["command"] == ["sh", "-c", "echo v1; sleep 3600"]
    # Spec changes only: scale to 5, merge to 2, the image. Labels are metadata.
    assert dep["metadata"]["generation"] == 4


def test_error_messages(kubectl: Kubectl, namespace: str, admin_api: Api,
                        tmp_path: Path) -> None:
    path = manifest(tmp_path, "web", deployment_yaml(namespace))
    kubectl.ok("create", "-f", path)
    assert kubectl.fails("create", "-f", path).strip() == (
        f'Error from server (AlreadyExists): error when creating "{path}": '
        'deployments.apps "web" already exists')
    kubectl.ok("create", "configmap", "dup", "-n", namespace)
    generator_error = {"1.32": "error: failed to create configmap: ",
                       "1.20": "Error from server (AlreadyExists): "}[kubectl.version]
    assert kubectl.fails("create", "configmap", "dup", "-n", namespace).strip() == (
        generator_error + 'configmaps "dup" already exists')

    assert kubectl.fails("get", "deploy", "nosuch", "-n", namespace).strip() == (
        'Error from server (NotFound): deployments.apps "nosuch" not found')
    assert kubectl.fails("get", "cm", "nosuch", "-n", namespace).strip() == (
        'Error from server (NotFound): configmaps "nosuch" not found')

    err = kubectl.fails("apply", "-f", manifest(tmp_path, "bad", BAD_SELECTOR.format(
        ns=namespace)))
    assert err.strip() == (
        'The Deployment "bad" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"other"}: `selector` does not match template `labels`')
    err = kubectl.fails("apply", "-f", manifest(tmp_path, "badpod", NO_CONTAINERS.format(
        ns=namespace)))
    assert err.strip() == 'The Pod "badpod" is invalid: spec.containers: Required value'
    err = kubectl.fails("apply", "-f", manifest(tmp_path, "badname", BAD_NAME.format(
        ns=namespace)))
    assert err.startswith('The ConfigMap "Invalid_Name" is invalid: metadata.name: '
                          f'Invalid value: "Invalid_Name": {DNS1123}'), err

    # Nothing of the refused objects was stored.
    for path in (f"/apis/apps/v1/namespaces/{namespace}/deployments/bad",
                 f"/api/v1/namespaces/{namespace}/pods/badpod",
                 f"/api/v1/namespaces/{namespace}/configmaps/Invalid_Name"):
        assert admin_api.get(path).code == 404


def test_delete_waits_until_gone(kubectl: Kubectl, admin_api: Api, tmp_path: Path) -> None:
    ns = f"delete-{kubectl.version.replace('.', '-')}"
    admin_api.ok("POST", "/api/v1/namespaces", namespace_body(ns))
    kubectl.ok("apply", "-f", manifest(tmp_path, "web", deployment_yaml(ns)))
    admin_api.ok("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap("keep"))

    assert kubectl.ok("delete", "deploy", "web", "-n", ns).strip() == \
        'deployment.apps "web" deleted'
    assert admin_api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web").code == 404

    # A pod on a node stays Terminating until its node confirms; --wait=false returns.
    admin_api.ok("POST", f"/api/v1/namespaces/{ns}/pods", pod("bound", node="node-x"))
    assert kubectl.ok("delete", "pod", "bound", "-n", ns, "--wait=false").strip() == \
        'pod "bound" deleted'
    header, rows = table(kubectl.ok("get", "pod", "bound", "-n", ns))
    assert rows[0][header.index("STATUS")] == "Terminating"
    out = kubectl.ok("delete", "pod", "bound", "-n", ns, "--grace-period=0", "--force")
    assert 'pod "bound" force deleted' in out
    assert admin_api.get(f"/api/v1/namespaces/{ns}/pods/bound").code == 404

    # A namespace is emptied and removed in the background; kubectl waits for DELETED.
    assert kubectl.ok("delete", "namespace", ns, "--timeout=60s").strip() == \
        f'namespace "{ns}" deleted'
    assert admin_api.get(f"/api/v1/namespaces/{ns}").code == 404
    assert admin_api.get(f"/api/v1/namespaces/{ns}/configmaps/keep").code == 404


def test_cordon_and_uncordon_a_node(kubectl: Kubectl, admin_api: Api, tmp_path: Path) -> None:
    node = f"cordon-{kubectl.version.replace('.', '-')}"
    admin_api.ok("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                           "metadata": {"name": node}})
    assert kubectl.ok("cordon", node).strip() == f"node/{node} cordoned"
    assert admin_api.ok("GET", f"/api/v1/nodes/{node}")["spec"]["unschedulable"] is True
    header, rows = table(kubectl.ok("get", "node", node))
    assert header[:2] == ["NAME", "STATUS"]
    assert rows[0][1].endswith("SchedulingDisabled")
    assert kubectl.ok("uncordon", node).strip() == f"node/{node} uncordoned"
    assert not admin_api.ok("GET", f"/api/v1/nodes/{node}")["spec"].get("unschedulable")
    assert kubectl.ok("uncordon", node).strip() == f"node/{node} already uncordoned"


def test_raw_health_endpoints(kubectl: Kubectl) -> None:
    for path in ("/healthz", "/readyz", "/livez"):
        assert kubectl.ok("get", "--raw", path) == "ok"

