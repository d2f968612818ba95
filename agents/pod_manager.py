"""The pods bound to this node: one worker each, started, fed and retired here.

An informer watches the pods whose `spec.nodeName` is this node. Every add, update or
delete goes to the pod's worker (agents.pod_worker), created on first sight; container
state changes from the runtime wake the worker of their pod. A worker that finished
(its pod was deleted and cleaned up) is retired.

Restart safety: before watching, the runtime recovers the containers it ran before the
agent restarted (checked by PID and start time), so a worker finds its pod's running
containers and adopts them instead of starting duplicates. Once the informer has synced,
whatever the runtime or the network still hold for a pod the API no longer has (deleted
while the agent was away) is cleaned up by a worker with no pod.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agents.pod_worker import PodWorker, WorkerContext
from apiserver.informer import Informer

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class PodManager:
    def __init__(self, ctx: WorkerContext, *, known_sandboxes: Any = None) -> None:
        self.ctx = ctx
        self.informer = Informer(ctx.api, "pods",
                                 field_selector=f"spec.nodeName={ctx.node_name}")
        self.informer.add_handlers(self._on_add, self._on_update, self._on_delete)
        self.workers: dict[str, PodWorker] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._known_sandboxes = known_sandboxes
        self._events_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.ctx.runtime.recover()
        self._events_task = asyncio.create_task(self._runtime_events(),
                                                name="agent-runtime-events")
        self._events_task.add_done_callback(_log_crash)
        await self.informer.start()
        await self.informer.wait_synced(None)
        await self._collect_orphans()

    async def stop(self) -> None:
        """Stop the workers (their containers keep running: they outlive the agent)."""
        await self.informer.stop()
        tasks = list(self._tasks.values())
        if self._events_task is not None:
            tasks.append(self._events_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def pods(self) -> list[Obj]:
        return self.informer.list()

    def pod_by_uid(self, uid: str) -> Obj | None:
        worker = self.workers.get(uid)
        return worker.pod if worker else None

    # --- events ---------------------------------------------------------------------

    def _on_add(self, pod: Obj) -> None:
        self._dispatch(pod)

    def _on_update(self, _old: Obj, pod: Obj) -> None:
        self._dispatch(pod)

    def _on_delete(self, pod: Obj) -> None:
        uid = (pod.get("metadata") or {}).get("uid", "")
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(None)

    def _dispatch(self, pod: Obj) -> None:
        uid = (pod.get("metadata") or {}).get("uid", "")
        if not uid:
            return
        worker = self.workers.get(uid)
        if worker is None:
            self._spawn(uid, pod)
        else:
            worker.update(pod)

    def _spawn(self, uid: str, pod: Obj | None) -> PodWorker:
        worker = PodWorker(self.ctx, uid, pod)
        self.workers[uid] = worker
        task = asyncio.create_task(worker.run(), name=f"pod-worker-{uid[:8]}")
        self._tasks[uid] = task

        def retire(done: asyncio.Task[None]) -> None:
            if self.workers.get(uid) is worker:
                del self.workers[uid]
                self._tasks.pop(uid, None)
            if not done.cancelled() and done.exception() is not None:
                log.error("pod worker %s crashed", uid, exc_info=done.exception())

        task.add_done_callback(retire)
        return worker

    async def _runtime_events(self) -> None:
        queue = self.ctx.runtime.subscribe()
        while True:
            status = await queue.get()
            worker = self.workers.get(status.pod_uid)
            if worker is not None:
                worker.poke()

    async def _collect_orphans(self) -> None:
        """Containers and sandboxes of pods the API no longer has: clean them up."""
        live = {(p.get("metadata") or {}).get("uid") for p in self.informer.list()}
        orphans = {s.pod_uid for s in self.ctx.runtime.list()} - live
        if self._known_sandboxes is not None:
            orphans |= set(await self._known_sandboxes()) - live
        for uid in sorted(orphans):
            if uid in self.workers:
                continue
            log.info("cleaning up pod %s: deleted while the agent was away", uid)
            self._spawn(uid, None)


def _log_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s crashed", task.get_name(), exc_info=task.exception())
