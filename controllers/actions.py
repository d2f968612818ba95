"""The writes a reconcile decides on, as records: the runner executes them, nothing here does.

Every controller's `reconcile()` returns a list of these instead of calling the API
client, so that it is a plain function of what the informers hold (and of `now`). The
runner (the controller-manager's I/O edge) owns the contract below; the controllers
order their lists so that it is safe:

1. Execute in list order. `batches()` groups the list: consecutive `Create`s that carry
   the same `batch` number form one group and may run concurrently (Kubernetes'
   slow-start batches of 1, 2, 4, ...); every other action is a group of its own.
2. Stop at the first group with a failure and requeue the object with back-off. What
   was not executed is decided again from fresh state on the next reconcile; the
   failure may be passed back in (ReplicaSet's `manage_error`) so that status can say
   so. An `Emit` therefore only goes out if the writes before it succeeded.
3. `Update`/`UpdateStatus` PUT the whole object with the resourceVersion it was read
   at (optimistic concurrency: a 409 means the cache was stale, requeue). A reconcile
   emits at most one of them per object (and subresource) and puts it before any
   `Patch` of the same object, because a Patch bumps the resourceVersion.
4. `RequeueAfter` is no write: it asks for another reconcile of the same key after a
   delay (a deadline that passes with no watch event: minReadySeconds, a progress
   deadline, a toleration that runs out). The runner keeps the shortest one.

Events are plain v1 Events with `count: 1`; aggregating repeats (Kubernetes'
EventCorrelator) is the runner's business, since it needs memory across reconciles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

BACKGROUND = "Background"
FOREGROUND = "Foreground"
ORPHAN = "Orphan"

NORMAL = "Normal"
WARNING = "Warning"


@dataclass(frozen=True)
class Create:
    """POST `obj` to the collection. `batch` numbers slow-start groups (None: unbatched)."""

    resource: str
    api_version: str
    namespace: str | None
    obj: Obj = field(hash=False)
    batch: int | None = None


@dataclass(frozen=True)
class Update:
    """PUT `obj` (with its metadata.resourceVersion as the precondition)."""

    resource: str
    api_version: str
    namespace: str | None
    obj: Obj = field(hash=False)


@dataclass(frozen=True)
class UpdateStatus:
    """PUT `obj` to the status subresource, resourceVersion as read."""

    resource: str
    api_version: str
    namespace: str | None
    obj: Obj = field(hash=False)


@dataclass(frozen=True)
class Patch:
    """PATCH `name` with `patch` of `patch_type` (one of the *_PATCH content types)."""

    resource: str
    api_version: str
    namespace: str | None
    name: str
    patch_type: str
    patch: Any = field(hash=False)
    subresource: str = ""


@dataclass(frozen=True)
class Delete:
    """DELETE `name`, only if it still has `uid_precondition` (a re-created namesake is spared)."""

    resource: str
    api_version: str
    namespace: str | None
    name: str
    uid_precondition: str | None = None
    propagation: str | None = None


@dataclass(frozen=True)
class Emit:
    """Create the v1 Event `event` (see `event()`)."""

    event: Obj = field(hash=False)


@dataclass(frozen=True)
class RequeueAfter:
    """Reconcile this key again after `seconds`, even if no watch event arrives."""

    seconds: float


Action = Create | Update | UpdateStatus | Patch | Delete | Emit | RequeueAfter


def delete_body(action: Delete) -> Obj:
    """The DeleteOptions body the runner sends for `action`."""
    body: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if action.uid_precondition:
        body["preconditions"] = {"uid": action.uid_precondition}
    if action.propagation:
        body["propagationPolicy"] = action.propagation
    return body


def batches(actions: Iterable[Action]) -> list[list[Action]]:
    """Group `actions` for execution (contract rule 1); RequeueAfter is left out."""
    groups: list[list[Action]] = []
    for action in actions:
        if isinstance(action, RequeueAfter):
            continue
        last = groups[-1][-1] if groups else None
        if (isinstance(action, Create) and action.batch is not None
                and isinstance(last, Create) and last.batch == action.batch):
            groups[-1].append(action)
        else:
            groups.append([action])
    return groups


def requeue_after(actions: Iterable[Action]) -> float | None:
    """The shortest RequeueAfter in `actions`, or None."""
    delays = [a.seconds for a in actions if isinstance(a, RequeueAfter)]
    return min(delays) if delays else None


def slow_start_sizes(count: int, initial: int = 1) -> list[int]:
    """Kubernetes' slowStartBatch sizes for `count` creates: 1, 2, 4, ... (the last one cut)."""
    sizes: list[int] = []
    size = min(count, initial)
    remaining = count
    while remaining > 0:
        sizes.append(size)
        remaining -= size
        size = min(2 * size, remaining)
    return sizes


def batched_creates(creates: Sequence[Create], initial: int = 1) -> list[Create]:
    """Number `creates` with slow-start batch numbers, in order."""
    out: list[Create] = []
    index = 0
    for number, size in enumerate(slow_start_sizes(len(creates), initial)):
        for create in creates[index:index + size]:
            out.append(Create(create.resource, create.api_version, create.namespace,
                              create.obj, batch=number))
        index += size
    return out


def fnv32a(data: bytes) -> int:
    """FNV-1a, 32 bits (Go's hash/fnv New32a): the hash Kubernetes names things with."""
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def object_reference(obj: Obj) -> Obj:
    """The ObjectReference an Event's involvedObject holds for `obj`."""
    meta = obj.get("metadata") or {}
    ref: Obj = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", "")}
    for key in ("namespace", "name", "uid", "resourceVersion"):
        if meta.get(key):
            ref[key] = meta[key]
    return ref


def event(involved: Obj, reason: str, message: str, *, now: datetime, component: str,
          type: str = NORMAL) -> Emit:
    """A v1 Event about `involved`, as client-go's recorder writes it.

    Named `<object>.<hex nanoseconds>` like Kubernetes' recorder, from `now` plus a
    sub-millisecond offset hashed from reason and message: one reconcile may report
    several things at the same `now` (four pods created), and their names must differ.
    Events about cluster-scoped objects go to the `default` namespace, as in Kubernetes.
    """
    ref = involved if "metadata" not in involved else object_reference(involved)
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    nanos = int(now.timestamp()) * 1_000_000_000 + now.microsecond * 1000
    nanos += fnv32a(f"{reason}\x00{message}".encode()) % 1_000_000
    namespace = ref.get("namespace") or "default"
    return Emit({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{ref.get('name', '')}.{nanos:x}", "namespace": namespace},
        "involvedObject": ref,
        "reason": reason,
        "message": message,
        "type": type,
        "source": {"component": component},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "reportingComponent": component,
    })
