"""A whole control plane on loopback for controller tests: real processes, hollow nodes.

`ControlPlane` starts, over a store cluster: apiservers (tests.apiserver_cluster), one
`kubelite scheduler` and several `kubelite controller-manager` processes (each with its
own --identity, so the Lease says who leads), and stops what it started, by PID.

`LoopThread` runs one asyncio loop in a background thread for the whole module: the
HollowNodes helper and the API client the tests use live there, since hollow nodes
must keep renewing Leases and running pods between (and during) the tests, which
themselves are plain functions that hand coroutines to `run()`.

Helpers for the tests: `deployment()` builds one, `live`/`available` count pods as a
Deployment does, and `Watch` replays a collection's history event by event so that a
test can check an invariant at every moment, not only at the end.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from apiserver.client import ApiClient, ApiStatusError
from controllers import podutil
from tests.apiserver_cluster import ApiserverCluster
from tests.clusters import Member, StoreClusterHandle, tail
from tests.kubelite_cluster import REPO

T = TypeVar("T")
Obj = dict[str, Any]
SSL_CLOSE_GRACE = 0.25
MAX_REWATCHES = 100
CM_LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager"


class LoopThread:
    """An event loop in a daemon thread; `run(coro, timeout)` waits for its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-loop",
                                        daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # aiohttp closes TLS transports a moment after their session: let that happen
            # before the loop goes, or their sockets are reported unclosed.
            await asyncio.sleep(SSL_CLOSE_GRACE)
            await self.loop.shutdown_asyncgens()

        try:
            self.run(cancel_rest(), 10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


class ControlPlane:
    """Apiservers, a scheduler and `managers` controller-managers over `store`."""

    def __init__(self, store: StoreClusterHandle, directory: Path, *, apiservers: int = 2,
                 managers: int = 2, manager_args: tuple[str, ...] = (),
                 election_args: tuple[str, ...] = ()) -> None:
        self.dir = directory
        self.apis = ApiserverCluster(store, directory / "apiservers", count=apiservers)
        self.manager_args = manager_args
        self.election_args = election_args
        self.env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep +
                        os.environ.get("PYTHONPATH", ""))
        self.managers = [Member(f"cm{i}", directory / f"cm{i}", directory / f"cm{i}.log")
                         for i in range(managers)]
        self.scheduler = Member("scheduler", directory / "scheduler",
                                directory / "scheduler.log")
        try:
            self.apis.wait_bootstrapped()
            self.scheduler.spawn(self._argv("scheduler", "--identity", "scheduler",
                                            *election_args), self.env)
            for i in range(managers):
                self.start_manager(i)
        except BaseException:
            self.close()
            raise

    def _argv(self, command: str, *args: str) -> list[str]:
        return [sys.executable, "-m", "controllers.main", command,
                "--kubeconfig", str(self.apis.kubeconfig), *args]

    def start_manager(self, i: int) -> None:
        self.managers[i].spawn(self._argv(
            "controller-manager", "--identity", self.managers[i].name,
            "--service-account-private-key-file", str(self.apis.paths.sa_key),
            "--root-ca-file", str(self.apis.paths.ca_cert),
            *self.election_args, *self.manager_args), self.env)

    def kill_manager(self, name: str) -> None:
        """SIGKILL: no lease release, the standby must wait the lease out."""
        for member in self.managers:
            if member.name == name:
                member.kill()
                return
        raise KeyError(name)

    def client(self) -> ApiClient:
        return ApiClient.from_kubeconfig(self.apis.kubeconfig, timeout=15.0)

    @staticmethod
    async def leader(api: ApiClient) -> str:
        """The controller-manager Lease's holder ("" before the first election)."""
        try:
            lease = await api.get(CM_LEASE)
        except ApiStatusError as err:
            if err.code == 404:
                return ""
            raise
        return str((lease.get("spec") or {}).get("holderIdentity") or "")

    def processes_alive(self) -> list[str]:
        return [m.name for m in [self.scheduler, *self.managers] if m.running]

    def log_tails(self) -> str:
        parts = [self.apis.log_tails()]
        for member in [self.scheduler, *self.managers]:
            parts.append(f"--- {member.log_path} ---\n{tail(member.log_path, 80)}")
        return "\n".join(parts)

    def close(self) -> None:
        for member in [*self.managers, self.scheduler]:
            member.stop(grace=5.0)
        self.apis.close()


async def wait_for(check: Callable[[], Awaitable[T | None]], timeout: float,
                   what: str, interval: float = 0.2) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


# --- workloads --------------------------------------------------------------------------


def deployment(name: str, replicas: int, *, image: str = "nginx:1", surge: object = "25%",
               unavailable: object = "25%", tolerate_seconds: int | None = None) -> Obj:
    """A Deployment of `app: name` pods asking 200m cpu each, with a named port `http`."""
    labels = {"app": name}
    pod_spec: Obj = {"containers": [{
        "name": "main", "image": image,
        "ports": [{"name": "http", "containerPort": 8080}],
        "resources": {"requests": {"cpu": "200m", "memory": "128Mi"}}}]}
    if tolerate_seconds is not None:  # shorter than the default 300 s admission gives
        pod_spec["tolerations"] = [
            {"key": key, "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": tolerate_seconds}
            for key in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                         "maxSurge": surge, "maxUnavailable": unavailable}},
                     "template": {"metadata": {"labels": labels}, "spec": pod_spec}}}


def live(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def available(pods: list[Obj]) -> list[Obj]:
    return [p for p in live(pods) if podutil.is_ready(p)]


class Watch:
    """Every object of a collection as the store's history shows it, revision by
    revision; `check(objects)` runs after each event, so it sees every intermediate state."""

    def __init__(self, api: ApiClient, path: str, check: Callable[[list[Obj]], None]) -> None:
        self.api, self.path, self.check = api, path, check
        self.objects: dict[str, Obj] = {}
        self.events = 0
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listed = await self.api.list(self.path)
        self.objects = {o["metadata"]["name"]: o for o in listed.items}
        self.check(list(self.objects.values()))
        self.task = asyncio.get_running_loop().create_task(
            self._watch(listed.resource_version), name=f"test-watch-{self.path}")

    async def _watch(self, version: str) -> None:
        for _ in range(MAX_REWATCHES):  # a watch the server ends is opened again
            async with self.api.watch(self.path, version, timeout_seconds=60) as stream:
                async for kind, obj in stream:
                    version = obj["metadata"]["resourceVersion"]
                    if kind == "BOOKMARK":
                        continue
                    if kind == "DELETED":
                        self.objects.pop(obj["metadata"]["name"], None)
                    else:
                        self.objects[obj["metadata"]["name"]] = obj
                    self.events += 1
                    self.check(list(self.objects.values()))
        raise AssertionError(f"watch of {self.path} re-opened {MAX_REWATCHES} times")

    async def stop(self) -> None:
        assert self.task is not None
        if self.task.done():
            self.task.result()  # a watch that died would have missed states: fail
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
