"""Loads runbook files into the typed model, reporting every problem with file, line, column and field."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from engine.actions import ActionRegistry
from engine.checks import Loc, check_runbook
from engine.errors import DefinitionError, Problem
from engine.hints import did_you_mean
from engine.model import Runbook
from engine.templating import Templating

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


def parse_yaml(text: str, file: str) -> Document:
    """Parse one YAML document, recording marks and flagging duplicate keys (PyYAML keeps the last)."""
    doc = Document(file, None, {}, {}, [])
    try:
        node = yaml.compose(text, Loader=_SafeLoader)
        doc.data = yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        reason = getattr(exc, "problem", None) or str(exc)
        doc.problems.append(Problem(file, line, col, "", f"invalid YAML: {reason}"))
        return doc
    if node is not None:
        _walk(node, (), doc)
    return doc


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


class Loader:
    """Turns runbook files into `Runbook` objects, checked against the action registry."""

    def __init__(
        self, registry: ActionRegistry, templating: Templating | None = None, check_tests: bool = True
    ) -> None:
        """`check_tests=False` ignores problems in a runbook's rehearsal cases (a moved scenario file), so
        they never disable the runbook itself where it runs; `runbook validate` and `runbook test` check them."""
        self.registry = registry
        self.templating = templating or Templating()
        self.check_tests = check_tests

    def load_file(self, path: str | Path) -> Runbook:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DefinitionError([Problem(str(path), 0, 0, "", f"cannot read: {exc}")]) from exc
        return self.load_text(text, str(path))

    def load_text(self, text: str, file: str = "<string>") -> Runbook:
        doc = parse_yaml(text, file)
        if doc.problems and doc.data is None:
            raise DefinitionError(doc.problems)
        problems = list(doc.problems)
        if not isinstance(doc.data, dict):
            problems.append(doc.problem((), "a runbook file must hold a mapping with apiVersion, kind, ..."))
            raise DefinitionError(problems)
        try:
            runbook = Runbook.model_validate(doc.data)
        except ValidationError as exc:
            problems.extend(_validation_problems(exc, doc))
            raise DefinitionError(problems) from None
        base = Path(file).parent
        for loc, message, at_key in check_runbook(runbook, doc.data, self.registry, self.templating, base,
                                                  self.check_tests):
            problems.append(doc.problem(loc, message, at_key))
        if problems:
            raise DefinitionError(sorted(problems, key=lambda p: (p.line, p.column)))
        return runbook


def _validation_problems(exc: ValidationError, doc: Document) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(p for p in error["loc"] if p != "[key]")
        message = error["msg"]
        kind = error["type"]
        if kind == "missing":
            message = "field required"
        elif kind == "extra_forbidden":
            message = "unknown key" + did_you_mean(str(loc[-1]), model_fields_at(Runbook, loc[:-1]))
        elif kind.startswith("literal_error"):
            message = f"{message}, got {error.get('input')!r}"
        elif kind == "union_tag_invalid" or kind.endswith("_type"):
            message = f"{message}, got {type(error.get('input')).__name__} {error.get('input')!r}"
        if error["loc"] and error["loc"][-1] == "[key]":
            message = f"key {loc[-1]!r}: {message}"
        problems.append(doc.problem(loc, message, at_key=kind == "extra_forbidden"))
    return problems


def model_fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys a model accepts at `loc`, following lists, dicts and nested models."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return []
            current = field.annotation
        else:
            args = typing.get_args(current)
            current = args[-1] if typing.get_origin(current) is dict else args[0] if args else None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Optional and Annotated wrappers to the model or container type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation
