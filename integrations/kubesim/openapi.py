"""A minimal OpenAPI v3 surface: enough for kubectl to learn that the server validates fields.

kubectl (``--validate=strict``, the default) asks ``/openapi/v3`` whether each resource's PATCH
accepts ``fieldValidation``; if so it skips client-side schema validation. We advertise that and
nothing more, so ``kubectl create -f`` works without shipping the real multi-megabyte schemas.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .resources import ResourceTable, ResourceType


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _hash(group: str, version: str) -> str:
    return hashlib.sha256(f"kubesim/{group}/{version}".encode()).hexdigest()[:64].upper()


def root(table: ResourceTable) -> dict[str, Any]:
    paths = {}
    for group, versions in table.groups().items():
        for version in versions:
            path = _gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={_hash(group, version)}"}
    return {"paths": paths}


def _operation(rt: ResourceType) -> dict[str, Any]:
    return {
        "operationId": f"patch{rt.kind}",
        "parameters": [
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
        ],
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
    }


def group_version(table: ResourceTable, gv_path: str) -> dict[str, Any] | None:
    """The OpenAPI v3 document for ``api/v1`` or ``apis/{group}/{version}`` (None if unknown)."""
    parts = gv_path.strip("/").split("/")
    if parts[:1] == ["api"] and len(parts) == 2:
        group, version = "", parts[1]
    elif parts[:1] == ["apis"] and len(parts) == 3:
        group, version = parts[1], parts[2]
    else:
        return None
    types = table.in_group_version(group, version)
    if not types:
        return None
    paths: dict[str, Any] = {}
    prefix = "/" + _gv_path(group, version)
    for rt in types:
        if "patch" not in rt.verbs:
            continue
        ns = "/namespaces/{namespace}" if rt.namespaced else ""
        paths[f"{prefix}{ns}/{rt.plural}/{{name}}"] = {"patch": _operation(rt)}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4"},
        "paths": paths,
        "components": {"schemas": {}},
    }
