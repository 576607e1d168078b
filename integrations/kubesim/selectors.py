"""Label and field selectors, parsed once per request and matched against plain dicts.

Field selectors also expose equality requirements on indexed fields (``spec.nodeName``,
``metadata.namespace``, ``metadata.name``) so the store can answer them without a full scan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    """Raised for a selector the real server would reject with 400 BadRequest."""


@dataclass(frozen=True)
class LabelRequirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        # "!=" and "notin" match objects without the label, as on the real server.
        return not present or labels[self.key] not in self.values


_LABEL_TOKEN = re.compile(
    r"\s*(?:(?P<bang>!)\s*(?P<nkey>[^\s,!=()]+)"
    r"|(?P<key>[^\s,!=()]+)\s*(?:(?P<op>==|!=|=)\s*(?P<val>[^\s,()]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<set>[^)]*)\)|))\s*(?:,|$)"
)


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[LabelRequirement, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        """Parse the ``labelSelector`` query string syntax (equality and set-based)."""
        if not text or not text.strip():
            return cls()
        reqs: list[LabelRequirement] = []
        pos = 0
        while pos < len(text):
            m = _LABEL_TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise SelectorError(f"unable to parse requirement: found '{text[pos:]}'")
            pos = m.end()
            if m.group("nkey"):
                reqs.append(LabelRequirement(m.group("nkey"), "!"))
            elif m.group("op"):
                op = "=" if m.group("op") in ("=", "==") else "!="
                reqs.append(LabelRequirement(m.group("key"), op, frozenset([m.group("val")])))
            elif m.group("setop"):
                values = frozenset(v.strip() for v in m.group("set").split(",") if v.strip())
                reqs.append(LabelRequirement(m.group("key"), m.group("setop"), values))
            else:
                reqs.append(LabelRequirement(m.group("key"), "exists"))
        return cls(tuple(reqs))

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> LabelSelector:
        """Build from a ``metav1.LabelSelector`` object (matchLabels + matchExpressions)."""
        if not spec:
            return cls()
        reqs = [
            LabelRequirement(k, "=", frozenset([str(v)])) for k, v in (spec.get("matchLabels") or {}).items()
        ]
        op_map = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
        for expr in spec.get("matchExpressions") or []:
            op = op_map.get(expr.get("operator", ""))
            if op is None:
                raise SelectorError(f"{expr.get('operator')!r} is not a valid label selector operator")
            reqs.append(LabelRequirement(expr["key"], op, frozenset(expr.get("values") or [])))
        return cls(tuple(reqs))

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)


def get_field(obj: Mapping[str, Any], path: str) -> str:
    """Value of a dotted field path rendered as the field-selector string form ("" when absent)."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
        if cur is None:
            return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


# Fields the real server accepts per kind, beyond metadata.name / metadata.namespace.
SUPPORTED_FIELDS: dict[str, frozenset[str]] = {
    "Pod": frozenset(
        {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        }
    ),
    "Event": frozenset(
        {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        }
    ),
    "Node": frozenset({"spec.unschedulable"}),
    "Namespace": frozenset({"status.phase"}),
    "Secret": frozenset({"type"}),
    "Job": frozenset({"status.successful"}),
    "ReplicaSet": frozenset({"status.replicas"}),
}


# Selectable fields whose value is not the object's field as written: (where it is read, value when unset).
# The real server renders Go values: pkg/registry/batch/job/strategy.go SelectableFields serves
# "status.successful" as strconv.Itoa(Status.Succeeded); pkg/registry/core/node/strategy.go NodeToSelectableFields
# serves "spec.unschedulable" as FormatBool (so "false" when unset); replicaset/strategy.go serves
# "status.replicas" as a number; pod/strategy.go ToSelectableFields serves "spec.hostNetwork" as FormatBool;
# event/strategy.go serves "source" from source.component.
_RENDERED: dict[tuple[str, str], tuple[str, str]] = {
    ("Job", "status.successful"): ("status.succeeded", "0"),
    ("Node", "spec.unschedulable"): ("spec.unschedulable", "false"),
    ("ReplicaSet", "status.replicas"): ("status.replicas", "0"),
    ("Pod", "spec.hostNetwork"): ("spec.hostNetwork", "false"),
    ("Event", "source"): ("source.component", ""),
}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    op: str  # "=" or "!="
    value: str
    kind: str = ""

    def matches(self, obj: Mapping[str, Any]) -> bool:
        path, default = _RENDERED.get((self.kind or str(obj.get("kind", "")), self.field), (self.field, ""))
        actual = get_field(obj, path) or default
        return (actual == self.value) if self.op == "=" else (actual != self.value)


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    @classmethod
    def parse(cls, text: str | None, kind: str = "") -> FieldSelector:
        if not text or not text.strip():
            return cls()
        reqs = []
        for part in _split_unescaped(text):
            part = part.strip()
            if not part:
                continue
            m = re.fullmatch(r"([^=!\s]+)\s*(==|!=|=)\s*(.*)", part)
            if not m:
                raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
            name, op, value = m.group(1), m.group(2), m.group(3).replace("\\,", ",")
            if (
                kind
                and name not in ("metadata.name", "metadata.namespace")
                and name not in SUPPORTED_FIELDS.get(kind, frozenset())
            ):
                raise SelectorError(f"field label not supported: {name}")
            reqs.append(FieldRequirement(name, "!=" if op == "!=" else "=", value, kind))
        return cls(tuple(reqs))

    @property
    def empty(self) -> bool:
        return not self.requirements

    def equals(self, field: str) -> str | None:
        """The required value if the selector pins ``field`` by equality; used to pick an index."""
        for r in self.requirements:
            if r.field == field and r.op == "=":
                return r.value
        return None

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)


def _split_unescaped(text: str) -> list[str]:
    return re.split(r"(?<!\\),", text)
