"""Checks a runbook beyond its shape: actions exist, arguments fit them, templates compile and only
refer to params and to steps that come earlier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from jinja2 import TemplateSyntaxError, nodes
from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from engine.actions import Action, ActionKind, ActionRegistry, ArgumentProblem, NotLiteral
from engine.foreach import ITEM, expanded_ids
from engine.hints import did_you_mean
from engine.model import Runbook, Step
from engine.params import coerce_value
from engine.template_limits import constant_problem
from engine.templating import CONTEXT_NAMES, Templating, is_template

Loc = tuple[str | int, ...]
Issue = tuple[Loc, str, bool]


def check_runbook(
    runbook: Runbook, raw: dict[str, Any], registry: ActionRegistry, templating: Templating, base: Path,
    check_tests: bool = True,
) -> list[Issue]:
    issues: list[Issue] = []
    seen: dict[str, int] = {}
    steps = StepIndex(runbook)
    for index, step in enumerate(runbook.steps):
        loc: Loc = ("steps", index)
        if step.id in seen:
            message = f"duplicate step id {step.id!r} (first used by steps[{seen[step.id]}])"
            issues.append(((*loc, "id"), message, False))
        seen.setdefault(step.id, index)
        raw_step = raw["steps"][index]
        issues.extend(_check_action(step, loc, raw_step, registry))
        if isinstance(raw_step, dict) and "foreach_index" in raw_step:
            issues.append(((*loc, "foreach_index"), "foreach_index is set by the engine, not in runbooks", True))
        names = CONTEXT_NAMES | ({ITEM} if step.foreach is not None else set())
        for where, source, is_expression in _templates(step, loc):
            issues.extend(_check_template(source, where, is_expression, runbook, steps.before(index), templating,
                                          names))
    for name, spec in runbook.params.items():
        if spec.default is not None:
            try:
                coerce_value(spec, spec.default)
            except ValueError as exc:
                issues.append((("params", name, "default"), f"the default does not fit the param: {exc}", False))
    for index, link in enumerate(runbook.links):  # rendered before any step ran: params, alert and run only
        issues.extend(_check_template(link.url, ("links", index, "url"), False, runbook, steps.before(0), templating))
    issues.extend(_check_triggers(runbook))
    if check_tests:
        issues.extend(_check_tests(runbook, base))
    return issues


def _check_action(step: Step, loc: Loc, raw_step: dict[str, Any], registry: ActionRegistry) -> Iterator[Issue]:
    if step.action not in registry:
        yield (*loc, "action"), f"unknown action {step.action!r}{did_you_mean(step.action, registry.names())}", False
        return
    action = registry.get(step.action)
    if action.kind == ActionKind.REMEDIATE and step.on_failure == "continue":
        yield ((*loc, "on_failure"), "a remediation cannot 'continue' on failure: a change that failed after its "
               "approval must fail the run, not end it as succeeded", False)
    if step.proposal is not None and action.kind != ActionKind.REMEDIATE:
        yield (*loc, "proposal"), f"'proposal' only applies to remediate actions; {action.name} is {action.kind}", True
    with_loc = (*loc, "with") if "with" in raw_step else loc
    fields = action.args.model_fields
    for name, field in fields.items():
        if field.is_required() and name not in step.with_:
            yield (*with_loc, name), "field required", False
    for key, value in step.with_.items():
        if key not in fields:
            message = f"unknown argument for {action.name}{did_you_mean(key, list(fields))}"
            yield (*loc, "with", key), message, True
        elif not _contains_template(value):
            try:
                _field_adapter(fields[key]).validate_python(value)
            except ValidationError as exc:
                reason = exc.errors(include_url=False)[0]["msg"]
                yield (*loc, "with", key), f"{reason}, got {value!r}", False
    yield from _check_permits(step, loc, action)


def _check_permits(step: Step, loc: Loc, action: Action[Any]) -> Iterator[Issue]:
    """The action computes its permissions from the literal arguments now, so `runbook rbac` can grant
    them; an argument it refuses, or a templated one they depend on, is reported at that argument."""
    try:
        action.needed(step.with_)
    except NotLiteral as exc:
        if step.permissions is None:
            yield ((*loc, "with", exc.argument), f"{exc.message}: the permissions {action.name} needs depend on it; "
                   "write it literally or declare the step's `permissions:` (e.g. deployments.apps:get)", False)
    except ArgumentProblem as exc:
        yield (*loc, "with", exc.argument), exc.message, False


def _field_adapter(field: FieldInfo) -> TypeAdapter[Any]:
    """The field's type with its constraints and validators (a Duration parses '30s'), as the model has it."""
    annotation: Any = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return TypeAdapter(annotation)


def _contains_template(value: Any) -> bool:
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, dict):
        return any(_contains_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_template(v) for v in value)
    return False


def _templates(step: Step, loc: Loc) -> Iterator[tuple[Loc, str, bool]]:
    if step.foreach is not None:
        yield (*loc, "foreach"), step.foreach, False
    if step.when is not None:
        yield (*loc, "when"), step.when, True
    if is_template(step.title):
        yield (*loc, "title"), step.title, False
    yield from _strings(step.with_, (*loc, "with"))
    if step.proposal is not None:
        for name in ("summary", "reason"):
            yield (*loc, "proposal", name), getattr(step.proposal, name), False
        for i, warning in enumerate(step.proposal.warnings):
            yield (*loc, "proposal", "warnings", i), warning, False


def _strings(value: Any, loc: Loc) -> Iterator[tuple[Loc, str, bool]]:
    if isinstance(value, str) and is_template(value):
        yield loc, value, False
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*loc, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*loc, i))


def _check_template(
    source: str, loc: Loc, is_expression: bool, runbook: Runbook, earlier: StepsBefore, templating: Templating,
    names: frozenset[str] | set[str] = CONTEXT_NAMES,
) -> Iterator[Issue]:
    kind = "condition" if is_expression else "template"
    try:
        tree = templating.parse_expression(source) if is_expression else templating.parse(source)
        if is_expression:
            templating.compile_condition(source)
        else:
            templating.compile(source)
    except TemplateSyntaxError as exc:
        yield loc, f"{kind} does not compile: {exc.message}", False
        return
    too_large = constant_problem(tree)
    if too_large:
        yield loc, f"{kind} is beyond the sandbox's bounds: {too_large}", False
    bound = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in names and name.name not in bound:
            known = sorted(names)
            yield loc, f"{kind} uses unknown name {name.name!r}{did_you_mean(name.name, known)}", False
    for attr in tree.find_all(nodes.Getattr):
        if attr.attr.startswith("_"):
            yield loc, f"{kind} accesses {attr.attr!r}: private attributes are not allowed in runbooks", False
    yield from _check_references(tree, loc, kind, runbook, earlier)


def _check_references(
    tree: nodes.Template, loc: Loc, kind: str, runbook: Runbook, earlier: StepsBefore
) -> Iterator[Issue]:
    """Params must be declared; steps must run earlier (and foreach steps be named by their runs)."""
    for root, key in _references(tree):
        if root == "params" and key not in runbook.params:
            yield loc, f"{kind} refers to undeclared param {key!r}{did_you_mean(key, list(runbook.params))}", False
        elif root == "steps" and key in earlier.index.looped:
            yield loc, (f"{kind} refers to foreach step {key!r}: its runs are steps.{key}_0 to "
                        f"steps.{key}_{earlier.index.looped[key] - 1}"), False
        elif root == "steps" and key not in earlier:
            if key in earlier.index.first:
                yield loc, f"{kind} refers to step {key!r}, which runs later; outputs exist only after it ran", False
            else:
                hint = did_you_mean(key, list(earlier.index.first))
                yield loc, f"{kind} refers to unknown step {key!r}{hint}", False


class StepIndex:
    """Where each step id first appears, so "does this template refer to an earlier step" is one lookup
    (a list of earlier ids per step made loading quadratic in the number of steps)."""

    def __init__(self, runbook: Runbook) -> None:
        self.first: dict[str, int] = {}
        self.looped: dict[str, int] = {}  # foreach step id -> its number of runs
        for index, step in enumerate(runbook.steps):
            for step_id in expanded_ids(step):
                self.first.setdefault(step_id, index)
            if step.foreach is not None:
                self.looped[step.id] = step.max_items

    def before(self, index: int) -> StepsBefore:
        return StepsBefore(self, index)


class StepsBefore:
    """The ids of the steps before `index`, as a container."""

    def __init__(self, index: StepIndex, position: int) -> None:
        self.index, self.position = index, position

    def __contains__(self, step_id: object) -> bool:
        return isinstance(step_id, str) and self.index.first.get(step_id, self.position) < self.position


def _references(tree: nodes.Template) -> Iterator[tuple[str, str]]:
    """(`params`|`steps`, key) for every `params.x`, `steps.x`, `params['x']` in the template."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        root = node.node
        if not isinstance(root, nodes.Name) or root.name not in ("params", "steps"):
            continue
        if isinstance(node, nodes.Getattr):
            yield root.name, node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            yield root.name, node.arg.value


def _check_triggers(runbook: Runbook) -> Iterator[Issue]:
    for i, trigger in enumerate(runbook.triggers.alerts):
        loc: Loc = ("triggers", "alerts", i)
        for param in trigger.params:
            if param not in runbook.params:
                hint = did_you_mean(param, list(runbook.params))
                yield (*loc, "params", param), f"maps an alert label to undeclared param {param!r}{hint}", True
        for name, spec in runbook.params.items():
            if spec.required and name not in trigger.params:
                yield (*loc, "params"), f"required param {name!r} is not mapped from any alert label", False


def _check_tests(runbook: Runbook, base: Path) -> Iterator[Issue]:
    step_ids = {step_id for s in runbook.steps for step_id in expanded_ids(s)}
    for i, test in enumerate(runbook.tests):
        loc: Loc = ("tests", i)
        if not (base / test.scenario).is_file():
            yield (*loc, "scenario"), f"scenario file {test.scenario!r} not found next to the runbook", False
        for key in test.params:
            if key not in runbook.params:
                yield (*loc, "params", key), f"unknown param {key!r}{did_you_mean(key, list(runbook.params))}", True
        for j, step_id in enumerate(test.approve):
            if step_id not in step_ids:
                yield (*loc, "approve", j), f"unknown step {step_id!r}{did_you_mean(step_id, sorted(step_ids))}", False
        for part, expect in (("expect", test.expect), ("after", test.after)):
            if expect is None:
                continue
            for step_id in expect.steps:
                if step_id not in step_ids:
                    where = (*loc, part, "steps", step_id)
                    yield where, f"unknown step {step_id!r}{did_you_mean(step_id, sorted(step_ids))}", True
            for j, step_id in enumerate((*expect.proposals, *expect.no_proposals)):
                if step_id not in step_ids:
                    where = (*loc, part, "proposals" if j < len(expect.proposals) else "no_proposals")
                    yield where, f"unknown step {step_id!r}{did_you_mean(step_id, sorted(step_ids))}", False
