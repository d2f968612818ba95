"""Events the agent reports about pods, shaped as the kubelet writes them (pure).

`source` names the component and the host, so `kubectl describe pod` shows
`kubelet, <node>`-style origins; apiserver.event_recorder folds repeats into one Event's
count (a crash-looping container is one BackOff Event with a growing count).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

COMPONENT = "kubelet"


def pod_event(pod: Mapping[str, Any], type_: str, reason: str, message: str, *,
              node: str, now: datetime) -> dict[str, Any]:
    meta = pod.get("metadata") or {}
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    nanos = int(now.timestamp() * 1_000_000) * 1000
    nanos += zlib.crc32(f"{reason}\x00{message}".encode()) % 1_000_000
    involved = {"kind": "Pod", "apiVersion": "v1", "namespace": meta.get("namespace", ""),
                "name": meta.get("name", ""), "uid": meta.get("uid", "")}
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta.get('name', '')}.{nanos:x}",
                     "namespace": meta.get("namespace") or "default"},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": COMPONENT, "host": node},
        "reportingComponent": COMPONENT,
        "reportingInstance": node,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
