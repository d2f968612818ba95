"""Deployment reconcile: ReplicaSets per template, rolled over within maxSurge/maxUnavailable.

Kubernetes' DeploymentController.syncDeployment as a function of the Deployment, the
ReplicaSets and pods of its namespace, and `now`. One call walks the same path as one
Kubernetes sync and returns its writes instead of making them:

1. claim ReplicaSets (adopt matching orphans, release strays);
2. a Deployment being deleted only gets its status refreshed;
3. pausing/resuming sets Progressing=Unknown (DeploymentPaused / DeploymentResumed), so
   that time spent paused never counts against progressDeadlineSeconds;
4. paused, or replicas changed (a desired-replicas annotation disagrees): `sync`, i.e.
   scale without rolling. One active RS takes the new size; during a rollout every
   active RS grows or shrinks in proportion to its size (GetProportion), leftovers to
   the largest, so a half-done rollout keeps its mix;
5. otherwise roll out. RollingUpdate: find or create the new RS (named
   `rs_name_for(hash)`, default `<deployment>-<hash>`, revision = max old + 1, or an
   existing RS with the same template gets its revision bumped: that is a rollback);
   grow it up to replicas + maxSurge; shrink old RSes, unhealthy pods first, never
   below replicas - maxUnavailable available; when complete, delete old RSes beyond
   revisionHistoryLimit that are at zero. Recreate: old RSes to zero, wait until no old
   pod runs, then the new RS at full size;
6. status: the counts, Available (MinimumReplicasAvailable / MinimumReplicasUnavailable)
   and Progressing (NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated,
   NewReplicaSetAvailable, ProgressDeadlineExceeded), which is what `kubectl rollout
   status` waits on.

Writes come out as: claim Patches (an adoption comes alone, with a RequeueAfter: the
adopted RS's resourceVersion changes with it); ReplicaSet Creates and Updates (one per RS, in the
order the sync touched them); ReplicaSet Deletes; events; the Deployment's
UpdateStatus; a merge Patch of its revision annotation (after the status, which carries
the resourceVersion precondition); RequeueAfter for minReadySeconds and the progress
deadline. Hash collisions bump status.collisionCount and stop, as in Kubernetes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from apiserver import selectors
from controllers import actions, deployment_rollout, meta, ownership, podutil
from controllers import deployment_status as ds
from controllers import deployment_util as du

Obj = dict[str, Any]

KIND = "Deployment"
API_VERSION = "apps/v1"
RESOURCE = "deployments"
COMPONENT = "deployment-controller"


def reconcile(deployment: Obj, replicasets: Iterable[Obj], pods: Iterable[Obj], now: datetime,
              rs_name_for: Callable[[str], str] | None = None) -> tuple[list[actions.Action], Obj]:
    """The writes that move `deployment` along its rollout, and its new status."""
    ns = meta.namespace(deployment)
    name_for = rs_name_for or (lambda h: f"{meta.name(deployment)}-{h}")
    all_rs = meta.same_namespace(replicasets, ns)
    raw_selector = meta.spec(deployment).get("selector")
    try:
        selector = selectors.label_selector_from_dict(raw_selector)
    except ValueError as err:
        return _refuse(deployment, now, "InvalidSelector", f"invalid label selector: {err}")
    if raw_selector == {} or selector.empty():
        return _refuse(deployment, now, "SelectingAll",
                       "This deployment is selecting all pods. A non-empty selector is required.")
    owned, claims = ownership.claim(deployment, KIND, API_VERSION, selector, all_rs,
                                    "replicasets", API_VERSION)
    ours_before = {meta.uid(rs) for rs in all_rs if ownership.is_controlled_by(rs, deployment)}
    if any(meta.uid(rs) not in ours_before for rs in owned):
        # An adopted RS may need an Update too, which its adoption Patch would make stale:
        # adopt now, sync once the informer shows the adopted objects.
        return [*claims, actions.RequeueAfter(1.0)], meta.status(deployment)
    infos = _infos(deployment, owned, meta.same_namespace(pods, ns), selector, now)
    rollout = deployment_rollout.Rollout(deployment, infos, _pods_by_rs(owned, meta.same_namespace(pods, ns), selector),
                      {meta.name(r): r for r in all_rs}, now, name_for)
    rollout.run()
    return _assemble(deployment, claims, rollout, now)


def _refuse(d: Obj, now: datetime, reason: str, message: str) -> tuple[list[actions.Action], Obj]:
    """Kubernetes' answer to a selector it will not act on: a warning, generation observed."""
    out: list[actions.Action] = [actions.event(d, reason, message, now=now, component=COMPONENT,
                                               type=actions.WARNING)]
    status = dict(meta.status(d))
    if meta.as_int(status.get("observedGeneration")) < meta.generation(d):
        status["observedGeneration"] = meta.generation(d)
        out.append(actions.UpdateStatus(RESOURCE, API_VERSION, meta.namespace(d),
                                        meta.with_status(d, status)))
    return out, status


def _infos(d: Obj, owned: list[Obj], pods: list[Obj], selector: selectors.LabelSelector,
           now: datetime) -> list[du.RSInfo]:
    min_ready = meta.as_int(meta.spec(d).get("minReadySeconds"))
    infos = []
    for rs in owned:
        mine = [p for p in pods if ownership.is_controlled_by(p, rs)
                and ownership.is_pod_active(p) and selector.matches(meta.labels(p))]
        infos.append(du.RSInfo(
            copy.deepcopy(rs), replicas=len(mine),
            ready=sum(1 for p in mine if podutil.is_ready(p)),
            available=sum(1 for p in mine if podutil.is_available(p, min_ready, now)),
        ))
    return infos


def _pods_by_rs(owned: list[Obj], pods: list[Obj],
                selector: selectors.LabelSelector) -> dict[str, list[Obj]]:
    """getPodMapForDeployment: every pod (terminating too) by its ReplicaSet's uid."""
    uids = {meta.uid(rs) for rs in owned}
    out: dict[str, list[Obj]] = {uid: [] for uid in uids}
    for pod in pods:
        ref = ownership.controller_of(pod)
        if ref is not None and ref.get("uid") in uids and selector.matches(meta.labels(pod)):
            out[ref["uid"]].append(pod)
    return out


def _assemble(d: Obj, claims: list[actions.Action], rollout: deployment_rollout.Rollout,
              now: datetime) -> tuple[list[actions.Action], Obj]:
    out: list[actions.Action] = list(claims)
    ns = meta.namespace(d)
    for info in rollout.touched():
        if info.created:
            out.append(actions.Create("replicasets", API_VERSION, ns, info.obj))
        elif info.dirty:
            out.append(actions.Update("replicasets", API_VERSION, ns, info.obj))
    for info in rollout.deleted:
        out.append(actions.Delete("replicasets", API_VERSION, ns, info.name,
                                  uid_precondition=meta.uid(info.obj) or None,
                                  propagation=actions.BACKGROUND))
    out += [actions.event(d, reason, message, now=now, component=COMPONENT, type=kind)
            for kind, reason, message in rollout.events]
    status = ds.omit_empty(rollout.status)
    if status != ds.omit_empty(meta.status(d)):
        out.append(actions.UpdateStatus(RESOURCE, API_VERSION, ns, meta.with_status(d, status)))
    if rollout.revision is not None and meta.annotations(d).get(du.REVISION) != rollout.revision:
        out.append(actions.Patch(RESOURCE, API_VERSION, ns, meta.name(d), actions.MERGE_PATCH,
                                 {"metadata": {"annotations": {du.REVISION: rollout.revision}}}))
    if rollout.requeue is not None:
        out.append(actions.RequeueAfter(rollout.requeue))
    return out, status
