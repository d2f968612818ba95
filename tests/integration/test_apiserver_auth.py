"""Authentication and authorization of real apiservers, over both store kinds.

The cluster's token file has an admin (group system:masters), a `viewer` with no
bindings, and the node user system:node:node-1 (group system:nodes). Beyond those:
service-account tokens minted with the cluster's sa.key, and client certificates issued
by its CA. Checked: who gets 401 and who 403, with Kubernetes' messages (and what
kubectl prints from them), that a RoleBinding grants exactly its namespace, and that a
node reaches only its own Node, Lease and pods.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from apiserver.auth import kubeconfig, pki, tokens
from tests.apiserver_cluster import ApiserverCluster
from tests.apiserver_http import Api, Reply, configmap, namespace_body, pod, wait_for
from tests.kubectl import Kubectl

RBAC = "/apis/rbac.authorization.k8s.io/v1"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
PUBLIC = ("/healthz", "/livez", "/readyz")
MERGE = "application/merge-patch+json"
RBAC_SETTLE = 10.0  # each apiserver caches RBAC objects for about a second


def as_user(cluster: ApiserverCluster, token: str | None, url: int = 0,
            cert: tuple[Path, Path] | None = None) -> Api:
    return Api(cluster.urls[url], cluster.paths.ca_cert, token=token, cert=cert)


def assert_status(reply: Reply, code: int, reason: str) -> dict:
    assert reply.code == code, reply
    assert reply.headers["Content-Type"] == "application/json"
    body = reply.json
    assert (body["kind"], body["status"], body["reason"], body["code"]) == (
        "Status", "Failure", reason, code), body
    return body


def forbidden_message(user: str, verb: str, resource: str, namespace: str = "",
                      name: str = "", group: str = "") -> str:
    subject = f'{resource}.{group}' if group else resource
    subject += f' "{name}"' if name else ""
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return (f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
            f'in API group "{group}" {where}')


def bind(admin: Api, namespace: str, name: str, role: str, subject: dict) -> None:
    admin.ok("POST", f"{RBAC}/namespaces/{namespace}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": role},
        "subjects": [subject]})


def eventually(api_call, code: int) -> Reply:
    """Retry a request until it answers `code` (RBAC changes take about a second)."""
    replies: list[Reply] = []

    def done() -> bool:
        replies.append(api_call())
        return replies[-1].code == code

    try:
        wait_for(done, RBAC_SETTLE, what=f"HTTP {code}")
    except TimeoutError:
        raise AssertionError(f"still {replies[-1]!r}") from None
    return replies[-1]


@pytest.fixture
def other_namespace(request: pytest.FixtureRequest, admin_api: Api, namespace: str) -> str:
    name = namespace[:50] + "-other"
    admin_api.ok("POST", "/api/v1/namespaces", namespace_body(name))
    return name


def test_anonymous_requests(apiservers_module: ApiserverCluster) -> None:
    anonymous = as_user(apiservers_module, None)
    for path in PUBLIC:
        reply = anonymous.get(path)
        assert (reply.code, reply.raw) == (200, b"ok"), path
    version = anonymous.get("/version")
    assert version.code == 200 and version.json["major"] == "1"
    for method, path in (("GET", "/api"), ("GET", "/apis"),
                         ("GET", "/api/v1/namespaces"),
                         ("GET", "/api/v1/namespaces/default/pods/x"),
                         ("POST", "/api/v1/namespaces/default/configmaps")):
        body = configmap("anon") if method == "POST" else None
        reply = anonymous.request(method, path, body)
        assert assert_status(reply, 401, "Unauthorized")["message"] == "Unauthorized"


def test_wrong_token(apiservers_module: ApiserverCluster, tmp_path: Path) -> None:
    wrong = as_user(apiservers_module, "not-a-token")
    for path in ("/api/v1/namespaces", "/api", "/healthz"):
        assert_status(wrong.get(path), 401, "Unauthorized")
    config = kubeconfig.write_kubeconfig(tmp_path / "kc", apiservers_module.urls,
                                         apiservers_module.paths.ca_cert, "nobody",
                                         token="not-a-token")
    for version in ("1.32", "1.20"):
        kubectl = Kubectl(version, config, tmp_path / f"home-{version}")
        err = kubectl.fails("get", "--raw", "/api/v1/namespaces/default/pods")
        assert err.strip() == "error: You must be logged in to the server (Unauthorized)"
        # Through discovery, newer clients word the same 401 differently.
        last_line = kubectl.fails("get", "pods").strip().splitlines()[-1]
        assert last_line in (
            "error: You must be logged in to the server (Unauthorized)",
            "error: You must be logged in to the server (the server has asked for the "
            "client to provide credentials)"), last_line


def test_viewer_without_bindings_is_forbidden(apiservers_module: ApiserverCluster,
                                              namespace: str, tmp_path: Path) -> None:
    viewer = as_user(apiservers_module, apiservers_module.viewer_token)
    # Authenticated users may discover the API and read the public endpoints.
    assert viewer.get("/api").code == 200 and viewer.get("/apis/apps/v1").code == 200
    assert viewer.get("/version").code == 200 and viewer.get("/healthz").code == 200

    body = assert_status(viewer.get(f"/api/v1/namespaces/{namespace}/pods"), 403,
                         "Forbidden")
    assert body["message"] == forbidden_message("viewer", "list", "pods", namespace)
    assert body["details"] == {"kind": "pods"}
    body = assert_status(viewer.get(f"/api/v1/namespaces/{namespace}/pods/x"), 403,
                         "Forbidden")
    assert body["message"] == forbidden_message("viewer", "get", "pods", namespace, "x")
    body = assert_status(viewer.get("/api/v1/nodes"), 403, "Forbidden")
    assert body["message"] == forbidden_message("viewer", "list", "nodes")
    body = assert_status(viewer.get(f"/apis/apps/v1/namespaces/{namespace}/deployments"),
                         403, "Forbidden")
    assert body["message"] == forbidden_message("viewer", "list", "deployments", namespace,
                                                group="apps")

    config = kubeconfig.write_kubeconfig(tmp_path / "kc", apiservers_module.urls,
                                         apiservers_module.paths.ca_cert, "viewer",
                                         token=apiservers_module.viewer_token)
    for version in ("1.32", "1.20"):
        kubectl = Kubectl(version, config, tmp_path / f"home-{version}")
        err = kubectl.fails("get", "pods", "-n", namespace)
        assert err.strip() == "Error from server (Forbidden): " + forbidden_message(
            "viewer", "list", "pods", namespace), err


def test_rolebinding_grants_view_in_its_namespace_only(
        apiservers_module: ApiserverCluster, admin_api: Api, namespace: str,
        other_namespace: str, tmp_path: Path) -> None:
    admin_api.ok("POST", f"/api/v1/namespaces/{namespace}/configmaps", configmap("shown"))
    bind(admin_api, namespace, "viewer-can-view", "view",
         {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "viewer"})

    for url in range(len(apiservers_module.urls)):  # every apiserver sees the binding
        viewer = as_user(apiservers_module, apiservers_module.viewer_token, url)
        listed = eventually(lambda v=viewer: v.get(f"/api/v1/namespaces/{namespace}/configmaps"),
                            200)
        assert [c["metadata"]["name"] for c in listed.json["items"]] == ["shown"]
        assert viewer.get(f"/api/v1/namespaces/{namespace}/pods").code == 200
        assert viewer.get(f"/apis/apps/v1/namespaces/{namespace}/deployments").code == 200

        body = assert_status(viewer.get(f"/api/v1/namespaces/{other_namespace}/configmaps"),
                             403, "Forbidden")
        assert body["message"] == forbidden_message("viewer", "list", "configmaps",
                                                    other_namespace)
        body = assert_status(viewer.post(f"/api/v1/namespaces/{namespace}/configmaps",
                                         configmap("sneaky")), 403, "Forbidden")
        assert body["message"] == forbidden_message("viewer", "create", "configmaps",
                                                    namespace)
        # `view` leaves secrets out.
        assert_status(viewer.get(f"/api/v1/namespaces/{namespace}/secrets"), 403, "Forbidden")
    assert admin_api.get(f"/api/v1/namespaces/{namespace}/configmaps/sneaky").code == 404

    config = kubeconfig.write_kubeconfig(tmp_path / "kc", apiservers_module.urls,
                                         apiservers_module.paths.ca_cert, "viewer",
                                         token=apiservers_module.viewer_token)
    for version in ("1.32", "1.20"):
        kubectl = Kubectl(version, config, tmp_path / f"home-{version}")
        assert kubectl.ok("get", "cm", "-n", namespace, "-o", "name").split() == [
            "configmap/shown"]
        err = kubectl.fails("create", "configmap", "nope", "-n", namespace)
        assert forbidden_message("viewer", "create", "configmaps", namespace) in err


def test_node_reaches_only_its_own_objects(apiservers_module: ApiserverCluster,
                                           admin_api: Api, namespace: str) -> None:
    node = as_user(apiservers_module, apiservers_module.node_token)
    user = "system:node:node-1"

    def node_body(name: str) -> dict:
        return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}

    # Its own Node: register, update, update status.
    assert node.post("/api/v1/nodes", node_body("node-1")).code == 201
    assert node.patch("/api/v1/nodes/node-1", {"metadata": {"labels": {"ready": "yes"}}}
                      ).code == 200
    assert node.patch("/api/v1/nodes/node-1/status", {"status": {"conditions": [
        {"type": "Ready", "status": "True"}]}}).code == 200
    assert node.get("/api/v1/nodes").code == 200

    # Another node's: not even registering it.
    body = assert_status(node.post("/api/v1/nodes", node_body("node-2")), 403, "Forbidden")
    assert f'User "{user}"' in body["message"]
    admin_api.ok("POST", "/api/v1/nodes", node_body("node-2"))
    for reply in (node.patch("/api/v1/nodes/node-2", {"metadata": {"labels": {"x": "y"}}}),
                  node.patch("/api/v1/nodes/node-2/status", {"status": {}}),
                  node.put("/api/v1/nodes/node-2", node_body("node-2")),
                  node.delete("/api/v1/nodes/node-1")):
        assert_status(reply, 403, "Forbidden")
    assert "x" not in (admin_api.ok("GET", "/api/v1/nodes/node-2")["metadata"].get("labels")
                       or {})

    # Its own Lease in kube-node-lease, nowhere else.
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "node-1"},
             "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}}
    created = node.post(LEASES.format(ns="kube-node-lease"), lease)
    assert created.code == 201, created
    renewed = dict(created.json, spec=dict(lease["spec"], renewTime="2026-01-01T00:00:00.000000Z"))
    assert node.put(LEASES.format(ns="kube-node-lease") + "/node-1", renewed).code == 200
    other = dict(lease, metadata={"name": "node-2"})
    assert_status(node.post(LEASES.format(ns="kube-node-lease"), other), 403, "Forbidden")
    assert_status(node.post(LEASES.format(ns=namespace), lease), 403, "Forbidden")

    # Status of the pods bound to it, and only those.
    pods = f"/api/v1/namespaces/{namespace}/pods"
    admin_api.ok("POST", pods, pod("mine", node="node-1"))
    admin_api.ok("POST", pods, pod("theirs", node="node-2"))
    admin_api.ok("POST", pods, pod("unbound"))
    running = {"status": {"phase": "Running"}}
    assert node.patch(f"{pods}/mine/status", running).code == 200
    for name in ("theirs", "unbound"):
        assert_status(node.patch(f"{pods}/{name}/status", running), 403, "Forbidden")
    phases = {p["metadata"]["name"]: p["status"].get("phase")
              for p in admin_api.ok("GET", pods)["items"]}
    assert phases == {"mine": "Running", "theirs": "Pending", "unbound": "Pending"}
    assert node.get(pods).code == 200
    assert_status(node.post(pods, pod("mirror", node="node-1")), 403, "Forbidden")
    assert_status(node.get(f"/api/v1/namespaces/{namespace}/secrets"), 403, "Forbidden")
    assert_status(node.delete(f"{pods}/theirs?gracePeriodSeconds=0"), 403, "Forbidden")
    assert node.delete(f"{pods}/mine?gracePeriodSeconds=0").code == 200


def test_service_account_tokens(apiservers_module: ApiserverCluster, admin_api: Api,
                                namespace: str) -> None:
    sa_key = pki.load_private_key(apiservers_module.paths.sa_key)
    token = tokens.mint_service_account_token(sa_key, namespace, "robot", "robot-uid")
    robot = as_user(apiservers_module, token)
    user = f"system:serviceaccount:{namespace}:robot"
    body = assert_status(robot.get(f"/api/v1/namespaces/{namespace}/configmaps"), 403,
                         "Forbidden")
    assert body["message"] == forbidden_message(user, "list", "configmaps", namespace)

    bind(admin_api, namespace, "robot-edits", "edit",
         {"kind": "ServiceAccount", "name": "robot", "namespace": namespace})
    eventually(lambda: robot.post(f"/api/v1/namespaces/{namespace}/configmaps",
                                  configmap("by-robot")), 201)
    assert robot.get(f"/api/v1/namespaces/{namespace}/configmaps/by-robot").code == 200

    # Not signed by the cluster's key, expired, or for another audience: not a user.
    stranger = tokens.mint_service_account_token(pki.new_private_key(), namespace, "robot",
                                                 "robot-uid")
    expired = tokens.mint_service_account_token(sa_key, namespace, "robot", "robot-uid",
                                                ttl=60, now=time.time() - 3600)
    elsewhere = tokens.mint_service_account_token(sa_key, namespace, "robot", "robot-uid",
                                                  audience="https://other.example")
    for bad in (stranger, expired, elsewhere):
        assert_status(as_user(apiservers_module, bad).get(
            f"/api/v1/namespaces/{namespace}/configmaps"), 401, "Unauthorized")


def _client_cert(cluster: ApiserverCluster, directory: Path, user: str,
                 groups: list[str]) -> tuple[Path, Path]:
    ca_cert = pki.load_cert(cluster.paths.ca_cert)
    ca_key = pki.load_private_key(cluster.paths.ca_key)
    cert, key = pki.issue_client_cert(ca_cert, ca_key, user, groups)
    cert_path, key_path = directory / f"{user}.crt", directory / f"{user}.key"
    pki.write_pem(cert_path, pki.cert_pem(cert))
    pki.write_pem(key_path, pki.key_pem(key), private=True)
    return cert_path, key_path


def test_client_certificates(apiservers_module: ApiserverCluster, admin_api: Api,
                             namespace: str, tmp_path: Path) -> None:
    alice = as_user(apiservers_module, None,
                    cert=_client_cert(apiservers_module, tmp_path, "alice", ["team-a"]))
    body = assert_status(alice.get(f"/api/v1/namespaces/{namespace}/configmaps"), 403,
                         "Forbidden")
    assert body["message"] == forbidden_message("alice", "list", "configmaps", namespace)

    # The certificate's O is a group: bind the group, alice gets in.
    bind(admin_api, namespace, "team-a-views", "view",
         {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "team-a"})
    eventually(lambda: alice.get(f"/api/v1/namespaces/{namespace}/configmaps"), 200)

    # O=system:masters is an admin, through kubectl too.
    cert, key = _client_cert(apiservers_module, tmp_path, "root", ["system:masters"])
    root = as_user(apiservers_module, None, cert=(cert, key))
    assert root.post(f"/api/v1/namespaces/{namespace}/configmaps",
                     configmap("by-root")).code == 201
    config = kubeconfig.write_kubeconfig(tmp_path / "kc", apiservers_module.urls,
                                         apiservers_module.paths.ca_cert, "root",
                                         client_cert=cert.read_bytes(),
                                         client_key=key.read_bytes())
    for version in ("1.32", "1.20"):
        kubectl = Kubectl(version, config, tmp_path / f"home-{version}")
        assert kubectl.ok("get", "cm", "by-root", "-n", namespace, "-o", "name").strip() == \
            "configmap/by-root"
