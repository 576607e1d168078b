"""How much one Slack approval costs the store: `get_run` calls and runbook parses from the Approve click
until the run has finished and its thread is delivered (a served app with a Slack fake, real sockets).

Counts, not times: the figure is how often the run is read back and its stored definition re-parsed,
which typed events (a run snapshot in each event) and one parse per definition should keep small.
`python -m bench.approval_reads`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from engine.actions import ActionArgs, ActionContext, ActionKind, ActionRegistry
from engine.builtins import register_builtins
from engine.model import Runbook
from engine.verdict import Change
from integrations.testing.server import Harness, alert, make_engine, server_settings, wait_for
from integrations.testing.slack_fake import FakeSlack

APPROVER = "U0ALICE"
WIDGET = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: widget-down, title: Widget down, severity: critical}
params:
  target: {type: string, required: true}
triggers:
  alerts:
    - match: {alertname: WidgetDown}
      params: {target: widget}
policy: {approvers: ["U0ALICE"]}
steps:
  - id: look
    title: Look at {{ params.target }}
    action: finding
    with: {id: widget-down, severity: critical, summary: "{{ params.target }} is down"}
  - id: restart
    title: Restart {{ params.target }}
    action: bench.restart
    with: {name: "{{ params.target }}"}
    proposal: {summary: "Restart {{ params.target }}", risk: low}
  - id: verify
    title: Verify {{ params.target }}
    action: notify
    with: {text: "{{ params.target }} is back"}
"""


class RestartArgs(ActionArgs):
    name: str


def _registry() -> ActionRegistry:
    registry = register_builtins(ActionRegistry())

    @registry.register("bench.restart", kind=ActionKind.REMEDIATE, args=RestartArgs)
    def restart(ctx: ActionContext, args: RestartArgs) -> dict[str, Any]:
        """Restarts a widget (bench-only)."""
        ctx.change(Change(verb="restart", target=f"widget/{args.name}", dry_run=ctx.dry_run))
        return {}

    return registry


class Counter:
    """Counts calls of one callable, wrapped in place for the measurement only."""

    def __init__(self) -> None:
        self.calls = 0

    def wrap(self, fn: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return fn(*args, **kwargs)

        return counted


def measure() -> dict[str, int]:
    reads, parses = Counter(), Counter()
    parse = Runbook.model_validate_json
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        settings = server_settings(str(Path(tmp) / "runs.db"), fake.url)
        engine = make_engine(settings, _registry(), (WIDGET,))
        harness = Harness(engine, fake).start()
        try:
            run_id = harness.post_alerts([alert("WidgetDown", {"widget": "w1"})]).json()["started"][0]["run_id"]
            harness.wait_status(run_id, "awaiting_approval")
            wait_for(lambda: "Approval needed" in fake.transcript(), what="the card")
            engine.store.get_run = reads.wrap(engine.store.get_run)  # type: ignore[method-assign]
            Runbook.model_validate_json = parses.wrap(parse)  # type: ignore[method-assign]
            assert harness.click(APPROVER, run_id, "restart").status_code == 200
            wait_for(lambda: "Run :white_check_mark: succeeded" in fake.transcript(), what="the outcome in the thread")
            counts = {"get_run": reads.calls, "parses": parses.calls}  # (the waits above read no run)
        finally:
            Runbook.model_validate_json = parse  # type: ignore[method-assign]
            harness.close()
    return counts


if __name__ == "__main__":
    print(measure())
