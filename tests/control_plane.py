"""A whole control plane on loopback for controller tests: real processes, hollow nodes.

`ControlPlane` starts, over a store cluster: apiservers (tests.apiserver_cluster), one
`kubelite scheduler` and several `kubelite controller-manager` processes (each with its
own --identity, so the Lease says who leads), and stops what it started, by PID.

`LoopThread` runs one asyncio loop in a background thread for the whole module: the
HollowNodes helper and the API client the tests use live there, since hollow nodes
must keep renewing Leases and running pods between (and during) the tests, which
themselves are plain functions that hand coroutines to `run()`.
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
from tests.apiserver_cluster import ApiserverCluster
from tests.clusters import Member, StoreClusterHandle, tail
from tests.kubelite_cluster import REPO

T = TypeVar("T")
SSL_CLOSE_GRACE = 0.25
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
