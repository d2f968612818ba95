"""Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` asks for.

kubectl sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...` for get, list
and watch, and prints the cells verbatim. A plain list instead of a Table does not fail:
kubectl silently falls back to `NAME AGE`, so every kind it is used with needs a printer.

Shape, as the apiserver sends it (and as kubectl 1.20 and 1.32 accepted it):

    {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "205"},
     "columnDefinitions": [{"name", "type", "format", "description", "priority"}, ...],
     "rows": [{"cells": [...], "object": {"kind": "PartialObjectMetadata",
               "apiVersion": "meta.k8s.io/v1", "metadata": {...the object's metadata...}}}]}

Every row carries the object's metadata: `--all-namespaces` reads the namespace from it
and `--show-labels` the labels. Columns and cells follow Kubernetes' printers
(`table_columns`, `table_printers`, `table_pod`); Role and ClusterRole use Kubernetes'
default convertor (NAME, CREATED AT); kinds without a printer get NAME and AGE.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from apiserver import table_columns, table_pod, table_printers
from apiserver.durations import human_duration, rfc3339, since

__all__ = ["human_duration", "to_table"]

Printer = Callable[[dict[str, Any], datetime], list[Any]]

CELLS: dict[str, Printer] = {
    "Pod": table_pod.pod_cells,
    "Node": table_printers.node_cells,
    "Namespace": table_printers.namespace_cells,
    "Deployment": table_printers.deployment_cells,
    "ReplicaSet": table_printers.replicaset_cells,
    "DaemonSet": table_printers.daemonset_cells,
    "Job": table_printers.job_cells,
    "Service": table_printers.service_cells,
    "Endpoints": table_printers.endpoints_cells,
    "Event": table_printers.event_cells,
    "ConfigMap": table_printers.configmap_cells,
    "Secret": table_printers.secret_cells,
    "ServiceAccount": table_printers.serviceaccount_cells,
    "Lease": table_printers.lease_cells,
    "RoleBinding": table_printers.binding_cells,
    "ClusterRoleBinding": table_printers.binding_cells,
    "PodDisruptionBudget": table_printers.pdb_cells,
}
CREATED_AT_KINDS = frozenset({"Role", "ClusterRole"})


def _name(obj: dict[str, Any]) -> str:
    return table_printers.get(obj, "metadata", "name") or ""


def _created_at(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), rfc3339(table_printers.get(obj, "metadata", "creationTimestamp"))]


def _name_age(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), since(table_printers.get(obj, "metadata", "creationTimestamp"), now)]


def columns(kind: str) -> list[dict[str, Any]]:
    """The columnDefinitions for `kind` (fresh dicts, safe to modify)."""
    if kind in CREATED_AT_KINDS:
        found = table_columns.CREATED_AT
    else:
        found = table_columns.COLUMNS.get(kind, table_columns.DEFAULT)
    return [dict(c) for c in found]


def row(kind: str, obj: dict[str, Any], now: datetime) -> dict[str, Any]:
    """One TableRow: cells, the pod `conditions` Kubernetes adds, and the metadata object."""
    if kind in CREATED_AT_KINDS:
        printer: Printer = _created_at
    else:
        printer = CELLS.get(kind, _name_age)
    out: dict[str, Any] = {"cells": printer(obj, now)}
    if kind == "Pod" and (conditions := table_pod.pod_conditions(obj)):
        out["conditions"] = [dict(c) for c in conditions]
    out["object"] = {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(obj.get("metadata") or {}),
    }
    return out


def to_table(
    kind: str, objects: Iterable[dict[str, Any]], now: datetime, resource_version: str
) -> dict[str, Any]:
    """The Table for `objects` of `kind` at time `now` (a list, one object, or a watch event).

    `resource_version` is the list's revision, or the object's for a single GET.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns(kind),
        "rows": [row(kind, obj, now) for obj in objects],
    }
