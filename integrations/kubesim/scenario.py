"""Scenario loading: multi-document manifests as ``kubectl get -o yaml`` prints them.

A scenario may pin the moment it describes with a leading ``# kubesim-now: <RFC 3339>`` comment.
Every timestamp in it is then shifted by (real now - that instant), so "lease renewed 6 minutes
ago" stays true whenever the scenario is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from .objects import RFC3339, parse_time, shift_time_string, utcnow

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ScenarioLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe loader that keeps timestamps as strings (as the API server serves them)."""


ScenarioLoader.yaml_implicit_resolvers = {  # type: ignore[attr-defined]
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()  # type: ignore[attr-defined]
}

_HEADER = re.compile(r"^#\s*kubesim-now:\s*(\S+)\s*$")


class ScenarioError(ValueError):
    """A scenario that cannot be served: not Kubernetes objects, or a kind the simulator cannot serve."""


class Located(dict):  # type: ignore[type-arg]
    """An object as parsed from a scenario, remembering where it was written (`file:line`)."""

    where: str = ""


def locate(obj: dict, where: str) -> dict:
    located = Located(obj)
    located.where = where
    return located


def where_of(obj: dict) -> str:
    """`file:line` of a parsed object ("" when it was not parsed from a file)."""
    return getattr(obj, "where", "")


def scenario_now(text: str) -> datetime | None:
    """The instant named by a ``# kubesim-now:`` header among the leading comment lines."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped == "---":
            continue
        if not stripped.startswith("#"):
            return None
        m = _HEADER.match(stripped)
        if m:
            t = parse_time(m.group(1))
            if t is None:
                raise ScenarioError(f"kubesim-now header is not an RFC 3339 time: {m.group(1)!r}")
            return t
    return None


def shift_timestamps(value: Any, delta: timedelta) -> Any:
    """Return ``value`` with every RFC 3339 string (at any depth) shifted by ``delta``."""
    if isinstance(value, str):
        return shift_time_string(value, delta) if RFC3339.match(value) else value
    if isinstance(value, dict):
        return {k: shift_timestamps(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [shift_timestamps(v, delta) for v in value]
    return value


def _documents(text: str) -> Iterable[tuple[Any, Any]]:
    """(node, data) per YAML document: nodes carry the line each object starts on."""
    loader = ScenarioLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            yield node, loader.construct_document(node)
    finally:
        loader.dispose()


def _item_nodes(node: Any) -> list[Any]:
    for key, value in getattr(node, "value", None) or []:
        if getattr(key, "value", None) == "items" and isinstance(value, yaml.SequenceNode):
            return list(value.value)
    return []


def _flatten(docs: Iterable[tuple[Any, Any]], source: str) -> list[dict]:
    out: list[dict] = []
    for node, doc in docs:
        if doc is None:
            continue
        where = f"{source}:{node.start_mark.line + 1}" if node is not None else source
        if not isinstance(doc, dict) or "kind" not in doc:
            raise ScenarioError(f"{where}: document is not a Kubernetes object: {str(doc)[:80]!r}")
        if doc["kind"] == "List" or (
            str(doc["kind"]).endswith("List") and isinstance(doc.get("items"), list)
        ):
            items = doc.get("items") or []
            nodes = _item_nodes(node)
            out.extend(_flatten(zip(nodes if len(nodes) == len(items) else [node] * len(items), items,
                                    strict=True), source))
        else:
            out.append(locate(doc, where))
    return out


def parse_scenario(
    text: str, source: str = "<string>", now: datetime | None = None, shift: bool = True
) -> list[dict]:
    """Parse manifest text; ``now`` overrides the real clock for the time shift (tests). With
    ``shift=False`` timestamps stay as written (for a cluster whose clock starts at the scenario's instant)."""
    try:
        objects = _flatten(_documents(text), source)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from exc
    pinned = scenario_now(text)
    if pinned is None or not shift:
        return objects
    delta = timedelta(seconds=round(((now or utcnow()) - pinned).total_seconds()))
    return [locate(shift_timestamps(obj, delta), where_of(obj)) for obj in objects]


def load_scenario(path: str | Path, now: datetime | None = None) -> list[dict]:
    """Load a multi-document YAML scenario file into API objects, applying its time shift."""
    p = Path(path)
    return parse_scenario(p.read_text(encoding="utf-8"), str(p), now)
