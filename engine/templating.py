"""Jinja2 templating in a sandbox, where outside data stays data.

Templates come only from runbook files. Values from alerts, chat and the cluster enter as context
variables and are never themselves rendered, so `{{ ... }}` inside an alert label stays literal text.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined, nodes

from engine.errors import PermanentError
from engine.model import parse_duration
from engine.template_limits import BUDGET_KEY, MAX_TEXT, BoundedSandbox, Budget, TemplateLimit

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{[-+]?(?P<expr>(?:(?!\}\}|\{\{).)*?)[-+]?\}\}\s*$", re.DOTALL)
CONTEXT_NAMES = frozenset({"params", "steps", "findings", "run", "alert", "now"})
DEFAULT_RENDER_SECONDS = 10.0  # when the caller has no step timeout to give


def is_template(value: str) -> bool:
    return "{{" in value or "{%" in value


class TemplateFailure(PermanentError):
    """A template failed to render at run time (undefined name, sandbox violation, type error)."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Templating:
    """Compiles and caches templates; renders `with` arguments and evaluates `when` conditions.

    `clock` is what `now` and the `age` filter measure against: the API server's clock when a cluster is
    in play (as the actions measure ages), so a skewed engine clock never makes a fresh object look old.
    """

    def __init__(self, clock: Callable[[], dt.datetime] = _utc_now) -> None:
        self.clock = clock
        self.env = BoundedSandbox(undefined=StrictUndefined, autoescape=False)
        self.env.filters["to_duration"] = _human_duration
        self.env.filters["age"] = self._age
        self._cache: dict[str, Any] = {}

    def now(self) -> str:
        """`now` as templates see it: RFC 3339, seconds."""
        return self.clock().astimezone(dt.UTC).isoformat(timespec="seconds")

    def _age(self, value: Any) -> float:
        """Seconds since a timestamp (RFC 3339 text, a datetime or unix seconds) on the template clock."""
        if isinstance(value, dt.datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            moment = dt.datetime.fromtimestamp(value, dt.UTC)
        elif isinstance(value, str):
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        else:
            raise ValueError(f"age needs a timestamp, got {type(value).__name__}")
        return round((self.clock() - moment).total_seconds(), 3)

    def parse(self, source: str) -> nodes.Template:
        """The AST of a template (for load-time checks); raises jinja2.TemplateSyntaxError."""
        return self.env.parse(source)

    def parse_expression(self, source: str) -> nodes.Template:
        return self.env.parse("{{ (" + source + ") }}")

    def compile(self, source: str) -> None:
        """Compile `source` exactly as rendering will (load-time check); raises TemplateSyntaxError."""
        self._compiled(source)

    def compile_condition(self, expression: str) -> None:
        self._condition(expression)

    def _condition(self, expression: str) -> Any:
        compiled = self._cache.get("when:" + expression)
        if compiled is None:
            compiled = self.env.compile_expression(expression, undefined_to_none=False)
            self._cache["when:" + expression] = compiled
        return compiled

    def _compiled(self, source: str) -> Any:
        compiled = self._cache.get(source)
        if compiled is None:
            single = _SINGLE_EXPRESSION.match(source)
            if single:
                compiled = ("expr", self.env.compile_expression(single.group("expr"), undefined_to_none=False))
            else:
                compiled = ("text", self.env.from_string(source))
            self._cache[source] = compiled
        return compiled

    def render_value(self, value: Any, context: Mapping[str, Any], *, deadline: float | None = None) -> Any:
        """Render templates inside strings, lists and dicts.

        A string that is exactly one `{{ expression }}` yields the expression's native value (a list
        stays a list); any other template renders to text. Non-template values pass through untouched.
        Rendering is bounded in size and stops at `deadline` (time.monotonic()) with StepTimeout.
        """
        budget = Budget(deadline if deadline is not None else time.monotonic() + DEFAULT_RENDER_SECONDS)
        return self._render(value, {**context, BUDGET_KEY: budget})

    def _render(self, value: Any, context: Mapping[str, Any]) -> Any:
        if isinstance(value, str):
            if not is_template(value):
                return value
            try:
                kind, compiled = self._compiled(value)
                result = compiled(**context) if kind == "expr" else _bounded_text(compiled, context)
                if isinstance(result, Undefined):
                    result._fail_with_undefined_error()  # a sandbox refusal or missing name, not a value
                return result
            except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError, AttributeError,
                    RecursionError) as exc:
                raise TemplateFailure(f"template {value!r} failed: {_reason(exc)}") from exc
        if isinstance(value, Mapping):
            return {k: self._render(v, context) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._render(v, context) for v in value]
        return value

    def evaluate(self, expression: str, context: Mapping[str, Any], *, deadline: float | None = None) -> bool:
        """Evaluate a `when` condition to a boolean, bounded as `render_value` is."""
        budget = Budget(deadline if deadline is not None else time.monotonic() + DEFAULT_RENDER_SECONDS)
        try:
            result = self._condition(expression)(**{**context, BUDGET_KEY: budget})
            if isinstance(result, Undefined):
                result._fail_with_undefined_error()
            return bool(result)
        except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError, AttributeError,
                    RecursionError) as exc:
            raise TemplateFailure(f"condition {expression!r} failed: {_reason(exc)}") from exc


def _bounded_text(template: Any, context: Mapping[str, Any]) -> str:
    """The rendered text, refused as soon as it grows past MAX_TEXT (a loop printing a large value)."""
    parts: list[str] = []
    size = 0
    for chunk in template.generate(**context):
        size += len(chunk)
        if size > MAX_TEXT:
            raise TemplateLimit(f"the template renders more than {MAX_TEXT} characters")
        parts.append(chunk)
    return "".join(parts)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if not str(exc).startswith(type(exc).__name__) else str(exc)


def _human_duration(seconds: Any) -> str:
    """`372` (or `"372s"`, `"6.2m"`) -> `6m12s`, for findings people read at 2 AM."""
    if isinstance(seconds, str) and seconds.strip() and seconds.strip()[-1] in "smhd":
        seconds = parse_duration(seconds)
    total = int(float(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    text = "".join(f"{n}{unit}" for n, unit in parts if n)
    return text or "0s"
