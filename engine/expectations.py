"""Checks a finished (or paused) run against a runbook test case's expectations."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from engine.model import StepExpect, TestExpect
from engine.records import RunRecord

ObjectReader = Callable[[str, str, str | None], dict[str, Any] | None]
_MISSING = object()


def field_value(obj: dict[str, Any], path: str) -> Any:
    """`spec.taints[0].key`-style lookup; `_MISSING` when any part is absent."""
    current: Any = obj
    for part in path.replace("]", "").replace("[", ".").split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def check_expectations(run: RunRecord, expect: TestExpect, read: ObjectReader | None = None) -> list[str]:
    """Every way the run differs from `expect`, as sentences; empty when it matches."""
    failures: list[str] = []
    if expect.status and str(run.status) != expect.status:
        failures.append(f"status is {run.status}, expected {expect.status}" + (f" ({run.error})" if run.error else ""))
    failures += _present("finding", {f.id for f in run.findings}, expect.findings, expect.no_findings)
    failures += _present("proposal", {p.id for p in run.proposals}, expect.proposals, expect.no_proposals)
    planned = [i.step for i in run.plan]
    if expect.plan and planned != list(expect.plan):
        failures.append(f"plan is {planned or 'empty'}, expected {list(expect.plan)}")
    for check in expect.objects:
        failures += _check_object(check, read)
    for step_id, step_expect in expect.steps.items():
        failures += _check_step(run, step_id, step_expect)
    return failures


def _check_step(run: RunRecord, step_id: str, expect: StepExpect) -> list[str]:
    record = next((s for s in reversed(run.steps) if s.id == step_id), None)
    if record is None:
        return [] if expect.status in (None, "not_run") else [f"step {step_id!r} did not run"]
    failures = []
    if expect.status and str(record.status) != expect.status:
        failures.append(f"step {step_id!r} is {record.status}, expected {expect.status}"
                        + (f" ({record.error})" if record.error else ""))
    if expect.contains is not None:
        text = str(record.output.get("text", "")) if "text" in record.output else json.dumps(record.output)
        if expect.contains not in text:
            failures.append(f"step {step_id!r} output does not contain {expect.contains!r}: {text[:300]!r}")
    for path, wanted in expect.output.items():
        value = field_value(record.output, path)
        if value != wanted:
            shown = "absent" if value is _MISSING else repr(value)
            failures.append(f"step {step_id!r} output {path} is {shown}, expected {wanted!r}")
    return failures


def _present(what: str, found: set[str], wanted: tuple[str, ...], unwanted: tuple[str, ...]) -> list[str]:
    label = "found" if what == "finding" else "proposed"
    return ([f"{what} {i!r} missing ({label}: {sorted(found) or 'none'})" for i in wanted if i not in found]
            + [f"{what} {i!r} present but must not be" for i in unwanted if i in found])


def _check_object(check: dict[str, Any], read: ObjectReader | None) -> list[str]:
    kind, name, namespace = check.get("kind"), check.get("name"), check.get("namespace")
    label = f"{kind} {namespace + '/' if namespace else ''}{name}"
    if read is None or not kind or not name:
        return [f"object check {check} needs kind and name and a cluster to read"]
    obj = read(kind, name, namespace)
    if check.get("absent"):
        return [] if obj is None else [f"{label} exists but must be gone"]
    if obj is None:
        return [f"{label} not found"]
    if "field" not in check:
        return []
    value = field_value(obj, check["field"])
    if "equals" in check:
        expected = check["equals"]
        shown = "absent" if value is _MISSING else repr(value)
        if value is _MISSING and expected is None:
            return []
        return [] if value == expected else [f"{label} {check['field']} is {shown}, expected {expected!r}"]
    return [] if value is not _MISSING else [f"{label} has no {check['field']}"]
