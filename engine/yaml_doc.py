"""Bounded YAML parsing with the position of every key and value.

Runbook files come from people and from ConfigMaps: a file that is huge, nested without end or an alias
bomb (a few hundred bytes whose anchors expand to billions of values) must become one clear problem for
that file, never a process that runs out of memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.errors import Problem

Loc = tuple[str | int, ...]

MAX_FILE_BYTES = 1024 * 1024  # the largest runbook shipped is ~12 KB
MAX_DEPTH = 64  # mapping/list levels
ALIAS_BUDGET = 10_000  # values that aliases may add beyond those written out

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Refused(Exception):
    def __init__(self, node: yaml.Node, reason: str) -> None:
        super().__init__(reason)
        self.node, self.reason = node, reason


def format_path(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class Document:
    """Parsed YAML with the position of every key and value, for precise error messages."""

    file: str
    data: Any
    marks: dict[Loc, tuple[int, int]]
    key_marks: dict[Loc, tuple[int, int]]
    problems: list[Problem]

    def problem(self, loc: Loc, message: str, at_key: bool = False) -> Problem:
        line, column = self.position(loc, at_key)
        return Problem(self.file, line, column, format_path(loc), message)

    def position(self, loc: Loc, at_key: bool = False) -> tuple[int, int]:
        """The 1-based position of `loc`, or of its nearest ancestor that exists in the file."""
        loc = tuple(loc)
        while loc:
            found = (self.key_marks.get(loc) if at_key else None) or self.marks.get(loc)
            if found:
                return found
            loc = loc[:-1]
        return self.marks.get((), (1, 1))


def read_bounded(path: Path) -> str:
    """The text of `path`; raises ValueError (with the limit) when it is too large to be a runbook file."""
    with path.open("rb") as handle:
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES // 1024} KiB; a runbook file is far smaller")
    return raw.decode("utf-8")


def parse_yaml(text: str, file: str) -> Document:
    """Parse one YAML document within the bounds above, recording marks and flagging duplicate keys
    (PyYAML keeps the last)."""
    doc = Document(file, None, {}, {}, [])
    if len(text) > MAX_FILE_BYTES:
        doc.problems.append(Problem(file, 1, 1, "", f"larger than {MAX_FILE_BYTES // 1024} KiB; "
                                                    "a runbook file is far smaller"))
        return doc
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _measure(node, 0, {}, [0])  # before anything expands the aliases
            _walk(node, (), doc)  # before construction flattens `<<` merge keys into the nodes
            doc.data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        reason = getattr(exc, "problem", None) or str(exc)
        doc.problems.append(Problem(file, line, col, "", f"invalid YAML: {reason}"))
        return doc
    except _Refused as exc:
        mark = exc.node.start_mark
        doc.problems.append(Problem(file, mark.line + 1, mark.column + 1, "", f"invalid YAML: {exc.reason}"))
        return doc
    finally:
        loader.dispose()
    return doc


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _measure(node: yaml.Node, depth: int, sizes: dict[int, int], added: list[int]) -> int:
    """The number of values under `node` once aliases are expanded, counted without expanding them: a
    node met again (an alias) adds its known size to `added`, which may not exceed the budget."""
    if depth > MAX_DEPTH:
        raise _Refused(node, f"nested deeper than {MAX_DEPTH} levels (or an anchor that contains itself)")
    known = sizes.get(id(node))
    if known is not None:
        added[0] += known
        if added[0] > ALIAS_BUDGET:
            raise _Refused(node, f"aliases of the anchor here expand to more than {ALIAS_BUDGET} values "
                                 "(an alias bomb?); write the values out or use fewer aliases")
        return known
    size = 1 + sum(_measure(child, depth + 1, sizes, added) for child in _children(node))
    sizes[id(node)] = size
    return size


def _walk(node: yaml.Node, loc: Loc, doc: Document) -> None:
    doc.marks[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*loc, key)
            if key in seen:
                line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                doc.problems.append(Problem(doc.file, line, col, format_path(child), "duplicate key"))
            seen.add(key)
            doc.key_marks[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _walk(value_node, child, doc)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*loc, index), doc)
