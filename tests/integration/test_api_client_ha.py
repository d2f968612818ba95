"""The API client, the informer and HAProxy against real processes, with faults.

One module-wide cluster: 3 `kubelite store` members, 3 `kubelite apiserver`s over them,
and Debian's HAProxy in front with the configuration `kubelite apiserver haproxy-config`
generates. Tests kill apiservers and the store's leader; the `healthy` fixture restarts
whatever an earlier test killed, so each test starts with everything up.

- kubectl reads a kubeconfig written by `kubelite kubeconfig` and reaches the cluster
  through HAProxy.
- An informer follows creates, updates and deletes made by another client, and keeps
  following them (re-listing) when the apiserver it watches dies.
- During a stream of ConfigMap creates, through HAProxy with a plain HTTP client and
  through the ApiClient with all three apiservers, one apiserver and then the store's
  leader are killed: every request succeeds or fails retryably (429/503/504 or a
  connection error), writes resume within 3 s, and every acknowledged object exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from apiserver.auth import kubeconfig
from apiserver.client import ApiClient, ApiStatusError, ApiUnavailable
from apiserver.informer import Informer
from tests.apiserver_cluster import ApiserverCluster
from tests.clusters import healthy as store_member_healthy
from tests.clusters import wait_for_leader, wait_until
from tests.haproxy_balancer import HAProxy
from tests.kubelite_cluster import REPO, KubeliteCluster

T = TypeVar("T")

TEST_TIMEOUT = 90.0
RECOVERY_LIMIT = 3.0  # the longest time without a successful write that we accept
WRITERS = 4  # concurrent writers per client kind
REQUEST_TIMEOUT = 5.0  # one create through HAProxy; the ApiClient's call timeout
RETRYABLE = {429, 503, 504}
KUBECTL = "/usr/bin/kubectl"


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, TEST_TIMEOUT)

    return asyncio.run(bounded())


@dataclass
class Cluster:
    store: KubeliteCluster
    apis: ApiserverCluster
    lb: HAProxy

    def client(self, servers: list[str] | None = None, **options: Any) -> ApiClient:
        config = kubeconfig.load_kubeconfig(self.apis.kubeconfig)
        return ApiClient(servers or self.apis.urls, ssl=kubeconfig.ssl_context(config),
                         token=self.apis.admin_token, **options)

    def logs(self) -> str:
        return "\n".join([self.store.log_tails(), self.apis.log_tails(), self.lb.log_tail()])


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("ha")
    failed_before = request.session.testsfailed
    with contextlib.ExitStack() as stack:
        store = KubeliteCluster(size=3, tmp_dir=base)
        stack.callback(store.close)
        apis = ApiserverCluster(store, base / "apiservers", count=3)
        stack.callback(apis.close)
        apis.wait_bootstrapped()
        lb = HAProxy(apis.urls, base / "haproxy", apis.paths.ca_cert)
        stack.callback(lb.close)
        found = Cluster(store, apis, lb)
        yield found
        if request.session.testsfailed > failed_before:
            print("\ncluster logs:\n" + found.logs())


@pytest.fixture
def healthy(cluster: Cluster) -> Cluster:
    """Everything an earlier test killed is running again and ready."""
    for i, member in enumerate(cluster.store.members):
        if not member.running:
            cluster.store.start(i)
    wait_until(lambda: all(store_member_healthy(e) for e in cluster.store.endpoints), 30,
               what="every store member healthy")
    for i, member in enumerate(cluster.apis.members):
        if not member.running:
            cluster.apis.start(i)
    wait_until(lambda: all(cluster.apis.ready(i) for i in range(3)), 30,
               what="every apiserver ready")
    return cluster


async def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.05)


def configmap(namespace: str, name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace}, "data": data}


async def make_namespace(api: ApiClient, name: str) -> None:
    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


# --- kubectl through HAProxy -----------------------------------------------------------


def test_kubectl_reads_a_kubeconfig_from_kubelite_kubeconfig(healthy: Cluster,
                                                             tmp_path: Path) -> None:
    if not os.access(KUBECTL, os.X_OK):
        pytest.fail(f"{KUBECTL} is missing", pytrace=False)
    token_file = tmp_path / "admin.token"
    token_file.write_text(healthy.apis.admin_token + "\n")
    config = tmp_path / "admin.kubeconfig"
    env = dict(os.environ, PYTHONPATH=str(REPO), HOME=str(tmp_path / "home"))
    written = subprocess.run(
        [sys.executable, "-m", "kubelite_cli", "kubeconfig",
         "--server", healthy.lb.url, "--server", ",".join(healthy.apis.urls),
         "--certificate-authority", str(healthy.apis.paths.ca_cert),
         "--token-file", str(token_file), "--user", "admin", "--output", str(config)],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert written.returncode == 0, written.stderr
    assert config.stat().st_mode & 0o777 == 0o600
    loaded = kubeconfig.load_kubeconfig(config)
    assert loaded.servers == (healthy.lb.url, *healthy.apis.urls)

    got = subprocess.run([KUBECTL, "--kubeconfig", str(config), "get", "ns"], env=env,
                         capture_output=True, text=True, timeout=60, check=False)
    assert got.returncode == 0, got.stderr
    names = [line.split()[0] for line in got.stdout.splitlines()[1:]]
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= set(names)

    async def through_own_client() -> None:
        # kubelite's client reads the same file and fails over between every server.
        async with ApiClient.from_kubeconfig(config) as api:
            assert [*api.servers.urls] == [healthy.lb.url, *healthy.apis.urls]
            listed = await api.list(api.path("v1", "namespaces"))
            assert "default" in {ns["metadata"]["name"] for ns in listed.items}

    run(through_own_client())


# --- the informer ----------------------------------------------------------------------


def test_informer_follows_changes_and_survives_its_apiserver_dying(healthy: Cluster) -> None:
    async def body() -> None:
        ns = "informer-follows"
        seen: list[tuple[str, str, str]] = []  # (kind, name, color)

        def color(cm: dict[str, Any]) -> str:
            return (cm.get("data") or {}).get("color", "")

        async with healthy.client(timeout=10) as api, \
                healthy.client(list(reversed(healthy.apis.urls)), timeout=10) as writer:
            await make_namespace(writer, ns)
            for name in ("a", "b", "c"):
                await writer.create(configmap(ns, name, color="red"))
            informer = Informer(api, "configmaps", namespace=ns,
                                indexers={"by_color": lambda cm: color(cm) or None})
            informer.add_handlers(
                on_add=lambda cm: seen.append(("add", cm["metadata"]["name"], color(cm))),
                on_update=lambda old, new: seen.append(
                    ("update", new["metadata"]["name"], color(new))),
                on_delete=lambda cm: seen.append(("delete", cm["metadata"]["name"],
                                                  color(cm))))
            async with informer:
                await informer.wait_synced(10)
                assert sorted(seen) == [("add", n, "red") for n in "abc"]
                seen.clear()

                await writer.create(configmap(ns, "d", color="blue"))
                await writer.patch(writer.path("v1", "configmaps", ns, "a"),
                                   {"data": {"color": "blue"}})
                await writer.delete(writer.path("v1", "configmaps", ns, "b"))
                await eventually(lambda: len(seen) >= 3, 10, "three events")
                assert seen == [("add", "d", "blue"), ("update", "a", "blue"),
                                ("delete", "b", "red")]
                assert informer.keys() == [f"{ns}/a", f"{ns}/c", f"{ns}/d"]
                assert [cm["metadata"]["name"] for cm in
                        informer.by_index("by_color", "blue")] == ["a", "d"]
                seen.clear()

                # Kill the apiserver the informer lists and watches through.
                victim = healthy.apis.urls.index(api.current_server)
                lists = informer.lists
                await asyncio.to_thread(healthy.apis.kill, victim)
                await writer.create(configmap(ns, "e", color="green"))
                await writer.patch(writer.path("v1", "configmaps", ns, "c"),
                                   {"data": {"color": "blue"}})
                await writer.delete(writer.path("v1", "configmaps", ns, "d"))
                await eventually(lambda: len(seen) >= 3, 15, "three events after the kill")
                await asyncio.sleep(0.5)  # nothing more may follow
                assert sorted(seen) == [("add", "e", "green"), ("delete", "d", "blue"),
                                        ("update", "c", "blue")]
                assert informer.lists > lists, "a broken stream is followed by a re-list"
                assert api.current_server != healthy.apis.urls[victim]
                listed = await writer.list(writer.path("v1", "configmaps", ns))
                assert {f"{ns}/{cm['metadata']['name']}": cm["metadata"]["resourceVersion"]
                        for cm in listed.items} == \
                    {f"{ns}/{cm['metadata']['name']}": cm["metadata"]["resourceVersion"]
                     for cm in informer.list()}
                assert [cm["metadata"]["name"] for cm in
                        informer.by_index("by_color", "blue")] == ["a", "c"]

    run(body())


# --- writes through faults -------------------------------------------------------------


@dataclass
class WriteLog:
    """What one kind of client saw: acknowledged names, success times, failures."""

    acked: list[str] = field(default_factory=list)
    successes: list[float] = field(default_factory=list)
    retryable: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)

    def longest_gap(self, start: float, end: float) -> float:
        times = [start, *sorted(self.successes), end]
        return max(b - a for a, b in zip(times, times[1:], strict=False))


async def write_stream(log: WriteLog, prefix: str, stop: asyncio.Event,
                       create: Callable[[str], Awaitable[None]]) -> None:
    """Create ConfigMaps with unique names until `stop`; classify every outcome."""
    loop = asyncio.get_running_loop()
    for seq in range(100_000):
        if stop.is_set():
            return
        name = f"{prefix}-{seq}"
        try:
            await create(name)
        except ApiUnavailable as exc:
            log.retryable.append(f"{name}: unavailable {exc.code} {exc.causes[-1:]}")
        except ApiStatusError as exc:
            (log.retryable if exc.code in RETRYABLE else log.bad).append(f"{name}: {exc}")
        except (aiohttp.ClientConnectionError, ConnectionError) as exc:
            log.retryable.append(f"{name}: connection {type(exc).__name__}")
        except TimeoutError:
            log.bad.append(f"{name}: no answer within {REQUEST_TIMEOUT} s")
        else:
            log.acked.append(name)
            log.successes.append(loop.time())
            continue
        await asyncio.sleep(0.05)


def test_writes_survive_losing_an_apiserver_and_the_store_leader(healthy: Cluster) -> None:
    async def body() -> None:
        ns = "ha-writes"
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        through_lb, through_client = WriteLog(), WriteLog()
        config = kubeconfig.load_kubeconfig(healthy.apis.kubeconfig)
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=kubeconfig.ssl_context(config), limit=0),
            headers={"Authorization": f"Bearer {healthy.apis.admin_token}"})
        url = f"{healthy.lb.url}/api/v1/namespaces/{ns}/configmaps"

        async def create_via_lb(name: str) -> None:
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
            async with session.post(url, json=configmap(ns, name), timeout=timeout) as resp:
                body = await resp.json(content_type=None)
                if resp.status != 201:
                    raise ApiStatusError(resp.status, body.get("reason", ""), body)

        async with session, healthy.client(timeout=REQUEST_TIMEOUT) as api:
            await make_namespace(api, ns)

            async def create_via_client(name: str) -> None:
                await api.create(configmap(ns, name))

            writers = [asyncio.create_task(write_stream(log, f"{kind}{w}", stop, create),
                                           name=f"writer-{kind}{w}")
                       for kind, log, create in (("lb", through_lb, create_via_lb),
                                                 ("client", through_client, create_via_client))
                       for w in range(WRITERS)]
            start = loop.time()
            try:
                await asyncio.sleep(1.5)
                victim = healthy.apis.urls.index(api.current_server)
                await asyncio.to_thread(healthy.apis.kill, victim)
                killed_apiserver = loop.time()
                await asyncio.sleep(3.0)
                leader = await asyncio.to_thread(wait_for_leader, healthy.store)
                await asyncio.to_thread(healthy.store.kill, leader)
                killed_leader = loop.time()
                await asyncio.sleep(4.0)
            finally:
                stop.set()
                await asyncio.gather(*writers)
            end = loop.time()

            for kind, log in (("HAProxy", through_lb), ("ApiClient", through_client)):
                resumed = [min((t for t in log.successes if t > when), default=end) - when
                           for when in (killed_apiserver, killed_leader)]
                report = (f"{kind}: longest gap {log.longest_gap(start, end):.2f} s, first "
                          f"success {resumed[0]:.2f} s after the apiserver kill, "
                          f"{resumed[1]:.2f} s after the leader kill, "
                          f"{len(log.acked)} acknowledged, {len(log.retryable)} retryable "
                          f"failures {log.retryable[:8]}, bad {log.bad[:8]}")
                print(report)
                assert not log.bad, report
                assert log.longest_gap(start, end) < RECOVERY_LIMIT, report
                assert any(t > killed_apiserver + 0.5 for t in log.successes), report
                assert any(t > killed_leader + RECOVERY_LIMIT for t in log.successes), report

            listed = await api.list(api.path("v1", "configmaps", ns), page_size=100)
            present = {cm["metadata"]["name"] for cm in listed.items}
            for log in (through_lb, through_client):
                missing = sorted(set(log.acked) - present)
                assert not missing, f"acknowledged but lost: {missing[:20]}"

    run(body())
