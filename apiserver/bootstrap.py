"""Objects every cluster starts with: system namespaces and the default RBAC policy.

Every apiserver runs this at start-up; creates are "if absent", so several apiservers
starting together, or restarting, never fight or overwrite an operator's edits.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime

from apiserver import defaults, objects, registry, status
from apiserver.auth import bootstrap_policy
from apiserver.storage import Storage

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def _initial_objects() -> list[dict]:
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                  for name in SYSTEM_NAMESPACES]
    return namespaces + bootstrap_policy.bootstrap_objects()


async def ensure_defaults(storage: Storage) -> None:
    """Create what is missing; retry until the store answers."""
    pending = _initial_objects()
    while pending:
        remaining = []
        for obj in pending:
            resource = registry.by_kind(obj["apiVersion"], obj["kind"])
            if resource is None:
                log.error("bootstrap object of unknown kind %s", obj["kind"])
                continue
            prepared = objects.prepare_create(resource, obj, None, datetime.now(UTC),
                                              str(uuid.uuid4()))
            defaults.apply_defaults(resource.kind, prepared)
            try:
                await storage.create(resource, prepared)
            except status.ApiError as err:
                if err.code != 409:
                    remaining.append(obj)
        pending = remaining
        if pending:
            await asyncio.sleep(1.0)
