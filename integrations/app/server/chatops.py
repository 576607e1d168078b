"""The `/runbook` command and approve/reject, as plain synchronous logic for any chat backend.

Who may do what is the executor's policy gate alone (runners, approvers, groups, self-approval, freeze,
limits), which also audits its refusals; this module parses the command, asks, and words the answer
with the backend's `Markup`.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from typing import Any

from engine.catalog import Catalog
from engine.chat import Markup, Reply
from engine.errors import ApprovalError, ParamError, RunbookError, RunStateError, UnknownRunError
from engine.executor import Executor
from engine.model import Runbook
from engine.policy import NotAllowed
from engine.records import RunRecord
from engine.redaction import redact, redact_params
from integrations.app.server.metrics import Metrics
from integrations.app.server.workers import RunQueue

# (runbook, run) -> the channel the run's thread is in, if any
ChannelOf = Callable[[Runbook, RunRecord], str | None]


class ChatOps:
    def __init__(self, catalog: Catalog, executor: Executor, queue: RunQueue, metrics: Metrics, markup: Markup,
                 channel_of: ChannelOf | None = None, source: str = "chat") -> None:
        """`source` names the chat backend in run triggers and metrics (e.g. "slack")."""
        self.catalog = catalog
        self.executor = executor
        self.store = executor.store
        self.queue = queue
        self.metrics = metrics
        self.m = markup
        self.channel_of = channel_of
        self.source = source

    # slash command ---------------------------------------------------------------------------------

    def command(self, user: str, channel: str, line: str) -> Reply:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            return Reply(f"Cannot parse that: {self.m.data(exc, 200)}. Try {self.m.code('/runbook help')}.", ok=False)
        verb, args = (words[0].lower(), words[1:]) if words else ("help", [])
        if verb == "run" and args:
            return self.run(user, channel, args[0], args[1:], line)
        if verb == "list":
            return self.list()
        if verb == "status" and len(args) == 1:
            return self.status(args[0])
        if verb == "approve" and len(args) == 1:
            return self._name_the_step(args[0])
        if verb == "approve" and len(args) == 2:
            return self.decide(user, args[0], True, step=args[1])
        if verb == "reject" and args:
            return self.decide(user, args[0], False, step=None, reason=" ".join(args[1:]))
        if verb == "freeze" and args and args[0] in ("on", "off"):
            return self.freeze(user, args[0] == "on", " ".join(args[1:]))
        if verb == "help":
            return Reply(self.help())
        return Reply(f"I don't understand {self.m.code(self.m.data(line, 200))}.\n{self.help()}", ok=False)

    def help(self) -> str:
        c = self.m.code
        return "\n".join([
            f"{self.m.bold('Usage:')} {c('/runbook <command>')}",
            f"• {c('run NAME [key=value ...] [--dry-run]')}: start a runbook (quote values with spaces: "
            f"{c('note=' + chr(34) + 'disk full' + chr(34))})",
            f"• {c('list')}: the runbooks and their params",
            f"• {c('status RUN_ID')}: where a run is",
            f"• {c('approve RUN_ID STEP')}: approve the remediation a run waits for (name the step you approve)",
            f"• {c('reject RUN_ID [reason]')}: reject it; nothing is changed",
            f"• {c('freeze on REASON')} / {c('freeze off')}: stop (or allow again) every approval, everywhere",
            f"• {c('help')}: this text",
        ])

    def run(self, user: str, channel: str, name: str, args: list[str], line: str) -> Reply:
        runbook = self.catalog.runbooks.get(name) or self.catalog.for_command(name)
        if runbook is None:
            try:
                self.catalog.get(name)
            except KeyError as exc:
                return Reply(self.m.data(exc.args[0], 500), ok=False)
        assert runbook is not None
        try:
            self.executor.authorize_start(runbook, user)
        except NotAllowed as exc:
            return Reply(f"You may not run {self.m.bold(runbook.name)}; ask one of: {self._mentions(exc.ask)}.",
                         ok=False)
        params, problem = self._params(runbook, [a for a in args if a != "--dry-run"])
        if problem:
            return Reply(problem, ok=False)
        dry_run = "--dry-run" in args
        if not self.queue.reserve():
            return Reply("The server is busy (run queue full); try again in a minute.", ok=False)
        try:
            run_id, _ = self.executor.start(runbook, params, requester=user, dry_run=dry_run, trigger={
                "kind": self.source, "user": user, "channel": channel, "command": redact(line)})
        except ParamError as exc:
            self.queue.release()
            return Reply(f"{self.m.data(exc, 1000)}\nParams of {self.m.bold(runbook.name)}: {self._signature(runbook)}",
                         ok=False)
        except BaseException:  # the queue slot must not leak with the failure
            self.queue.release()
            raise
        self.queue.submit(run_id, reserved=True)
        self.metrics.runs_started.inc(runbook=runbook.name, trigger=self.source)
        where = self._where(run_id, runbook)
        return Reply(f"Started run {self.m.code(run_id)} of {self.m.bold(runbook.name)}"
                     f"{' (dry-run)' if dry_run else ''}{where}.", run_id=run_id)

    def _params(self, runbook: Runbook, args: list[str]) -> tuple[dict[str, Any], str | None]:
        """`key=value` words, values redacted as they enter (like alert labels, and wholly under a name such as
        `password`): a token typed in chat is not stored or echoed; a remediation refuses a param that held one."""
        params: dict[str, Any] = {}
        for arg in args:
            key, sep, value = arg.partition("=")
            if not sep or not key:
                return {}, (f"{self.m.code(self.m.data(arg, 100))} is not {self.m.code('key=value')}; params of "
                            f"{runbook.name}: {self._signature(runbook)}")
            params[key] = value
        return redact_params(params), None

    def list(self) -> Reply:
        if not self.catalog.runbooks:
            return Reply("No runbooks are loaded.")
        lines = [f"• {self.m.bold(name)}: {self.m.data(rb.metadata.title, 200)} — params: {self._signature(rb)}"
                 for name, rb in sorted(self.catalog.runbooks.items())]
        return Reply("\n".join(lines))

    def status(self, run_id: str) -> Reply:
        try:
            run = self.store.get_run(run_id)
        except UnknownRunError:
            return Reply(f"No run {self.m.code(self.m.data(run_id, 40))}.", ok=False)
        lines = [f"Run {self.m.code(run.id)} of {self.m.bold(run.runbook)}: {self.m.status(str(run.status))}"]
        lines += [f"• {self.m.data(s.title or s.id, 200)}: {s.status}" for s in run.steps]
        if run.awaiting_step and run.approval_deadline:
            minutes = max(0, int((run.approval_deadline - time.time()) / 60))
            lines.append(f"Awaiting approval of {self.m.code(run.awaiting_step)} (about {minutes} min left).")
        if run.error:
            lines.append(self.m.data(run.error, 1000))
        return Reply("\n".join(lines), run_id=run.id)

    # decisions (command or button) ------------------------------------------------------------------

    def decide(self, user: str, run_id: str, approve: bool, *, step: str | None, reason: str = "") -> Reply:
        """Ask the executor (the policy gate audits refusals) and queue the run to carry the decision out."""
        try:
            run = self.executor.decide(run_id, approve, user, step=step, reason=reason, resume=False)
        except UnknownRunError:
            return Reply(f"No run {self.m.code(self.m.data(run_id, 40))}.", ok=False)
        except ApprovalError as exc:
            self.metrics.refusals.inc(endpoint="decision", reason="not_allowed")
            return Reply(f"{self.m.icon('refused')} {self.m.data(exc, 1000)}", ok=False, run_id=run_id)
        except RunStateError as exc:
            self.metrics.refusals.inc(endpoint="decision", reason="state")
            return Reply(f"{self.m.icon('refused')} {self.m.data(exc, 1000)}", ok=False, run_id=run_id)
        except RunbookError as exc:  # the cluster could not be asked (access review timed out, API down)
            self.metrics.refusals.inc(endpoint="decision", reason="check_failed")
            return Reply(f"{self.m.icon('warning')} Could not check your Kubernetes permissions "
                         f"({self.m.data(exc, 500)}); nothing was decided, try again.", ok=False, run_id=run_id)
        self.queue.submit(run_id, force=True)
        done = "Approved" if approve else "Rejected"
        return Reply(f"{done} {self.m.code(run.awaiting_step or '')} of run {self.m.code(run_id)}.", run_id=run_id)

    def _name_the_step(self, run_id: str) -> Reply:
        """An approval must say what it approves: what waits now may not be what the person read."""
        try:
            awaiting = self.store.get_run(run_id).awaiting_step
        except UnknownRunError:
            return Reply(f"No run {self.m.code(self.m.data(run_id, 40))}.", ok=False)
        hint = (f"; it awaits {self.m.code(self.m.data(awaiting, 80))}: "
                f"{self.m.code('/runbook approve ' + self.m.data(run_id, 40) + ' ' + self.m.data(awaiting, 80))}"
                if awaiting else "")
        return Reply(f"{self.m.icon('refused')} Name the step you approve: "
                     f"{self.m.code('/runbook approve RUN_ID STEP')}{hint}.", ok=False, run_id=run_id)

    def freeze(self, user: str, on: bool, reason: str) -> Reply:
        try:
            self.executor.control_freeze(user, on, reason)
        except ApprovalError as exc:
            return Reply(f"{self.m.icon('refused')} {self.m.data(exc, 500)}", ok=False)
        if on:
            return Reply(f"{self.m.icon('frozen')} Changes are frozen: approvals are refused until "
                         f"{self.m.code('/runbook freeze off')}. Diagnoses and proposals go on.")
        return Reply(f"{self.m.icon('thawed')} The change freeze is off; approvals are accepted again.")

    # helpers --------------------------------------------------------------------------------------

    def _where(self, run_id: str, runbook: Runbook) -> str:
        if self.channel_of is None:
            return ""
        channel = self.channel_of(runbook, self.store.get_run(run_id))
        return f"; follow it in {self.m.channel(channel)}" if channel else ""

    def _signature(self, runbook: Runbook) -> str:
        if not runbook.params:
            return "none"
        return ", ".join(f"{self.m.code(name)}{'*' if p.required else ''} ({p.type})"
                         for name, p in runbook.params.items())

    def _mentions(self, entries: tuple[str, ...]) -> str:
        return ", ".join(self.m.mention(e) for e in entries)
