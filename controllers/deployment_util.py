"""Deployment arithmetic: template hash, fenceposts, revisions, proportions (pure).

The counterpart of Kubernetes' pkg/controller/deployment/util/deployment_util.go, over
`RSInfo`: a ReplicaSet's working copy (which the sync edits as it scales) with the
counts of the pods it controls.

Those counts come from the pods themselves, not from the ReplicaSet's status: the
deployment reconcile gets the pods as an input, and counting them at `now` (with the
Deployment's minReadySeconds) keeps every rollout decision in step with one snapshot
instead of trusting a status the ReplicaSet controller may not have written yet.

The pod-template-hash: Kubernetes hashes the template as Go's spew prints it (FNV-32a)
and writes the decimal hash through rand.SafeEncodeString. A Go struct dump cannot be
reproduced from JSON, so kubelite hashes the canonical JSON of the template instead
(sorted keys, no whitespace, nulls and empty lists dropped so that semantically equal
templates agree), with the collision count appended as Kubernetes does, and encodes it
the same way: names look like Kubernetes' (`web-7d4b9c8f6`) but differ in value.
"""

from __future__ import annotations

import copy
import json
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controllers import actions, meta

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
DEPRECATED_ROLLBACK_TO = "deprecated.deployment.rollback.to"
_SKIP_COPY = {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
              DEPRECATED_ROLLBACK_TO}
MAX_REVISION_HISTORY_CHARS = 2000
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # rand.SafeEncodeString's alphabet
_MAP_FIELDS = {"labels", "annotations", "nodeSelector", "limits", "requests"}



@dataclass
class RSInfo:
    """A ReplicaSet as the sync sees it: working copy plus its pods' counts at `now`."""

    obj: Obj
    replicas: int = 0  # active pods it controls (what its status.replicas would say)
    ready: int = 0
    available: int = 0
    created: bool = False  # to be created by this sync
    dirty: bool = False  # edited by this sync; needs an Update

    @property
    def name(self) -> str:
        return meta.name(self.obj)

    @property
    def spec_replicas(self) -> int:
        return meta.as_int(meta.spec(self.obj).get("replicas"))

    def set_spec_replicas(self, value: int) -> None:
        self.obj.setdefault("spec", {})["replicas"] = value
        self.dirty = True


# --- template hash and equality -------------------------------------------------------


def canonical_template(template: Mapping[str, Any] | None) -> Obj:
    """The template with nulls, empty lists and empty label-like maps dropped."""
    return _canonical(copy.deepcopy(dict(template or {})), "")


def _canonical(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = _canonical(v, k)
            if v is None or v == [] or (v == {} and k in _MAP_FIELDS):
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [_canonical(v, key) for v in value]
    return value


def template_hash(template: Mapping[str, Any] | None, collision_count: int | None = None) -> str:
    """ComputeHash, over canonical JSON (see the module doc)."""
    text = json.dumps(canonical_template(template), sort_keys=True, separators=(",", ":"))
    data = text.encode()
    if collision_count is not None:
        data += struct.pack("<I", collision_count & 0xFFFFFFFF) + b"\x00" * 4
    digits = str(actions.fnv32a(data))
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in digits)


def without_hash(template: Mapping[str, Any] | None) -> Obj:
    out = canonical_template(template)
    labels = dict((out.get("metadata") or {}).get("labels") or {})
    labels.pop(HASH_LABEL, None)
    if labels:
        out.setdefault("metadata", {})["labels"] = labels
    elif "metadata" in out:
        out["metadata"].pop("labels", None)
        if not out["metadata"]:
            del out["metadata"]
    return out


def equal_ignore_hash(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """EqualIgnoreHash: the templates agree once pod-template-hash is ignored."""
    return without_hash(a) == without_hash(b)


# --- fenceposts -----------------------------------------------------------------------


def scaled_value(value: object, total: int, round_up: bool) -> int:
    """GetScaledValueFromIntOrPercent: an int, or "25%" of `total` rounded as asked."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = int(value[:-1])
        except ValueError:
            return 0
        exact = percent * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return 0


def desired(d: Mapping[str, Any]) -> int:
    value = meta.spec(d).get("replicas")
    return 1 if value is None else meta.as_int(value)


def is_rolling(d: Mapping[str, Any]) -> bool:
    return (meta.spec(d).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def _rolling_params(d: Mapping[str, Any]) -> tuple[object, object]:
    rolling = (meta.spec(d).get("strategy") or {}).get("rollingUpdate") or {}
    return rolling.get("maxSurge", "25%"), rolling.get("maxUnavailable", "25%")


def resolve_fenceposts(d: Mapping[str, Any]) -> tuple[int, int]:
    """ResolveFenceposts: surge rounds up, unavailability down; both 0 means 1 unavailable."""
    surge_raw, unavailable_raw = _rolling_params(d)
    surge = scaled_value(0 if surge_raw is None else surge_raw, desired(d), True)
    unavailable = scaled_value(0 if unavailable_raw is None else unavailable_raw, desired(d), False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Mapping[str, Any]) -> int:
    return resolve_fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Mapping[str, Any]) -> int:
    if not is_rolling(d) or desired(d) == 0:
        return 0
    return min(resolve_fenceposts(d)[1], desired(d))


# --- replica sets: order, counts, revisions -------------------------------------------


def oldest_first(rss: Iterable[RSInfo]) -> list[RSInfo]:
    return sorted(rss, key=lambda r: meta.oldest_first_key(r.obj))


def active(rss: Iterable[RSInfo | None]) -> list[RSInfo]:
    """FilterActiveReplicaSets: those asked for at least one replica."""
    return [r for r in rss if r is not None and r.spec_replicas > 0]


def spec_total(rss: Iterable[RSInfo | None]) -> int:
    return sum(r.spec_replicas for r in rss if r is not None)


def revision(obj: Mapping[str, Any]) -> int:
    try:
        return int(meta.annotations(obj).get(REVISION, "0") or "0")
    except ValueError:
        return 0


def max_revision(rss: Iterable[RSInfo]) -> int:
    return max((revision(r.obj) for r in rss), default=0)


def by_revision(rss: Iterable[RSInfo]) -> list[RSInfo]:
    """ReplicaSetsByRevision: lower revision first, then older first."""
    return sorted(rss, key=lambda r: (revision(r.obj), meta.oldest_first_key(r.obj)))


def find_new(d: Mapping[str, Any], rss: Iterable[RSInfo]) -> RSInfo | None:
    """FindNewReplicaSet: the oldest RS whose template is the Deployment's."""
    template = meta.spec(d).get("template")
    for rs in oldest_first(rss):
        if equal_ignore_hash((meta.spec(rs.obj).get("template")), template):
            return rs
    return None


def set_replicas_annotations(rs: RSInfo, desired_replicas: int, max_replicas: int) -> bool:
    """SetReplicasAnnotations: desired-replicas and max-replicas; True if they changed."""
    annotations = rs.obj.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired_replicas)), (MAX_REPLICAS, str(max_replicas))):
        if annotations.get(key) != value:
            annotations[key] = value
            changed = True
    return changed


def set_new_rs_annotations(d: Mapping[str, Any], rs: RSInfo, new_revision: int, exists: bool) -> bool:
    """SetNewReplicaSetAnnotations: copied annotations, revision bump, revision-history."""
    annotations = rs.obj.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for key, value in meta.annotations(d).items():
        if key in _SKIP_COPY or annotations.get(key) == value:
            continue
        annotations[key] = value
        changed = True
    old_text = annotations.get(REVISION)
    try:
        old = int(old_text) if old_text else 0
    except ValueError:
        return changed
    if old < new_revision:
        annotations[REVISION] = str(new_revision)
        changed = True
        if old_text:
            _append_history(annotations, old_text)
    if not exists and set_replicas_annotations(rs, desired(d), desired(d) + max_surge(d)):
        changed = True
    return changed


def _append_history(annotations: dict[str, str], old_revision: str) -> None:
    history = [r for r in annotations.get(REVISION_HISTORY, "").split(",") if r]
    history.append(old_revision)
    while history and len(",".join(history)) > MAX_REVISION_HISTORY_CHARS:
        history.pop(0)
    annotations[REVISION_HISTORY] = ",".join(history)


def desired_annotation(rs: RSInfo) -> int | None:
    return _int_annotation(rs, DESIRED_REPLICAS)


def _int_annotation(rs: RSInfo, key: str) -> int | None:
    try:
        return int(meta.annotations(rs.obj)[key])
    except (KeyError, ValueError):
        return None


def new_rs_new_replicas(d: Mapping[str, Any], all_rss: Sequence[RSInfo | None], new: RSInfo) -> int:
    """NewRSNewReplicas: how far the new RS may grow without passing replicas + maxSurge."""
    if not is_rolling(d):
        return desired(d)
    current = spec_total(all_rss)
    max_total = desired(d) + max_surge(d)
    if current >= max_total:
        return new.spec_replicas
    scale_up = min(max_total - current, desired(d) - new.spec_replicas)
    return new.spec_replicas + scale_up


def is_saturated(d: Mapping[str, Any], rs: RSInfo | None) -> bool:
    return (rs is not None and desired_annotation(rs) == desired(d)
            and rs.spec_replicas == desired(d) and rs.available == desired(d))


def find_active_or_latest(new: RSInfo | None, old: Sequence[RSInfo]) -> RSInfo | None:
    """FindActiveOrLatest: the one active RS, or the newest when none is active."""
    if new is None and not old:
        return None
    newest_first = list(reversed(oldest_first(old)))
    candidates = active(newest_first + [new])
    if not candidates:
        return new if new is not None else newest_first[0]
    return candidates[0] if len(candidates) == 1 else None


def proportion(d: Mapping[str, Any], rs: RSInfo, to_add: int, added: int,
               status_replicas: int) -> int:
    """GetProportion: this RS's share of `to_add`, never past what is left of it."""
    if rs.spec_replicas == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = _fraction(d, rs, status_replicas)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _fraction(d: Mapping[str, Any], rs: RSInfo, status_replicas: int) -> int:
    if desired(d) == 0:
        return -rs.spec_replicas
    deployment_replicas = desired(d) + max_surge(d)
    annotated = _int_annotation(rs, MAX_REPLICAS)
    if annotated is None:
        annotated = status_replicas
    if annotated == 0:
        return 0
    size = rs.spec_replicas * deployment_replicas / annotated
    return _round_half_away(size) - rs.spec_replicas


def _round_half_away(value: float) -> int:
    return int(math.floor(value + 0.5)) if value >= 0 else -int(math.floor(-value + 0.5))


def by_size_newer(rss: Iterable[RSInfo]) -> list[RSInfo]:
    """ReplicaSetsBySizeNewer: larger first, newer first among equals."""
    newest = sorted(rss, key=lambda r: meta.oldest_first_key(r.obj), reverse=True)
    return sorted(newest, key=lambda r: -r.spec_replicas)


def by_size_older(rss: Iterable[RSInfo]) -> list[RSInfo]:
    """ReplicaSetsBySizeOlder: larger first, older first among equals."""
    return sorted(oldest_first(rss), key=lambda r: -r.spec_replicas)
