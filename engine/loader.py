"""Loads runbook files into the typed model, reporting every problem with file, line, column and field."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from engine.actions import ActionRegistry
from engine.checks import Loc, check_runbook
from engine.errors import DefinitionError, Problem
from engine.foreach import expand
from engine.hints import did_you_mean
from engine.model import Runbook
from engine.templating import Templating
from engine.yaml_doc import Document, format_path, parse_yaml, read_bounded

__all__ = ["Document", "Loader", "format_path", "parse_yaml"]

MAX_STEPS = 200  # a runbook is read by a person at 2 AM; split longer ones


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
            text = read_bounded(path)
        except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
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
        steps = doc.data.get("steps")
        if isinstance(steps, list) and len(steps) > MAX_STEPS:
            problems.append(doc.problem(("steps",), f"{len(steps)} steps; a runbook may have at most {MAX_STEPS}: "
                                                    "split it into runbooks that each handle one cause"))
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
        return expand(runbook)


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
