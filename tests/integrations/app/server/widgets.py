"""Test runbooks made of the engine's built-in actions plus one test-only remediation, `test.restart`,
and the Slack users the server tests act as."""

from __future__ import annotations

from typing import Any

from engine.actions import ActionArgs, ActionContext, ActionKind, ActionRegistry
from engine.builtins import register_builtins
from engine.verdict import Change
from integrations.testing.server import Harness, make_engine

ALICE, BOB, CAROL, MALLORY = "U0ALICE", "U0BOB", "U0CAROL", "U0MALLORY"
ONCALL = "S0ONCALL"

WIDGET = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: widget-down, title: Widget down, severity: critical}
params:
  target: {type: string, required: true, pattern: "^[a-z0-9-]+$", description: the widget}
triggers:
  alerts:
    - match: {alertname: WidgetDown}
      params: {target: widget}
  command: widget-down
policy:
  approvers: ["U0ALICE", "S0ONCALL"]
  approval_timeout: 1h
steps:
  - id: look
    title: Look at {{ params.target }}
    action: finding
    with:
      id: widget-down
      severity: critical
      summary: "{{ params.target }} is down"
      evidence: [{object: "Widget {{ params.target }}", field: status, value: down}]
  - id: restart
    title: Restart {{ params.target }}
    action: test.restart
    with: {name: "{{ params.target }}"}
    proposal: {summary: "Restart {{ params.target }}", reason: it stopped answering, risk: low}
  - id: verify
    title: Verify {{ params.target }}
    action: notify
    with: {text: "{{ params.target }} is back: {{ steps.restart.output.restarted }}"}
"""

ECHO = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: echo, title: Echo a label, severity: info}
params:
  text: {type: string, required: true}
triggers:
  alerts:
    - match: {alertname: Echo}
      params: {text: message}
policy:
  runners: ["S0ONCALL"]
steps:
  - id: say
    title: Say it
    action: notify
    with: {text: "echo: {{ params.text }}"}
"""


class RestartArgs(ActionArgs):
    name: str


def registry_with_restart(restarted: list[str]) -> ActionRegistry:
    registry = register_builtins(ActionRegistry())

    @registry.register("test.restart", kind=ActionKind.REMEDIATE, args=RestartArgs)
    def restart(ctx: ActionContext, args: RestartArgs) -> dict[str, Any]:
        """Restarts a widget (test-only); under dry-run only describes it."""
        ctx.change(Change(verb="restart", target=f"widget/{args.name}", diff=("- state: down", "+ state: up"),
                          dry_run=ctx.dry_run))
        if not ctx.dry_run:
            restarted.append(args.name)
        return {"restarted": not ctx.dry_run}

    return registry


def new_engine(harness: Harness, restarted: list[str]) -> Any:
    """A fresh engine on the same store and settings: what a restarted process builds."""
    return make_engine(harness.engine.settings, registry_with_restart(restarted), (WIDGET, ECHO))
