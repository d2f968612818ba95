"""Background duties every apiserver shares: store compaction and namespace clean-up.

Compaction follows Kubernetes: every interval each apiserver tries to advance one
shared key with a transaction on its version; only the apiserver whose transaction wins
compacts, and it compacts to the revision recorded one interval earlier, so watchers
always keep at least one interval of history.

A namespace being deleted is emptied (every namespaced object in it removed) and then
removed itself. Several apiservers may do this at once; every step is idempotent.
"""

from __future__ import annotations

import asyncio
import logging

from apiserver import registry, status
from apiserver.storage import Storage
from store.client import Compare, Op, StoreUnavailable
from store.errors import EtcdError

log = logging.getLogger(__name__)

COMPACT_KEY = b"compact_rev_key"
NAMESPACES = registry.lookup("", "v1", "namespaces")


async def compact_once(storage: Storage, seen_version: int) -> int:
    """One round of the shared compaction protocol; returns the key's version now."""
    client = storage.client
    current = await client.get(COMPACT_KEY)
    version = current.version if current else 0
    previous = int(current.value or b"0") if current else 0
    if version != seen_version:
        return version  # someone else moved it this round; follow them next time
    revision = await storage.current_revision()
    result = await client.txn([Compare.version(COMPACT_KEY, "=", version)],
                              [Op.put(COMPACT_KEY, str(revision).encode())], [])
    if not result.succeeded:
        return version
    if previous > 0:
        try:
            await client.compact(previous)
            log.info("compacted the store at revision %d", previous)
        except EtcdError as exc:
            if "compacted" not in exc.message:
                raise
    return version + 1


async def compaction_loop(storage: Storage, interval: float) -> None:
    seen = 0
    while True:
        await asyncio.sleep(interval)
        try:
            seen = await compact_once(storage, seen)
        except (StoreUnavailable, EtcdError, status.ApiError) as exc:
            log.warning("compaction skipped: %s", exc)


async def finish_namespace(storage: Storage, namespace: dict) -> None:
    """Delete everything in a terminating namespace, then the namespace."""
    name = namespace["metadata"]["name"]
    for resource in registry.RESOURCES:
        if not resource.namespaced:
            continue
        listed = await storage.list(resource, name)
        for obj in listed.items:
            try:
                await storage.delete(resource, name, obj["metadata"]["name"])
            except status.ApiError as err:
                if err.code not in (404, 409):
                    raise
    try:
        await storage.delete(NAMESPACES, None, name)
    except status.ApiError as err:
        if err.code not in (404, 409):
            raise


async def namespace_loop(storage: Storage, interval: float = 1.0) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            listed = await storage.list(NAMESPACES, None)
            for ns in listed.items:
                if ns["metadata"].get("deletionTimestamp") and not \
                        ns["metadata"].get("finalizers"):
                    await finish_namespace(storage, ns)
        except (StoreUnavailable, status.ApiError) as exc:
            log.warning("namespace clean-up postponed: %s", exc)
