"""PATCH bodies: the four content types kubectl and the client libraries send.

- `application/merge-patch+json`: RFC 7386 (`kubectl label`, `scale`, `patch --type merge`).
- `application/json-patch+json`: RFC 6902 operations, applied by the `jsonpatch` library.
- `application/strategic-merge-patch+json`: Kubernetes' own format (`kubectl apply`,
  `rollout restart`, `cordon`, `set image`, the Python client); see `strategic_merge`.
- `application/apply-patch+yaml`: server-side apply, *simplified*. Real Kubernetes tracks
  which field manager owns each field and removes fields a manager stops applying; we
  have no managedFields. We treat the manifest as a strategic merge patch onto the live
  object (or as the whole object when there is none): applied fields are set, list items
  merge by their keys, and fields the manifest omits are kept, never removed.

Everything here is pure: bytes and dicts in, a new dict out, inputs untouched. Failures
raise `PatchError` with the status the apiserver uses: 400 for a body it cannot read,
422 for a well-formed patch that cannot be applied (a failed JSON-patch `test`, a path
that does not exist). The handler wraps it in a Status.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import yaml

from apiserver import strategic_merge

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
CONTENT_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)


class PatchError(Exception):
    """The patch cannot be read (code 400) or cannot be applied (code 422)."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def apply_patch(
    content_type: str, original: dict[str, Any], patch: bytes, kind: str
) -> dict[str, Any]:
    """Return `original` with `patch` applied; `kind` picks the strategic-merge schema.

    `content_type` may carry parameters (`; charset=utf-8`); they are ignored. For
    server-side apply of an object that does not exist yet, pass `{}` as `original`.
    """
    media = content_type.split(";", 1)[0].strip().lower()
    if media == MERGE_PATCH:
        return merge_patch(original, _json_object(patch, "merge patch"))
    if media == JSON_PATCH:
        return json_patch(original, _json(patch, "JSON patch"))
    if media == STRATEGIC_MERGE_PATCH:
        return strategic_merge_patch(original, _json_object(patch, "strategic merge patch"), kind)
    if media == APPLY_PATCH:
        return apply_manifest(original, patch, kind)
    raise PatchError(
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(CONTENT_TYPES),
        415,
    )


def merge_patch(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386: objects merge recursively, `null` removes, anything else replaces."""
    return _merge(copy.deepcopy(original), patch)


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge(target.get(key), value)
    return target


def json_patch(original: dict[str, Any], operations: Any) -> dict[str, Any]:
    """RFC 6902. A malformed operation list is 400; an operation that fails is 422."""
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise PatchError("invalid JSON patch: expected a list of operations")
    try:
        ops = jsonpatch.JsonPatch(operations)
    except jsonpatch.InvalidJsonPatch as err:
        raise PatchError(f"invalid JSON patch: {err}") from None
    try:
        result = ops.apply(original, in_place=False)
    except jsonpatch.JsonPatchTestFailed as err:
        raise PatchError(f"the JSON patch test operation failed: {err}", 422) from None
    except jsonpatch.InvalidJsonPatch as err:
        raise PatchError(f"invalid JSON patch: {err}") from None
    except (jsonpatch.JsonPatchConflict, jsonpatch.JsonPointerException) as err:
        raise PatchError(f"the JSON patch could not be applied: {err}", 422) from None
    except (TypeError, ValueError, KeyError, IndexError) as err:
        raise PatchError(f"the JSON patch could not be applied: {err}", 422) from None
    if not isinstance(result, dict):
        raise PatchError("the JSON patch did not produce an object", 422)
    return result


def strategic_merge_patch(
    original: dict[str, Any], patch: dict[str, Any], kind: str
) -> dict[str, Any]:
    """Kubernetes' strategic merge patch for an object of `kind`."""
    try:
        return strategic_merge.apply(original, patch, kind)
    except strategic_merge.StrategicMergeError as err:
        raise PatchError(str(err), err.code) from None


def apply_manifest(original: dict[str, Any], body: bytes, kind: str) -> dict[str, Any]:
    """Server-side apply, simplified to a strategic merge (see the module docstring)."""
    try:
        manifest = yaml.safe_load(body.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        raise PatchError(f"error decoding YAML: {err}") from None
    if not isinstance(manifest, dict):
        raise PatchError("error decoding YAML: the apply patch must be an object")
    return strategic_merge_patch(original or {}, manifest, kind)


def _json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as err:
        raise PatchError(f"invalid {what}: {err}") from None


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    value = _json(body, what)
    if not isinstance(value, dict):
        raise PatchError(f"invalid {what}: expected a JSON object")
    return value
