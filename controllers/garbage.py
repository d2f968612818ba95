"""Garbage collection through ownerReferences: background, foreground and orphan deletion.

Kubernetes' garbage collector (pkg/controller/garbagecollector) keeps a graph of owners
and dependents in memory. Here the graph is rebuilt on each call from every object the
collector watches (`objects`, with their ownerReferences, deletionTimestamps and
finalizers) and the set of uids known to exist (`existing_uids`, which may name owners
of kinds not in `objects`). Each owner reference of a dependent is, as in
attemptToDeleteItem:

- dangling: its owner does not exist;
- waiting: its owner is being deleted in the foreground (deletionTimestamp and the
  `foregroundDeletion` finalizer);
- solid: anything else (an owner being deleted with `orphan` counts as solid: it lets
  go of its dependents rather than deleting them).

A dependent with a solid owner stays, losing only its dangling and waiting references
(a Patch). One without is deleted, with uid precondition: in the foreground when a
waiting owner is what doomed it and it has dependents of its own (so the chain waits
for them), else with the policy its own finalizers ask for, background by default.

Owners being deleted: `foregroundDeletion` comes off (a JSON patch test-and-replace of
the finalizer list) once no dependent with blockOwnerDeletion=true is left, which lets
the apiserver finish the delete; `orphan` first strips the owner's reference from every
dependent, then comes off. Finalizer removals come last in the list, so the runner
never removes one after a dependent write it depended on has failed.

Owners absent from a stale cache look dangling: like Kubernetes, whose collector
confirms an owner's absence with a live GET, the runner should confirm before it
executes a dependent's Delete (the uid precondition only protects the dependent).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from apiserver import registry
from controllers import actions, meta

Obj = dict[str, Any]

FOREGROUND_FINALIZER = "foregroundDeletion"
ORPHAN_FINALIZER = "orphan"


def reconcile(objects: Iterable[Obj], existing_uids: Collection[str]) -> list[actions.Action]:
    """Deletes and Patches that collect garbage and finish foreground/orphan deletions."""
    objs = [o for o in objects if meta.uid(o)]
    by_uid = {meta.uid(o): o for o in objs}
    exists = set(existing_uids) | set(by_uid)
    dependents: dict[str, list[Obj]] = defaultdict(list)
    for obj in objs:
        for ref in owner_refs(obj):
            dependents[str(ref.get("uid"))].append(obj)
    writes: list[actions.Action] = []
    finalizers: list[actions.Action] = []
    for obj in objs:
        if meta.is_deleting(obj):
            if ORPHAN_FINALIZER in _finalizers(obj):
                writes += [_drop_refs(dep, {meta.uid(obj)}) for dep in dependents[meta.uid(obj)]]
                finalizers.append(_remove_finalizer(obj, ORPHAN_FINALIZER))
            elif FOREGROUND_FINALIZER in _finalizers(obj) \
                    and not _blocking(obj, dependents[meta.uid(obj)]):
                finalizers.append(_remove_finalizer(obj, FOREGROUND_FINALIZER))
            continue
        writes += _collect(obj, by_uid, exists, bool(dependents[meta.uid(obj)]))
    return [w for w in writes if w is not None] + [f for f in finalizers if f is not None]


def owner_refs(obj: Mapping[str, Any]) -> list[Obj]:
    return [r for r in meta.metadata(obj).get("ownerReferences") or []
            if isinstance(r, dict) and r.get("uid")]


def _finalizers(obj: Mapping[str, Any]) -> list[str]:
    return [str(f) for f in meta.metadata(obj).get("finalizers") or []]


def _waiting(owner: Obj | None) -> bool:
    """The owner is being deleted in the foreground: its dependents must go first."""
    return owner is not None and meta.is_deleting(owner) \
        and FOREGROUND_FINALIZER in _finalizers(owner)


def _blocking(owner: Obj, deps: list[Obj]) -> list[Obj]:
    """Dependents whose reference to `owner` has blockOwnerDeletion=true."""
    return [d for d in deps if any(r.get("uid") == meta.uid(owner) and r.get("blockOwnerDeletion")
                                   for r in owner_refs(d))]


def _collect(obj: Obj, by_uid: Mapping[str, Obj], exists: set[str],
             has_dependents: bool) -> list[actions.Action | None]:
    refs = owner_refs(obj)
    if not refs:
        return []
    dangling = {str(r["uid"]) for r in refs if r["uid"] not in exists}
    waiting = {str(r["uid"]) for r in refs
               if r["uid"] not in dangling and _waiting(by_uid.get(r["uid"]))}
    solid = [r for r in refs if r["uid"] not in dangling and r["uid"] not in waiting]
    if solid:
        return [_drop_refs(obj, dangling | waiting)] if dangling or waiting else []
    if waiting and has_dependents:
        return [_delete(obj, actions.FOREGROUND)]
    if ORPHAN_FINALIZER in _finalizers(obj):
        policy = actions.ORPHAN
    elif FOREGROUND_FINALIZER in _finalizers(obj):
        policy = actions.FOREGROUND
    else:
        policy = actions.BACKGROUND
    return [_delete(obj, policy)]


def _resource(obj: Mapping[str, Any]) -> registry.Resource | None:
    return registry.by_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))


def _delete(obj: Obj, policy: str) -> actions.Delete | None:
    resource = _resource(obj)
    if resource is None:
        return None
    return actions.Delete(resource.plural, resource.api_version, meta.namespace(obj) or None,
                          meta.name(obj), uid_precondition=meta.uid(obj), propagation=policy)


def _drop_refs(obj: Obj, uids: set[str]) -> actions.Patch | None:
    """deleteOwnerRefStrategicMergePatch: ownerReferences entries deleted by uid."""
    resource = _resource(obj)
    if resource is None or not uids:
        return None
    patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": u} for u in sorted(uids)],
                          "uid": meta.uid(obj)}}
    return actions.Patch(resource.plural, resource.api_version, meta.namespace(obj) or None,
                         meta.name(obj), actions.STRATEGIC_MERGE_PATCH, patch)


def _remove_finalizer(obj: Obj, finalizer: str) -> actions.Patch | None:
    """Test-and-replace of metadata.finalizers: fails if someone changed them meanwhile."""
    resource = _resource(obj)
    if resource is None:
        return None
    current = _finalizers(obj)
    patch = [{"op": "test", "path": "/metadata/finalizers", "value": current},
             {"op": "replace", "path": "/metadata/finalizers",
              "value": [f for f in current if f != finalizer]}]
    return actions.Patch(resource.plural, resource.api_version, meta.namespace(obj) or None,
                         meta.name(obj), actions.JSON_PATCH, patch)
