"""The `/runbook` slash command and the Approve/Reject buttons, as plain synchronous logic.

Who may do what: `policy.runners` (else the server's `runners`) may start a runbook; `policy.approvers`
(else the server's `approvers`) may approve or reject. Empty lists mean anyone. Entries are Slack user
ids (`U123`) or user groups (`S123`, `@oncall`), resolved by the `Directory`. The executor still makes
the final approval checks (approver list, self-approval, expiry) and audits its refusals; refusals
decided here are audited here.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.catalog import Catalog
from engine.errors import ApprovalError, ParamError, RunbookError, RunStateError, UnknownRunError
from engine.executor import Executor
from engine.model import Runbook
from engine.records import RunRecord
from engine.run_store import RunStore
from engine.settings import Settings
from integrations.app.identities import approval_outlook, candidates
from integrations.app.server.metrics import Metrics
from integrations.app.server.workers import WorkerPool
from integrations.slack.directory import Directory, is_group
from integrations.slack.render import APPROVE, REJECT, status_label, text, who
from integrations.slack.render import outlook as render_outlook

HELP = """*Usage:* `/runbook <command>`
• `run NAME [key=value ...] [--dry-run]`: start a runbook (quote values with spaces: `note="disk full"`)
• `list`: the runbooks and their params
• `status RUN_ID`: where a run is
• `approve RUN_ID [STEP]`: approve the remediation a run waits for
• `reject RUN_ID [reason]`: reject it; nothing is changed
• `help`: this text"""


@dataclass(frozen=True)
class Reply:
    text: str
    ok: bool = True
    run_id: str = ""


class ChatOps:
    def __init__(self, catalog: Catalog, executor: Executor, store: RunStore, pool: WorkerPool,
                 directory: Directory, metrics: Metrics, *, runners: tuple[str, ...] = (),
                 approvers: tuple[str, ...] = (), channel_of: Callable[[Runbook, RunRecord], str | None] | None = None,
                 identity_groups: tuple[str, ...] = ()) -> None:
        self.catalog = catalog
        self.executor = executor
        self.store = store
        self.pool = pool
        self.directory = directory
        self.metrics = metrics
        self.runners = runners
        self.approvers = approvers
        self.channel_of = channel_of
        self.identity_groups = tuple(g for g in identity_groups if is_group(g))

    # slash command ---------------------------------------------------------------------------------

    def command(self, user: str, channel: str, line: str) -> Reply:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            return Reply(f"Cannot parse that: {exc}. Try `/runbook help`.", ok=False)
        verb, args = (words[0].lower(), words[1:]) if words else ("help", [])
        if verb == "run" and args:
            return self.run(user, channel, args[0], args[1:], line)
        if verb == "list":
            return self.list()
        if verb == "status" and len(args) == 1:
            return self.status(args[0])
        if verb in ("approve", "reject") and args:
            step = args[1] if verb == "approve" and len(args) > 1 else None
            reason = " ".join(args[1:]) if verb == "reject" else ""
            return self.decide(user, args[0], verb == "approve", step=step, reason=reason)
        if verb == "help":
            return Reply(HELP)
        return Reply(f"I don't understand `{text(line, 200)}`.\n{HELP}", ok=False)

    def run(self, user: str, channel: str, name: str, args: list[str], line: str) -> Reply:
        runbook = self.catalog.runbooks.get(name) or self.catalog.for_command(name)
        if runbook is None:
            try:
                self.catalog.get(name)
            except KeyError as exc:
                return Reply(text(exc.args[0], 500), ok=False)
        assert runbook is not None
        allowed = runbook.policy.runners or self.runners
        if allowed and user not in allowed and not self.directory.groups_of(user, allowed):
            self.store.audit(user, "run.refused", None, {"runbook": runbook.name, "reason": "not a runner"})
            return Reply(f"You may not run *{runbook.name}*; ask one of: {', '.join(_mention(a) for a in allowed)}.",
                         ok=False)
        dry_run = "--dry-run" in args
        params: dict[str, Any] = {}
        for arg in (a for a in args if a != "--dry-run"):
            key, sep, value = arg.partition("=")
            if not sep or not key:
                return Reply(f"`{text(arg, 100)}` is not `key=value`; params of {runbook.name}: "
                             f"{_params(runbook)}", ok=False)
            params[key] = value
        if not self.pool.reserve():
            return Reply("The server is busy (run queue full); try again in a minute.", ok=False)
        try:
            run_id, _ = self.executor.start(runbook, params, requester=user, dry_run=dry_run, trigger={
                "kind": "slack", "user": user, "channel": channel, "command": line})
        except ParamError as exc:
            self.pool.release()
            return Reply(f"{text(exc, 1000)}\nParams of *{runbook.name}*: {_params(runbook)}", ok=False)
        except BaseException:  # the queue slot must not leak with the failure
            self.pool.release()
            raise
        self.pool.submit(run_id, reserved=True)
        self.metrics.runs_started.inc(runbook=runbook.name, trigger="slack")
        where = self._where(run_id, runbook)
        return Reply(f"Started run `{run_id}` of *{runbook.name}*{' (dry-run)' if dry_run else ''}{where}.",
                     run_id=run_id)

    def list(self) -> Reply:
        if not self.catalog.runbooks:
            return Reply("No runbooks are loaded.")
        lines = [f"• *{name}*: {text(rb.metadata.title, 200)} — params: {_params(rb)}"
                 for name, rb in sorted(self.catalog.runbooks.items())]
        return Reply("\n".join(lines))

    def status(self, run_id: str) -> Reply:
        try:
            run = self.store.get_run(run_id)
        except UnknownRunError:
            return Reply(f"No run `{text(run_id, 40)}`.", ok=False)
        lines = [f"Run `{run.id}` of *{run.runbook}*: {status_label(str(run.status))}"]
        lines += [f"• {text(s.title or s.id, 200)}: {s.status}" for s in run.steps]
        if run.awaiting_step and run.approval_deadline:
            minutes = max(0, int((run.approval_deadline - time.time()) / 60))
            lines.append(f"Awaiting approval of `{run.awaiting_step}` (about {minutes} min left).")
        if run.error:
            lines.append(text(run.error, 1000))
        return Reply("\n".join(lines), run_id=run.id)

    # decisions (command or button) ------------------------------------------------------------------

    def decide(self, user: str, run_id: str, approve: bool, *, step: str | None = None, reason: str = "") -> Reply:
        verb = "approve" if approve else "reject"
        try:
            run = self.store.get_run(run_id)
            runbook = Runbook.model_validate_json(run.definition)
            approvers = runbook.policy.approvers or self.approvers
            direct = not approvers or user in approvers
            groups = frozenset() if direct else self.directory.groups_of(user, approvers)
            if approvers and not runbook.policy.approvers and user not in approvers and not groups:
                self.store.audit(user, f"step.{verb}.refused", run_id, {"step": run.awaiting_step,
                                                                        "reason": "not an approver"})
                self.metrics.refusals.inc(endpoint="decision", reason="not_allowed")
                return Reply(f":no_entry: You are not an approver of *{run.runbook}*; ask one of: "
                             + ", ".join(_mention(a) for a in approvers) + ".", ok=False, run_id=run_id)
            if approve and self.identity_groups:  # Slack groups with a Kubernetes identity mapped
                groups |= self.directory.groups_of(user, self.identity_groups)
            self.executor.decide(run_id, approve, user, step=step, groups=groups, reason=reason, resume=False)
        except UnknownRunError:
            return Reply(f"No run `{text(run_id, 40)}`.", ok=False)
        except ApprovalError as exc:  # audited by the executor or above
            self.metrics.refusals.inc(endpoint="decision", reason="not_allowed")
            return Reply(f":no_entry: {text(exc, 1000)}", ok=False, run_id=run_id)
        except RunStateError as exc:
            self.store.audit(user, f"step.{verb}.refused", run_id, {"step": step, "reason": str(exc)})
            self.metrics.refusals.inc(endpoint="decision", reason="state")
            return Reply(f":no_entry: {text(exc, 1000)}", ok=False, run_id=run_id)
        except RunbookError as exc:  # the cluster could not be asked (access review timed out, API down)
            self.store.audit(user, f"step.{verb}.refused", run_id, {"step": step, "reason": str(exc)})
            self.metrics.refusals.inc(endpoint="decision", reason="check_failed")
            return Reply(f":warning: Could not check your Kubernetes permissions ({text(exc, 500)}); nothing was "
                         "decided, try again.", ok=False, run_id=run_id)
        self.pool.submit(run_id, force=True)
        done = "Approved" if approve else "Rejected"
        return Reply(f"{done} `{run.awaiting_step}` of run `{run_id}`.", run_id=run_id)

    def click(self, user: str, action_id: str, value: str) -> Reply:
        """A button press; `value` is the JSON the proposal card put there."""
        if action_id not in (APPROVE, REJECT):
            return Reply(f"Unknown action {text(action_id, 60)}.", ok=False)
        try:
            target = json.loads(value)
            run_id, step = str(target["run"]), str(target["step"])
        except (ValueError, KeyError, TypeError):
            return Reply("This button is malformed; use `/runbook approve RUN_ID`.", ok=False)
        approve = action_id == APPROVE
        return self.decide(user, run_id, approve, step=step, reason="" if approve else "rejected in Slack")

    # helpers --------------------------------------------------------------------------------------

    def _where(self, run_id: str, runbook: Runbook) -> str:
        if self.channel_of is None:
            return ""
        channel = self.channel_of(runbook, self.store.get_run(run_id))
        if not channel:
            return ""
        return f"; follow it in <#{channel}>" if re.match(r"^[CG][A-Z0-9]+$", channel) else f"; follow it in #{channel}"


def _params(runbook: Runbook) -> str:
    if not runbook.params:
        return "none"
    return ", ".join(f"`{name}`{'*' if p.required else ''} ({p.type})" for name, p in runbook.params.items())


def _mention(entry: str) -> str:
    if is_group(entry) and not entry.startswith("@"):
        return f"<!subteam^{entry}>"
    return who(entry)


def approver_outlook(executor: Executor, settings: Settings) -> Callable[[RunRecord, Runbook, str], str | None]:
    """For the proposal thread: asks the cluster, per approver, whether their mapped identity may run the
    remediation (the same check an Approve click gets), so nobody learns it only by being refused."""

    def outlook(run: RunRecord, runbook: Runbook, step: str) -> str | None:
        entries = approval_outlook(executor, run, candidates(runbook, settings))
        return render_outlook(step, entries) if entries else None

    return outlook
