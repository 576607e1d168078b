"""Templating safety: outside data is never rendered, and the sandbox holds."""

from __future__ import annotations

import pytest

from engine.templating import TemplateFailure, Templating


@pytest.fixture
def t() -> Templating:
    return Templating()


def test_a_single_expression_keeps_its_native_type(t: Templating) -> None:
    ctx = {"steps": {"a": {"output": {"nodes": ["n1", "n2"], "count": 2}}}}
    assert t.render_value("{{ steps.a.output.nodes }}", ctx) == ["n1", "n2"]
    assert t.render_value("{{ steps.a.output.count + 1 }}", ctx) == 3
    assert t.render_value("count: {{ steps.a.output.count }}", ctx) == "count: 2"
    assert t.render_value({"x": ["{{ steps.a.output.count }}", 5]}, ctx) == {"x": [2, 5]}


def test_values_from_outside_are_data_not_templates(t: Templating) -> None:
    label = "{{ ''.__class__.__mro__[1].__subclasses__() }}{% for x in range(10**9) %}{% endfor %}"
    assert t.render_value("node {{ params.node }}", {"params": {"node": label}}) == f"node {label}"
    assert t.render_value("{{ params.node }}", {"params": {"node": label}}) == label


def test_strings_without_templates_pass_through(t: Templating) -> None:
    assert t.render_value("plain {text}", {}) == "plain {text}"
    assert t.render_value(42, {}) == 42


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ params.__init__.__globals__ }}",
    "{{ params | attr('__class__') }}",
    "{{ cycler.__init__.__globals__.os }}",
])
def test_sandbox_escapes_fail_clearly(t: Templating, source: str) -> None:
    with pytest.raises(TemplateFailure, match="unsafe|undefined"):
        t.render_value(source, {"params": {}})


def test_the_context_is_immutable(t: Templating) -> None:
    with pytest.raises(TemplateFailure, match="SecurityError"):
        t.render_value("{{ params.update({'x': 1}) }}", {"params": {}})


def test_undefined_names_are_errors_not_empty_strings(t: Templating) -> None:
    with pytest.raises(TemplateFailure, match="has no attribute 'missing'|'missing' is undefined"):
        t.render_value("{{ params.missing }}", {"params": {}})
    with pytest.raises(TemplateFailure):
        t.evaluate("steps.a.output.nope", {"steps": {"a": {"output": {}}}})


def test_conditions_are_booleans(t: Templating) -> None:
    assert t.evaluate("'x' in findings", {"findings": ["x"]}) is True
    assert t.evaluate("steps.a.output.n > 3", {"steps": {"a": {"output": {"n": 1}}}}) is False


def test_duration_filter(t: Templating) -> None:
    assert t.render_value("{{ 372 | to_duration }}", {}) == "6m12s"


def test_now_and_age_use_the_given_clock_and_to_duration_reads_both_forms() -> None:
    import datetime as dt

    server = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)  # the API server's clock, not this machine's
    clocked = Templating(clock=lambda: server)
    assert clocked.now() == "2026-11-22T12:00:00+00:00"
    ctx = {"steps": {"d": {"output": {"object": {"metadata": {"creationTimestamp": "2026-11-22T11:40:00Z"}}}}}}
    assert clocked.render_value("{{ steps.d.output.object.metadata.creationTimestamp | age }}", ctx) == 1200.0
    assert clocked.render_value("{{ steps.d.output.object.metadata.creationTimestamp | age | to_duration }}",
                                ctx) == "20m"
    assert clocked.render_value("{{ '90s' | to_duration }}", {}) == "1m30s"
    with pytest.raises(TemplateFailure, match="age needs a timestamp"):
        clocked.render_value("{{ steps | age }}", ctx)
