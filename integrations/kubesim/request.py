"""Transport-independent request/response types and REST path parsing."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from .errors import ApiError, bad_request, path_not_found
from .resources import ResourceTable, ResourceType


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()


@dataclass
class ApiRequest:
    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] | Message = field(default_factory=dict)
    body: bytes = b""
    user: UserInfo = UserInfo("admin", ("system:masters", "system:authenticated"))

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def int_param(self, name: str, default: int = 0) -> int:
        """An integer query parameter; a malformed one is the client's fault (400), not ours."""
        raw = self.param(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError as exc:
            raise bad_request(f'invalid value for {name}: "{raw}"') from exc

    def flat_query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in self.query.items() if v}

    def header(self, name: str) -> str:
        getter = getattr(self.headers, "get", None)
        value = getter(name) if getter else None
        if value is None:
            lowered = name.lower()
            value = next((v for k, v in self.headers.items() if k.lower() == lowered), None)
        return value or ""

    @property
    def dry_run(self) -> bool:
        return "All" in self.query.get("dryRun", [])

    def json_body(self) -> Any:
        ctype = self.header("Content-Type").split(";")[0].strip().lower()
        if ctype in ("application/vnd.kubernetes.protobuf", "application/cbor", "application/yaml"):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - "
                "accepted media types include: application/json, application/yaml",
                {},
            )
        if not self.body.strip():
            raise bad_request("the request body is empty")
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise bad_request(f"error decoding request body: {exc}") from exc

    def wants_table(self) -> bool:
        accept = self.header("Accept")
        return "as=Table" in accept and "g=meta.k8s.io" in accept

    def wants_partial(self) -> bool:
        """`Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1` (or ...List): metadata only."""
        accept = self.header("Accept")
        return "as=PartialObjectMetadata" in accept and "g=meta.k8s.io" in accept


@dataclass
class ApiResponse:
    code: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[bytes] | None = None

    @classmethod
    def json(cls, code: int, payload: Any, headers: dict[str, str] | None = None) -> ApiResponse:
        return cls(code, json.dumps(payload, separators=(",", ":")).encode(), headers=headers or {})

    @classmethod
    def error(cls, err: ApiError) -> ApiResponse:
        return cls.json(err.code, err.status(), dict(err.headers))


@dataclass(frozen=True)
class Target:
    """What a REST path addresses. ``rt`` is None for discovery paths."""

    group: str
    version: str
    rt: ResourceType | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    watch_path: bool = False

    @property
    def is_discovery(self) -> bool:
        return self.rt is None


def parse_path(table: ResourceTable, path: str) -> Target:
    """Parse ``/api/v1/...`` or ``/apis/{group}/{version}/...`` into a Target (404 otherwise)."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise path_not_found()
    if not rest:
        return Target(group, version)
    watch_path = rest[0] == "watch"
    if watch_path:
        rest = rest[1:]
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        candidate = table.by_path(group, version, rest[2])
        if candidate is not None and candidate.namespaced:
            namespace, rest = rest[1], rest[2:]
    rt = table.by_path(group, version, rest[0]) if rest else None
    if rt is None or len(rest) > 3:
        raise path_not_found()
    if rt.namespaced and namespace is None and len(rest) >= 2:
        raise path_not_found()
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) == 3 else None
    if sub is not None and sub not in rt.subresources:
        raise path_not_found()
    return Target(group, version, rt, namespace, name, sub, watch_path)
