"""Checks parameter values from the CLI, chat or an alert against a runbook's declared params."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engine.errors import ParamError
from engine.hints import did_you_mean
from engine.model import Param, Runbook

_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


def coerce_params(runbook: Runbook, given: Mapping[str, Any]) -> dict[str, Any]:
    """Typed values for every declared param, or a ParamError naming every problem at once.

    Strings (from a command line or a chat message) are converted to the declared type; values are
    never interpreted as templates.
    """
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key in given:
        if key not in runbook.params:
            hint = did_you_mean(key, runbook.params)
            known = ", ".join(runbook.params) or "none"
            problems.append(f"unknown param {key!r}{hint}; {runbook.name} takes: {known}")
    for name, spec in runbook.params.items():
        if name in given and given[name] is not None:
            try:
                values[name] = coerce_value(spec, given[name])
            except ValueError as exc:
                problems.append(f"param {name!r}: {exc}")
        elif spec.default is not None:
            values[name] = spec.default
        elif spec.required:
            problems.append(f"missing required param {name!r}" + (f" ({spec.description})" if spec.description else ""))
        else:
            values[name] = None
    if problems:
        raise ParamError("; ".join(problems))
    return values


def coerce_value(spec: Param, value: Any) -> Any:
    """`value` as the param's type; ValueError saying why it does not fit."""
    if spec.type == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise ValueError(f"expected a boolean (true/false), got {value!r}")
    if spec.type == "integer":
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
        if spec.minimum is not None and number < spec.minimum:
            raise ValueError(f"{number} is below the minimum {spec.minimum}")
        if spec.maximum is not None and number > spec.maximum:
            raise ValueError(f"{number} is above the maximum {spec.maximum}")
        return number
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"expected a {spec.type}, got {type(value).__name__}")
    text = str(value)
    if spec.type == "enum" and text not in spec.values:
        raise ValueError(f"{text!r} is not one of {', '.join(spec.values)}")
    if spec.pattern and not re.fullmatch(spec.pattern, text):
        raise ValueError(f"{text!r} does not match the pattern {spec.pattern}")
    return text
