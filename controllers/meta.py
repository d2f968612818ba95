"""Object accessors, timestamps and conditions shared by the controllers (pure).

Controllers read objects as the apiserver serves them: plain JSON dicts. These helpers
keep the missing-field cases in one place (a nil map reads as empty, a missing count as
0) and write times exactly as metav1.Time marshals them, RFC 3339 in UTC with whole
seconds, so that a status computed twice at the same `now` compares equal and no
needless update is sent.

Conditions follow Kubernetes' SetCondition helpers (deployment_util.go,
replica_set_utils.go): setting a condition with the same status and reason changes
nothing; a new reason with the same status keeps lastTransitionTime; the replaced
condition moves to the end of the list.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from apiserver import durations

Obj = dict[str, Any]
_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


def metadata(obj: Mapping[str, Any]) -> Obj:
    return obj.get("metadata") or {}


def name(obj: Mapping[str, Any]) -> str:
    return str(metadata(obj).get("name") or "")


def namespace(obj: Mapping[str, Any]) -> str:
    return str(metadata(obj).get("namespace") or "")


def uid(obj: Mapping[str, Any]) -> str:
    return str(metadata(obj).get("uid") or "")


def labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(metadata(obj).get("labels") or {})


def annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(metadata(obj).get("annotations") or {})


def spec(obj: Mapping[str, Any]) -> Obj:
    return obj.get("spec") or {}


def status(obj: Mapping[str, Any]) -> Obj:
    return obj.get("status") or {}


def generation(obj: Mapping[str, Any]) -> int:
    return as_int(metadata(obj).get("generation"), 0)


def is_deleting(obj: Mapping[str, Any]) -> bool:
    """True once the apiserver has set deletionTimestamp (graceful delete or finalizers)."""
    return bool(metadata(obj).get("deletionTimestamp"))


def as_int(value: object, default: int = 0) -> int:
    """A JSON number as int; anything else (None, text) reads as `default`."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return default


def parse_time(value: object) -> datetime | None:
    return durations.parse_time(value)


def format_time(when: datetime) -> str:
    """metav1.Time's JSON form: UTC, whole seconds."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def truncate(when: datetime) -> datetime:
    """`when` at the one-second precision it will have once stored."""
    return when.astimezone(UTC).replace(microsecond=0)


def creation_time(obj: Mapping[str, Any]) -> datetime | None:
    return parse_time(metadata(obj).get("creationTimestamp"))


def oldest_first_key(obj: Mapping[str, Any]) -> tuple[datetime, str]:
    """Kubernetes' ByCreationTimestamp order: older first, then by name."""
    return (creation_time(obj) or _EPOCH, name(obj))


def same_namespace(objs: Iterable[Obj], ns: str) -> list[Obj]:
    return [o for o in objs if namespace(o) == ns]


# --- conditions -----------------------------------------------------------------------


def get_condition(conditions: Iterable[Mapping[str, Any]] | None, kind: str) -> Obj | None:
    for cond in conditions or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def set_condition(conditions: Iterable[Mapping[str, Any]] | None, new: Obj) -> list[Obj]:
    """SetDeploymentCondition / SetCondition: the list with `new` in place of its type."""
    current = [dict(c) for c in conditions or []]
    old = get_condition(current, new["type"])
    if old is not None and old.get("status") == new.get("status") \
            and old.get("reason") == new.get("reason"):
        return current
    new = dict(new)
    if old is not None and old.get("status") == new.get("status") \
            and "lastTransitionTime" in old:
        new["lastTransitionTime"] = old["lastTransitionTime"]
    return [c for c in current if c.get("type") != new["type"]] + [new]


def remove_condition(conditions: Iterable[Mapping[str, Any]] | None, kind: str) -> list[Obj]:
    return [dict(c) for c in conditions or [] if c.get("type") != kind]


def with_status(obj: Obj, new_status: Obj) -> Obj:
    """A deep copy of `obj` carrying `new_status`, ready for an UpdateStatus."""
    out = copy.deepcopy(obj)
    out["status"] = copy.deepcopy(new_status)
    return out
