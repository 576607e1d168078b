"""Create, update (PUT) and patch, including the status subresource and dryRun.

The flow mirrors the apiserver's generic registry: decode, default, validate, check the
resourceVersion precondition, then store. Status and spec are split for resources with a
status subresource: the main endpoint ignores status changes and ``/status`` ignores the rest.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from .errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    namespace_not_found,
    not_found,
    unsupported_media_type,
)
from .fields import unknown_fields, without
from .lifecycle import Lifecycle
from .objects import format_time, meta, new_uid, utcnow
from .patch import PatchError, apply_patch
from .resources import ResourceTable, ResourceType
from .store import Store
from .validation import check_namespace, check_type, require_name_match, validate

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_GENERATION_GROUPS = {"apps", "batch", "policy"}
_IMMUTABLE_META = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)


@dataclass
class FieldChecks:
    """A write's `fieldValidation` mode and the warnings it produced (sent as `Warning` headers)."""

    mode: str = "Warn"
    warnings: list[str] = field(default_factory=list)

    def header(self) -> dict[str, str]:
        if not self.warnings:
            return {}
        return {"Warning": ", ".join('299 - "' + w.replace('"', '\\"') + '"' for w in self.warnings)}


class Writer:
    """Mutating verbs against the store; every method returns the object to send back."""

    def __init__(
        self, store: Store, table: ResourceTable, lifecycle: Lifecycle, seed: int | None = None
    ) -> None:
        self.store = store
        self.table = table
        self.lifecycle = lifecycle
        self._random = random.Random(seed)

    # -- helpers -----------------------------------------------------------------------------
    def _require_namespace(self, rt: ResourceType, namespace: str | None) -> None:
        if not rt.namespaced:
            return
        if not namespace:
            raise bad_request("the server could not find the requested resource")
        ns_rt = self.table.lookup("namespaces")
        ns = self.store.get(ns_rt, None, namespace)
        if ns is None:
            raise namespace_not_found(namespace)

    def generate_name(self, prefix: str) -> str:
        return prefix + "".join(self._random.choice(_NAME_CHARS) for _ in range(5))

    def fill_metadata(self, rt: ResourceType, obj: dict) -> dict:
        """Defaults the server adds on create: uid, creationTimestamp, generation, pod status."""
        m = obj.setdefault("metadata", {})
        m.setdefault("uid", new_uid())
        m.setdefault("creationTimestamp", format_time(utcnow()))
        if (rt.group in _GENERATION_GROUPS or not self.table.builtin_group(rt.group)) and "spec" in obj:
            m.setdefault("generation", 1)
        obj.setdefault("apiVersion", rt.api_version)
        obj.setdefault("kind", rt.kind)
        return obj

    # -- create ------------------------------------------------------------------------------
    def unknown_fields(self, rt: ResourceType, obj: dict, current: dict | None, checks: FieldChecks) -> dict:
        """Drop fields the kind does not have (new ones only, on update), warn or refuse per fieldValidation."""
        kind = rt.kind if self.table.builtin_group(rt.group) else ""
        found = unknown_fields(kind, obj)
        if current is not None and found:
            found = [p for p in found if p not in set(unknown_fields(kind, current))]
        if not found:
            return obj
        if checks.mode == "Strict":
            listed = ", ".join(f'unknown field "{p}"' for p in found)
            raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                              f"strict decoding error: {listed}")
        if checks.mode != "Ignore":
            checks.warnings.extend(f'unknown field "{p}"' for p in found)
        return without(obj, found)

    def create(
        self, rt: ResourceType, namespace: str | None, body: Any, dry_run: bool, checks: FieldChecks | None = None
    ) -> dict:
        check_type(rt, body)
        check_namespace(rt, body, namespace)
        obj = self.unknown_fields(rt, dict(body), None, checks or FieldChecks())
        m = dict(obj.get("metadata") or {})
        obj["metadata"] = m
        if rt.namespaced:
            m["namespace"] = namespace
        else:
            m.pop("namespace", None)
        if not m.get("name") and m.get("generateName"):
            m["name"] = self.generate_name(str(m["generateName"]))
        if m.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        validate(rt, obj)
        self._require_namespace(rt, namespace)
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            m.pop(key, None)
        if rt.has_status:
            obj.pop("status", None)
        if rt.key == "pods":
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        if rt.key == "namespaces":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
        self.fill_metadata(rt, obj)
        with self.store.lock:
            if self.store.get(rt, namespace, m["name"]) is not None:
                raise already_exists(rt, m["name"])
            if dry_run:
                return obj
            return self.store.put(rt, obj)

    # -- update ------------------------------------------------------------------------------
    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        dry_run: bool,
        subresource: str | None,
        checks: FieldChecks | None = None,
    ) -> dict:
        check_type(rt, body)
        check_namespace(rt, body, namespace)
        require_name_match(rt, body, name)
        with self.store.lock:
            current = self.store.get(rt, namespace, name)
            if current is None:
                raise not_found(rt, name)
            new = dict(body) if subresource else self.unknown_fields(rt, dict(body), current, checks or FieldChecks())
            return self._replace(rt, current, new, dry_run, subresource)

    def _replace(
        self, rt: ResourceType, current: dict, new: dict, dry_run: bool, subresource: str | None
    ) -> dict:
        cur_meta = meta(current)
        name = cur_meta["name"]
        new_meta = dict(new.get("metadata") or {})
        wanted_rv = new_meta.get("resourceVersion")
        if wanted_rv and wanted_rv != cur_meta.get("resourceVersion"):
            raise conflict(rt, name)
        if subresource == "status":
            obj = {**current}
            if "status" in new:
                obj["status"] = new["status"]
            else:
                obj.pop("status", None)
        else:
            obj = {**new, "apiVersion": current.get("apiVersion", rt.api_version), "kind": rt.kind}
            for key in _IMMUTABLE_META:
                if key in cur_meta:
                    new_meta[key] = cur_meta[key]
                else:
                    new_meta.pop(key, None)
            new_meta["name"] = name
            if rt.namespaced:
                new_meta["namespace"] = cur_meta.get("namespace")
            obj["metadata"] = new_meta
            if rt.has_status:
                if "status" in current:
                    obj["status"] = current["status"]
                else:
                    obj.pop("status", None)
            validate(rt, obj)
            if "generation" in cur_meta and obj.get("spec") != current.get("spec"):
                new_meta["generation"] = int(cur_meta["generation"]) + 1
        obj["metadata"] = {**obj["metadata"], "resourceVersion": cur_meta.get("resourceVersion", "")}
        if obj == current:
            return current  # no-op writes keep the resourceVersion, as on the real server
        if dry_run:
            return obj
        stored = self.store.put(rt, obj)
        if rt.key == "nodes":
            self.lifecycle.node_updated(current, stored)
        return self.lifecycle.complete_if_released(rt, stored) or stored

    # -- patch -------------------------------------------------------------------------------
    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        content_type: str,
        patch_doc: Any,
        dry_run: bool,
        subresource: str | None,
        checks: FieldChecks | None = None,
    ) -> dict:
        ctype = content_type.split(";")[0].strip().lower()
        if ctype == "application/apply-patch+yaml":
            raise ApiError(415, "UnsupportedMediaType", "server-side apply is not supported by kubesim", {})
        with self.store.lock:
            current = self.store.get(rt, namespace, name)
            if current is None:
                raise not_found(rt, name)
            try:
                patched = apply_patch(ctype, current, patch_doc)
            except KeyError as exc:
                raise unsupported_media_type(ctype) from exc
            except PatchError as exc:
                raise ApiError(422, "Invalid", str(exc), {}) from exc
            if not isinstance(patched.get("metadata"), dict):
                raise bad_request("metadata must be an object")
            require_name_match(rt, patched, name)
            if not subresource:
                patched = self.unknown_fields(rt, patched, current, checks or FieldChecks())
            return self._replace(rt, current, patched, dry_run, subresource)
