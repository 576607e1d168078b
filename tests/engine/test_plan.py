"""The whole plan (issue 13 item 1) and every finding instance kept (item 2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.actions import ActionArgs, ActionContext, ActionKind
from engine.executor import Executor
from engine.loader import Loader
from engine.records import RunStatus
from tests.conftest import Toy

Write = Callable[[str, str], Path]

PLAN = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: plan, title: Plan}
params:
  key: {type: string, required: true}
policy: {approval_timeout: 1h}
steps:
  - id: look
    title: Look
    action: toy.get
    with: {key: "{{ params.key }}"}
  - id: first
    title: First fix
    action: toy.set
    when: steps.look.output.value == 'broken'
    with: {key: "{{ params.key }}", value: mended}
    proposal: {summary: "mend {{ params.key }}", reason: broken, risk: low}
  - id: never
    title: Never proposed here
    action: toy.set
    when: steps.look.output.value == 'gone'
    with: {key: "{{ params.key }}", value: back}
  - id: second
    title: Second fix
    action: toy.set
    when: steps.first.status == 'succeeded'
    with: {key: "{{ params.key }}", value: ok}
    proposal: {summary: "set {{ params.key }} to ok", reason: mended is not ok, risk: low}
  - id: recheck
    title: Re-check
    action: toy.get
    when: steps.second.status == 'succeeded'
    with: {key: "{{ params.key }}"}
  - id: third
    title: Only if the re-check says so
    action: toy.set
    when: steps.recheck.output.value == 'ok'
    with: {key: "{{ params.key }}-done", value: "yes"}
"""


def test_the_first_proposal_shows_every_later_remediation(executor: Executor, loader: Loader, write: Write,
                                                          toy: Toy) -> None:
    toy.values["a"] = "broken"
    run = executor.run(loader.load_file(write(PLAN)), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.AWAITING_APPROVAL
    plan = {i.step: i for i in run.plan}
    assert [i.step for i in run.plan] == ["first", "second", "third"]  # `never` cannot happen: not planned
    assert plan["first"].status == "awaiting_approval"
    assert plan["second"].status == "planned" and plan["second"].condition == "after first is approved and succeeds"
    assert plan["second"].summary == "set a to ok"
    # its preview is a dry-run against today's state (a: broken), made without changing anything
    assert [c.diff for c in plan["second"].preview] == [("a: broken -> ok",)] and toy.values["a"] == "broken"
    assert plan["second"].preview[0].dry_run
    # a condition on a step that has not run yet is spelled out, not guessed
    assert plan["third"].status == "planned" and "only if steps.recheck.output.value == 'ok'" in plan["third"].condition
    assert plan["third"].preview == ()
    assert json.loads(json.dumps(run.to_dict()))["plan"][1]["status"] == "planned"


def test_plan_statuses_follow_the_run(executor: Executor, loader: Loader, write: Write, toy: Toy) -> None:
    toy.values["a"] = "broken"
    run = executor.run(loader.load_file(write(PLAN)), {"key": "a"}, requester="alice")
    run = executor.decide(run.id, True, "bob")
    assert [(i.step, i.status) for i in run.plan] == [("first", "executed"), ("second", "awaiting_approval"),
                                                     ("third", "planned")]
    run = executor.decide(run.id, False, "bob", reason="not now")
    assert run.status == RunStatus.REJECTED
    assert [(i.step, i.status) for i in run.plan] == [("first", "executed"), ("second", "rejected"),
                                                     ("third", "skipped")]
    assert toy.values == {"a": "mended"}


def test_every_instance_of_a_finding_id_is_kept(executor: Executor, loader: Loader, write: Write) -> None:
    @executor.registry.register("toy.two_down", kind=ActionKind.DIAGNOSE, args=ActionArgs)
    def two_down(ctx: ActionContext, args: ActionArgs) -> dict[str, Any]:
        """Two workloads lost their last replica: one finding each, with the same id."""
        for name in ("cart", "checkout"):
            ctx.finding("workload-down", "critical", f"{name} has no ready replica")
        return {}

    text = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: two, title: Two}
steps:
  - id: look
    title: Look
    action: toy.two_down
  - id: verify
    title: Re-read the same state
    action: toy.two_down
"""
    run = executor.run(loader.load_file(write(text)), {}, requester="alice")
    # both instances from the step that found them; the verification's re-read does not repeat them
    assert [(f.summary, f.step) for f in run.findings] == [("cart has no ready replica", "look"),
                                                          ("checkout has no ready replica", "look")]
    assert len(run.to_dict()["findings"]) == 2
