"""Events: one store for core/v1 and events.k8s.io/v1, and the one-hour time to live.

The real server keeps one internal Event and converts per request (pkg/apis/events/v1/conversion.go:
regarding <-> involvedObject, note <-> message, reportingController <-> reportingComponent and the
deprecated* fields <-> source/firstTimestamp/lastTimestamp/count), so an event written through either
API is listed by both. kubesim stores the core/v1 form and converts events.k8s.io reads and writes.

Events are stored with a lease of `--event-ttl` (1 h by default, pkg/registry/core/event/storage/storage.go
TTLFunc, renewed on every write): they expire one hour after the server last stored them, whatever their
own timestamps say.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .errors import bad_request, not_found
from .objects import meta, utcnow
from .patch import PatchError, apply_patch
from .request import ApiRequest, ApiResponse, Target
from .resources import ResourceType

if TYPE_CHECKING:
    from .store import Store
    from .writes import Writer

EVENT_TTL = timedelta(hours=1)
V1_GROUP = "events.k8s.io"

# events.k8s.io/v1 field -> core/v1 field
_RENAMED = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_BACK = {core: v1 for v1, core in _RENAMED.items()}


def to_core(event: dict) -> dict:
    """An events.k8s.io/v1 Event as core/v1 stores it."""
    out = {_RENAMED.get(k, k): v for k, v in event.items()}
    out.update(apiVersion="v1", kind="Event")
    return out


def to_v1(event: dict) -> dict:
    """A stored (core/v1) Event as events.k8s.io/v1 serves it."""
    out = {_BACK.get(k, k): v for k, v in event.items()}
    out.update(apiVersion=f"{V1_GROUP}/v1", kind="Event")
    return out


def field_to_core(field: str) -> str:
    """Field selectors on events.k8s.io name the v1 fields (`regarding.name`); the store has core ones."""
    head, _, rest = field.partition(".")
    core = _RENAMED.get(head, head)
    return f"{core}.{rest}" if rest else core


class EventExpiry:
    """When each stored event was last written, oldest first, to drop those older than the TTL."""

    def __init__(self, ttl: timedelta = EVENT_TTL) -> None:
        self.ttl = ttl
        self._written: OrderedDict[tuple[str, str], datetime] = OrderedDict()

    def written(self, event: dict, at: datetime | None = None) -> None:
        key = (str(meta(event).get("namespace", "")), str(meta(event).get("name", "")))
        self._written.pop(key, None)
        self._written[key] = at or utcnow()

    def forget(self, namespace: str, name: str) -> None:
        self._written.pop((namespace, name), None)

    def expired(self, now: datetime | None = None) -> list[tuple[str, str]]:
        """(namespace, name) of the events past their TTL, removed from tracking."""
        limit = (now or utcnow()) - self.ttl
        gone = []
        while self._written:
            key, at = next(iter(self._written.items()))
            if at > limit:
                break
            self._written.popitem(last=False)
            gone.append(key)
        return gone


def selector_to_core(text: str | None) -> str | None:
    """A field selector written against events.k8s.io/v1 names, rewritten to the stored core names."""
    if not text:
        return text
    terms = re.split(r"(?<!\\),", text)
    out = []
    for term in terms:
        m = re.match(r"\s*([^=!\s]+)(.*)$", term, re.S)
        out.append(field_to_core(m.group(1)) + m.group(2) if m else term)
    return ",".join(out)


class EventsV1:
    """Serves events.k8s.io/v1 from the core Event store, converting on the way in and out."""

    def __init__(self, core: ResourceType, store: Store, writer: Writer) -> None:
        self.core = core
        self.store = store
        self.writer = writer

    def handle(self, req: ApiRequest, target: Target, verb: str,
               serve_core: Callable[[ApiRequest, Target, ResourceType, str], ApiResponse]) -> ApiResponse:
        query = dict(req.query)
        if "fieldSelector" in query:
            query["fieldSelector"] = [selector_to_core(v) or "" for v in query["fieldSelector"]]
        body = req.body
        if verb in ("create", "update") and body.strip():
            parsed = req.json_body()
            if isinstance(parsed, dict):
                body = json.dumps(to_core(parsed)).encode()
        core_req = replace(req, query=query, body=body)
        core_target = replace(target, group="", version="v1", rt=self.core)
        if verb == "patch":
            return self._patch(core_req, target)
        response = serve_core(core_req, core_target, self.core, verb)
        return self._convert(response, req)

    def _patch(self, req: ApiRequest, target: Target) -> ApiResponse:
        current = self.store.get(self.core, target.namespace, target.name or "")
        if current is None:
            raise not_found(self.core, target.name or "")
        try:
            patched = apply_patch(req.header("Content-Type").split(";")[0].strip(), to_v1(current), req.json_body())
        except (KeyError, PatchError) as exc:
            raise bad_request(f"invalid patch: {exc}") from exc
        stored = self.writer.update(self.core, target.namespace, target.name or "", to_core(patched),
                                    req.dry_run, None)
        return ApiResponse.json(200, to_v1(stored))

    @staticmethod
    def _convert(response: ApiResponse, req: ApiRequest) -> ApiResponse:
        if response.stream is not None:
            return replace(response, stream=_converted_frames(response.stream))
        if response.code >= 300 or req.wants_table() or not response.body:
            return response
        doc = json.loads(response.body)
        if doc.get("kind") == "Event":
            doc = to_v1(doc)
        elif doc.get("kind") == "EventList":
            doc = {**doc, "apiVersion": f"{V1_GROUP}/v1", "items": [to_v1(o) for o in doc.get("items") or []]}
        return replace(response, body=json.dumps(doc, separators=(",", ":")).encode())


def _converted_frames(frames: Iterator[bytes]) -> Iterator[bytes]:
    for frame in frames:
        event = json.loads(frame)
        if isinstance(event.get("object"), dict) and event["object"].get("kind") == "Event":
            event["object"] = to_v1(event["object"])
        yield json.dumps(event, separators=(",", ":")).encode() + b"\n"
