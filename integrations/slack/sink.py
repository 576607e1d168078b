"""The Slack `EventSink`: turns run events into outbox rows (never a network call on the run's thread).

Routing: the runbook's `chat.channel`, else `severity_channels[metadata.severity]`, else
`slack_channel`, else the channel a slash command came from. A run with nowhere to go is only logged.
Runs that join a storm (`storm.Storms`) post no thread of their own unless they need a decision or
finish with a different cause than the storm's (`storm.stands_apart`); the storm message speaks for
them, and their notes (an alert resolved) go to the storm message's thread.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from engine.errors import RunbookError
from engine.events import RunEvent
from engine.links import run_links
from engine.model import Runbook
from engine.records import RunRecord
from engine.run_store import RunStore
from engine.templating import Templating
from integrations.slack import digest, render, steplog, storm
from integrations.slack.outbox import Item, Message, Outbox
from integrations.slack.storm import Storms

log = logging.getLogger("runbook.slack")
# (run, runbook, awaited step) -> safe mrkdwn saying who can approve it, or None.
Outlook = Callable[[RunRecord, Runbook, str], str | None]
STRIDES = 10  # storm message edits per storm as its members finish (plus the last): Tier 3 is 50 edits a minute


class Router:
    """Chooses a run's channel from the runbook, its severity and the server defaults."""

    def __init__(self, default: str | None = None, severity: Mapping[str, str] | None = None) -> None:
        self.default = default
        self.severity = dict(severity or {})

    def channel(self, runbook: Runbook, run: RunRecord) -> str | None:
        return (runbook.chat.channel or self.severity.get(runbook.metadata.severity) or self.default
                or (run.trigger or {}).get("channel") or None)


class SlackSink:
    """Renders events into the outbox; `wake` tells the sender there is work."""

    def __init__(self, store: RunStore, outbox: Outbox, router: Router,
                 wake: Callable[[], None] = lambda: None, outlook: Outlook | None = None,
                 public_url: str | None = None, storms: Storms | None = None, detail: str = "digest") -> None:
        self.store = store
        self.outbox = outbox
        self.router = router
        self.wake = wake
        self.outlook = outlook
        self.public_url = public_url.rstrip("/") if public_url else None
        self.storms = storms
        self.steps = detail == "steps"  # a reply per finished step, and a thread per run even in a storm
        self._runbooks: OrderedDict[str, Runbook] = OrderedDict()
        self._templating = Templating()  # renders the runbook's links; compiled link templates are kept

    def emit(self, event: RunEvent) -> None:
        """Never raises for chat trouble: a sink must not fail a run."""
        try:
            run = event.run or self.store.get_run(event.run_id)  # the event's snapshot, when it carries one
            runbook = event.definition or self._runbook(run)
            messages = self._render(event, run, runbook)
            if messages:
                self.outbox.put(run.id, messages)
            grouped = self._storm(event, run, runbook)
            if grouped:
                self.outbox.put(*grouped)
            if messages or grouped:
                self.wake()
        except (RunbookError, ValidationError, KeyError, TypeError, ValueError) as exc:
            log.error("could not queue the Slack message for %s of run %s: %s", event.kind, event.run_id, exc)

    def fresh(self, item: Item) -> dict[str, Any] | None:
        """The storm message as its members stand now, rendered when it is sent rather than when queued:
        two members finishing at once (on two threads or replicas) may queue their edits in the other order,
        and a 429 may hold an edit back while members finish; whichever edit goes last shows the latest state."""
        if self.storms is None or not item.run_id.startswith("storm:") or "parent" not in (
                item.message.target, item.message.remember):
            return None
        try:
            anchor = self.store.get_run(item.run_id.removeprefix("storm:"))
            runbook = self._runbook(anchor)
            return storm.message(runbook, self.storms.members(anchor), page=self._runs_page())
        except (RunbookError, ValidationError, KeyError, TypeError, ValueError) as exc:
            log.warning("could not render the storm message %s afresh (sending it as queued): %s", item.run_id, exc)
            return None

    # chat-only messages from the server -----------------------------------------------------------

    def note(self, run_id: str, body: str) -> None:
        """A reply in the run's thread (alert resolved, approval refused, ...); `body` is safe mrkdwn. A storm
        member without a thread of its own when the note is sent gets it in the storm's thread, naming it."""
        message = Message("chat.postMessage", render.note(body), thread="parent")
        try:
            run = self.store.get_run(run_id)
            anchor = self._grouped(run)
            channel = self.router.channel(self._runbook(run), run) if anchor else None
            if anchor and channel and self.storms is not None:
                target = storm.target_of(run, storm.varying(self.storms.members(run)))
                message = Message("chat.postMessage", render.note(f"`{render.text(target, 120)}`: {body}"),
                                  thread=f"parent|{storm.storm_id(anchor)}", channel=channel)
        except (RunbookError, ValidationError, KeyError, TypeError, ValueError) as exc:
            log.warning("could not tell whether run %s is in a storm (its note goes to its own thread): %s",
                        run_id, exc)
        self.outbox.put(run_id, [message])
        self.wake()

    def ephemeral(self, channel: str, user: str, body: str, run_id: str = "") -> None:
        """A message only `user` sees, e.g. why their click was refused."""
        self.outbox.put(run_id, [Message("chat.postEphemeral", {"channel": channel, "user": user, "text": body})])
        self.wake()

    # rendering ------------------------------------------------------------------------------------

    def _runbook(self, run: RunRecord) -> Runbook:
        runbook = self._runbooks.get(run.id)
        if runbook is None:
            runbook = Runbook.model_validate_json(run.definition)
            self._runbooks[run.id] = runbook
            while len(self._runbooks) > 256:
                self._runbooks.popitem(last=False)
        return runbook

    def _render(self, event: RunEvent, run: RunRecord, runbook: Runbook) -> list[Message]:
        """A digest, not a log: the parent is updated in place; the thread gets the diagnosis once, each
        approval card and decision, what a step said or changed or why it failed, and the outcome."""
        channel = self.router.channel(runbook, run)
        if channel is None:
            if event.kind == "run_started":
                log.warning("run %s of %s has no Slack channel (set chat.channel, severity_channels or "
                            "slack_channel); chat skipped", run.id, run.runbook)
            return []
        if event.kind == "step_started":  # nothing to say yet: the step's result is the reply
            return []
        data = event.data
        if event.kind != "approval_needed" and not any(s.proposal is not None for s in run.steps) and \
                self._grouped(run) is not None:
            return self._member(event, run, runbook, channel)
        if event.kind == "step_finished":  # the parent catches up at the next card, decision or the end
            reply = steplog.step_reply(data) if self.steps else render.step_result(data)
            return [self._reply(channel, reply)] if reply else []
        parent = self._parent(run, runbook)  # rendered only for the events that post or update it
        update = Message("chat.update", parent, target="parent")
        post_parent = Message("chat.postMessage", {"channel": channel, **parent}, remember="parent")
        if event.kind == "run_started":
            return [post_parent]
        if event.kind == "approval_needed":
            first = not any(s.proposal is not None for s in run.steps if s.id != event.step)
            # a decision needs a thread of its own
            own = [post_parent] if first and self._grouped(run) is not None else []
            return [*own, *self._approval(run, runbook, channel, event.step, data, update)]
        if event.kind == "approval_decided":
            verb = "approved" if data.get("decision") == "approved" else "rejected"
            outcome = f"{verb} by {render.who(str(data.get('actor', '?')))}"
            return [*self._proposal_update(run, event.step, outcome),
                    self._reply(channel, render.decision(data, event.step)), update]
        if event.kind == "run_finished":
            return self._finished(run, channel, data, update)
        return []

    def _grouped(self, run: RunRecord) -> str | None:
        """The storm anchor a run is grouped under; None when it posts its own thread (no storm, or
        `chat_detail: steps`, whose log needs a thread of its own)."""
        return self.storms.anchor(run) if self.storms is not None and not self.steps else None

    def _member(self, event: RunEvent, run: RunRecord, runbook: Runbook, channel: str) -> list[Message]:
        """A storm member that needs no decision: the storm message speaks for it, unless it finishes with
        another problem than the storm's (another incident), which gets a thread as if there were no storm."""
        if event.kind == "run_finished" and self.storms is not None and storm.stands_apart(
                run, self.storms.members(run)):
            parent = self._parent(run, runbook)
            update = Message("chat.update", parent, target="parent")
            return [Message("chat.postMessage", {"channel": channel, **parent}, remember="parent"),
                    *self._finished(run, channel, event.data, update)[:-1]]
        return []

    def _parent(self, run: RunRecord, runbook: Runbook) -> dict[str, Any]:
        extra = tuple(run_links(runbook, run, self._templating))
        return digest.parent(run, runbook, page=self._page(run), extra_links=extra)

    def _storm(self, event: RunEvent, run: RunRecord, runbook: Runbook) -> tuple[str, list[Message]] | None:
        """The storm message: posted when a second run joins, updated as members finish (about ten times
        a storm, and always when its last member finishes: each run is stored finished before its event, so
        the last one to emit sees them all) or need a decision; later joiners appear at the next update."""
        if self.storms is None or event.kind not in ("run_started", "run_finished", "approval_needed"):
            return None
        anchor = self.storms.anchor(run)
        if event.kind == "run_started" and anchor is None:
            return None
        members = self.storms.members(run)
        channel = self.router.channel(runbook, run)
        if len(members) < 2 or channel is None:
            return None
        body = storm.message(runbook, members, page=self._runs_page())
        conversation = storm.storm_id(members[0].id)
        if event.kind == "run_started":
            if members[1].id != run.id:
                return None
            return conversation, [Message("chat.postMessage", {"channel": channel, **body}, remember="parent")]
        done = sum(r.status.finished for r in members)
        if event.kind == "run_finished" and done < len(members) and done % max(1, len(members) // STRIDES):
            return None  # progress every tenth of the storm: one edit per finish would queue behind Tier 3
        return conversation, [Message("chat.update", body, target="parent")]

    def _runs_page(self) -> str | None:
        return f"{self.public_url}/runs" if self.public_url else None

    def _page(self, run: RunRecord) -> str | None:
        return f"{self.public_url}/runs/{run.id}" if self.public_url else None

    def _diagnosis(self, run: RunRecord, channel: str, first: bool) -> list[Message]:
        """The diagnosis reply: posted once (before the first approval card, or at the end), then updated."""
        body = digest.diagnosis(run, page=self._page(run))
        if body is None:
            return []
        if first:
            return [Message("chat.postMessage", {"channel": channel, **body}, thread="parent", remember="diagnosis")]
        return [Message("chat.update", body, target="diagnosis")]

    def _approval(self, run: RunRecord, runbook: Runbook, channel: str, step: str, data: dict[str, Any],
                  update: Message) -> list[Message]:
        first = not any(s.proposal is not None for s in run.steps if s.id != step)
        card = render.proposal(run.id, step, data.get("proposal") or {}, data.get("deadline"))
        messages = [*(self._diagnosis(run, channel, True) if first else []),
                    Message("chat.postMessage", {"channel": channel, **card}, thread="parent",
                            remember=f"proposal:{step}"), update]
        who = self._outlook(run, runbook, step)
        return messages + ([self._reply(channel, render.note(who))] if who else [])

    def _finished(self, run: RunRecord, channel: str, data: dict[str, Any], update: Message) -> list[Message]:
        messages = []
        for step in run.steps:
            if step.proposal is not None and step.proposal.status == "expired":
                messages += self._proposal_update(run, step.id, "expired: nobody decided in time")
        proposed = any(s.proposal is not None for s in run.steps)
        messages += self._diagnosis(run, channel, first=not proposed)
        if proposed or self.steps or run.status != "succeeded":  # someone follows the thread, or it went wrong
            messages.append(self._reply(channel, render.finished(data)))
        return [*messages, update]

    def _outlook(self, run: RunRecord, runbook: Runbook, step: str) -> str | None:
        """Who may approve, asked before anyone clicks; a failing check must not lose the approval card."""
        if self.outlook is None:
            return None
        try:
            return self.outlook(run, runbook, step)
        except RunbookError as exc:
            log.warning("could not check who may approve %s of run %s: %s", step, run.id, exc)
            return f":warning: Could not ask the cluster who may approve this: {render.text(exc, 500)}"

    def _reply(self, channel: str, body: dict[str, Any]) -> Message:
        return Message("chat.postMessage", {"channel": channel, **body}, thread="parent")

    def _proposal_update(self, run: RunRecord, step_id: str, outcome: str) -> list[Message]:
        record = next((s for s in run.steps if s.id == step_id and s.proposal is not None), None)
        if record is None or record.proposal is None:
            return []
        card = render.proposal(run.id, step_id, record.proposal.model_dump(mode="json"), run.approval_deadline,
                               outcome=outcome)
        return [Message("chat.update", card, target=f"proposal:{step_id}")]
