"""Request dispatch: discovery, authorization, then the verb handlers.

Transport-free on purpose: ``ApiHandler.handle(ApiRequest) -> ApiResponse`` is what the HTTP
layer calls, and what unit tests can call directly.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from . import discovery, openapi, tables
from .controllers import Controllers
from .errors import ApiError, bad_request, gone, method_not_allowed, not_found, path_not_found, success_status
from .events import V1_GROUP, EventsV1
from .kubelet import ImageBehaviours, Kubelet
from .lifecycle import JOB_ORPHAN_WARNING, DeleteOptions, Lifecycle
from .options import check_options
from .rbac import Authorizer
from .request import ApiRequest, ApiResponse, Target, parse_path
from .resources import ResourceTable, ResourceType
from .selectors import FieldSelector, LabelSelector, SelectorError
from .store import ObjKey, ResourceVersionTooOld, Store
from .subresources import Subresources
from .workloads import Workloads
from .writes import FieldChecks, Writer

_NON_RESOURCE_OK = {"/healthz", "/livez", "/readyz"}
WATCH_POLL = 0.5
_ENCODED_MAX = 200_000


class EncodedCache:
    """JSON bytes of stored objects, reused across list responses.

    Stored objects are never mutated in place (every write stores a fresh dict), so an object's identity
    pins its encoding. Encoding the same 1,000-5,000 nodes for every `GET /api/v1/nodes` was the
    simulator's largest cost in the concurrency and alert benchmarks. Entries hold their object, so an
    id cannot be reused while cached; the cache is simply emptied when it grows past `_ENCODED_MAX`.
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[dict, bytes]] = {}

    def encode(self, obj: dict) -> bytes:
        entry = self._entries.get(id(obj))
        if entry is not None and entry[0] is obj:
            return entry[1]
        data = json.dumps(obj, separators=(",", ":")).encode()
        if len(self._entries) >= _ENCODED_MAX:
            self._entries.clear()
        self._entries[id(obj)] = (obj, data)
        return data


class ApiHandler:
    """Turns ApiRequests into ApiResponses against one store."""

    def __init__(
        self,
        store: Store,
        table: ResourceTable,
        authorizer: Authorizer,
        server_address: Callable[[], str],
        seed: int | None = None,
        behaviours: ImageBehaviours | None = None,
    ) -> None:
        self.store = store
        self.table = table
        self.authorizer = authorizer
        self.server_address = server_address
        self.lifecycle = Lifecycle(store, table)
        self.writer = Writer(store, table, self.lifecycle, seed)
        self.kubelet = Kubelet(store, table.lookup("nodes"), behaviours or ImageBehaviours())
        workloads = Workloads(store, table, self.lifecycle, self.kubelet, self.writer.generate_name)
        self.controllers = Controllers(store, table, self.lifecycle, workloads)
        self.subresources = Subresources(
            store, table, self.lifecycle, self.writer, authorizer, self.controllers.disruption
        )
        self.events_v1 = EventsV1(table.lookup("events"), store, self.writer)
        self.stopping = threading.Event()
        self.encoded = EncodedCache()

    # -- entry point -------------------------------------------------------------------------
    def handle(self, req: ApiRequest) -> ApiResponse:
        """Controllers catch up with writes before and after each request (see controllers.py)."""
        self._expire_events()
        self.controllers.settle()
        try:
            return self._dispatch(req)
        except ApiError as err:
            return ApiResponse.error(err)
        except SelectorError as err:
            return ApiResponse.error(bad_request(str(err)))
        finally:
            if req.method not in ("GET", "HEAD", "OPTIONS"):
                self.controllers.settle()

    def _dispatch(self, req: ApiRequest) -> ApiResponse:
        path = req.path.rstrip("/") or "/"
        if path in _NON_RESOURCE_OK:
            return ApiResponse(200, b"ok", "text/plain; charset=utf-8")
        discovery_doc = self._discovery(path)
        if discovery_doc is not None:
            if req.method != "GET":
                raise method_not_allowed()
            return ApiResponse.json(200, discovery_doc)
        target = parse_path(self.table, path)
        if target.rt is None:
            doc = discovery.api_resource_list(self.table, target.group, target.version)
            if doc is None:
                raise path_not_found()
            return ApiResponse.json(200, doc)
        verb = self._verb(req, target)
        self.authorizer.require(req.user, verb, target)
        return self._resource(req, target, target.rt, verb)

    def _expire_events(self) -> None:
        with self.store.lock:
            for ns, name in self.store.event_expiry.expired():
                self.store.remove(self.events_v1.core, ns, name)

    def _discovery(self, path: str) -> dict[str, Any] | None:
        if path == "/version":
            return discovery.SERVER_VERSION
        if path == "/api":
            return discovery.api_versions(self.server_address())
        if path == "/apis":
            return discovery.api_group_list(self.table)
        if path == "/openapi/v3":
            return openapi.root(self.table)
        if path.startswith("/openapi/v3/"):
            doc = openapi.group_version(self.table, path[len("/openapi/v3/") :])
            if doc is None:
                raise path_not_found()
            return doc
        parts = path.split("/")
        if len(parts) == 3 and parts[1] == "apis":
            doc = discovery.api_group(self.table, parts[2])
            if doc is None:
                raise path_not_found()
            return doc
        return None

    @staticmethod
    def _verb(req: ApiRequest, target: Target) -> str:
        method = req.method
        if method == "GET":
            if target.name:
                return "get"
            watch = target.watch_path or (req.param("watch") or "").lower() in ("true", "1")
            return "watch" if watch else "list"
        verbs = {"POST": "create", "PUT": "update", "PATCH": "patch"}
        if method in verbs:
            return verbs[method]
        if method == "DELETE":
            return "delete" if target.name else "deletecollection"
        raise method_not_allowed()

    def _resource(self, req: ApiRequest, target: Target, rt: ResourceType, verb: str) -> ApiResponse:
        if verb not in rt.verbs and target.subresource is None:
            raise method_not_allowed()
        if rt.group == V1_GROUP:  # events.k8s.io/v1: served from the core Event store, converted
            return self.events_v1.handle(req, target, verb, self._resource)
        ns, name, sub = target.namespace, target.name, target.subresource
        if sub not in (None, "status"):
            return self.subresources.handle(req, target, rt, verb)
        if verb == "get":
            obj = self.store.get(rt, ns, name or "")
            if obj is None:
                raise not_found(rt, name or "")
            return self._objects_response(req, rt, [obj], single=True)
        if verb == "list":
            return self._list(req, rt, ns)
        if verb == "watch":
            return self._watch(req, rt, ns)
        check_options(req, verb)
        if verb == "create":
            if target.name:
                raise method_not_allowed()
            if rt.group == "authorization.k8s.io":
                return ApiResponse.json(201, self.subresources.access_review(req, rt, ns))
            checks = FieldChecks(req.param("fieldValidation") or "Warn")
            obj = self.writer.create(rt, ns, req.json_body(), req.dry_run, checks)
            return ApiResponse.json(201, obj, checks.header())
        if verb in ("update", "patch") and not name:
            raise method_not_allowed()
        if verb == "update":
            checks = FieldChecks(req.param("fieldValidation") or "Warn")
            obj = self.writer.update(rt, ns, name or "", req.json_body(), req.dry_run, sub, checks)
            return ApiResponse.json(200, obj, checks.header())
        if verb == "patch":
            if req.header("Content-Type").startswith("application/apply-patch"):
                raise ApiError(
                    415, "UnsupportedMediaType", "server-side apply is not supported by kubesim", {}
                )
            body = req.json_body()
            checks = FieldChecks(req.param("fieldValidation") or "Warn")
            obj = self.writer.patch(rt, ns, name or "", req.header("Content-Type"), body, req.dry_run, sub, checks)
            return ApiResponse.json(200, obj, checks.header())
        if verb == "delete":
            return self._delete(req, rt, ns, name or "")
        if verb == "deletecollection":
            return self._delete_collection(req, rt, ns)
        raise method_not_allowed()

    # -- reads -------------------------------------------------------------------------------
    def _selectors(self, req: ApiRequest, rt: ResourceType) -> tuple[LabelSelector, FieldSelector]:
        return (
            LabelSelector.parse(req.param("labelSelector")),
            FieldSelector.parse(req.param("fieldSelector"), rt.kind),
        )

    def _objects_response(
        self,
        req: ApiRequest,
        rt: ResourceType,
        items: list[dict],
        single: bool,
        list_meta: dict[str, Any] | None = None,
    ) -> ApiResponse:
        if req.wants_table():
            include = req.param("includeObject", "Metadata") or "Metadata"
            return ApiResponse.json(200, tables.table(rt, items, include, list_meta or {}))
        if req.wants_partial():
            doc = tables.partial(items[0]) if single else tables.partial_list(items, list_meta or {})
            return ApiResponse.json(200, doc)
        if single:
            return ApiResponse(200, self.encoded.encode(items[0]))
        # Byte-for-byte what json.dumps of the whole list gives, from per-object cached encodings.
        head = {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": list_meta or {}}
        prefix = json.dumps(head, separators=(",", ":")).encode()[:-1]
        body = b"".join((prefix, b',"items":[', b",".join(self.encoded.encode(o) for o in items), b"]}"))
        return ApiResponse(200, body)

    def _list(self, req: ApiRequest, rt: ResourceType, ns: str | None) -> ApiResponse:
        labels, fields = self._selectors(req, rt)
        limit = req.int_param("limit")
        start = self._decode_continue(rt, req.param("continue"))
        items, rv, last, remaining = self.store.list(rt, ns, labels, fields, limit, start)
        list_meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if last is not None:
            list_meta["continue"] = self._encode_continue(rt, rv, last)
            if remaining is not None:
                list_meta["remainingItemCount"] = remaining
        return self._objects_response(req, rt, items, single=False, list_meta=list_meta)

    @staticmethod
    def _encode_continue(rt: ResourceType, rv: int, key: ObjKey) -> str:
        start = f"{key[0]}/{key[1]}" if rt.namespaced else key[1]
        raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start + "\u0000"})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @staticmethod
    def _decode_continue(rt: ResourceType, token: str | None) -> ObjKey | None:
        if not token:
            return None
        try:
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            start = str(raw["start"]).rstrip("\u0000")
        except (binascii.Error, ValueError, KeyError, TypeError) as exc:
            raise bad_request(f"continue key is not valid: {exc}") from exc
        if rt.namespaced:
            ns, _, name = start.partition("/")
            return ns, name
        return "", start

    def _watch(self, req: ApiRequest, rt: ResourceType, ns: str | None) -> ApiResponse:
        labels, fields = self._selectors(req, rt)
        timeout = float(req.int_param("timeoutSeconds", 1800))
        rv_param = req.param("resourceVersion") or ""
        as_table = req.wants_table()
        as_partial = req.wants_partial()
        initial: list[dict] = []
        if rv_param in ("", "0"):
            initial, start_rv, _, _ = self.store.list(rt, ns, labels, fields)
        else:
            try:
                start_rv = int(rv_param)
            except ValueError as exc:
                raise bad_request(f"invalid resource version: {rv_param}") from exc

        def matches(obj: dict) -> bool:
            m = obj.get("metadata") or {}
            if rt.namespaced and ns is not None and m.get("namespace") != ns:
                return False
            return labels.matches(m.get("labels")) and fields.matches(obj)

        def frame(kind: str, obj: dict, first: bool) -> bytes:
            if as_table:
                obj = tables.table(rt, [obj], "Object", {}, with_columns=first)
            elif as_partial:
                obj = tables.partial(obj)
            return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"

        def stream() -> Iterator[bytes]:
            deadline = time.monotonic() + timeout
            last = start_rv
            first = True
            for obj in initial:
                yield frame("ADDED", obj, first)
                first = False
            while not self.stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                try:
                    events = self.store.events_after(rt.key, last, min(remaining, WATCH_POLL))
                except ResourceVersionTooOld:
                    err = gone(f"too old resource version: {last} ({self.store.resource_version})")
                    yield json.dumps({"type": "ERROR", "object": err.status()}).encode() + b"\n"
                    return
                for ev in events:
                    last = ev.rv
                    if matches(ev.obj):
                        yield frame(ev.type, ev.obj, first)
                        first = False

        return ApiResponse(200, stream=stream(), headers={"Transfer-Encoding": "chunked"})

    # -- deletes -----------------------------------------------------------------------------
    def _delete_options(self, req: ApiRequest) -> DeleteOptions:
        body = req.json_body() if req.body.strip() else None
        if body is not None and not isinstance(body, dict):
            raise bad_request("DeleteOptions must be an object")
        dry = (body or {}).get("dryRun")
        check_options(req, "delete", [str(v) for v in dry] if isinstance(dry, list) else None,
                      (body or {}).get("propagationPolicy") or req.param("propagationPolicy"))
        try:
            opts = DeleteOptions.from_request(body, req.flat_query())
        except ValueError as exc:
            raise bad_request(str(exc)) from exc
        opts.dry_run = opts.dry_run or req.dry_run
        return opts

    def _delete(self, req: ApiRequest, rt: ResourceType, ns: str | None, name: str) -> ApiResponse:
        opts = self._delete_options(req)
        try:
            obj = self.lifecycle.delete(rt, ns, name, opts)
        except KeyError as exc:
            raise not_found(rt, name) from exc
        headers = {}
        if opts.propagation is None and self.lifecycle.default_propagation(rt) == "Orphan":
            headers["Warning"] = JOB_ORPHAN_WARNING
        return ApiResponse.json(200, obj, headers)

    def _delete_collection(self, req: ApiRequest, rt: ResourceType, ns: str | None) -> ApiResponse:
        opts = self._delete_options(req)
        labels, fields = self._selectors(req, rt)
        items, rv, _, _ = self.store.list(rt, ns, labels, fields)
        deleted = []
        for obj in items:
            m = obj.get("metadata") or {}
            try:
                deleted.append(self.lifecycle.delete(rt, m.get("namespace"), m.get("name", ""), opts))
            except KeyError:
                continue
        return ApiResponse.json(
            200,
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(rv)},
                "items": deleted,
            },
        )


__all__ = ["ApiHandler", "success_status"]
