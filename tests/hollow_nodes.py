"""Hollow nodes for integration tests and benchmarks, as Kubernetes' kubemark has them.

A hollow node is what the control plane sees of a machine, with no machine behind it:
a Node object (Ready, with allocatable cpu, memory and pods), its Lease in
kube-node-lease renewed every `renew_interval` as the kubelet does, and a make-believe
kubelet for the pods bound to it: a bound pod is marked Running and Ready with a pod IP
from the node's range, a pod whose deletion was requested is finished (deleted with
grace 0, as the kubelet does once its containers stopped). No process is started.

    nodes = HollowNodes(api, 5, cpu="4", memory="8Gi", pods="110")
    await nodes.start()
    ...
    nodes.stop_renewing("hollow-2")      # the node "dies": its Lease goes stale
    await nodes.stop()

Tests steer the make-believe kubelet with `phase_for(pod)`: the phase a bound pod should
reach ("Running", "Succeeded" or "Failed"); the default reads the pod annotation
`kubelite.io/hollow-phase`, so a Job template can ask for its pods to succeed.
`set_ready(key, False)` flips one running pod's readiness.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from apiserver.client import ApiClient, ApiStatusError
from apiserver.informer import Informer
from apiserver.informer_cache import key_of
from apiserver.workqueue import QueueShutDown, WorkQueue
from controllers.leader_election import micro_time

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PHASE_ANNOTATION = "kubelite.io/hollow-phase"
NODE_LEASE_NAMESPACE = "kube-node-lease"
NODE_LEASE_SECONDS = 40
WORKERS = 8
CREATE_CONCURRENCY = 32


def annotated_phase(pod: Mapping[str, Any]) -> str:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(PHASE_ANNOTATION) or "Running")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_object(name: str, cpu: str, memory: str, pods: str, index: int,
                labels: Mapping[str, str] | None = None) -> Obj:
    stamp = _now()
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                              "kubernetes.io/os": "linux",
                                              "kubelite.io/hollow": "true", **(labels or {})}},
        "spec": {},
        "status": {
            "capacity": {"cpu": cpu, "memory": memory, "pods": pods},
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "hollow kubelet is posting ready status",
                            "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}],
            "addresses": [{"type": "InternalIP", "address": f"127.1.{index // 256}.{index % 256}"},
                          {"type": "Hostname", "address": name}],
            "nodeInfo": {"kubeletVersion": "v1.32.0-hollow", "operatingSystem": "linux",
                         "architecture": "amd64", "containerRuntimeVersion": "hollow://0"},
        },
    }


class HollowNodes:
    """`count` hollow nodes named `<prefix>0` .. `<prefix>N-1` (see the module docstring)."""

    def __init__(self, api: ApiClient, count: int, cpu: str = "4", memory: str = "8Gi",
                 pods: str = "110", *, prefix: str = "hollow-", renew_interval: float = 10.0,
                 labels: Mapping[str, str] | None = None, renew_leases: bool = True,
                 run_pods: bool = True,
                 phase_for: Callable[[Mapping[str, Any]], str] = annotated_phase) -> None:
        self.api = api
        self.cpu, self.memory, self.pods = cpu, memory, pods
        self.prefix = prefix
        self.renew_interval = renew_interval
        self.labels = dict(labels or {})
        self.renew_leases = renew_leases
        self.run_pods = run_pods
        self.phase_for = phase_for
        self.names = [f"{prefix}{i}" for i in range(count)]
        self._index = {name: i for i, name in enumerate(self.names)}
        self.silent: set[str] = set()  # nodes whose Lease is no longer renewed
        self.unready: set[str] = set()  # pod keys to report not ready
        self._ips: dict[str, str] = {}
        self._ip_counts: dict[str, int] = {}
        self._informer: Informer | None = None
        self._queue: WorkQueue[str] = WorkQueue("hollow-kubelet")
        self._tasks: list[asyncio.Task[None]] = []

    # --- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Register every node (and its Lease), then start renewing and running pods."""
        await self._bounded([self._register(name) for name in self.names])
        loop = asyncio.get_running_loop()
        if self.renew_leases:
            self._spawn(loop, self._renew_loop(), "hollow-lease-renewer")
        if self.run_pods:
            self._informer = Informer(self.api, "pods")
            self._informer.add_handlers(self._enqueue, lambda _old, new: self._enqueue(new))
            await self._informer.start()
            await self._informer.wait_synced(60)
            for i in range(WORKERS):
                self._spawn(loop, self._kubelet_worker(), f"hollow-kubelet-{i}")

    async def stop(self) -> None:
        """Stop renewing and running pods (the Node objects stay)."""
        self._queue.shutdown()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._informer is not None:
            await self._informer.stop()

    async def delete(self) -> None:
        """Stop, then delete the Node objects and their Leases (test clean-up)."""
        await self.stop()

        async def gone(path: str) -> None:
            try:
                await self.api.delete(path)
            except ApiStatusError as err:
                if err.code != 404:
                    raise

        await self._bounded([gone(self.api.path("v1", "nodes", None, name)) for name in self.names])
        if self.renew_leases:
            await self._bounded([gone(self.api.path("coordination.k8s.io/v1", "leases",
                                                    NODE_LEASE_NAMESPACE, name))
                                 for name in self.names])

    async def __aenter__(self) -> HollowNodes:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def add_node(self, name: str, cpu: str | None = None, memory: str | None = None,
                       pods: str | None = None) -> None:
        """One more hollow node (e.g. a bigger one), registered now."""
        self._index[name] = len(self._index)
        self.names.append(name)
        await self._register(name, cpu, memory, pods)

    def stop_renewing(self, name: str) -> None:
        self.silent.add(name)

    def resume_renewing(self, name: str) -> None:
        self.silent.discard(name)

    def set_ready(self, pod_key: str, ready: bool) -> None:
        """Report the running pod `namespace/name` ready or not from now on."""
        (self.unready.discard if ready else self.unready.add)(pod_key)
        self._queue.add(pod_key)

    # --- nodes and leases ---------------------------------------------------------------

    async def _register(self, name: str, cpu: str | None = None, memory: str | None = None,
                        pods: str | None = None) -> None:
        node = node_object(name, cpu or self.cpu, memory or self.memory, pods or self.pods,
                           self._index[name], self.labels)
        await _create_or_keep(self.api, node)
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": name, "namespace": NODE_LEASE_NAMESPACE},
                 "spec": {"holderIdentity": name, "leaseDurationSeconds": NODE_LEASE_SECONDS,
                          "renewTime": micro_time(datetime.now(UTC))}}
        if self.renew_leases:
            await _create_or_keep(self.api, lease)

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.renew_interval)
            stamp = micro_time(datetime.now(UTC))
            names = [n for n in self.names if n not in self.silent]
            await self._bounded([self._renew(name, stamp) for name in names])

    async def _renew(self, name: str, stamp: str) -> None:
        path = self.api.path("coordination.k8s.io/v1", "leases", NODE_LEASE_NAMESPACE, name)
        try:
            await self.api.patch(path, {"spec": {"renewTime": stamp}}, timeout=5.0)
        except ApiStatusError as err:
            log.info("hollow node %s: renewing its lease: %s", name, err)

    # --- the make-believe kubelet -------------------------------------------------------

    def _enqueue(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName") in self._index:
            self._queue.add(key_of(pod))

    async def _kubelet_worker(self) -> None:
        while True:
            try:
                key = await self._queue.get()
            except QueueShutDown:
                return
            try:
                await self._sync_pod(key)
            except ApiStatusError as err:
                if err.code not in (404, 409):
                    log.info("hollow kubelet: %s: %s; retrying", key, err)
                    self._queue.add_rate_limited(key)
            finally:
                self._queue.done(key)

    async def _sync_pod(self, key: str) -> None:
        assert self._informer is not None
        pod = self._informer.cache.get(key)
        if pod is None:
            return
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        node = spec.get("nodeName")
        if node not in self._index or node in self.silent:
            return  # a dead node's kubelet does nothing
        path = self.api.path("v1", "pods", meta["namespace"], meta["name"])
        if meta.get("deletionTimestamp"):
            await self.api.delete(path, {"gracePeriodSeconds": 0,
                                         "preconditions": {"uid": meta.get("uid")}})
            return
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        wanted = self.pod_status(pod, node)
        if _differs(status, wanted):
            await self.api.patch(path + "/status", {"status": wanted}, type="strategic")

    def pod_status(self, pod: Mapping[str, Any], node: str) -> Obj:
        """The status the hollow kubelet reports for a pod bound to `node`."""
        key = key_of(pod)
        status = pod.get("status") or {}
        phase = self.phase_for(pod)
        ready = "True" if phase == "Running" and key not in self.unready else "False"
        stamp = _now()
        containers = [{"name": c.get("name", ""), "image": c.get("image", ""),
                       "ready": ready == "True", "restartCount": 0,
                       "state": _container_state(phase, stamp)}
                      for c in (pod.get("spec") or {}).get("containers") or []]
        conditions = [{"type": t, "status": s, "lastTransitionTime": stamp,
                       "lastProbeTime": None}
                      for t, s in (("Initialized", "True"), ("Ready", ready),
                                   ("ContainersReady", ready), ("PodScheduled", "True"))]
        ip = status.get("podIP") or self._pod_ip(node, key)
        return {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}],
                "hostIP": f"127.1.{self._index[node] // 256}.{self._index[node] % 256}",
                "startTime": status.get("startTime") or stamp, "conditions": conditions,
                "containerStatuses": containers}

    def _pod_ip(self, node: str, key: str) -> str:
        """The pod's address in 10.<64 + i/256>.<i%256>.0/24 for node i (2 .. 251, then
        round again: a hollow node holds far fewer live pods than that)."""
        ip = self._ips.get(key)
        if ip is None:
            i = self._index[node]
            count = self._ip_counts.get(node, 0)
            self._ip_counts[node] = count + 1
            ip = str(ipaddress.IPv4Address(f"10.{64 + i // 256}.{i % 256}.{2 + count % 250}"))
            self._ips[key] = ip
        return ip

    # --- helpers ------------------------------------------------------------------------

    def _spawn(self, loop: asyncio.AbstractEventLoop, coro: Any, name: str) -> None:
        task = loop.create_task(coro, name=name)
        task.add_done_callback(_log_crash)
        self._tasks.append(task)

    @staticmethod
    async def _bounded(coros: list[Any]) -> None:
        gate = asyncio.Semaphore(CREATE_CONCURRENCY)

        async def one(coro: Any) -> None:
            async with gate:
                await coro

        await asyncio.gather(*(one(c) for c in coros))


def _container_state(phase: str, stamp: str) -> Obj:
    if phase == "Running":
        return {"running": {"startedAt": stamp}}
    code = 0 if phase == "Succeeded" else 1
    return {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                           "startedAt": stamp, "finishedAt": stamp}}


def _differs(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Only write when phase, IP or readiness would change (not for timestamps)."""
    def ready(status: Mapping[str, Any]) -> Any:
        return [c.get("status") for c in status.get("conditions") or []
                if c.get("type") == "Ready"]
    return (current.get("phase") != wanted["phase"] or current.get("podIP") != wanted["podIP"]
            or ready(current) != ready(wanted))


async def _create_or_keep(api: ApiClient, obj: Obj) -> None:
    """Create `obj`; one that already exists (a restarted helper) is kept."""
    try:
        await api.create(obj)
    except ApiStatusError as err:
        if err.code != 409:
            raise


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s crashed", task.get_name(), exc_info=task.exception())
