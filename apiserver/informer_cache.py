"""An informer's local cache: objects by key and by index, and the deltas each change
makes (pure: no I/O, no clock).

Keys are client-go's: "namespace/name", or "name" for cluster-scoped objects. An index
function maps an object to the values it is filed under (a string, several, or None),
e.g. pods by node:

    cache = Cache({"by_node": lambda pod: pod.get("spec", {}).get("nodeName")})
    cache.apply("ADDED", pod)          -> Delta("add", pod)
    cache.by_index("by_node", "n1")    -> [pod]

`apply` takes one watch event; `replace` takes a full list after a (re-)list and returns
what changed relative to the old contents, so handlers see the same adds, updates and
deletes they would have seen had the watch never broken:

    old {a@1, b@1}, list {b@2, c@1}  ->  update b, add c, delete a

An update is reported only when the resourceVersion moved (or is missing); an object
that vanished between two lists is reported deleted with its last known state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)

IndexFunc = Callable[[dict[str, Any]], str | Iterable[str] | None]


@dataclass(frozen=True)
class Delta:
    kind: Literal["add", "update", "delete"]
    obj: dict[str, Any]  # the new object (add, update) or the last known one (delete)
    old: dict[str, Any] | None = None  # the previous object, for updates


def key_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    namespace = meta.get("namespace")
    return f"{namespace}/{name}" if namespace else name


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class Cache:
    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None) -> None:
        self.indexers = dict(indexers or {})
        self._objects: dict[str, dict[str, Any]] = {}
        # index name -> value -> keys filed under it; and key -> its values, to unfile
        self._indices: dict[str, dict[str, set[str]]] = {n: {} for n in self.indexers}
        self._filed: dict[str, dict[str, tuple[str, ...]]] = {n: {} for n in self.indexers}

    # --- reads ----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, key: str) -> bool:
        return key in self._objects

    def get(self, key: str) -> dict[str, Any] | None:
        return self._objects.get(key)

    def keys(self) -> list[str]:
        return sorted(self._objects)

    def list(self) -> list[dict[str, Any]]:
        return [self._objects[k] for k in sorted(self._objects)]

    def index_keys(self, index: str, value: str) -> list[str]:
        if index not in self._indices:
            raise KeyError(f"no index named {index!r}")
        return sorted(self._indices[index].get(value, ()))

    def by_index(self, index: str, value: str) -> list[dict[str, Any]]:
        return [self._objects[k] for k in self.index_keys(index, value)]

    def index_values(self, index: str) -> list[str]:
        """Every value some object is filed under in `index`."""
        return sorted(self._indices[index])

    # --- changes --------------------------------------------------------------------

    def apply(self, event_type: str, obj: dict[str, Any]) -> Delta | None:
        """One watch event (ADDED, MODIFIED, DELETED); None if it changes nothing."""
        key = key_of(obj)
        old = self._objects.get(key)
        if event_type == "DELETED":
            if old is None:
                return None
            self._remove(key)
            return Delta("delete", obj)
        if event_type not in ("ADDED", "MODIFIED"):
            raise ValueError(f"unknown event type {event_type!r}")
        self._store(key, obj)
        return Delta("add", obj) if old is None else Delta("update", obj, old)

    def replace(self, items: Iterable[dict[str, Any]]) -> list[Delta]:
        """Make the cache hold exactly `items`; the deltas from the old contents, in list
        order, then deletes of what is gone (by key)."""
        deltas: list[Delta] = []
        seen: set[str] = set()
        for obj in items:
            key = key_of(obj)
            seen.add(key)
            old = self._objects.get(key)
            self._store(key, obj)
            if old is None:
                deltas.append(Delta("add", obj))
            elif not _version(obj) or _version(obj) != _version(old):
                deltas.append(Delta("update", obj, old))
        for key in sorted(set(self._objects) - seen):
            deltas.append(Delta("delete", self._objects[key]))
            self._remove(key)
        return deltas

    def _store(self, key: str, obj: dict[str, Any]) -> None:
        self._unfile(key)
        self._objects[key] = obj
        for name, func in self.indexers.items():
            values = _index_values(name, func, obj)
            self._filed[name][key] = values
            for value in values:
                self._indices[name].setdefault(value, set()).add(key)

    def _remove(self, key: str) -> None:
        self._unfile(key)
        del self._objects[key]

    def _unfile(self, key: str) -> None:
        for name in self.indexers:
            for value in self._filed[name].pop(key, ()):
                keys = self._indices[name].get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._indices[name][value]


def _index_values(name: str, func: IndexFunc, obj: dict[str, Any]) -> tuple[str, ...]:
    try:
        values = func(obj)
    except Exception:  # noqa: BLE001 (a broken index function must not stop the informer)
        log.exception("index function %r failed on %s; object left out of that index",
                      name, key_of(obj))
        return ()
    if values is None:
        return ()
    if isinstance(values, str):
        return (values,) if values else ()
    return tuple(dict.fromkeys(v for v in values if isinstance(v, str) and v))
