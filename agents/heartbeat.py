"""Node registration and heartbeats: the agent's Node object and its Lease.

As the kubelet does it, with the decisions in agents/node_status.py:

- register: create the Node (labels, --register-with-taints, the first status). If it
  already exists (the agent restarted), keep what others set in it (spec.podCIDR from
  node IPAM, taints from the lifecycle controller or an operator), merge our labels into
  its labels, and post our status; a 409 on the way means someone wrote in between, so
  read it again and redo the change (a few times, then fail this attempt);
- the Lease `kube-node-lease/<node>` (holderIdentity the node, leaseDurationSeconds 40,
  renewTime, owned by the Node so it goes when the Node goes) is renewed every
  `lease_interval`: the cheap, frequent sign of life the node lifecycle controller
  watches;
- the status is rebuilt every `check_interval` and posted (update of nodes/status at
  the resourceVersion read, again on conflict) when it changed, heartbeat times aside,
  or when `status_interval` passed, or at once on `poke()`;
- the Node is followed with an informer (field selector metadata.name), so `node`
  is current: other components read spec.podCIDR from it (`wait_pod_cidr`). If the Node
  is deleted while the agent runs, the next status check registers it again.

Failures never end the loops: each retries after `retry_delay` (exponential, capped at
its normal interval), an outage is logged once when it starts and once when it ends,
and on recovery the Lease is read afresh and the status is posted at once, whatever the
control plane did meanwhile (marked the node Unknown, say).

    heartbeat = NodeHeartbeat(api, "node-1", build_status=builder, labels=labels)
    await heartbeat.start()
    await heartbeat.wait_registered(30)
    cidr = await heartbeat.wait_pod_cidr(60)
    ...
    await heartbeat.stop()
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from agents import node_status
from apiserver.client import ApiClient, ApiStatusError
from apiserver.informer import Informer

log = logging.getLogger(__name__)

T = TypeVar("T")
Obj = dict[str, Any]
BuildStatus = Callable[[list[Obj] | None], Obj]

NODE_LEASE_NAMESPACE = "kube-node-lease"
LEASE_API = "coordination.k8s.io/v1"
CONFLICT_RETRIES = 5  # re-reads after a 409 within one attempt


class NodeHeartbeat:
    """Registers node `node_name` through `api` and keeps its Lease and status fresh.

    `build_status(previous_conditions)` returns the status to report (it may block
    briefly: it runs in a thread); `labels`, `annotations` and `taints` are what the
    Node is registered with (labels and annotations are also merged into an existing
    Node, taints only go on a new one); `call_timeout` bounds each API call including
    the client's failover.
    """

    def __init__(self, api: ApiClient, node_name: str, *, build_status: BuildStatus,
                 labels: Mapping[str, str], taints: Sequence[Mapping[str, Any]] | None = None,
                 annotations: Mapping[str, str] | None = None,
                 lease_interval: float = 10.0, status_interval: float = 60.0,
                 lease_duration: int = 40, check_interval: float = 10.0,
                 call_timeout: float = 10.0) -> None:
        self.api = api
        self.node_name = node_name
        self.build_status = build_status
        self.labels = dict(labels)
        self.taints = [dict(t) for t in taints or []]
        self.annotations = dict(annotations or {})
        self.lease_interval = lease_interval
        self.status_interval = status_interval
        self.lease_duration = lease_duration
        self.check_interval = check_interval
        self.call_timeout = call_timeout
        self.status_posts = 0  # successful status writes (registration included)
        self.lease_renewals = 0  # successful Lease writes
        self.write_failures = 0  # failed attempts of the background loops
        self._node: Obj | None = None
        self._lease: Obj | None = None
        self._last_posted: float | None = None
        self._registered = asyncio.Event()
        self._node_seen = asyncio.Event()
        self._poked = asyncio.Event()
        self._outage_since: float | None = None
        self._informer: Informer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # --- what others read -----------------------------------------------------------

    @property
    def node(self) -> Obj | None:
        """The newest Node object seen (from our writes or the informer); do not modify."""
        return self._node

    @property
    def registered(self) -> bool:
        return self._registered.is_set()

    @property
    def failing(self) -> bool:
        """True from a failed write until the next one succeeds (an outage, say)."""
        return self._outage_since is not None

    @property
    def running(self) -> bool:
        """Started, and no background loop has ended (they only end on stop())."""
        return bool(self._tasks) and all(not t.done() for t in self._tasks)

    async def wait_registered(self, timeout: float) -> Obj:
        """The Node once registered; TimeoutError after `timeout`."""
        await asyncio.wait_for(self._registered.wait(), timeout)
        return self._node or {}

    async def wait_pod_cidr(self, timeout: float) -> str:
        """spec.podCIDR once node IPAM assigned one; "" if none came within `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._node_seen.clear()
            cidr = str(((self._node or {}).get("spec") or {}).get("podCIDR") or "")
            if cidr:
                return cidr
            remaining = deadline - loop.time()
            if remaining <= 0:
                return ""
            try:
                await asyncio.wait_for(self._node_seen.wait(), remaining)
            except TimeoutError:
                pass

    def poke(self) -> None:
        """Post the status now (readiness changed, say), not at the next check."""
        self._poked.set()

    # --- life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Follow the Node and start registering and heartbeating in the background."""
        if self._tasks:
            raise RuntimeError("the heartbeat is already started")
        self._informer = Informer(self.api, "nodes",
                                  field_selector=f"metadata.name={self.node_name}")
        self._informer.add_handlers(self._observe, lambda _old, new: self._observe(new),
                                    self._deleted)
        await self._informer.start()
        self._spawn(self._status_loop(), f"node-status-{self.node_name}")
        self._spawn(self._lease_loop(), f"node-lease-{self.node_name}")

    async def stop(self) -> None:
        """Stop heartbeating (the Node and Lease stay: the control plane sees it go quiet)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._informer is not None:
            await self._informer.stop()
            self._informer = None

    async def __aenter__(self) -> NodeHeartbeat:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- one attempt of each write (the loops retry) --------------------------------

    async def register(self) -> Obj:
        """Create the Node, or bring an existing one up to date; then its Lease."""
        status = await self._build(None)
        body: Obj = {"apiVersion": "v1", "kind": "Node",
                     "metadata": {"name": self.node_name, "labels": dict(self.labels),
                                  "annotations": dict(self.annotations)},
                     "spec": {"taints": copy.deepcopy(self.taints)} if self.taints else {},
                     "status": status}
        try:
            node = await self._api(self.api.create(body, timeout=self.call_timeout))
        except ApiStatusError as err:
            if err.code != 409:
                raise
            await self._update_existing()
            await self.post_status(force=True)
        else:
            self._observe(node)
            self._posted()
            log.info("node %s: registered", self.node_name)
        await self.renew_lease()
        self._registered.set()
        return self._node or {}

    async def _update_existing(self) -> None:
        """Merge our labels and annotations into the Node someone (our previous run)
        created; keep the rest (spec.podCIDR, taints, other labels)."""
        for _ in range(CONFLICT_RETRIES):
            node = await self._get_node()
            meta = node.get("metadata") or {}
            labels = {**(meta.get("labels") or {}), **self.labels}
            annotations = {**(meta.get("annotations") or {}), **self.annotations}
            if labels == (meta.get("labels") or {}) \
                    and annotations == (meta.get("annotations") or {}):
                log.info("node %s: already registered", self.node_name)
                return
            updated = copy.deepcopy(node)
            updated["metadata"]["labels"] = labels
            updated["metadata"]["annotations"] = annotations
            try:
                written = await self._api(self.api.update(updated, timeout=self.call_timeout))
                self._observe(written)
                log.info("node %s: already registered; labels updated", self.node_name)
                return
            except ApiStatusError as err:
                if err.code != 409:
                    raise
        raise ApiStatusError(409, "Conflict", {"message": f"node {self.node_name}: labels "
                                               f"conflicted {CONFLICT_RETRIES} times"})

    async def post_status(self, force: bool = False) -> bool:
        """Rebuild the status and write it if it changed, is due, or `force`; True if
        written. A Node that disappeared (404) is registered again."""
        node = self._node
        for _ in range(CONFLICT_RETRIES):
            if node is None:
                try:
                    node = await self._get_node()
                except ApiStatusError as err:
                    if err.code != 404:
                        raise
                    log.info("node %s: the Node is gone; registering again", self.node_name)
                    self._registered.clear()
                    await self.register()
                    return True
            current = node.get("status") or {}
            built = await self._build(list(current.get("conditions") or []) or None)
            desired = node_status.merge_status(current, built)
            due = node_status.status_due(self._last_posted, time.monotonic(),
                                         self.status_interval)
            if not (force or due or node_status.status_changed(current, desired)):
                return False
            body = copy.deepcopy(node)
            body["status"] = desired
            try:
                written = await self._api(self.api.update_status(body,
                                                                 timeout=self.call_timeout))
                self._observe(written)
            except ApiStatusError as err:
                if err.code not in (404, 409):
                    raise
                node = None  # stale or gone: read it again
                continue
            self._posted()
            return True
        raise ApiStatusError(409, "Conflict", {"message": f"node {self.node_name}: status "
                                               f"conflicted {CONFLICT_RETRIES} times"})

    async def renew_lease(self) -> Obj:
        """Write renewTime = now into the Lease, creating it if it is missing."""
        path = self.api.path(LEASE_API, "leases", NODE_LEASE_NAMESPACE, self.node_name)
        for _ in range(CONFLICT_RETRIES):
            lease = self._lease
            if lease is None:
                try:
                    lease = await self._api(self.api.get(path, timeout=self.call_timeout))
                except ApiStatusError as err:
                    if err.code != 404:
                        raise
            body = self._lease_body(lease)
            try:
                if lease is None:
                    written = await self._api(self.api.create(body, timeout=self.call_timeout))
                else:
                    written = await self._api(self.api.update(body, timeout=self.call_timeout))
            except ApiStatusError as err:
                if err.code not in (404, 409):
                    raise
                self._lease = None  # someone else wrote or removed it: read it again
                continue
            self._lease = written
            self.lease_renewals += 1
            return written
        raise ApiStatusError(409, "Conflict", {"message": f"lease {self.node_name}: "
                                               f"conflicted {CONFLICT_RETRIES} times"})

    def _lease_body(self, lease: Obj | None) -> Obj:
        body: Obj = copy.deepcopy(lease) if lease is not None else {
            "apiVersion": LEASE_API, "kind": "Lease",
            "metadata": {"name": self.node_name, "namespace": NODE_LEASE_NAMESPACE}}
        body.setdefault("spec", {}).update({
            "holderIdentity": self.node_name, "leaseDurationSeconds": self.lease_duration,
            "renewTime": node_status.micro_time(datetime.now(UTC))})
        uid = ((self._node or {}).get("metadata") or {}).get("uid")
        if uid:
            body["metadata"]["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Node", "name": self.node_name, "uid": uid}]
        return body

    # --- the loops ------------------------------------------------------------------

    async def _status_loop(self) -> None:
        """Register, then check the status every check_interval (or when poked)."""
        failures = 0
        while True:
            force = self._poked.is_set()
            self._poked.clear()
            try:
                if not self._registered.is_set():
                    await self.register()
                else:
                    await self.post_status(force=force)
            except Exception as err:  # noqa: BLE001 (an outage, or a bug: retry either way)
                failures += 1
                self._failed("registering" if not self._registered.is_set()
                             else "posting status", err)
            else:
                failures = 0
            wait = (min(node_status.retry_delay(failures), self.check_interval) if failures
                    else self.check_interval)
            try:
                await asyncio.wait_for(self._poked.wait(), wait)
            except TimeoutError:
                pass

    async def _lease_loop(self) -> None:
        """Renew the Lease every lease_interval once registered (which wrote it first)."""
        await self._registered.wait()
        failures = 0
        while True:
            wait = (min(node_status.retry_delay(failures), self.lease_interval) if failures
                    else self.lease_interval)
            await asyncio.sleep(wait)
            try:
                await self.renew_lease()
            except Exception as err:  # noqa: BLE001 (an outage, or a bug: retry either way)
                failures += 1
                self._failed("renewing the lease", err)
            else:
                failures = 0

    def _failed(self, what: str, err: BaseException) -> None:
        """Log the first failure of an outage (a bug with its traceback)."""
        self.write_failures += 1
        if self._outage_since is not None:
            log.debug("node %s: %s: %s", self.node_name, what, err)
            return
        self._outage_since = time.monotonic()
        if isinstance(err, ApiStatusError | OSError | TimeoutError):
            log.warning("node %s: %s failed, retrying with back-off: %s",
                        self.node_name, what, err)
        else:
            log.error("node %s: %s failed, retrying with back-off", self.node_name, what,
                      exc_info=err)

    def _answered(self) -> None:
        """The apiserver answers again: resync the Lease and post the status at once."""
        if self._outage_since is None:
            return
        log.info("node %s: the apiserver answers again after %.1f s; resyncing",
                 self.node_name, time.monotonic() - self._outage_since)
        self._outage_since = None
        self._lease = None
        self.poke()

    # --- helpers --------------------------------------------------------------------

    async def _api(self, call: Awaitable[T]) -> T:
        """Await one API call; its success ends a failure streak. Only calls count: a
        status check that needed no write proves nothing about the apiserver."""
        result = await call
        self._answered()
        return result

    async def _build(self, previous: list[Obj] | None) -> Obj:
        return await asyncio.to_thread(self.build_status, previous)

    async def _get_node(self) -> Obj:
        path = self.api.path("v1", "nodes", None, self.node_name)
        node = await self._api(self.api.get(path, timeout=self.call_timeout))
        self._observe(node)
        return node

    def _posted(self) -> None:
        self._last_posted = time.monotonic()
        self.status_posts += 1

    def _observe(self, node: Obj) -> None:
        """Keep the newer of what we hold and `node` (by resourceVersion)."""
        if (node.get("metadata") or {}).get("name") != self.node_name:
            return
        if self._node is None or _version(node) >= _version(self._node):
            self._node = node
        self._node_seen.set()

    def _deleted(self, node: Obj) -> None:
        if (node.get("metadata") or {}).get("name") == self.node_name:
            self._node = None
            self.poke()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        task.add_done_callback(_log_crash)
        self._tasks.append(task)


def _version(obj: Mapping[str, Any]) -> int:
    """resourceVersion as a number: kubelite's are store revisions (etcd's too)."""
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s crashed", task.get_name(), exc_info=task.exception())
