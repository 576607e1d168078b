"""An action declares itself once, on its function: the registry, the loader and the permission
computation all read that declaration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from engine.actions import (
    ActionArgs,
    ActionContext,
    ActionKind,
    ActionRegistry,
    ArgumentProblem,
    NotLiteral,
    Permission,
    action,
    step_needs,
)
from engine.errors import DefinitionError
from engine.loader import Loader
from engine.templating import is_template


class ThingArgs(ActionArgs):
    kind: str
    namespace: str | None = None


def thing_permissions(arguments: Mapping[str, Any]) -> tuple[Permission, ...]:
    kind = str(arguments.get("kind", ""))
    if is_template(kind):
        raise NotLiteral("kind", "kind is a template")
    if kind == "Namespace":
        raise ArgumentProblem("kind", "a Namespace is never touched")
    return (Permission(kind.lower() + "s", "get", namespaced=arguments.get("namespace") is not None),)


class Things:
    """A group of actions as integrations write them: declared methods on an object holding its client."""

    def __init__(self, client: str) -> None:
        self.client = client

    @action("thing.get", kind=ActionKind.DIAGNOSE, args=ThingArgs, permits=thing_permissions,
            permits_doc="<kind>:get")
    def get(self, ctx: ActionContext, args: ThingArgs) -> dict[str, Any]:
        """Read one thing through the group's client."""
        return {"client": self.client, "kind": args.kind}


def registry() -> ActionRegistry:
    reg = ActionRegistry()
    reg.add_declared(Things("c1"))
    return reg


RUNBOOK = """apiVersion: runbook/v1
kind: Runbook
metadata: {{name: t, title: T}}
params:
  kind: {{type: string, default: Pod}}
steps:
  - id: look
    title: Look
    action: thing.get
    with:
      kind: {kind}
      namespace: shop
{extra}"""


def test_declared_methods_register_bound_with_their_docs() -> None:
    act = registry().get("thing.get")
    assert act.description == "Read one thing through the group's client."
    assert act.kind == ActionKind.DIAGNOSE and act.args is ThingArgs
    assert act.func(None, ThingArgs(kind="Pod")) == {"client": "c1", "kind": "Pod"}  # type: ignore[arg-type]
    assert act.permissions_text() == "<kind>:get"


def test_permissions_are_computed_from_literal_arguments() -> None:
    runbook = Loader(registry()).load_text(RUNBOOK.format(kind="Pod", extra=""))
    step = runbook.steps[0]
    assert step_needs(registry().get("thing.get"), step.with_, step.permissions) == (
        Permission("pods", "get", namespaced=True),)


def test_templated_kind_is_a_load_error_naming_the_argument() -> None:
    with pytest.raises(DefinitionError) as err:
        Loader(registry()).load_text(RUNBOOK.format(kind='"{{ params.kind }}"', extra=""), "rb.yaml")
    (problem,) = err.value.problems
    assert (problem.file, problem.line, problem.path) == ("rb.yaml", 11, "steps[0].with.kind")
    assert "permissions:" in problem.message


def test_templated_kind_with_declared_permissions_loads() -> None:
    extra = "    permissions: [pods.apps:get, pods/log:get]\n"
    runbook = Loader(registry()).load_text(RUNBOOK.format(kind='"{{ params.kind }}"', extra=extra))
    step = runbook.steps[0]
    assert [str(p) for p in step_needs(registry().get("thing.get"), step.with_, step.permissions)] == [
        "pods.apps:get", "pods/log:get"]


def test_refused_literal_argument_is_a_load_error() -> None:
    with pytest.raises(DefinitionError, match="a Namespace is never touched") as err:
        Loader(registry()).load_text(RUNBOOK.format(kind="Namespace", extra=""), "rb.yaml")
    assert err.value.problems[0].line == 11


def test_bad_declared_permission_is_a_load_error() -> None:
    extra = "    permissions: [not a permission]\n"
    with pytest.raises(DefinitionError, match="resource"):
        Loader(registry()).load_text(RUNBOOK.format(kind='"{{ params.kind }}"', extra=extra))
