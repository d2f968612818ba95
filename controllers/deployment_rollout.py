"""One Deployment sync over working copies: the rollout steps of Kubernetes' sync.go,
rolling.go, recreate.go and progress.go, with every write recorded instead of made.

`Rollout.run()` edits `RSInfo.obj` copies in place (scaling, annotations) and collects
events, deletions, the Deployment's working status and its revision; deployment.py
turns that into actions. Where Kubernetes writes and re-reads within one sync, the
working copy plays the re-read: a rollback that bumps an RS's revision and then scales
it yields one Update carrying both.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

from controllers import actions, meta, ownership, podutil
from controllers import deployment_status as ds
from controllers import deployment_util as du

Obj = dict[str, Any]


class _Collision(Exception):
    """The new ReplicaSet's name is taken by another template: bump collisionCount, stop."""


class Rollout:
    """The state of one sync (see the module doc); read its fields after `run()`."""

    def __init__(self, d: Obj, infos: list[du.RSInfo], pods_by_rs: dict[str, list[Obj]],
                 rs_by_name: dict[str, Obj], now: datetime,
                 name_for: Callable[[str], str]) -> None:
        self.d = d
        self.infos = infos
        self.pods_by_rs = pods_by_rs
        self.rs_by_name = rs_by_name
        self.now = now
        self.name_for = name_for
        self.status: Obj = copy.deepcopy(meta.status(d))
        self.events: list[tuple[str, str, str]] = []  # (type, reason, message)
        self.deleted: list[du.RSInfo] = []
        self.revision: str | None = None
        self.requeue: float | None = None
        self._order: list[du.RSInfo] = []
        self.desired = du.desired(d)

    def touched(self) -> list[du.RSInfo]:
        """ReplicaSets this sync creates or edits, in the order it first touched them."""
        return [i for i in self._order if i.created or i.dirty]

    def run(self) -> None:
        try:
            self._run()
        except _Collision:
            pass
        self._requeue_for_availability()

    def _run(self) -> None:
        if meta.is_deleting(self.d):
            self._sync_status(*self._new_and_old(create=False))
            return
        ds.paused_conditions(self.d, self.status, self.now)
        if meta.spec(self.d).get("paused") or self._is_scaling_event():
            self._sync()
        elif du.is_rolling(self.d):
            self._rolling()
        else:
            self._recreate()

    # --- the new ReplicaSet and revisions ---------------------------------------------

    def _new_and_old(self, create: bool) -> tuple[du.RSInfo | None, list[du.RSInfo]]:
        """getAllReplicaSetsAndSyncRevision (+ getNewReplicaSet)."""
        new = du.find_new(self.d, self.infos)
        old = [i for i in self.infos if i is not new]
        new_revision = du.max_revision(old) + 1
        if new is not None:
            changed = du.set_new_rs_annotations(self.d, new, new_revision, exists=True)
            min_ready = meta.as_int(meta.spec(self.d).get("minReadySeconds"))
            if meta.as_int(meta.spec(new.obj).get("minReadySeconds")) != min_ready:
                new.obj.setdefault("spec", {})["minReadySeconds"] = min_ready
                changed = True
            if changed:
                new.dirty = True
                self._touch(new)
            self.revision = meta.annotations(new.obj).get(du.REVISION)
            progressing = meta.get_condition(self.status.get("conditions"), ds.PROGRESSING)
            if ds.has_progress_deadline(self.d) and progressing is None:
                ds.set_condition(self.status, ds.PROGRESSING, "True", ds.FOUND_NEW_RS,
                                 f'Found new replica set "{new.name}"', self.now)
            return new, old
        if not create:
            return None, old
        return self._create_new(old, new_revision), old

    def _create_new(self, old: list[du.RSInfo], new_revision: int) -> du.RSInfo:
        spec = meta.spec(self.d)
        collisions = self.status.get("collisionCount")
        template_hash = du.template_hash(spec.get("template"), collisions)
        name = self.name_for(template_hash)
        if name in self.rs_by_name:
            self.status["collisionCount"] = meta.as_int(collisions) + 1
            raise _Collision(name)
        template = copy.deepcopy(spec.get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})[du.HASH_LABEL] = template_hash
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[du.HASH_LABEL] = template_hash
        info = du.RSInfo({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": meta.namespace(self.d),
                "labels": dict(template["metadata"]["labels"]),
                "ownerReferences": [ownership.controller_ref(self.d, "Deployment", "apps/v1")],
            },
            "spec": {"replicas": 0, "minReadySeconds": meta.as_int(spec.get("minReadySeconds")),
                     "selector": selector, "template": template},
        }, created=True)
        replicas = du.new_rs_new_replicas(self.d, [*old, info], info)
        info.obj["spec"]["replicas"] = replicas
        du.set_new_rs_annotations(self.d, info, new_revision, exists=False)
        self.infos.append(info)
        self._touch(info)
        if replicas > 0:
            self._event(actions.NORMAL, "ScalingReplicaSet",
                        f"Scaled up replica set {name} from 0 to {replicas}")
        self.revision = str(new_revision)
        if ds.has_progress_deadline(self.d):
            ds.set_condition(self.status, ds.PROGRESSING, "True", ds.NEW_RS_CREATED,
                             f'Created new replica set "{name}"', self.now)
        return info

    # --- scaling ----------------------------------------------------------------------

    def _is_scaling_event(self) -> bool:
        new, old = self._new_and_old(create=False)
        for rs in du.active([*old, new]):
            wanted = du.desired_annotation(rs)
            if wanted is not None and wanted != self.desired:
                return True
        return False

    def _sync(self) -> None:
        """Scaling without rolling: paused Deployments and replica changes."""
        new, old = self._new_and_old(create=False)
        self._scale_deployment(new, old)
        if meta.spec(self.d).get("paused"):
            self._cleanup(old)
        self._sync_status(new, old)

    def _scale_deployment(self, new: du.RSInfo | None, old: list[du.RSInfo]) -> None:
        """scale(): one active RS takes it all; otherwise proportional by size."""
        target = du.find_active_or_latest(new, old)
        if target is not None:
            self._scale_and_record(target, self.desired)
            return
        if du.is_saturated(self.d, new):
            for rs in du.active(old):
                self._scale_and_record(rs, 0)
            return
        if not du.is_rolling(self.d):
            return
        rss = du.active([*old, new])
        allowed = self.desired + du.max_surge(self.d) if self.desired > 0 else 0
        to_add = allowed - du.spec_total(rss)
        if to_add > 0:
            rss = du.by_size_newer(rss)
        elif to_add < 0:
            rss = du.by_size_older(rss)
        status_replicas = meta.as_int(meta.status(self.d).get("replicas"))
        sizes: list[int] = []
        added = 0
        for rs in rss:
            share = du.proportion(self.d, rs, to_add, added, status_replicas) if to_add else 0
            sizes.append(rs.spec_replicas + share)
            added += share
        for index, rs in enumerate(rss):
            size = sizes[index]
            if index == 0 and to_add != 0:
                size = max(0, size + to_add - added)
            self._scale(rs, size)

    def _scale_and_record(self, rs: du.RSInfo, new_scale: int) -> bool:
        if rs.spec_replicas == new_scale:
            return False
        self._scale(rs, new_scale)
        return True

    def _scale(self, rs: du.RSInfo, new_scale: int) -> None:
        """scaleReplicaSet: size and the replicas annotations, with Kubernetes' event."""
        old_scale = rs.spec_replicas
        annotations_changed = du.set_replicas_annotations(
            rs, self.desired, self.desired + du.max_surge(self.d))
        if old_scale == new_scale and not annotations_changed:
            return
        rs.set_spec_replicas(new_scale)
        self._touch(rs)
        if old_scale != new_scale:
            direction = "up" if old_scale < new_scale else "down"
            self._event(actions.NORMAL, "ScalingReplicaSet",
                        f"Scaled {direction} replica set {rs.name} from {old_scale} to {new_scale}")

    # --- strategies -------------------------------------------------------------------

    def _rolling(self) -> None:
        new, old = self._new_and_old(create=True)
        assert new is not None
        rss = [*old, new]
        if self._reconcile_new(rss, new) or self._reconcile_old(rss, du.active(old), new):
            self._sync_rollout_status(new, old)
            return
        if ds.complete(self.d, self.status):
            self._cleanup(old)
        self._sync_rollout_status(new, old)

    def _reconcile_new(self, rss: list[du.RSInfo], new: du.RSInfo) -> bool:
        if new.spec_replicas == self.desired:
            return False
        if new.spec_replicas > self.desired:
            return self._scale_and_record(new, self.desired)
        return self._scale_and_record(new, du.new_rs_new_replicas(self.d, rss, new))

    def _reconcile_old(self, rss: list[du.RSInfo], old: list[du.RSInfo], new: du.RSInfo) -> bool:
        """reconcileOldReplicaSets: never below desired - maxUnavailable available pods."""
        if du.spec_total(old) == 0:
            return False
        min_available = self.desired - du.max_unavailable(self.d)
        new_unavailable = new.spec_replicas - new.available
        max_scaled_down = du.spec_total(rss) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = self._cleanup_unhealthy(old, max_scaled_down)
        return cleaned + self._scale_down_old(old, new, min_available) > 0

    def _cleanup_unhealthy(self, old: list[du.RSInfo], max_cleanup: int) -> int:
        """Old RSes lose their unavailable pods first: they cost no availability."""
        total = 0
        for rs in du.oldest_first(old):
            if total >= max_cleanup:
                break
            if rs.spec_replicas == 0 or rs.available >= rs.spec_replicas:
                continue
            count = min(max_cleanup - total, rs.spec_replicas - rs.available)
            self._scale_and_record(rs, rs.spec_replicas - count)
            total += count
        return total

    def _scale_down_old(self, old: list[du.RSInfo], new: du.RSInfo, min_available: int) -> int:
        # Pods above a ReplicaSet's size are being (or about to be) deleted by its
        # controller, available ones possibly: they must not count (kubelite's guard
        # against a pod cache that has not seen the last scale-down's deletions yet).
        available = sum(min(r.available, r.spec_replicas) for r in [*old, new])
        if available <= min_available:
            return 0
        budget = available - min_available
        total = 0
        for rs in du.oldest_first(old):
            if total >= budget:
                break
            if rs.spec_replicas == 0:
                continue
            count = min(rs.spec_replicas, budget - total)
            self._scale_and_record(rs, rs.spec_replicas - count)
            total += count
        return total

    def _recreate(self) -> None:
        new, old = self._new_and_old(create=False)
        scaled = False
        for rs in du.active(old):
            scaled = self._scale_and_record(rs, 0) or scaled
        if scaled or self._old_pods_running(new, old):
            self._sync_rollout_status(new, old)
            return
        if new is None:
            new, old = self._new_and_old(create=True)
        assert new is not None
        self._scale_and_record(new, self.desired)
        if ds.complete(self.d, self.status):
            self._cleanup(old)
        self._sync_rollout_status(new, old)

    def _old_pods_running(self, new: du.RSInfo | None, old: list[du.RSInfo]) -> bool:
        """Recreate waits until no old pod runs, terminating ones included."""
        if sum(r.replicas for r in old) > 0:
            return True
        new_uid = meta.uid(new.obj) if new is not None else None
        return any(not podutil.is_terminal(p) for uid, pods in self.pods_by_rs.items()
                   if uid != new_uid for p in pods)

    def _cleanup(self, old: list[du.RSInfo]) -> None:
        """cleanupDeployment: old RSes past revisionHistoryLimit that are fully at zero."""
        limit = meta.spec(self.d).get("revisionHistoryLimit")
        if limit is None or meta.as_int(limit) == 2**31 - 1:
            return
        cleanable = [r for r in old if not meta.is_deleting(r.obj) and not r.created]
        excess = len(cleanable) - meta.as_int(limit)
        for rs in du.by_revision(cleanable)[:max(excess, 0)]:
            st = meta.status(rs.obj)
            if (rs.replicas or meta.as_int(st.get("replicas")) or rs.spec_replicas
                    or meta.generation(rs.obj) > meta.as_int(st.get("observedGeneration"))):
                continue
            self.deleted.append(rs)

    # --- status -----------------------------------------------------------------------

    def _sync_status(self, new: du.RSInfo | None, old: list[du.RSInfo]) -> None:
        self.status = ds.calculate(self.d, self.status, new, old, self.now)

    def _sync_rollout_status(self, new: du.RSInfo | None, old: list[du.RSInfo]) -> None:
        self.status = ds.rollout(self.d, self.status, new, old, self.now)
        delay = ds.deadline_requeue(self.d, self.status, self.now)
        if delay is not None:
            self._want_requeue(delay)

    # --- small helpers ----------------------------------------------------------------

    def _touch(self, info: du.RSInfo) -> None:
        if all(info is not seen for seen in self._order):
            self._order.append(info)

    def _event(self, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))

    def _want_requeue(self, seconds: float) -> None:
        seconds = max(seconds, 1.0)
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def _requeue_for_availability(self) -> None:
        """Pods that turn available with time (minReadySeconds) send no watch event."""
        min_ready = meta.as_int(meta.spec(self.d).get("minReadySeconds"))
        times = [podutil.becomes_available_at(p, min_ready, self.now)
                 for pods in self.pods_by_rs.values() for p in pods if ownership.is_pod_active(p)]
        pending = [t for t in times if t is not None]
        if pending:
            self._want_requeue((min(pending) - self.now).total_seconds() + 1.0)
