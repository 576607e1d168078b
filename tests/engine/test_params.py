"""Parameter values from strings (CLI, chat) and alerts are typed and checked against the runbook."""

from __future__ import annotations

import pytest

from engine.errors import ParamError
from engine.model import Runbook
from engine.params import coerce_params


def runbook(params: dict[str, object]) -> Runbook:
    return Runbook.model_validate({
        "apiVersion": "runbook/v1", "kind": "Runbook", "metadata": {"name": "p", "title": "P"},
        "params": params, "steps": [{"id": "a", "title": "A", "action": "noop"}],
    })


RB = runbook({
    "node": {"type": "string", "required": True, "pattern": "^[a-z0-9.-]+$"},
    "share": {"type": "integer", "default": 70, "minimum": 0, "maximum": 100},
    "force": {"type": "boolean", "default": False},
    "mode": {"type": "enum", "values": ["fast", "safe"], "default": "safe"},
})


def test_strings_are_converted_to_declared_types() -> None:
    assert coerce_params(RB, {"node": "node-b", "share": "50", "force": "yes", "mode": "fast"}) == {
        "node": "node-b", "share": 50, "force": True, "mode": "fast"}


def test_defaults_fill_in() -> None:
    assert coerce_params(RB, {"node": "n1"}) == {"node": "n1", "share": 70, "force": False, "mode": "safe"}


@pytest.mark.parametrize(("given", "message"), [
    ({}, "missing required param 'node'"),
    ({"node": "n1", "nod": "x"}, "unknown param 'nod' (did you mean 'node'?)"),
    ({"node": "N1; rm -rf /"}, "does not match the pattern"),
    ({"node": "n1", "share": "lots"}, "expected an integer"),
    ({"node": "n1", "share": "500"}, "above the maximum 100"),
    ({"node": "n1", "force": "perhaps"}, "expected a boolean"),
    ({"node": "n1", "mode": "yolo"}, "'yolo' is not one of fast, safe"),
    ({"node": ["n1"]}, "expected a string"),
])
def test_bad_values_name_the_problem(given: dict[str, object], message: str) -> None:
    with pytest.raises(ParamError) as caught:
        coerce_params(RB, given)
    assert message in str(caught.value)


def test_all_problems_at_once() -> None:
    with pytest.raises(ParamError) as caught:
        coerce_params(RB, {"share": "x", "extra": 1})
    assert str(caught.value).count(";") >= 2


def test_enum_without_values_is_a_definition_error() -> None:
    with pytest.raises(ValueError, match="an enum param needs 'values'"):
        runbook({"mode": {"type": "enum"}})
