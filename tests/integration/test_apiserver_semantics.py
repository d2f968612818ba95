"""API semantics over raw HTTPS, on apiservers over both store kinds.

Optimistic concurrency under many writers on two apiservers, list pagination from one
snapshot, label and field selectors, watch order and bookmarks, 410 Expired after a
store compaction, the status/scale/binding/eviction subresources, generation, and
graceful deletion. Requests go out as the admin token through the cluster CA, so what
is checked is exactly what the server sent.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import pytest

from tests.apiserver_cluster import ApiserverCluster
from tests.apiserver_http import (
    Api,
    compact_store,
    configmap,
    deployment,
    pod,
    q,
    store_revision,
)

WRITERS = 20
INCREMENTS = 10
MAX_ATTEMPTS_PER_WRITER = 2000
CONFLICT = ("the object has been modified; please apply your changes to the latest version "
            "and try again")


def names(reply_json: dict) -> list[str]:
    return [item["metadata"]["name"] for item in reply_json["items"]]


# --- optimistic concurrency ---------------------------------------------------------


async def _increment(session: aiohttp.ClientSession, url: str, path: str,
                     accepted: list[tuple[int, int, int]], conflicts: list[dict]) -> None:
    """INCREMENTS read-modify-write rounds of an annotation counter, retrying on 409."""
    done = 0
    for _ in range(MAX_ATTEMPTS_PER_WRITER):
        if done == INCREMENTS:
            return
        async with session.get(url + path) as resp:
            assert resp.status == 200, await resp.text()
            obj = await resp.json()
        read_rv = int(obj["metadata"]["resourceVersion"])
        value = int(obj["metadata"]["annotations"]["counter"])
        obj["metadata"]["annotations"]["counter"] = str(value + 1)
        async with session.put(url + path, json=obj) as resp:
            assert resp.headers["Content-Type"] == "application/json"
            body = await resp.json()
            if resp.status == 200:
                accepted.append((read_rv, value, int(body["metadata"]["resourceVersion"])))
                done += 1
            else:
                assert resp.status == 409, body
                conflicts.append(body)
    raise AssertionError(f"a writer made only {done} increments in "
                         f"{MAX_ATTEMPTS_PER_WRITER} attempts")


async def _race(cluster: ApiserverCluster, path: str) -> tuple[list, list]:
    accepted: list[tuple[int, int, int]] = []
    conflicts: list[dict] = []
    ctx = ssl.create_default_context(cafile=str(cluster.paths.ca_cert))
    headers = {"Authorization": f"Bearer {cluster.admin_token}"}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=0),
                                     headers=headers, timeout=timeout) as session:
        # Writers alternate between the apiservers: the store's revision is the only lock.
        await asyncio.wait_for(asyncio.gather(*(
            _increment(session, cluster.urls[i % len(cluster.urls)], path, accepted, conflicts)
            for i in range(WRITERS))), 180)
    return accepted, conflicts


def test_optimistic_concurrency(apiservers_module: ApiserverCluster, admin_api: Api,
                                namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    created = admin_api.ok("POST", base, {"metadata": {"name": "counter",
                                                       "annotations": {"counter": "0"}}})
    accepted, conflicts = asyncio.run(_race(apiservers_module, base + "/counter"))

    final = admin_api.ok("GET", base + "/counter")
    assert len(accepted) == WRITERS * INCREMENTS
    assert int(final["metadata"]["annotations"]["counter"]) == len(accepted)
    # Every accepted write was based on the version the previous accepted write made:
    # ordered by the revision each produced, they form one unbroken chain.
    chain = sorted(accepted, key=lambda a: a[2])
    assert [value for _, value, _ in chain] == list(range(len(accepted)))
    previous = int(created["metadata"]["resourceVersion"])
    for read_rv, _, new_rv in chain:
        assert read_rv == previous
        previous = new_rv
    assert previous == int(final["metadata"]["resourceVersion"])
    # Every loser was told why, as a Conflict Status.
    assert conflicts, "20 concurrent writers never collided"
    for body in conflicts:
        assert (body["kind"], body["reason"], body["code"]) == ("Status", "Conflict", 409)
        assert body["message"] == f'Operation cannot be fulfilled on configmaps "counter": ' \
                                  f"{CONFLICT}"
        assert body["details"] == {"name": "counter", "kind": "configmaps"}


def test_update_with_a_stale_or_missing_object(admin_api: Api, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    first = admin_api.ok("POST", base, configmap("c", {"v": "1"}))
    admin_api.ok("PUT", base + "/c", dict(first, data={"v": "2"}))
    reply = admin_api.put(base + "/c", dict(first, data={"v": "3"}))  # first's RV is stale
    assert reply.code == 409 and reply.json["reason"] == "Conflict"
    assert admin_api.ok("GET", base + "/c")["data"] == {"v": "2"}
    reply = admin_api.put(base + "/missing", configmap("missing"))
    assert reply.code == 404 and reply.json["reason"] == "NotFound"


# --- lists ----------------------------------------------------------------------------


def test_pagination_covers_every_object_once_from_one_snapshot(
        admin_api: Api, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    expected = [f"cm-{i:02d}" for i in range(23)]
    for i, name in enumerate(expected):
        admin_api.ok("POST", base, configmap(name, labels={"parity": "even" if i % 2 == 0
                                                           else "odd"}))
    seen: list[str] = []
    versions = set()
    remaining = []
    token = ""
    for page in range(20):
        reply = admin_api.ok("GET", f"{base}?limit=5" + (f"&continue={q(token)}" if token
                                                          else ""))
        seen += names(reply)
        versions.add(reply["metadata"]["resourceVersion"])
        token = reply["metadata"].get("continue", "")
        if page == 0:  # written after the first page: not in this snapshot
            admin_api.ok("POST", base, configmap("cm-late"))
        if not token:
            break
        remaining.append(reply["metadata"]["remainingItemCount"])
        assert len(names(reply)) == 5
    assert seen == expected
    assert len(versions) == 1  # every page is read at the first page's revision
    assert remaining == [18, 13, 8, 3]

    # With a label selector, pages still hold `limit` matches each, none twice.
    seen, token = [], ""
    for _ in range(20):
        reply = admin_api.ok("GET", f"{base}?limit=4&labelSelector=parity%3Deven" +
                             (f"&continue={q(token)}" if token else ""))
        seen += names(reply)
        token = reply["metadata"].get("continue", "")
        if not token:
            break
    assert seen == expected[::2]

    reply = admin_api.get(f"{base}?limit=5&continue=bogus")
    assert reply.code == 400 and reply.json["reason"] == "BadRequest"


SELECTOR_PODS = {
    "p-a": ({"app": "web", "tier": "fe", "env": "prod"}, "node-1", "Running"),
    "p-b": ({"app": "web", "tier": "be"}, "node-2", "Succeeded"),
    "p-c": ({"app": "db", "env": "dev"}, None, None),
    "p-d": ({}, None, "Failed"),
}

LABEL_CASES = {
    "app=web": ["p-a", "p-b"],
    "app==web": ["p-a", "p-b"],
    "app!=web": ["p-c", "p-d"],
    "tier in (fe,be)": ["p-a", "p-b"],
    "tier notin (fe)": ["p-b", "p-c", "p-d"],
    "env": ["p-a", "p-c"],
    "!env": ["p-b", "p-d"],
    "app=web,tier!=fe": ["p-b"],
    "env in (prod, dev),app": ["p-a", "p-c"],
    "app in (nothing)": [],
}

FIELD_CASES = {
    "metadata.name=p-a": ["p-a"],
    "metadata.name!=p-a": ["p-b", "p-c", "p-d"],
    "spec.nodeName=node-1": ["p-a"],
    "spec.nodeName=": ["p-c", "p-d"],
    "status.phase=Running": ["p-a"],
    "status.phase=Pending": ["p-c"],
    "status.phase!=Failed,status.phase!=Succeeded": ["p-a", "p-c"],
    "metadata.name=p-b,spec.nodeName=node-2": ["p-b"],
}


def test_label_and_field_selectors(admin_api: Api, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/pods"
    for name, (labels, node, phase) in SELECTOR_PODS.items():
        admin_api.ok("POST", base, pod(name, node=node, labels=labels))
        if phase is not None:
            admin_api.ok("PATCH", f"{base}/{name}/status", {"status": {"phase": phase}},
                         content_type="application/merge-patch+json")

    for selector, expected in LABEL_CASES.items():
        assert names(admin_api.ok("GET", f"{base}?labelSelector={q(selector)}")) == expected, \
            selector
    for selector, expected in FIELD_CASES.items():
        assert names(admin_api.ok("GET", f"{base}?fieldSelector={q(selector)}")) == expected, \
            selector
    both = admin_api.ok("GET", f"{base}?labelSelector={q('app=web')}"
                               f"&fieldSelector={q('spec.nodeName=node-2')}")
    assert names(both) == ["p-b"]

    # metadata.namespace on a cluster-wide list picks exactly this namespace's pods.
    everywhere = admin_api.ok("GET", f"/api/v1/pods?fieldSelector="
                                     f"{q('metadata.namespace=' + namespace)}")
    assert names(everywhere) == list(SELECTOR_PODS)
    assert {p["metadata"]["namespace"] for p in everywhere["items"]} == {namespace}

    reply = admin_api.get(f"{base}?fieldSelector={q('spec.bogus=1')}")
    assert reply.code == 400 and reply.json["reason"] == "BadRequest"
    assert "field label not supported: spec.bogus" in reply.json["message"]
    reply = admin_api.get(f"{base}?labelSelector={q('a in (')}")
    assert reply.code == 400 and reply.json["reason"] == "BadRequest"


# --- watch ----------------------------------------------------------------------------


def test_watch_from_a_list_sends_every_change_in_order(
        apiservers_module: ApiserverCluster, admin_api: Api, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    admin_api.ok("POST", base, configmap("before"))
    rv = admin_api.ok("GET", base)["metadata"]["resourceVersion"]
    created = admin_api.ok("POST", base, configmap("w", {"v": "1"}))
    updated = admin_api.ok("PUT", base + "/w", dict(created, data={"v": "2"}))
    admin_api.ok("PATCH", base + "/w", {"data": {"v": "3"}},
                 content_type="application/merge-patch+json")
    admin_api.ok("DELETE", base + "/w")
    admin_api.ok("PATCH", base + "/before", {"data": {"x": "y"}},
                 content_type="application/merge-patch+json")

    # The same history from either apiserver: each has its own watch cache.
    for url in apiservers_module.urls:
        api = Api(url, apiservers_module.paths.ca_cert, token=apiservers_module.admin_token)
        reply, events = api.watch(f"{base}?watch=true&resourceVersion={rv}&timeoutSeconds=1")
        assert reply.code == 200 and reply.content_type == "application/json"
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
            ("ADDED", "w"), ("MODIFIED", "w"), ("MODIFIED", "w"), ("DELETED", "w"),
            ("MODIFIED", "before")]
        data = [e["object"].get("data") for e in events]
        assert data[:4] == [{"v": "1"}, {"v": "2"}, {"v": "3"}, {"v": "3"}]
        versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
        assert versions == sorted(set(versions)) and versions[0] > int(rv)
        assert versions[1] == int(updated["metadata"]["resourceVersion"])
        assert all(e["object"]["kind"] == "ConfigMap" for e in events)

    # A field selector narrows the stream to one object.
    reply, events = admin_api.watch(f"{base}?watch=1&resourceVersion={rv}&timeoutSeconds=1"
                                    f"&fieldSelector={q('metadata.name=before')}")
    assert [e["type"] for e in events] == ["MODIFIED"]


def test_watch_without_resource_version_starts_with_added(
        admin_api: Api, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for name in ("a", "b"):
        admin_api.ok("POST", base, configmap(name))
    _, events = admin_api.watch(f"{base}?watch=true&timeoutSeconds=1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"), ("ADDED", "b")]
    _, events = admin_api.watch(f"{base}?watch=true&resourceVersion=0&timeoutSeconds=1")
    assert [e["type"] for e in events] == ["ADDED", "ADDED"]


def test_label_selector_watch_reports_leaving_and_entering(
        admin_api: Api, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    admin_api.ok("POST", base, configmap("x", labels={"sel": "yes"}))
    rv = admin_api.ok("GET", base)["metadata"]["resourceVersion"]
    for value in ("no", "yes"):
        admin_api.ok("PATCH", base + "/x", {"metadata": {"labels": {"sel": value}}},
                     content_type="application/merge-patch+json")
    _, events = admin_api.watch(f"{base}?watch=true&resourceVersion={rv}&timeoutSeconds=1"
                                f"&labelSelector={q('sel=yes')}")
    assert [e["type"] for e in events] == ["DELETED", "ADDED"]


def test_watches_outlive_cluster_ip_allocation(apiservers_module: ApiserverCluster,
                                               admin_api: Api, namespace: str) -> None:
    # A Service's ClusterIP is claimed under /registry/ with a value that is no object;
    # that once ended the watch cache of every apiserver, and every watch fell silent.
    rv = admin_api.ok("GET", f"/api/v1/namespaces/{namespace}/configmaps")["metadata"][
        "resourceVersion"]
    admin_api.ok("POST", f"/api/v1/namespaces/{namespace}/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
        "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}})
    admin_api.ok("DELETE", f"/api/v1/namespaces/{namespace}/services/svc")
    admin_api.ok("POST", f"/api/v1/namespaces/{namespace}/configmaps", configmap("after"))
    for url in apiservers_module.urls:
        api = Api(url, apiservers_module.paths.ca_cert, token=apiservers_module.admin_token)
        _, events = api.watch(f"/api/v1/namespaces/{namespace}/configmaps?watch=true"
                              f"&resourceVersion={rv}&timeoutSeconds=1")
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
            ("ADDED", "after")]
        _, events = api.watch(f"/api/v1/namespaces/{namespace}/services?watch=true"
                              f"&resourceVersion={rv}&timeoutSeconds=1")
        assert [e["type"] for e in events] == ["ADDED", "DELETED"]


def test_bookmarks(admin_api: Api, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    admin_api.ok("POST", base, configmap("quiet"))
    rv = int(admin_api.ok("GET", base)["metadata"]["resourceVersion"])
    _, events = admin_api.watch(f"{base}?watch=true&resourceVersion={rv}"
                                "&allowWatchBookmarks=true&timeoutSeconds=2")
    assert events, "no BOOKMARK on an idle watch that allows them"
    assert {e["type"] for e in events} == {"BOOKMARK"}
    for event in events:
        obj = event["object"]
        assert (obj["kind"], obj["apiVersion"]) == ("ConfigMap", "v1")
        assert int(obj["metadata"]["resourceVersion"]) >= rv
    _, events = admin_api.watch(f"{base}?watch=true&resourceVersion={rv}&timeoutSeconds=1")
    assert events == []  # no bookmarks unless asked for


def test_expired_resource_version_after_compaction(
        apiservers_module: ApiserverCluster, admin_api: Api, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for name in ("one", "two"):
        admin_api.ok("POST", base, configmap(name))
    page = admin_api.ok("GET", f"{base}?limit=1")
    old_rv = page["metadata"]["resourceVersion"]
    for value in ("v1", "v2"):  # compacting at the second keeps only the second
        admin_api.ok("PATCH", base + "/one", {"data": {"k": value}},
                     content_type="application/merge-patch+json")
    store = apiservers_module.store
    compact_store(store.endpoints[0], store_revision(store.endpoints[0]))

    # The continue token points into compacted history.
    reply = admin_api.get(f"{base}?limit=1&continue={q(page['metadata']['continue'])}")
    assert reply.code == 410, reply
    assert (reply.json["reason"], reply.content_type) == ("Expired", "application/json")

    # A restarted apiserver's watch cache starts at the present, so an older watch goes
    # to the store, whose history before the compaction is gone: 410 Expired.
    apiservers_module.restart(1)
    api = Api(apiservers_module.urls[1], apiservers_module.paths.ca_cert,
              token=apiservers_module.admin_token)
    reply, events = api.watch(f"{base}?watch=true&resourceVersion={old_rv}&timeoutSeconds=5")
    if reply.code == 200:
        assert len(events) == 1, events
        assert events[0]["type"] == "ERROR"
        expired = events[0]["object"]
    else:
        assert reply.code == 410 and reply.content_type == "application/json"
        expired = reply.json
    assert (expired["kind"], expired["code"], expired["reason"]) == ("Status", 410, "Expired")

    # A fresh list and watch work again.
    rv = api.ok("GET", base)["metadata"]["resourceVersion"]
    admin_api.ok("DELETE", base + "/two")
    _, events = api.watch(f"{base}?watch=true&resourceVersion={rv}&timeoutSeconds=1")
    assert [e["type"] for e in events] == ["DELETED"]


# --- writes and subresources ----------------------------------------------------------


def test_status_subresource_and_generation(admin_api: Api, namespace: str) -> None:
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    created = admin_api.ok("POST", base, deployment("web", replicas=1))
    assert (created["metadata"]["generation"], created["status"]) == (1, {})

    # The status subresource changes status only, and never the generation.
    obj = admin_api.ok("GET", base + "/web")
    obj["spec"]["replicas"] = 9
    obj["status"] = {"replicas": 3, "observedGeneration": 1}
    out = admin_api.ok("PUT", base + "/web/status", obj)
    assert (out["spec"]["replicas"], out["status"]["replicas"]) == (1, 3)
    assert out["metadata"]["generation"] == 1
    out = admin_api.ok("PATCH", base + "/web/status", {"status": {"readyReplicas": 2},
                                                         "spec": {"replicas": 7}},
                       content_type="application/merge-patch+json")
    assert (out["spec"]["replicas"], out["status"]["readyReplicas"]) == (1, 2)

    # The main resource ignores status; metadata-only changes keep the generation.
    obj = admin_api.ok("GET", base + "/web")
    obj["status"] = {"replicas": 99}
    obj["metadata"]["labels"]["extra"] = "yes"
    out = admin_api.ok("PUT", base + "/web", obj)
    assert out["status"] == {"replicas": 3, "observedGeneration": 1, "readyReplicas": 2}
    assert out["metadata"]["generation"] == 1
    out = admin_api.ok("PATCH", base + "/web", {"status": {"replicas": 42}},
                       content_type="application/merge-patch+json")
    assert out["status"]["replicas"] == 3 and out["metadata"]["generation"] == 1

    # Spec changes bump it, once per change, through the main resource or scale.
    out = admin_api.ok("PATCH", base + "/web", {"spec": {"replicas": 2}},
                       content_type="application/merge-patch+json")
    assert out["metadata"]["generation"] == 2
    scale = admin_api.ok("PUT", base + "/web/scale", {
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": "web", "namespace": namespace}, "spec": {"replicas": 5}})
    assert scale["spec"]["replicas"] == 5
    final = admin_api.ok("GET", base + "/web")
    assert (final["spec"]["replicas"], final["metadata"]["generation"]) == (5, 3)
    assert final["status"]["replicas"] == 3

    # Pods: phase Pending on create; the status subresource sets the rest.
    pods = f"/api/v1/namespaces/{namespace}/pods"
    assert admin_api.ok("POST", pods, pod("p"))["status"]["phase"] == "Pending"
    out = admin_api.ok("PATCH", pods + "/p/status", {"status": {"phase": "Running"}},
                       content_type="application/merge-patch+json")
    assert out["status"]["phase"] == "Running"


def test_namespace_status_subresource(admin_api: Api, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}"
    assert admin_api.ok("GET", path + "/status")["metadata"]["name"] == namespace
    condition = {"type": "Ready", "status": "True"}
    out = admin_api.ok("PATCH", path + "/status", {"status": {"conditions": [condition]},
                                                   "metadata": {"labels": {"x": "y"}}},
                       content_type="application/merge-patch+json")
    assert out["status"]["conditions"] == [condition]
    assert out["status"]["phase"] == "Active" and "x" not in out["metadata"]["labels"]


def test_generate_name(admin_api: Api, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    made = [admin_api.ok("POST", base, {"metadata": {"generateName": "gen-"}})
            for _ in range(3)]
    generated = [m["metadata"]["name"] for m in made]
    assert len(set(generated)) == 3
    assert all(n.startswith("gen-") and len(n) == len("gen-") + 5 for n in generated)
    assert all(m["metadata"]["generateName"] == "gen-" for m in made)
    named = admin_api.ok("POST", base, {"metadata": {"name": "explicit",
                                                     "generateName": "gen-"}})
    assert named["metadata"]["name"] == "explicit"
    assert sorted(names(admin_api.ok("GET", base))) == sorted([*generated, "explicit"])


def test_graceful_pod_deletion(admin_api: Api, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/pods"
    admin_api.ok("POST", base, pod("bound", node="node-1"))
    rv = admin_api.ok("GET", base)["metadata"]["resourceVersion"]

    marked = admin_api.ok("DELETE", base + "/bound")
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
    still = admin_api.ok("GET", base + "/bound")
    assert still["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]
    again = admin_api.ok("DELETE", base + "/bound")  # deleting again changes nothing
    assert again["metadata"]["resourceVersion"] == still["metadata"]["resourceVersion"]
    # A pod being deleted keeps its spec: no rebinding.
    reply = admin_api.post(base + "/bound/binding", binding("bound", "node-2"))
    assert reply.code == 409

    admin_api.ok("DELETE", base + "/bound?gracePeriodSeconds=0")
    assert admin_api.get(base + "/bound").code == 404
    _, events = admin_api.watch(f"{base}?watch=true&resourceVersion={rv}&timeoutSeconds=1")
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]

    admin_api.ok("POST", base, pod("unscheduled"))
    deleted = admin_api.ok("DELETE", base + "/unscheduled")
    assert deleted["metadata"]["name"] == "unscheduled"
    assert admin_api.get(base + "/unscheduled").code == 404

    # A body with DeleteOptions works the same as the query parameter.
    admin_api.ok("POST", base, pod("bound2", node="node-1"))
    admin_api.ok("DELETE", base + "/bound2", {"kind": "DeleteOptions", "apiVersion": "v1",
                                              "gracePeriodSeconds": 0})
    assert admin_api.get(base + "/bound2").code == 404


def binding(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


def test_binding_sets_the_node_once(admin_api: Api, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/pods"
    admin_api.ok("POST", base, pod("p"))
    reply = admin_api.post(base + "/p/binding", binding("p", "node-1"))
    assert reply.code == 201, reply
    assert (reply.json["kind"], reply.json["status"]) == ("Status", "Success")
    assert admin_api.ok("GET", base + "/p")["spec"]["nodeName"] == "node-1"

    reply = admin_api.post(base + "/p/binding", binding("p", "node-2"))
    assert reply.code == 409 and reply.json["reason"] == "Conflict", reply
    assert 'is already assigned to node "node-1"' in reply.json["message"]
    assert admin_api.ok("GET", base + "/p")["spec"]["nodeName"] == "node-1"

    reply = admin_api.post(base + "/nosuch/binding", binding("nosuch", "node-1"))
    assert reply.code == 404 and reply.json["reason"] == "NotFound"
    admin_api.ok("POST", base, pod("q"))
    reply = admin_api.post(base + "/q/binding", {"apiVersion": "v1", "kind": "Binding",
                                                 "metadata": {"name": "q"}, "target": {}})
    assert reply.code == 422 and reply.json["reason"] == "Invalid"
    assert "nodeName" not in admin_api.ok("GET", base + "/q")["spec"]


def test_eviction(admin_api: Api, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/pods"

    def evict(name: str) -> object:
        return admin_api.post(f"{base}/{name}/eviction", {
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace}})

    admin_api.ok("POST", base, pod("loose"))
    reply = evict("loose")
    assert reply.code == 201 and reply.json["status"] == "Success", reply
    assert admin_api.get(base + "/loose").code == 404

    admin_api.ok("POST", base, pod("running", node="node-1"))
    assert evict("running").code == 201
    evicted = admin_api.ok("GET", base + "/running")
    assert evicted["metadata"]["deletionTimestamp"]  # graceful: the node finishes it

    reply = evict("nosuch")
    assert reply.code == 404 and reply.json["reason"] == "NotFound"


def test_objects_keep_server_owned_metadata(admin_api: Api, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    created = admin_api.ok("POST", base, configmap("m"))
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["namespace"] == namespace and int(meta["resourceVersion"]) > 0
    # Kubernetes ignores changes to creationTimestamp (rest.BeforeUpdate).
    forged = dict(created, metadata=dict(meta, creationTimestamp="2000-01-01T00:00:00Z"))
    out = admin_api.ok("PUT", base + "/m", forged)
    assert (out["metadata"]["uid"], out["metadata"]["creationTimestamp"]) == (
        meta["uid"], meta["creationTimestamp"])

    reply = admin_api.post(f"/api/v1/namespaces/{namespace}-missing/configmaps",
                           configmap("x"))
    assert reply.code == 404
    assert reply.json["message"] == f'namespaces "{namespace}-missing" not found'


@pytest.mark.parametrize("path", ["/api/v1/namespaces/default/configmaps/x/bogus",
                                  "/api/v1/namespaces/default/nosuch",
                                  "/apis/apps/v2/deployments"])
def test_unknown_paths_are_not_found(admin_api: Api, path: str) -> None:
    reply = admin_api.get(path)
    assert reply.code == 404 and reply.json["reason"] == "NotFound"
