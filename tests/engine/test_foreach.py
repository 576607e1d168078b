"""`foreach:` runs a step once per item; each remediation item is its own proposal and approval."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine.errors import DefinitionError
from engine.executor import Executor
from engine.loader import Loader
from engine.records import RunStatus
from tests.conftest import Toy

Write = Callable[[str, str], Path]

RUNBOOK = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: toy, title: Toy}
params:
  keys: {type: string, default: "a,b,c"}
steps:
  - id: look
    title: Look at {{ item }}
    action: toy.get
    foreach: "{{ params['keys'].split(',') }}"
    max_items: 3
    with: {key: "{{ item }}"}
  - id: fix
    title: Fix {{ item }}
    action: toy.set
    foreach: "{{ params['keys'].split(',') }}"
    max_items: 3
    when: item != 'b'
    with: {key: "{{ item }}", value: ok}
    proposal: {summary: "set {{ item }} to ok", risk: low}
  - id: report
    title: Report
    action: notify
    with: {text: "first was {{ steps.look_0.output.value }}"}
"""


def test_each_item_runs_and_each_remediation_is_its_own_proposal(
        executor: Executor, loader: Loader, write: Write, toy: Toy) -> None:
    toy.values.update({"a": "bad", "b": "bad", "c": "bad"})
    runbook = loader.load_file(write(RUNBOOK))
    assert [s.id for s in runbook.steps] == ["look_0", "look_1", "look_2", "fix_0", "fix_1", "fix_2", "report"]
    run = executor.run(runbook, {"keys": "a,b,c"}, requester="alice")
    assert run.status == RunStatus.AWAITING_APPROVAL and run.awaiting_step == "fix_0"
    assert [s.title for s in run.steps[:3]] == ["Look at a", "Look at b", "Look at c"]
    assert run.proposals[0].summary == "set a to ok" and run.proposals[0].dry_run[0].diff == ("a: bad -> ok",)
    run = executor.decide(run.id, True, "bob", step="fix_0")
    assert run.awaiting_step == "fix_2"  # b is skipped by its `when`
    assert toy.values == {"a": "ok", "b": "bad", "c": "bad"}
    run = executor.decide(run.id, True, "bob", step="fix_2")
    assert run.status == RunStatus.SUCCEEDED and toy.values == {"a": "ok", "b": "bad", "c": "ok"}
    assert [str(s.status) for s in run.steps if s.id.startswith("fix")] == ["succeeded", "skipped", "succeeded"]


def test_a_short_list_skips_the_surplus_and_a_long_one_is_cut_with_a_finding(
        executor: Executor, loader: Loader, write: Write, toy: Toy) -> None:
    runbook = loader.load_file(write(RUNBOOK.split("  - id: fix")[0]))
    run = executor.run(runbook, {"keys": "a"}, requester="alice")
    assert [str(s.status) for s in run.steps] == ["succeeded", "skipped", "skipped"]
    run = executor.run(runbook, {"keys": "a,b,c,d,e"}, requester="alice")
    assert [f.id for f in run.findings] == ["foreach.truncated"]
    assert "5 items, only the first 3" in run.findings[0].summary


def test_item_outside_foreach_and_the_loop_id_itself_are_load_errors(loader: Loader, write: Write) -> None:
    bad = RUNBOOK.replace('with: {text: "first was {{ steps.look_0.output.value }}"}',
                          'with: {text: "{{ item }} {{ steps.look.output.value }}"}')
    with pytest.raises(DefinitionError) as caught:
        loader.load_file(write(bad))
    messages = [p.message for p in caught.value.problems]
    assert any("unknown name 'item'" in m for m in messages)
    assert any("its runs are steps.look_0 to steps.look_2" in m for m in messages)


def test_the_plan_lists_each_later_item_with_its_own_summary(
        executor: Executor, loader: Loader, write: Write, toy: Toy) -> None:
    toy.values.update({"a": "bad", "b": "bad", "c": "bad"})
    run = executor.run(loader.load_file(write(RUNBOOK)), {"keys": "a,b,c"}, requester="alice")
    (planned,) = run.proposals[0].planned
    assert (planned.step, planned.summary) == ("fix_2", "set c to ok")
