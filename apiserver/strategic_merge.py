"""Strategic merge patch, applied the way the apiserver applies it.

A port of the *apply* half of k8s.io/apimachinery/pkg/util/strategicpatch (mergeMap and
friends, with the server's options: parallel deletion lists are applied, unmatched nulls
are ignored). Maps merge recursively and `null` deletes a key. A list merges only where
the Go type declares `patchStrategy:"merge"`: lists of objects by their
`patchMergeKey` (containers by name, container ports by containerPort, ...), lists of
scalars as an ordered set (finalizers); every other list is replaced. The tables of
those declarations are in `smp_schema`.

Directives: `$patch: replace|delete` on a map or list item, `$retainKeys`,
`$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`. `$patch: merge` is an
error, as in Go. Fields we have no schema for merge like untagged Go fields (maps merge,
lists are replaced) where Go would reject the patch.

Order of merged lists follows Go, including its quirks: an item the patch adds without
a `$setElementOrder` goes *before* the live items (as the upstream docs show for an
added container), and `_aliased_order` reproduces the live-list order the Go code sees
after deleting items in place. Directive keys never reach the result; Go drops them when
it converts the merged map back to a typed object.
"""

from __future__ import annotations

import copy
from typing import Any

from apiserver import smp_schema
from apiserver.smp_schema import Meta

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder"
DELETE_FROM_LIST = "$deleteFromPrimitiveList"

Json = Any


class StrategicMergeError(Exception):
    """The patch cannot be applied; `code` is the HTTP status the apiserver would use."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


def apply(original: dict[str, Any], patch: dict[str, Any], kind: str) -> dict[str, Any]:
    """Return `original` with the strategic merge `patch` applied; inputs are not changed."""
    merged = _merge_map(copy.deepcopy(original), copy.deepcopy(patch), smp_schema.root(kind))
    return _strip_directives(merged)


# -- values ---------------------------------------------------------------------------


def _tag(value: Json) -> str:
    """The Go dynamic type of a decoded JSON value (bool is not a number, 1 == 1.0)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "map" if isinstance(value, dict) else type(value).__name__


def _same(a: Json, b: Json) -> bool:
    """Go's interface equality for scalars: same dynamic type and equal value."""
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False
    return _tag(a) == _tag(b) and a == b


def _find(items: list[Json], key: str, value: Json) -> int:
    """Index of the first map whose merge key equals `value`, or -1."""
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise StrategicMergeError(f"value for key {i} is not a map")
        if key in item and _same(item[key], value):
            return i
    return -1


def _key_of(item: Json, key: str) -> Json:
    if not isinstance(item, dict):
        raise StrategicMergeError(f"expected a map, but received a {_tag(item)}")
    if key not in item:
        raise StrategicMergeError(f"map: {item} does not contain declared merge key: {key}")
    return item[key]


def _element_kind(*lists: list[Json]) -> str:
    """sliceElementType: "map" or "scalar"; lists of lists and mixed types are errors."""
    seen = None
    for items in lists:
        for value in items:
            tag = _tag(value)
            if seen is None and tag == "list":
                raise StrategicMergeError("lists of lists are not supported", 422)
            if seen is not None and tag != seen:
                raise StrategicMergeError("list element types are not identical")
            seen = tag
    if seen is None:
        raise StrategicMergeError("no elements in any of the given slices")
    return "map" if seen == "map" else "scalar"


def _remove_directives(value: Json) -> tuple[Json, bool]:
    """Drop `$patch` maps (and list items); the bool says whether to keep `value` at all."""
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return None, False
        for k in list(value):
            value[k], keep = _remove_directives(value[k])
            if not keep:
                del value[k]
        return value, True
    if isinstance(value, list):
        kept = []
        for item in value:
            item, keep = _remove_directives(item)
            if keep:
                kept.append(item)
        return kept, True
    return value, True


def _discard_nulls(value: Json) -> None:
    if isinstance(value, dict):
        for k in [k for k, v in value.items() if v is None]:
            del value[k]
        for v in value.values():
            _discard_nulls(v)
    elif isinstance(value, list):
        for v in value:
            _discard_nulls(v)


def _is_directive_key(key: str) -> bool:
    return key in (DIRECTIVE, RETAIN_KEYS) or key.startswith(
        (SET_ORDER + "/", DELETE_FROM_LIST + "/")
    )


def _strip_directives(value: Json) -> Json:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not _is_directive_key(k)}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


# -- maps -----------------------------------------------------------------------------


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], schema: str | None
) -> dict[str, Any]:
    if DIRECTIVE in patch:
        directive = patch.pop(DIRECTIVE)
        if directive == "replace":
            return patch
        if directive == "delete":
            return {}
        raise StrategicMergeError(f"unknown patch type: {directive} in map: {patch}")
    _apply_retain_keys(original, patch)
    _merge_ordered_lists(original, patch, schema)
    for key in list(patch):
        value = patch[key]
        is_delete_list = key.startswith(DELETE_FROM_LIST)
        if is_delete_list:
            key = _directive_target(key, DELETE_FROM_LIST, "invalid patch format of primitive list")
        if value is None:
            original.pop(key, None)
            continue
        if key not in original or _tag(original[key]) != _tag(value):
            if not is_delete_list:
                _discard_nulls(value)
                value, keep = _remove_directives(value)
                if keep:
                    original[key] = value
                else:
                    original.pop(key, None)
            continue
        meta = smp_schema.field(schema, key)
        if isinstance(value, dict):
            if meta.strategy == "replace":
                original[key] = value
            else:
                original[key] = _merge_map(original[key], value, meta.type)
        elif isinstance(value, list):
            if meta.strategy == "merge" or is_delete_list:
                original[key] = _merge_list(original[key], value, meta, is_delete_list)[0]
            else:
                original[key] = value
        else:
            original[key] = value
    return original


def _directive_target(key: str, prefix: str, error: str) -> str:
    head, sep, rest = key.partition("/")
    if head != prefix or not sep:
        raise StrategicMergeError(error)
    return rest


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """`$retainKeys`: clear every live key not listed; the patch may only set listed keys."""
    if RETAIN_KEYS not in patch:
        return
    keep = patch.pop(RETAIN_KEYS)
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise StrategicMergeError("invalid patch format of retainKeys")
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_LIST, SET_ORDER)):
            continue
        if key not in keep:
            raise StrategicMergeError("invalid patch format of retainKeys")
    for key in [k for k in original if k not in keep]:
        del original[key]


def _merge_ordered_lists(
    original: dict[str, Any], patch: dict[str, Any], schema: str | None
) -> None:
    """Merge each list that has a `$setElementOrder/<list>` and put it in that order."""
    for directive in [k for k in patch if k.startswith(SET_ORDER)]:
        order = patch.pop(directive)
        error = "invalid patch format of setElementOrder list"
        key = _directive_target(directive, SET_ORDER, error)
        if not isinstance(order, list):
            raise StrategicMergeError(error)
        in_live, in_patch = key in original, key in patch
        live, patched = original.get(key, []), patch.get(key, [])
        if not isinstance(live, list) or not isinstance(patched, list):
            raise StrategicMergeError(error)
        meta = smp_schema.field(schema, key)
        _check_order(patched, order, meta.merge_key)
        if in_live and in_patch:
            if meta.strategy == "merge":
                merged, server_order = _merge_list(live, patched, meta, False)
            else:
                merged, server_order = patched, live
        elif in_live:
            merged, server_order = live, live
        elif in_patch:
            merged, server_order = _remove_directives(patched)[0], []
        else:
            continue
        kind = _element_kind(live, patched)
        in_order, server_only = _partition(merged, order, meta.merge_key)
        original[key] = _normalize(in_order, server_only, order, server_order, meta.merge_key, kind)
        patch.pop(key, None)


def _check_order(patch_list: list[Json], order: list[Json], key: str) -> None:
    """The patch's items must appear in the `$setElementOrder` list, in the same order."""
    if not patch_list or not order:
        return
    items = [
        p for p in patch_list if not (key and isinstance(p, dict) and p.get(DIRECTIVE) == "delete")
    ]
    i = j = 0
    while i < len(items) and j < len(order):
        if isinstance(items[i], dict) and DIRECTIVE in items[i]:
            i += 1
            continue
        if (
            _same(_key_of(items[i], key), _key_of(order[j], key))
            if key
            else _same(items[i], order[j])
        ):
            i += 1
        j += 1
    if i < len(items) and j >= len(order):
        raise StrategicMergeError(
            f"The order in patch list:\n{patch_list}\n doesn't match {SET_ORDER} list:\n{order}\n"
        )


# -- lists ----------------------------------------------------------------------------


def _merge_list(
    live: list[Json], patch: list[Json], meta: Meta, is_delete_list: bool
) -> tuple[list[Json], list[Json]]:
    """Merge a `merge`-strategy list; also return the live order Go would see afterwards."""
    if not live and not patch:
        return live, live
    kind = _element_kind(live, patch)
    if kind == "scalar":
        if is_delete_list:
            return [v for v in live if not any(_same(v, d) for d in patch)], live
        merged: list[Json] = []
        for value in live + patch:
            if not any(_same(value, m) for m in merged):
                merged.append(value)
        in_patch, server_only = _partition(merged, patch, "")
        return _normalize(in_patch, server_only, patch, live, "", kind), live
    key = meta.merge_key
    if not key:
        raise StrategicMergeError(f"cannot merge lists without merge key for {meta.type or 'list'}")
    remaining, items, deleted, replace = _special_items(live, patch, key)
    after_deletes = remaining
    if replace:
        remaining, items = items, []
    added: list[Json] = []
    for item in items:
        index = _find(remaining, key, _key_of(item, key))
        if index >= 0:
            remaining[index] = _merge_map(remaining[index], item, meta.type)
        else:
            added.append(item)
    in_patch, server_only = _partition(remaining + added, items, key)
    merged = _normalize(in_patch, server_only, items, remaining, key, kind)
    return merged, _aliased_order(after_deletes, added, deleted)


def _special_items(
    live: list[Json], patch: list[Json], key: str
) -> tuple[list[Json], list[Json], int, bool]:
    """Split out `$patch` items: (live items not deleted, plain items, deleted, replace?)."""
    remaining, plain, deleted, replace = list(live), [], 0, False
    for item in patch:
        if not isinstance(item, dict):
            raise StrategicMergeError(f"expected a map, but received a {_tag(item)}")
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            value = _key_of(item, key)
            while (index := _find(remaining, key, value)) >= 0:
                del remaining[index]
                deleted += 1
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise StrategicMergeError("merging lists cannot yet be specified in the patch")
        else:
            raise StrategicMergeError(f"unknown patch type: {directive} in map: {item}")
    return remaining, plain, deleted, replace


def _aliased_order(remaining: list[Json], added: list[Json], deleted: int) -> list[Json]:
    """The live list as Go's caller sees it after the merge.

    Go deletes list items in place, so the caller's view (of the original length) ends
    with free slots, and the first appended items land in them. Only matters for the
    order of a `$setElementOrder` list whose patch both deletes and adds items.
    """
    return remaining + added[:deleted]


def _partition(items: list[Json], by: list[Json], key: str) -> tuple[list[Json], list[Json]]:
    """Split `items` into those present in `by` (by merge key) and the rest."""
    present: list[Json] = []
    rest: list[Json] = []
    for item in items:
        if key:
            found = _find(by, key, _key_of(item, key)) >= 0
        else:
            found = any(_same(item, b) for b in by)
        (present if found else rest).append(item)
    return present, rest


def _index(items: list[Json], value: Json, key: str, kind: str) -> int:
    for i, item in enumerate(items):
        if kind == "map":
            if (
                isinstance(item, dict)
                and isinstance(value, dict)
                and _same(item.get(key), value.get(key))
            ):
                return i
        elif _same(item, value):
            return i
    return -1


def _sort_by(items: list[Json], order: list[Json], key: str, kind: str) -> list[Json]:
    """Stable sort by position in `order`; `$patch: delete` items go last, unsorted."""
    deletes: list[Json] = []
    if kind == "map":
        for item in items + order:
            _key_of(item, key)
        deletes = [i for i in items if i.get(DIRECTIVE) == "delete"]
        items = [i for i in items if i.get(DIRECTIVE) != "delete"]
    return sorted(items, key=lambda item: _index(order, item, key, kind)) + deletes


def _normalize(
    in_patch: list[Json],
    server_only: list[Json],
    patch_order: list[Json],
    server_order: list[Json],
    key: str,
    kind: str,
) -> list[Json]:
    """Patch items in patch order, live-only items in live order, interleaved as in Go.

    Walking both lists, a live-only item goes first only if the live list has it before
    the next patch item; an item the live list does not know never yields its place.
    """
    right = _sort_by(in_patch, patch_order, key, kind)
    left = _sort_by(server_only, server_order, key, kind)
    out: list[Json] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if j >= len(right):
            out.append(left[i])
            i += 1
            continue
        if i < len(left):
            li = _index(server_order, left[i], key, kind)
            ri = _index(server_order, right[j], key, kind)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
                continue
        out.append(right[j])
        j += 1
    return out
