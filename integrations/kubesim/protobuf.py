"""Just enough Kubernetes protobuf decoding for access reviews.

kubectl sends typed built-in objects such as SelfSubjectAccessReview (``kubectl auth can-i``)
as ``application/vnd.kubernetes.protobuf``. We decode those few messages into their JSON form;
responses stay JSON, which client-go accepts. Anything else gets 415.
"""

from __future__ import annotations

from typing import Any

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """Malformed or unsupported protobuf payload."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """Decode one message level into (field number, value) pairs (varints and length-delimited)."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            out.append((number, data[pos : pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
    return out


def _strings(data: bytes, names: dict[int, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, value in fields(data):
        if number in names and isinstance(value, bytes):
            out[names[number]] = value.decode()
    return out


_RESOURCE_ATTRS = {
    1: "namespace",
    2: "verb",
    3: "group",
    4: "version",
    5: "resource",
    6: "subresource",
    7: "name",
}
_NON_RESOURCE_ATTRS = {1: "path", 2: "verb"}


def _spec(data: bytes) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for number, value in fields(data):
        if not isinstance(value, bytes):
            continue
        if number == 1:
            spec["resourceAttributes"] = _strings(value, _RESOURCE_ATTRS)
        elif number == 2:
            spec["nonResourceAttributes"] = _strings(value, _NON_RESOURCE_ATTRS)
        elif number == 3:
            spec["user"] = value.decode()
        elif number == 4:
            spec.setdefault("groups", []).append(value.decode())
        elif number == 6:
            spec["uid"] = value.decode()
    return spec


def decode_access_review(payload: bytes) -> dict[str, Any]:
    """Decode a protobuf-encoded (Self)SubjectAccessReview into its JSON shape."""
    if not payload.startswith(MAGIC):
        raise ProtobufError("missing k8s protobuf envelope")
    envelope = dict(fields(payload[len(MAGIC) :]))
    type_meta = envelope.get(1)
    raw = envelope.get(2)
    if not isinstance(type_meta, bytes) or not isinstance(raw, bytes):
        raise ProtobufError("envelope without type or object")
    obj: dict[str, Any] = _strings(type_meta, {1: "apiVersion", 2: "kind"})
    for number, value in fields(raw):
        if number == 2 and isinstance(value, bytes):
            obj["spec"] = _spec(value)
    obj.setdefault("spec", {})
    return obj
