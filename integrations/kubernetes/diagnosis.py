"""Diagnosis as facts -> cause -> findings: the ordered decision table every analyser shares.

An analyser first gathers what the cluster says into plain frozen facts, then walks a short table of
`(cause, predicate)` entries in order and takes the first that holds, then renders findings for that
cause (plus findings that hold whatever the cause). Adding a cause is one table entry, one renderer and
one scenario, never an edit inside a long function; the order of the table is the precedence, so it
reads like the senior engineer's checklist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from integrations.kubernetes.report import Report

F = TypeVar("F")


def first_cause(table: Sequence[tuple[str, Callable[[F], bool]]], facts: F, default: str) -> str:
    """The first cause whose predicate holds for `facts`, else `default`."""
    return next((cause for cause, holds in table if holds(facts)), default)


def render(report: Report, facts: F, cause: str, per_cause: dict[str, Callable[[Report, F], None]],
           always: Sequence[tuple[Callable[[F], bool], Callable[[Report, F], None]]] = ()) -> Report:
    """The cause's own finding, then each `(applies, render)` of `always` that applies, in order."""
    if cause in per_cause:
        per_cause[cause](report, facts)
    for applies, add in always:
        if applies(facts):
            add(report, facts)
    return report
