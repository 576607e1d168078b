"""Server-side printing (``meta.k8s.io/v1 Table``) so kubectl output matches a real cluster.

Column sets follow the real server's printers; kinds without one get the apiserver's default
Name/Created At table.
"""

from __future__ import annotations

from typing import Any

from .objects import meta, utcnow
from .printers import (
    Printer,
    cronjob_row,
    daemonset_row,
    default_row,
    deployment_row,
    event_row,
    job_row,
    node_row,
    pdb_row,
    pod_row,
    replicaset_row,
    service_row,
    simple_row,
    spec_of,
    statefulset_row,
    status_of,
)
from .resources import ResourceType
from .storage_printers import PRINTERS as STORAGE_PRINTERS

Column = tuple[str, str, int]  # (name, type, priority)
_NAME_DESC = "Name must be unique within a namespace."

_N = ("Name", "string", 0)
_AGE = ("Age", "string", 0)
_CI = [("Containers", "string", 1), ("Images", "string", 1), ("Selector", "string", 1)]
PRINTERS: dict[str, tuple[list[Column], Printer]] = {
    "nodes": (
        [
            _N,
            ("Status", "string", 0),
            ("Roles", "string", 0),
            _AGE,
            ("Version", "string", 0),
            ("Internal-IP", "string", 1),
            ("External-IP", "string", 1),
            ("OS-Image", "string", 1),
            ("Kernel-Version", "string", 1),
            ("Container-Runtime", "string", 1),
        ],
        node_row,
    ),
    "pods": (
        [
            _N,
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            _AGE,
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        pod_row,
    ),
    "jobs.batch": (
        [_N, ("Status", "string", 0), ("Completions", "string", 0), ("Duration", "string", 0), _AGE, *_CI],
        job_row,
    ),
    "cronjobs.batch": (
        [
            _N,
            ("Schedule", "string", 0),
            ("Timezone", "string", 0),
            ("Suspend", "boolean", 0),
            ("Active", "integer", 0),
            ("Last Schedule", "string", 0),
            _AGE,
            *_CI,
        ],
        cronjob_row,
    ),
    "deployments.apps": (
        [_N, ("Ready", "string", 0), ("Up-to-date", "integer", 0), ("Available", "integer", 0), _AGE, *_CI],
        deployment_row,
    ),
    "replicasets.apps": (
        [_N, ("Desired", "integer", 0), ("Current", "integer", 0), ("Ready", "integer", 0), _AGE, *_CI],
        replicaset_row,
    ),
    "statefulsets.apps": ([_N, ("Ready", "string", 0), _AGE, *_CI[:2]], statefulset_row),
    "daemonsets.apps": (
        [
            _N,
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Node Selector", "string", 0),
            _AGE,
            *_CI,
        ],
        daemonset_row,
    ),
    "poddisruptionbudgets.policy": (
        [
            _N,
            ("Min Available", "string", 0),
            ("Max Unavailable", "string", 0),
            ("Allowed Disruptions", "integer", 0),
            _AGE,
        ],
        pdb_row,
    ),
    "events": (
        [
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Subobject", "string", 1),
            ("Source", "string", 1),
            ("Message", "string", 0),
            ("First Seen", "string", 1),
            ("Count", "string", 1),
            ("Name", "string", 1),
        ],
        event_row,
    ),
    "services": (
        [
            _N,
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            _AGE,
            ("Selector", "string", 1),
        ],
        service_row,
    ),
    "leases.coordination.k8s.io": (
        [_N, ("Holder", "string", 0), _AGE],
        simple_row(lambda o: spec_of(o).get("holderIdentity", "")),
    ),
    "namespaces": ([_N, ("Status", "string", 0), _AGE], simple_row(lambda o: status_of(o).get("phase", ""))),
    "configmaps": (
        [_N, ("Data", "integer", 0), _AGE],
        simple_row(lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
    ),
    "secrets": (
        [_N, ("Type", "string", 0), ("Data", "integer", 0), _AGE],
        simple_row(lambda o: o.get("type", ""), lambda o: len(o.get("data") or {})),
    ),
    "serviceaccounts": (
        [_N, ("Secrets", "integer", 0), _AGE],
        simple_row(lambda o: len(o.get("secrets") or [])),
    ),
}
PRINTERS.update(STORAGE_PRINTERS)
DEFAULT: tuple[list[Column], Printer] = ([_N, ("Created At", "date", 0)], default_row)


def _column(name: str, ctype: str, priority: int) -> dict[str, Any]:
    return {
        "name": name,
        "type": ctype,
        "format": "name" if name == "Name" else "",
        "description": _NAME_DESC if name == "Name" else name,
        "priority": priority,
    }


def _row_object(obj: dict, include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta(obj)}


def partial(obj: dict) -> dict[str, Any]:
    """staging/src/k8s.io/apiserver/pkg/endpoints/handlers/response.go asPartialObjectMetadata: the object's
    metadata under kind PartialObjectMetadata, apiVersion meta.k8s.io/v1."""
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta(obj)}


def partial_list(items: list[dict], list_meta: dict[str, Any]) -> dict[str, Any]:
    """response.go asPartialObjectMetadataList."""
    return {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "items": [partial(o) for o in items]}


def table(
    rt: ResourceType, items: list[dict], include: str, list_meta: dict[str, Any], with_columns: bool = True
) -> dict[str, Any]:
    """Build a meta.k8s.io/v1 Table for ``items`` as the real server's TableConvertor would."""
    columns, printer = PRINTERS.get(rt.key, DEFAULT)
    now = utcnow()
    rows = []
    for obj in items:
        row: dict[str, Any] = {"cells": printer(obj, now)}
        ro = _row_object(obj, include)
        if ro is not None:
            row["object"] = ro
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [_column(*c) for c in columns] if with_columns else [],
        "rows": rows,
    }
