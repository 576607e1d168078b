"""Object storage with resourceVersions, secondary indexes and a watch log.

Stored objects are treated as immutable: every write stores a freshly built dict, so readers
can serialise what they got without holding the lock and without copying (copy-on-write).
"""

from __future__ import annotations

import bisect
import builtins
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .events import EventExpiry
from .resources import ResourceType
from .selectors import FieldSelector, LabelSelector

ObjKey = tuple[str, str]  # (namespace or "", name)
Ref = tuple[str, str, str]  # (resource key, namespace, name)


class ResourceVersionTooOld(Exception):
    """The requested watch start point fell out of the retained history (HTTP 410 Gone)."""


@dataclass(frozen=True)
class WatchEvent:
    rv: int
    rkey: str
    namespace: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict


def _meta(obj: dict) -> dict:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _owner_uids(obj: dict) -> set[str]:
    return {str(ref.get("uid")) for ref in _meta(obj).get("ownerReferences") or () if ref.get("uid")}


def _node_name(obj: dict) -> str:
    spec = obj.get("spec")
    return str(spec.get("nodeName") or "") if isinstance(spec, dict) else ""


class Store:
    """Thread-safe object store keyed by resource key, namespace and name."""

    def __init__(self, history: int = 50_000) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._data: dict[str, dict[str, dict[str, dict]]] = {}
        self._by_uid: dict[str, Ref] = {}
        self._dependents: dict[str, set[Ref]] = {}
        self._pods_by_node: dict[str, dict[ObjKey, dict]] = {}
        self._sorted: dict[str, list[ObjKey]] = {}
        self._rv = 0
        self._log: deque[WatchEvent] = deque(maxlen=history)
        self._log_floor = 0
        self.event_expiry = EventExpiry()

    # -- bookkeeping -------------------------------------------------------------------------
    @property
    def lock(self) -> threading.RLock:
        """Held by multi-step mutations (cascades, evictions) that must be atomic."""
        return self._lock

    @property
    def resource_version(self) -> int:
        return self._rv

    def next_rv(self) -> int:
        with self._lock:
            self._rv += 1
            return self._rv

    def _index(self, rt: ResourceType, key: ObjKey, old: dict | None, new: dict | None) -> None:
        ref = (rt.key, key[0], key[1])
        if old is None and new is not None:  # fast path: plain insert (bulk loads)
            self._insert_index(rt, ref, key, new)
            return
        old_uid = str(_meta(old).get("uid", "")) if old else ""
        new_uid = str(_meta(new).get("uid", "")) if new else ""
        if old_uid and old_uid != new_uid:
            self._by_uid.pop(old_uid, None)
        if new_uid:
            self._by_uid[new_uid] = ref
        old_owners = _owner_uids(old) if old else set()
        new_owners = _owner_uids(new) if new else set()
        for uid in old_owners - new_owners:
            deps = self._dependents.get(uid)
            if deps is not None:
                deps.discard(ref)
                if not deps:
                    del self._dependents[uid]
        for uid in new_owners - old_owners:
            self._dependents.setdefault(uid, set()).add(ref)
        if rt.key == "pods":
            old_node = _node_name(old) if old else ""
            new_node = _node_name(new) if new else ""
            if old_node and old_node != new_node:
                bucket = self._pods_by_node.get(old_node)
                if bucket is not None:
                    bucket.pop(key, None)
            if new_node and new is not None:
                self._pods_by_node.setdefault(new_node, {})[key] = new
        if (old is None) != (new is None):
            self._sorted.pop(rt.key, None)

    def _insert_index(self, rt: ResourceType, ref: Ref, key: ObjKey, new: dict) -> None:
        meta = new["metadata"]
        uid = meta.get("uid")
        if uid:
            self._by_uid[str(uid)] = ref
        for owner in meta.get("ownerReferences") or ():
            if owner.get("uid"):
                self._dependents.setdefault(str(owner["uid"]), set()).add(ref)
        if rt.key == "pods":
            node = _node_name(new)
            if node:
                self._pods_by_node.setdefault(node, {})[key] = new
        self._sorted.pop(rt.key, None)

    def _store(self, rt: ResourceType, obj: dict, rv: int) -> tuple[dict | None, ObjKey]:
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(rv)
        key = (str(meta.get("namespace", "")) if rt.namespaced else "", str(meta["name"]))
        bucket = self._data.setdefault(rt.key, {}).setdefault(key[0], {})
        old = bucket.get(key[1])
        bucket[key[1]] = obj
        self._index(rt, key, old, obj)
        if rt.key == "events":
            self.event_expiry.written(obj)
        return old, key

    # -- writes ------------------------------------------------------------------------------
    def load(self, items: Iterable[tuple[ResourceType, dict]]) -> int:
        """Bulk insert without watch events (initial scenario state). Returns the object count."""
        n = 0
        with self._lock:
            for rt, obj in items:
                self._rv += 1
                self._store(rt, obj, self._rv)
                n += 1
            self._log.clear()
            self._log_floor = self._rv
        return n

    def put(self, rt: ResourceType, obj: dict) -> dict:
        """Store ``obj`` (a private, freshly built dict) as the new state and emit a watch event."""
        with self._lock:
            self._rv += 1
            old, key = self._store(rt, obj, self._rv)
            self._emit(WatchEvent(self._rv, rt.key, key[0], "MODIFIED" if old else "ADDED", obj))
            return obj

    def remove(self, rt: ResourceType, namespace: str, name: str) -> dict | None:
        """Remove an object; the DELETED event carries a fresh resourceVersion like the real server."""
        ns = namespace if rt.namespaced else ""
        with self._lock:
            bucket = self._data.get(rt.key, {}).get(ns)
            old = bucket.pop(name, None) if bucket is not None else None
            if old is None:
                return None
            if not bucket:
                del self._data[rt.key][ns]
            self._index(rt, (ns, name), old, None)
            if rt.key == "events":
                self.event_expiry.forget(ns, name)
            self._rv += 1
            final = {**old, "metadata": {**_meta(old), "resourceVersion": str(self._rv)}}
            self._emit(WatchEvent(self._rv, rt.key, ns, "DELETED", final))
            return final

    def _emit(self, event: WatchEvent) -> None:
        if len(self._log) == self._log.maxlen and self._log:
            self._log_floor = self._log[0].rv
        self._log.append(event)
        self._changed.notify_all()

    # -- reads -------------------------------------------------------------------------------
    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict | None:
        ns = (namespace or "") if rt.namespaced else ""
        return self._data.get(rt.key, {}).get(ns, {}).get(name)

    def by_uid(self, uid: str) -> Ref | None:
        return self._by_uid.get(uid)

    def dependents(self, uid: str) -> list[Ref]:
        with self._lock:
            return sorted(self._dependents.get(uid, ()))

    def pods_on_node(self, node: str) -> builtins.list[dict]:
        with self._lock:
            return builtins.list(self._pods_by_node.get(node, {}).values())

    def namespaces_of(self, rt: ResourceType) -> list[str]:
        return sorted(self._data.get(rt.key, {}))

    def count(self, rt: ResourceType) -> int:
        return sum(len(b) for b in self._data.get(rt.key, {}).values())

    def _sorted_keys(self, rt: ResourceType) -> list[ObjKey]:
        keys = self._sorted.get(rt.key)
        if keys is None:
            keys = sorted((ns, name) for ns, bucket in self._data.get(rt.key, {}).items() for name in bucket)
            self._sorted[rt.key] = keys
        return keys

    def _candidates(
        self, rt: ResourceType, namespace: str | None, fields: FieldSelector, start: ObjKey | None
    ) -> Iterator[tuple[ObjKey, dict]]:
        """Yield (key, obj) in key order, narrowed by the cheapest applicable index."""
        data = self._data.get(rt.key, {})
        name = fields.equals("metadata.name")
        ns = namespace if namespace is not None else fields.equals("metadata.namespace")
        node = fields.equals("spec.nodeName") if rt.key == "pods" else None
        if node is not None:
            bucket = self._pods_by_node.get(node, {})
            pairs = sorted((k, o) for k, o in bucket.items() if (ns is None or k[0] == ns))
            yield from (p for p in pairs if start is None or p[0] > start)
            return
        if name is not None:
            namespaces = [ns] if ns is not None else sorted(data)
            for n in namespaces:
                obj = data.get(n, {}).get(name)
                if obj is not None and (start is None or (n, name) > start):
                    yield (n, name), obj
            return
        if ns is not None:
            by_name = data.get(ns if rt.namespaced else "", {})
            for nm in sorted(by_name):
                if start is None or (ns, nm) > start:
                    yield (ns, nm), by_name[nm]
            return
        keys = self._sorted_keys(rt)
        begin = bisect.bisect_right(keys, start) if start is not None else 0
        for i in range(begin, len(keys)):
            k = keys[i]
            obj = data.get(k[0], {}).get(k[1])
            if obj is not None:
                yield k, obj

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
        limit: int = 0,
        start: ObjKey | None = None,
    ) -> tuple[builtins.list[dict], int, ObjKey | None, int | None]:
        """Matching objects in key order: (items, resourceVersion, continue key, remaining count)."""
        labels = labels or LabelSelector()
        fields = fields or FieldSelector()
        with self._lock:
            rv = self._rv
            items: builtins.list[dict] = []
            last: ObjKey | None = None
            more = False
            for key, obj in self._candidates(rt, namespace if rt.namespaced else None, fields, start):
                if not labels.empty and not labels.matches(_meta(obj).get("labels")):
                    continue
                if not fields.empty and not fields.matches(obj):
                    continue
                if limit and len(items) >= limit:
                    more = True
                    break
                items.append(obj)
                last = key
            remaining = None
            if more and labels.empty and fields.empty and namespace is None and last is not None:
                keys = self._sorted_keys(rt)
                remaining = len(keys) - bisect.bisect_right(keys, last)
            return items, rv, (last if more else None), remaining

    # -- watch -------------------------------------------------------------------------------
    def events_after(self, rkey: str, after_rv: int, timeout: float) -> builtins.list[WatchEvent]:
        """Events for ``rkey`` newer than ``after_rv``; blocks up to ``timeout`` s for the first one."""
        with self._lock:
            if after_rv < self._log_floor:
                raise ResourceVersionTooOld(after_rv)
            found = self._scan(rkey, after_rv)
            if not found and timeout > 0:
                self._changed.wait(timeout)
                found = self._scan(rkey, after_rv)
            return found

    def changes_after(self, after_rv: int) -> builtins.list[WatchEvent]:
        """Every retained event (all kinds) newer than `after_rv`, oldest first; never blocks."""
        with self._lock:
            out = []
            for ev in reversed(self._log):
                if ev.rv <= after_rv:
                    break
                out.append(ev)
            out.reverse()
            return out

    def _scan(self, rkey: str, after_rv: int) -> builtins.list[WatchEvent]:
        if not self._log or self._log[-1].rv <= after_rv:
            return []
        out = []
        for ev in reversed(self._log):
            if ev.rv <= after_rv:
                break
            if ev.rkey == rkey:
                out.append(ev)
        out.reverse()
        return out
