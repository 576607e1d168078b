"""A Jinja2 sandbox whose every evaluation is bounded in size and time.

Jinja folds constant expressions while compiling, so `{{ 7 ** (10 ** 9) }}` hung `runbook validate`
before anything ran; and a loop or a string doubled in a loop can outlast any step timeout, because a
thread cannot be stopped from outside. So the operators that can build huge values (`**`, `*`, `+`, `%`)
are intercepted (which also stops their folding), string methods and filters that pad are checked before
they allocate, every `for` loop and `~` concatenation goes through a per-render `Budget` (iterations,
text size, the step's deadline), and `range` is small.
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.filters import do_center, do_indent, do_replace
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer

from engine.errors import StepTimeout

MAX_TEXT = 1_000_000  # characters in any string a template builds
MAX_ITEMS = 100_000  # items in any list or tuple a template builds
MAX_RANGE = 10_000
MAX_ITERATIONS = 1_000_000  # loop iterations per render, over all loops
MAX_POWER_BITS = 4_096  # size of an integer `**` may produce
BUDGET_KEY = "runbook:budget"  # not an identifier: a template cannot name or replace it

_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "**": operator.pow, "*": operator.mul, "+": operator.add, "%": operator.mod,
}
_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*?:([^{}]*)(\{?)")


class TemplateLimit(SecurityError):
    """A template tried to build a value or run a loop beyond the sandbox's bounds."""


class Budget:
    """What one render may still spend: loop iterations, and time until the step's deadline."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.iterations = 0

    def tick(self) -> None:
        self.iterations += 1
        if self.iterations > MAX_ITERATIONS:
            raise TemplateLimit(f"loops ran more than {MAX_ITERATIONS} iterations")
        self.check_time()  # ~50 ns, against microseconds for the loop body

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise StepTimeout("rendering the step's templates did not finish within its timeout")


def _budget(context: Context) -> Budget:
    budget = context.get(BUDGET_KEY)
    if not isinstance(budget, Budget):  # rendered without one: still bounded, by a short default
        budget = Budget(time.monotonic() + 10.0)
    return budget


def check_binop(op: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be too large, before computing it."""
    if op == "**" and _is_int(left) and _is_int(right) and abs(left) > 1 and right > 0:
        if right * max(abs(left).bit_length(), 1) > MAX_POWER_BITS:
            raise TemplateLimit(f"{left} ** {right} is too large (more than {MAX_POWER_BITS} bits)")
    elif op == "*":
        seq, times = (left, right) if _is_int(right) else (right, left)
        if _is_int(times) and isinstance(seq, str | list | tuple):
            limit = MAX_TEXT if isinstance(seq, str) else MAX_ITEMS
            if len(seq) * times > limit:
                raise TemplateLimit(f"repeating a {type(seq).__name__} {times} times exceeds {limit} items")
    elif op == "%" and isinstance(left, str):
        check_format(left)


def check_format(text: str) -> None:
    """Refuse format strings that pad to a huge or computed width (`%999999999d`, `{:>{w}}`)."""
    for match in _PERCENT_SPEC.finditer(text):
        _check_widths(match.groups())
    for match in _BRACE_SPEC.finditer(text):
        if match.group(2):
            raise TemplateLimit("format widths computed from arguments are not allowed")
        _check_widths(re.findall(r"\d+", match.group(1)))


def _check_widths(widths: Iterable[str | None]) -> None:
    for width in widths:
        if width == "*" or (width and int(width) > MAX_TEXT):
            raise TemplateLimit(f"format width {width} is not allowed (at most {MAX_TEXT})")


def check_result(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise TemplateLimit(f"the template built a text longer than {MAX_TEXT} characters")
    if isinstance(value, list | tuple) and len(value) > MAX_ITEMS:
        raise TemplateLimit(f"the template built a list longer than {MAX_ITEMS} items")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bounded_range(*args: int) -> range:
    span = range(*args)
    if len(span) > MAX_RANGE:
        raise TemplateLimit(f"range of {len(span)} items; at most {MAX_RANGE}")
    return span


@pass_context
def _loop(context: Context, iterable: Any) -> Iterator[Any]:
    budget = _budget(context)
    for item in iterable:
        budget.tick()
        yield item


@pass_context
def _text(context: Context, value: Any) -> Any:
    _budget(context).check_time()
    return check_result(value)


def _check_widths_of(values: Iterable[Any]) -> None:
    for value in values:
        if _is_int(value) and value > MAX_TEXT:
            raise TemplateLimit(f"width {value} is not allowed (at most {MAX_TEXT})")
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise TemplateLimit(f"a padding text of {len(value)} characters is not allowed")


def _padded(filter_func: Callable[..., str]) -> Callable[..., str]:
    """A padding filter (center, indent) that refuses widths past MAX_TEXT before padding."""

    def bounded(value: Any, *args: Any, **kwargs: Any) -> str:
        _check_widths_of((*args, *kwargs.values()))
        return check_result(filter_func(value, *args, **kwargs))  # type: ignore[no-any-return]

    return bounded


def check_replace(text: str, old: str, new: str, count: int | None) -> None:
    occurrences = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        occurrences = min(occurrences, count)
    if len(text) + occurrences * (len(new) - len(old)) > MAX_TEXT:
        raise TemplateLimit(f"replace would build a text longer than {MAX_TEXT} characters")


@pass_eval_context
def _replace(eval_ctx: Any, value: Any, old: str, new: str, count: int | None = None) -> Any:
    check_replace(str(value), str(old), str(new), count)
    return do_replace(eval_ctx, value, old, new, count)


class _Guard(NodeTransformer):
    """Routes every loop and `~` concatenation through the render's budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)  # transforms the children in place
        node.iter = _filter(node.iter, "runbook_loop")
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _filter(node, "runbook_text")


def _filter(node: nodes.Node, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, bounded in size and time (see the module docstring)."""

    intercepted_binops = frozenset(_BINOPS)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _bounded_range
        self.filters["runbook_loop"] = _loop
        self.filters["runbook_text"] = _text
        self.filters["center"] = _padded(do_center)
        self.filters["indent"] = _padded(do_indent)
        self.filters["replace"] = _replace
        self.filters["format"] = self._format_filter

    def _generate(self, source: nodes.Template, *args: Any, **kwargs: Any) -> str:
        # Jinja 3.1: every compile (templates and expressions) passes its AST through here
        return super()._generate(_Guard().visit(source), *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right)
        return check_result(_BINOPS[operator](left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        owner = getattr(value, "__self__", None)
        if isinstance(owner, str) and getattr(value, "__name__", "") in ("format", "format_map"):
            check_format(owner)
        return super().wrap_str_format(value)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            name = getattr(__obj, "__name__", "")
            if name in _PADDING_METHODS:
                _check_widths_of((*args, *kwargs.values()))
            elif name == "replace" and len(args) >= 2 and all(isinstance(a, str) for a in args[:2]):
                check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else None)
        return check_result(super().call(__context, __obj, *args, **kwargs))

    def _format_filter(self, value: Any, *args: Any, **kwargs: Any) -> str:
        if isinstance(value, str):
            check_format(value)
        return str(check_result(str(value) % (kwargs or args)))


def constant_problem(tree: nodes.Node) -> str | None:
    """Why a constant sub-expression of `tree` is beyond the bounds (`7 ** (10 ** 9)`), else None: the
    check `runbook validate` makes without evaluating anything large."""
    for node in tree.find_all(nodes.BinExpr):
        try:
            _constant(node)
        except TemplateLimit as exc:
            return str(exc)
        except _NotConstant:
            continue
        except (ArithmeticError, TypeError, ValueError):
            continue
    return None


class _NotConstant(Exception):
    pass


def _constant(node: nodes.Node) -> Any:
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.BinExpr) and node.operator in _BINOPS:
        left, right = _constant(node.left), _constant(node.right)
        check_binop(node.operator, left, right)
        return check_result(_BINOPS[node.operator](left, right))
    raise _NotConstant
