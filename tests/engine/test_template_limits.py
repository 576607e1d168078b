"""Templates are bounded in size and time: at load (no constant folding of huge values), at run time (operators,
padding, loops, output), and by the step's timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.errors import DefinitionError, StepTimeout
from engine.executor import Executor
from engine.loader import Loader
from engine.model import Runbook
from engine.records import RunStatus, StepStatus
from engine.templating import TemplateFailure, Templating

Write = Callable[[str, str], Path]


@pytest.fixture
def t() -> Templating:
    return Templating()


def test_validate_refuses_a_huge_constant_without_computing_it(loader: Loader, write: Write) -> None:
    path = write("""
        apiVersion: runbook/v1
        kind: Runbook
        metadata: {name: power, title: Power}
        steps:
          - {id: a, title: A, action: toy.get, with: {key: "{{ 7 ** (10 ** 9) }}"}}
        """, "power.yaml")
    with pytest.raises(DefinitionError) as caught:  # hung while compiling before
        loader.load_file(path)
    [problem] = caught.value.problems
    assert problem.path == "steps[0].with.key" and "beyond the sandbox's bounds" in problem.message
    assert "7 ** 1000000000 is too large" in problem.message


@pytest.mark.parametrize(("source", "reason"), [
    ("{{ params.base ** params.exp }}", "is too large"),
    ("{{ 'x' * params.exp }}", "repeating a str"),
    ("{{ [1, 2] * params.exp }}", "repeating a list"),
    ("{{ '%999999999d' % 1 }}", "format width"),
    ("{{ '%*d' % (params.exp, 1) }}", "format width"),
    ("{{ '{:>999999999}'.format(1) }}", "format width"),
    ("{{ '{:>{w}}'.format(1, w=params.exp) }}", "computed from arguments"),
    ("{{ 'x'.center(params.exp) }}", "width 1000000000"),
    ("{{ 'x'.zfill(params.exp) }}", "width 1000000000"),
    ("{{ 'x' | center(params.exp) }}", "width 1000000000"),
    ("{{ 'x' | indent(params.exp, true) }}", "width 1000000000"),
    ("{{ '%999999999d' | format(1) }}", "format width"),
    ("{{ ('a' * 1000) | replace('a', 'b' * 10000) }}", "replace would build"),
    ("{{ ('a' * 1000).replace('a', 'b' * 10000) }}", "replace would build"),
    ("{{ range(10 ** 6) | list }}", "range of 1000000 items"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
     "longer than 1000000"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
     "longer than 1000000"),
    ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", "more than 1000000"),
    ("{% for i in range(2000) %}{{ 'x' * 1000 }}{% endfor %}", "renders more than 1000000"),
    ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "RecursionError"),
])
def test_run_time_bounds(t: Templating, source: str, reason: str) -> None:
    with pytest.raises(TemplateFailure, match="TemplateLimit|RecursionError") as caught:  # refused, not computed
        t.render_value(source, {"params": {"base": 7, "exp": 10 ** 9}})
    assert reason in str(caught.value)


def test_ordinary_arithmetic_and_text_still_work(t: Templating) -> None:
    ctx = {"params": {"n": 3}}
    assert t.render_value("{{ 2 ** 10 }} {{ 'ab' * params.n }} {{ '%5.1f' % 2.25 }} {{ 'x'.center(5) }}", ctx) \
        == "1024 ababab   2.2   x  "
    assert t.render_value("{% for i in range(3) %}{{ i ~ ',' }}{% endfor %}", ctx) == "0,1,2,"
    assert t.render_value("{{ [1] * 3 + [2] }}", ctx) == [1, 1, 1, 2]
    assert t.evaluate("params.n ** 2 == 9", ctx)


def test_rendering_stops_at_the_deadline(t: Templating) -> None:
    with pytest.raises(StepTimeout, match="did not finish within its timeout"):
        t.render_value("{% for i in range(5000) %}{{ i }}{% endfor %}", {}, deadline=time.monotonic() - 1)
    with pytest.raises(StepTimeout):
        t.evaluate("'{% for i in range(3) %}{% endfor %}' and ('a' ~ 'b')", {}, deadline=time.monotonic() - 1)


def test_a_step_timeout_covers_rendering_its_arguments(executor: Executor) -> None:
    slow = "{% for i in range(9000) %}{{ range(9999) | list | sort | length }}{% endfor %}"  # seconds of work
    runbook = Runbook.model_validate({
        "apiVersion": "runbook/v1", "kind": "Runbook", "metadata": {"name": "slow", "title": "Slow"},
        "steps": [{"id": "a", "title": "A", "action": "toy.get", "timeout": "200ms", "with": {"key": slow}}],
    })
    run = executor.run(runbook, {}, requester="alice")
    assert run.status == RunStatus.FAILED and run.steps[0].status == StepStatus.FAILED
    assert "rendering the step's templates did not finish within its timeout" in (run.steps[0].error or "")
