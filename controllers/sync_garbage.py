"""Garbage-collector sync: sweep the cached object graph, confirm, then collect.

garbage.reconcile decides from the caches alone, and caches lag: a pod can reach the
pod cache before its new ReplicaSet reaches the ReplicaSet cache, and then its owner
looks gone. Like Kubernetes' attemptToDeleteItem, which GETs the owner from the
apiserver before it believes that, every write aimed at an object with owner
references the caches call dangling waits for live GETs of those owners; if any owner
does exist, the object is left for the next sweep.

Owners of kinds no informer watches are looked up live too (remembered for
UNKNOWN_OWNER_TTL), so that a dependent of, say, a ConfigMap is neither collected
on a guess nor kept forever.

The sweep has one key. Each object's writes run on their own (one stale object must not
hold up the rest); the finalizer removals that finish foreground and orphan deletions
run last and only when every dependent write went through, so that an owner is never
let go while one of its dependents still points at it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from apiserver.informer import Informer
from controllers import actions, garbage, meta
from controllers.context import Context
from controllers.harness import Controller
from controllers.runner import Outcome, owner_exists

log = logging.getLogger(__name__)

Obj = dict[str, Any]
GC_KEY = "graph"
UNKNOWN_OWNER_TTL = 30.0
RETRY_SKIPPED = 2.0  # seconds until a sweep looks again at what it had to skip


class GarbageSync:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("garbagecollector", self.sync, 1,
                                     resync=ctx.options.gc_period, keys=lambda: [GC_KEY])
        self.reset()

    def reset(self) -> None:
        self._unknown: dict[str, tuple[bool, float]] = {}  # uid -> (exists, checked at)

    async def sync(self, key: str) -> Outcome | None:
        inf = self.ctx.informers
        objects = [obj for informer in inf.collected().values() for obj in _typed(informer)]
        uids = {meta.uid(o) for informer in inf.all().values() for o in informer.list()}
        watched = {i.resource.kind for i in inf.all().values()}
        for obj in objects:
            for ref in garbage.owner_refs(obj):
                if ref.get("kind") not in watched and ref["uid"] not in uids \
                        and await self._unknown_owner_exists(ref, meta.namespace(obj)):
                    uids.add(str(ref["uid"]))
        todo = garbage.reconcile(objects, uids)
        if not todo:
            return None
        finalizers = [a for a in todo if _is_finalizer_removal(a)]
        by_target: dict[tuple[str, str, str], list[actions.Action]] = {}
        for action in todo:
            if action not in finalizers and isinstance(action, actions.Delete | actions.Patch):
                target = (action.resource, action.namespace or "", action.name)
                by_target.setdefault(target, []).append(action)
        index = {(_plural(i), meta.namespace(o), meta.name(o)): o
                 for i in inf.collected().values() for o in i.list()}
        errors: list[str] = []
        skipped = 0
        for target, writes in by_target.items():
            obj = index.get(target)
            if obj is not None and not await self._owners_gone(obj, uids):
                skipped += 1
                continue
            outcome = await self.ctx.runner.run(writes, key=key)
            if not outcome.ok:
                errors.append(f"{target[0]} {target[1]}/{target[2]}: {outcome.error}")
                if outcome.fenced:
                    return outcome
        if not errors and not skipped:
            for action in finalizers:
                outcome = await self.ctx.runner.run([action], key=key)
                if not outcome.ok:
                    errors.append(f"finalizer of {action.name}: {outcome.error}")  # type: ignore[union-attr]
        if errors:
            return Outcome(error="; ".join(errors))
        return Outcome(requeue_after=RETRY_SKIPPED if skipped else None)

    async def _owners_gone(self, obj: Obj, uids: set[str]) -> bool:
        """Do the owners the caches call missing really not exist? (live GETs)"""
        namespace = meta.namespace(obj) or None
        for ref in garbage.owner_refs(obj):
            if ref["uid"] in uids:
                continue
            if await owner_exists(self.ctx.api, ref, namespace):
                log.info("owner %s %s of %s/%s exists after all; not collecting it yet",
                         ref.get("kind"), ref.get("name"), meta.namespace(obj), meta.name(obj))
                return False
        return True

    async def _unknown_owner_exists(self, ref: Mapping[str, Any], namespace: str) -> bool:
        uid = str(ref["uid"])
        now = self.ctx.monotonic()
        known = self._unknown.get(uid)
        if known is not None and now - known[1] < UNKNOWN_OWNER_TTL:
            return known[0]
        exists = await owner_exists(self.ctx.api, ref, namespace or None)
        self._unknown[uid] = (exists, now)
        return exists


def _typed(informer: Informer) -> list[Obj]:
    """Cached objects with apiVersion and kind (a list's items may lack them)."""
    out = []
    for obj in informer.list():
        if obj.get("kind") and obj.get("apiVersion"):
            out.append(obj)
        else:
            out.append({**obj, "apiVersion": informer.resource.api_version,
                        "kind": informer.resource.kind})
    return out


def _plural(informer: Informer) -> str:
    return informer.resource.plural


def _is_finalizer_removal(action: actions.Action) -> bool:
    return isinstance(action, actions.Patch) and action.patch_type == actions.JSON_PATCH
