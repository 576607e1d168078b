"""Small helpers over plain Kubernetes object dicts: API paths, metadata, owners, label selectors.

Actions work on the JSON the API server returns, not on the client's model classes, so these helpers
keep the dict-walking in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

# Plural resource -> (API prefix, namespaced). Only what the actions address.
_RESOURCES: dict[str, tuple[str, bool]] = {
    "nodes": ("/api/v1", False),
    "pods": ("/api/v1", True),
    "events": ("/api/v1", True),
    "secrets": ("/api/v1", True),
    "configmaps": ("/api/v1", True),
    "leases": ("/apis/coordination.k8s.io/v1", True),
    "jobs": ("/apis/batch/v1", True),
    "cronjobs": ("/apis/batch/v1", True),
    "deployments": ("/apis/apps/v1", True),
    "replicasets": ("/apis/apps/v1", True),
    "statefulsets": ("/apis/apps/v1", True),
    "daemonsets": ("/apis/apps/v1", True),
    "poddisruptionbudgets": ("/apis/policy/v1", True),
}

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
INSTANTIATE_ANNOTATION = "cronjob.kubernetes.io/instantiate"


def path(resource: str, name: str | None = None, namespace: str | None = None, sub: str | None = None) -> str:
    """The REST path of a resource collection or object, e.g. path("pods", "web-1", "shop", "log").

    Without a namespace, a namespaced resource is addressed across all namespaces (list only).
    """
    prefix, namespaced = _RESOURCES[resource]
    parts = [prefix]
    if namespaced and namespace:
        parts.append(f"namespaces/{quote(namespace, safe='')}")
    parts.append(resource)
    if name:
        parts.append(quote(name, safe=""))
    if sub:
        parts.append(sub)
    return "/".join(parts)


def meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name", ""))


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("namespace", ""))


def ref(obj: Mapping[str, Any]) -> str:
    """`namespace/name` or just `name` for cluster-scoped objects."""
    ns, name = namespace_of(obj), name_of(obj)
    return f"{ns}/{name}" if ns else name


def labels(obj: Mapping[str, Any]) -> dict[str, str]:
    value = meta(obj).get("labels")
    return value if isinstance(value, dict) else {}


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    value = meta(obj).get("annotations")
    return value if isinstance(value, dict) else {}


def controller_of(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ownerReference with `controller: true` (or the only one), or None for un-owned objects."""
    owners = [o for o in meta(obj).get("ownerReferences") or [] if isinstance(o, dict)]
    for owner in owners:
        if owner.get("controller"):
            return owner
    return owners[0] if len(owners) == 1 else None


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    return any(o.get("uid") == uid for o in meta(obj).get("ownerReferences") or [] if isinstance(o, dict))


def condition(obj: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    """The status condition of a type (`Ready`, `Complete`, ...), or None."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def selector_matches(selector: Mapping[str, Any] | None, obj_labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels + matchExpressions) selects these labels.

    An empty selector selects everything, as for PodDisruptionBudgets in policy/v1; a missing one
    selects nothing.
    """
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if obj_labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in obj_labels
        if op == "In" and not (present and obj_labels[key] in values):
            return False
        if op == "NotIn" and present and obj_labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def selector_string(selector: Mapping[str, Any]) -> str:
    """A LabelSelector as the `labelSelector` query string (equality and set-based)."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], ",".join(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def singular(resource: str) -> str:
    """`nodes` -> `node`, `poddisruptionbudgets` -> `poddisruptionbudget`, `ingresses` -> `ingress`."""
    base = resource.split(".")[0]
    if base.endswith("sses"):
        return base[:-2]
    if base.endswith("ies"):
        return base[:-3] + "y"
    return base[:-1] if base.endswith("s") else base
