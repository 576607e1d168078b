"""Custom resources: a CustomResourceDefinition in the scenario (or created through the API) makes its
kind servable, one resource per served version, all versions sharing one store (as the real server
keeps one storage version and converts; kubesim serves the objects unconverted).
"""

from __future__ import annotations

from typing import Any

from .objects import format_time, meta, utcnow
from .resources import CRUD_VERBS, ResourceTable, ResourceType
from .scenario import ScenarioError, where_of


def resource_types(crd: dict) -> list[ResourceType]:
    """staging/src/k8s.io/apiextensions-apiserver/pkg/apiserver/customresource_handler.go serves each version
    with `served: true` under spec.group, with the CRD's names, scope and per-version subresources."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, kind, plural = spec.get("group"), names.get("kind"), names.get("plural")
    if not (group and kind and plural):
        raise ScenarioError(f"{where_of(crd) or 'CustomResourceDefinition'}: CustomResourceDefinition "
                            f"{meta(crd).get('name', '')!r} needs spec.group, spec.names.kind and spec.names.plural")
    out = []
    for version in spec.get("versions") or []:
        if not isinstance(version, dict) or not version.get("served", True) or not version.get("name"):
            continue
        subresources = version.get("subresources") or {}
        out.append(ResourceType(
            group=str(group), version=str(version["name"]), kind=str(kind), plural=str(plural),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            subresources=tuple(s for s in ("status", "scale") if s in subresources),
            verbs=CRUD_VERBS, categories=tuple(names.get("categories") or ()),
            singular=str(names.get("singular") or str(kind).lower()),
        ))
    return out


def register_crd(table: ResourceTable, crd: dict) -> list[ResourceType]:
    """Serve the CRD's versions; returns the resource types newly served."""
    return [rt for rt in resource_types(crd) if table.register(rt)]


def established_status(crd: dict) -> dict[str, Any]:
    """The conditions the apiextensions controllers set once the names are accepted and the API is served."""
    names = (crd.get("spec") or {}).get("names") or {}
    now = format_time(utcnow())
    accepted = {k: v for k, v in names.items() if k in ("kind", "listKind", "plural", "singular", "shortNames",
                                                          "categories")}
    accepted.setdefault("listKind", f"{names.get('kind', '')}List")
    accepted.setdefault("singular", str(names.get("kind", "")).lower())
    return {
        "acceptedNames": accepted,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": [v["name"] for v in (crd.get("spec") or {}).get("versions") or []
                           if isinstance(v, dict) and v.get("storage")],
    }


def unservable(table: ResourceTable, obj: dict) -> ScenarioError:
    """The load error for an object of a kind nothing serves."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    group = api_version.split("/")[0] if "/" in api_version else ""
    where = where_of(obj)
    prefix = f"{where}: " if where else ""
    if api_version and "/" in api_version and not table.builtin_group(group):
        return ScenarioError(f"{prefix}kind {kind} ({api_version}) has no CustomResourceDefinition in this scenario")
    return ScenarioError(f"{prefix}kind {kind} ({api_version or 'no apiVersion'}) is not served by kubesim")
