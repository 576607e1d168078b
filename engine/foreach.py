"""`foreach:` on a step: the step runs once per item of a list (bounded by `max_items`), `item` in its templates.

A foreach step is expanded when the runbook loads into `max_items` ordinary steps `<id>_0`, `<id>_1`, ...
that each take one item (`foreach_index`). So every run of a remediation is its own step with its own
proposal, diff and approval, and the executor, the store and chat need to know nothing about loops. A
run whose list is shorter skips the surplus steps; a longer list is cut at `max_items` with a finding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.errors import PermanentError
from engine.model import Runbook, Step
from engine.templating import Templating
from engine.verdict import Evidence, Finding

ITEM = "item"


def expanded_ids(step: Step) -> list[str]:
    """The ids a step runs under: itself, or `<id>_<k>` for each item slot of a foreach step."""
    if step.foreach is None:
        return [step.id]
    return [f"{step.id}_{k}" for k in range(step.max_items)]


def expand(runbook: Runbook) -> Runbook:
    """The runbook with every foreach step replaced by its per-item steps."""
    if not any(s.foreach is not None for s in runbook.steps):
        return runbook
    steps: list[Step] = []
    for step in runbook.steps:
        if step.foreach is None or step.foreach_index is not None:
            steps.append(step)
            continue
        steps.extend(step.model_copy(update={"id": step_id, "foreach_index": k})
                     for k, step_id in enumerate(expanded_ids(step)))
    return runbook.model_copy(update={"steps": tuple(steps)})


def bind_item(templating: Templating, step: Step, context: dict[str, Any]) -> tuple[bool, Finding | None]:
    """Put this slot's `item` into `context` (where the step's templates and its proposal read it).

    Returns (whether the slot has an item, a finding when the list was cut at `max_items`). Steps without
    foreach get no `item`, so one never leaks into another step."""
    context.pop(ITEM, None)
    if step.foreach is None or step.foreach_index is None:
        return True, None
    items = templating.render_value(step.foreach, context)
    if isinstance(items, Mapping):
        items = [{"key": k, "value": v} for k, v in items.items()]
    if not isinstance(items, list | tuple):
        raise PermanentError(f"foreach must give a list, got {type(items).__name__}")
    index = step.foreach_index
    cut = None
    if index == 0 and len(items) > step.max_items:
        base = step.id.rsplit("_", 1)[0]
        cut = Finding(id="foreach.truncated", severity="warning", step=step.id,
                      summary=f"{base}: {len(items)} items, only the first {step.max_items} (max_items) run",
                      evidence=(Evidence(object=f"step {base}", field="foreach", value=len(items)),))
    if index >= min(len(items), step.max_items):
        return False, cut
    context[ITEM] = items[index]
    return True, cut
