"""Expectations: a controller waits until its informer has seen its own writes.

A ReplicaSet that created three pods must not be reconciled again from a pod cache
that does not show them yet, or it creates three more (Kubernetes'
ControllerExpectations, controller_utils.go). Kubernetes counts expected adds and
deletes and lowers the counts from informer events. kubelite's controllers name the
pods they create, so the runner records *which* objects it expects instead, and
`satisfied()` asks the informer's cache directly:

- an expected create is fulfilled once the cache holds an object of that name;
- an expected delete once the cache no longer holds that uid, or shows it being
  deleted (a terminating pod is not active, so the controller does not count it);
- whatever is left after `timeout` (Kubernetes' 5 minutes) is dropped with a warning:
  a lost watch event must not stall a controller forever.

Pulling from the cache rather than counting events makes the bookkeeping robust to
the order in which a create's reply and its watch event arrive, to re-lists, and to a
failed write (the runner withdraws it with `forget_*`). The clock is passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controllers import meta

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300.0

Lookup = Callable[[str, str], Mapping[str, Any] | None]  # (namespace, name) -> cached object


@dataclass
class _Pending:
    creates: set[tuple[str, str]] = field(default_factory=set)
    deletes: dict[tuple[str, str], str] = field(default_factory=dict)  # (ns, name) -> uid
    deadline: float = 0.0


class Expectations:
    """The writes each controller key (namespace/name) still waits to see in `lookup`."""

    def __init__(self, resource: str, lookup: Lookup, clock: Callable[[], float],
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.resource = resource  # the plural whose creates and deletes are tracked
        self._lookup = lookup
        self._clock = clock
        self.timeout = timeout
        self._pending: dict[str, _Pending] = {}

    def expect_create(self, key: str, namespace: str, name: str) -> None:
        self._entry(key).creates.add((namespace, name))

    def expect_delete(self, key: str, namespace: str, name: str, uid: str) -> None:
        self._entry(key).deletes[(namespace, name)] = uid

    def forget_create(self, key: str, namespace: str, name: str) -> None:
        """The create failed (or went out under another name): nothing to wait for."""
        entry = self._pending.get(key)
        if entry is not None:
            entry.creates.discard((namespace, name))

    def forget_delete(self, key: str, namespace: str, name: str) -> None:
        entry = self._pending.get(key)
        if entry is not None:
            entry.deletes.pop((namespace, name), None)

    def drop(self, key: str) -> None:
        """The controlled object is gone: stop waiting on its behalf."""
        self._pending.pop(key, None)

    def satisfied(self, key: str) -> bool:
        """True when the cache shows every expected write for `key` (or they timed out)."""
        entry = self._pending.get(key)
        if entry is None:
            return True
        entry.creates = {k for k in entry.creates if self._lookup(*k) is None}
        entry.deletes = {k: uid for k, uid in entry.deletes.items()
                         if _still_there(self._lookup(*k), uid)}
        if not entry.creates and not entry.deletes:
            del self._pending[key]
            return True
        if self._clock() >= entry.deadline:
            log.warning("expectations for %s timed out: %d creates and %d deletes never "
                        "observed; reconciling anyway", key, len(entry.creates),
                        len(entry.deletes))
            del self._pending[key]
            return True
        return False

    def pending(self, key: str) -> tuple[int, int]:
        """(creates, deletes) still awaited for `key`, for logs and tests."""
        entry = self._pending.get(key)
        return (0, 0) if entry is None else (len(entry.creates), len(entry.deletes))

    def _entry(self, key: str) -> _Pending:
        entry = self._pending.get(key)
        if entry is None:
            entry = self._pending[key] = _Pending()
        entry.deadline = self._clock() + self.timeout
        return entry


def _still_there(cached: Mapping[str, Any] | None, uid: str) -> bool:
    if cached is None or meta.is_deleting(cached):
        return False
    return not uid or meta.uid(cached) == uid
