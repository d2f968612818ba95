"""The records the store keeps and reports: key-value versions and watch events.

A `KeyValue` is immutable: every put makes a new one, so readers may hold on to
them outside the state lock and history can share them with the current index.
"""

from __future__ import annotations

from typing import NamedTuple

PUT = 0
DELETE = 1


class KeyValue(NamedTuple):
    """One version of a key, as etcd's mvccpb.KeyValue."""

    key: bytes
    create_revision: int
    mod_revision: int
    version: int
    value: bytes
    lease: int


class Event(NamedTuple):
    """One change, as etcd's mvccpb.Event.

    For a DELETE, `kv` is a tombstone: the key and the deleting revision, the rest zero.
    """

    type: int
    kv: KeyValue
    prev_kv: KeyValue | None


def tombstone(key: bytes, revision: int) -> KeyValue:
    return KeyValue(key, 0, revision, 0, b"", 0)
