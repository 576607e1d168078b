"""Deletion semantics: graceful/terminating pods, finalizers, owner cascades and evictions.

These are the behaviours incident runbooks lean on: a pod on a dead node stays Terminating
until force-deleted, PodDisruptionBudgets block evictions with 429, Jobs orphan their pods by
default in batch/v1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .errors import ApiError, conflict
from .objects import format_time, meta, node_ready, utcnow
from .resources import ResourceTable, ResourceType
from .store import Store

ORPHAN, BACKGROUND, FOREGROUND = "Orphan", "Background", "Foreground"
FOREGROUND_FINALIZER = "foregroundDeletion"
JOB_ORPHAN_WARNING = (
    '299 - "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to '
    'remove them or set propagationPolicy=Orphan to suppress this warning"'
)


@dataclass
class DeleteOptions:
    grace_period: int | None = None
    propagation: str | None = None
    precondition_uid: str | None = None
    precondition_rv: str | None = None
    dry_run: bool = False

    @classmethod
    def from_request(cls, body: dict[str, Any] | None, query: dict[str, str]) -> DeleteOptions:
        body = body or {}
        opts = cls()
        grace = body.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        if grace is not None and grace != "":
            opts.grace_period = int(grace)
        opts.propagation = body.get("propagationPolicy") or query.get("propagationPolicy") or None
        orphan = body.get("orphanDependents", query.get("orphanDependents"))
        if opts.propagation is None and orphan is not None:
            opts.propagation = ORPHAN if str(orphan).lower() == "true" else BACKGROUND
        pre = body.get("preconditions") or {}
        opts.precondition_uid = pre.get("uid")
        opts.precondition_rv = pre.get("resourceVersion")
        dry = body.get("dryRun") or query.get("dryRun")
        opts.dry_run = bool(dry) and ("All" in dry if isinstance(dry, list) else dry == "All")
        return opts


class Lifecycle:
    """Deletes and evicts objects against a store, following the real server's rules."""

    def __init__(self, store: Store, table: ResourceTable) -> None:
        self.store = store
        self.table = table

    # -- delete ------------------------------------------------------------------------------
    def default_propagation(self, rt: ResourceType) -> str:
        return ORPHAN if (rt.group, rt.version, rt.plural) == ("batch", "v1", "jobs") else BACKGROUND

    def _check_preconditions(self, rt: ResourceType, obj: dict, opts: DeleteOptions) -> None:
        m = meta(obj)
        if opts.precondition_uid and opts.precondition_uid != m.get("uid"):
            raise conflict(
                rt,
                m.get("name", ""),
                f"Precondition failed: UID in precondition: "
                f"{opts.precondition_uid}, UID in object meta: {m.get('uid', '')}",
            )
        if opts.precondition_rv and opts.precondition_rv != m.get("resourceVersion"):
            raise conflict(
                rt,
                m.get("name", ""),
                f"Precondition failed: ResourceVersion in precondition: "
                f"{opts.precondition_rv}, ResourceVersion in object meta: {m.get('resourceVersion', '')}",
            )

    def _pod_grace(self, pod: dict, opts: DeleteOptions) -> int:
        if opts.grace_period is not None:
            return max(opts.grace_period, 0)
        current = meta(pod).get("deletionGracePeriodSeconds")
        if current is not None:
            return int(current)
        spec_grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        return int(spec_grace) if spec_grace is not None else 30

    def _kubelet_can_confirm(self, pod: dict) -> bool:
        """True when the pod is unbound, its node is gone, or its node is Ready (kubelet alive)."""
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            return True
        node = self.store.get(self.table.lookup("nodes"), None, node_name)
        return node is None or node_ready(node)

    def delete(self, rt: ResourceType, namespace: str | None, name: str, opts: DeleteOptions) -> dict:
        """Delete one object; returns the final object (or its terminating state). Caller checks existence."""
        with self.store.lock:
            obj = self.store.get(rt, namespace, name)
            if obj is None:
                raise KeyError(name)
            self._check_preconditions(rt, obj, opts)
            policy = opts.propagation or self.default_propagation(rt)
            m = meta(obj)
            grace = self._pod_grace(obj, opts) if rt.key == "pods" else 0
            finalizers = list(m.get("finalizers") or [])
            if policy == FOREGROUND and FOREGROUND_FINALIZER not in finalizers:
                # registry/store.go deletionFinalizersForGarbageCollection: Foreground adds this finalizer, the
                # garbage collector removes it once no dependent with blockOwnerDeletion is left.
                finalizers.append(FOREGROUND_FINALIZER)
            keep = bool(finalizers) or (grace > 0 and not self._kubelet_can_confirm(obj))
            if keep:
                return self._mark_deleted(rt, obj, finalizers, grace, policy, opts.dry_run)
            if opts.dry_run:
                return obj
            final = self.store.remove(rt, namespace or "", name) or obj
            if policy == ORPHAN:
                self._orphan(m.get("uid", ""))
            else:
                self._cascade(m.get("uid", ""), BACKGROUND, False)
            return final

    def _mark_deleted(
        self, rt: ResourceType, obj: dict, finalizers: list[str], grace: int, policy: str, dry_run: bool
    ) -> dict:
        """Set deletionTimestamp (and the foreground finalizer); the object stays until released."""
        m = meta(obj)
        new_meta = dict(m)
        if finalizers:
            new_meta["finalizers"] = finalizers
        if not new_meta.get("deletionTimestamp") or (
            rt.key == "pods" and grace < int(new_meta.get("deletionGracePeriodSeconds") or 0)
        ):
            new_meta["deletionTimestamp"] = format_time(utcnow() + timedelta(seconds=grace))
            new_meta["deletionGracePeriodSeconds"] = grace
        updated = {**obj, "metadata": new_meta}
        if dry_run:
            return updated
        updated = self.store.put(rt, updated) if new_meta != m else obj
        if policy == FOREGROUND:
            self._cascade(m.get("uid", ""), FOREGROUND, False)
            self.release_foreground(rt, self.store.get(rt, m.get("namespace"), m["name"]))
        return updated

    def blocking_dependents(self, uid: str) -> list[tuple[str, str, str]]:
        """Dependents whose ownerReference to `uid` has blockOwnerDeletion (what foreground deletion waits for:
        pkg/controller/garbagecollector/garbagecollector.go processDeletingDependentsItem)."""
        out = []
        for rkey, ns, name in self.store.dependents(uid):
            dep = self.store.get(self.table.lookup(rkey), ns, name)
            refs = meta(dep).get("ownerReferences") or [] if dep else []
            if any(r.get("uid") == uid and r.get("blockOwnerDeletion") for r in refs):
                out.append((rkey, ns, name))
        return out

    def release_foreground(self, rt: ResourceType, obj: dict | None) -> None:
        """Drop the foregroundDeletion finalizer of `obj` once nothing blocks it, then complete the deletion."""
        if obj is None:
            return
        m = meta(obj)
        if FOREGROUND_FINALIZER not in (m.get("finalizers") or []) or not m.get("deletionTimestamp"):
            return
        if self.blocking_dependents(str(m.get("uid", ""))):
            return
        rest = [f for f in m["finalizers"] if f != FOREGROUND_FINALIZER]
        new_meta = {**m, "finalizers": rest}
        if not rest:
            del new_meta["finalizers"]
        stored = self.store.put(rt, {**obj, "metadata": new_meta})
        self.complete_if_released(rt, stored)

    def complete_if_released(self, rt: ResourceType, obj: dict) -> dict | None:
        """After a write: an object marked for deletion whose finalizers are gone is removed."""
        m = meta(obj)
        if not m.get("deletionTimestamp") or m.get("finalizers"):
            return obj
        if (
            rt.key == "pods"
            and not self._kubelet_can_confirm(obj)
            and int(m.get("deletionGracePeriodSeconds") or 0)
        ):
            return obj
        self.store.remove(rt, m.get("namespace", ""), m["name"])
        self._cascade(m.get("uid", ""), BACKGROUND, False)
        return None

    def node_updated(self, old: dict | None, new: dict) -> None:
        """A node whose kubelet came back (Ready again) confirms its Terminating pods' deletion."""
        if node_ready(old) or not node_ready(new):
            return
        pods = self.table.lookup("pods")
        for pod in self.store.pods_on_node(meta(new).get("name", "")):
            m = meta(pod)
            if m.get("deletionTimestamp") and not m.get("finalizers"):
                self.store.remove(pods, m.get("namespace", ""), m["name"])
                self._cascade(m.get("uid", ""), BACKGROUND, False)

    def _cascade(self, uid: str, policy: str, dry_run: bool) -> None:
        if not uid or dry_run:
            return
        for rkey, ns, name in self.store.dependents(uid):
            rt = self.table.lookup(rkey)
            dep = self.store.get(rt, ns, name)
            if dep is None:
                continue
            refs = meta(dep).get("ownerReferences") or []
            others = [r for r in refs if r.get("uid") != uid and self.store.by_uid(str(r.get("uid")))]
            if others:
                self.store.put(rt, {**dep, "metadata": {**meta(dep), "ownerReferences": others}})
                continue
            self.delete(rt, ns, name, DeleteOptions(propagation=policy))

    def _orphan(self, uid: str) -> None:
        if not uid:
            return
        for rkey, ns, name in self.store.dependents(uid):
            rt = self.table.lookup(rkey)
            dep = self.store.get(rt, ns, name)
            if dep is None:
                continue
            refs = [r for r in meta(dep).get("ownerReferences") or [] if r.get("uid") != uid]
            new_meta = {**meta(dep), "ownerReferences": refs}
            if not refs:
                del new_meta["ownerReferences"]
            self.store.put(rt, {**dep, "metadata": new_meta})


__all__ = ["ApiError", "DeleteOptions", "Lifecycle"]
