"""JSON merge patch (RFC 7386), Kubernetes strategic merge patch and JSON patch (RFC 6902).

All functions return new structures and never mutate their inputs; unchanged subtrees are
shared with the original, which is what the store's copy-on-write model wants.

Strategic merge follows the real API types' ``patchStrategy``/``patchMergeKey`` tags: lists
such as node ``spec.taints`` or pod ``tolerations`` carry no tag upstream and are replaced
wholesale, exactly as on a real cluster.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any


class PatchError(ValueError):
    """A patch that cannot be applied (bad document, failed ``test`` op, missing path)."""


_DELETE = object()
_PRIMITIVE = "<primitive>"

# field name -> merge key; context-dependent fields are resolved in _merge_key.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "readinessGates": "conditionType",
    "resourceClaims": "name",
    "schedulingGates": "name",
    "addresses": "type",
    "secrets": "name",
    "finalizers": _PRIMITIVE,
    "podCIDRs": _PRIMITIVE,
}


def _merge_key(path: Sequence[str]) -> str | None:
    field = path[-1] if path else ""
    if field == "ports":
        in_container = len(path) >= 2 and path[-2] in ("containers", "initContainers", "ephemeralContainers")
        return "containerPort" if in_container else "port"
    if field == "addresses" and "subsets" in path:
        return None
    if field == "conditions" and "status" not in path:
        return None  # e.g. metav1 conditions in spec of CRDs: atomic
    return MERGE_KEYS.get(field)


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip_directives(v)
            for k, v in value.items()
            if not (k.startswith("$setElementOrder/") or k in ("$patch", "$retainKeys"))
            and not k.startswith("$deleteFromPrimitiveList/")
        }
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


# -- JSON merge patch ------------------------------------------------------------------------
def merge_patch(original: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- strategic merge patch -------------------------------------------------------------------
def strategic_merge_patch(original: dict, patch: dict) -> dict:
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object")
    merged = _smp_map(original, patch, [])
    return {} if merged is _DELETE else merged  # type: ignore[return-value]


def _smp_map(original: dict, patch: dict, path: list[str]) -> Any:
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return _DELETE
    if directive not in (None, "merge"):
        raise PatchError(f"Unknown patch type: {directive}")
    retain = patch.get("$retainKeys")
    result = dict(original)
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            drop = value if isinstance(value, list) else [value]
            result[field] = [x for x in result.get(field) or [] if x not in drop]
            continue
        if value is None:
            result.pop(key, None)
            continue
        current = result.get(key)
        if isinstance(value, dict):
            merged = _smp_map(current if isinstance(current, dict) else {}, value, [*path, key])
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _smp_list(current if isinstance(current, list) else [], value, [*path, key])
        else:
            result[key] = value
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _smp_list(original: list, patch: list, path: list[str]) -> list:
    key = _merge_key(path)
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [_strip_directives(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    if key is None:
        return _strip_directives(patch)
    if key == _PRIMITIVE:
        return list(original) + [x for x in patch if x not in original]
    result = list(original)
    for item in patch:
        if not isinstance(item, dict):
            if item not in result:
                result.append(item)
            continue
        wanted = item.get(key)
        matches = [i for i, x in enumerate(result) if isinstance(x, dict) and x.get(key) == wanted]
        if item.get("$patch") == "delete":
            result = [x for i, x in enumerate(result) if i not in matches]
        elif matches:
            merged = _smp_map(result[matches[0]], item, path)
            result[matches[0]] = merged
        else:
            result.append(_strip_directives(item))
    return result


# -- JSON patch ------------------------------------------------------------------------------
def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f'invalid JSON pointer "{pointer}"')
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _index(container: list, token: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit():
        raise PatchError(f"invalid array index {token!r}")
    idx = int(token)
    if idx > len(container) or (idx == len(container) and not allow_end):
        raise PatchError(f"array index out of bounds: {idx}")
    return idx


def _parent(doc: Any, tokens: list[str]) -> Any:
    cur = doc
    for tok in tokens[:-1]:
        if isinstance(cur, dict):
            if tok not in cur:
                raise PatchError(f'doc is missing path: "/{"/".join(tokens)}"')
            cur = cur[tok]
        elif isinstance(cur, list):
            cur = cur[_index(cur, tok, False)]
        else:
            raise PatchError(f'doc is missing path: "/{"/".join(tokens)}"')
    return cur


def _get(doc: Any, pointer: str) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'doc is missing path: "{pointer}"')
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, False)]
    raise PatchError(f'doc is missing path: "{pointer}"')


def _remove(doc: Any, pointer: str) -> Any:
    tokens = _tokens(pointer)
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"Unable to remove nonexistent key: {last}: missing value")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, False))
    raise PatchError(f'doc is missing path: "{pointer}"')


def _add(doc: Any, pointer: str, value: Any, replace: bool = False) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(
                f"replace operation does not apply: doc is missing key: {pointer}: missing value"
            )
        parent[last] = value
    elif isinstance(parent, list):
        if replace:
            parent[_index(parent, last, False)] = value
        else:
            parent.insert(_index(parent, last, True), value)
    else:
        raise PatchError(f'doc is missing path: "{pointer}"')
    return doc


def json_patch(original: Any, operations: Any) -> Any:
    """Apply an RFC 6902 operation list to a deep copy of ``original``."""
    if not isinstance(operations, list):
        raise PatchError("json patch must be a JSON array of operations")
    doc = json.loads(json.dumps(original))
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation: {json.dumps(op)}")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f'missing value for "{kind}" operation')
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            doc = _add(doc, path, copy.deepcopy(op["value"]), replace=True)
        elif kind == "move":
            doc = _add(doc, path, _remove(doc, op["from"]))
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return doc


PATCH_TYPES = {
    "application/merge-patch+json": merge_patch,
    "application/strategic-merge-patch+json": strategic_merge_patch,
    "application/json-patch+json": json_patch,
}


def apply_patch(content_type: str, original: dict, patch: Any, strategic: bool = True) -> dict:
    """Dispatch on the request's Content-Type; ``strategic`` is False for types without SMP support."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/strategic-merge-patch+json" and not strategic:
        raise PatchError("strategic merge patch is not supported for this resource")
    fn = PATCH_TYPES.get(ctype)
    if fn is None:
        raise KeyError(ctype)
    result = fn(original, patch)
    if not isinstance(result, dict):
        raise PatchError("patch did not produce an object")
    return result
