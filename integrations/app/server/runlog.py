"""The log sink: one log line per run event, so a server without Slack still shows what runs do."""

from __future__ import annotations

import logging

from engine.events import RunEvent
from engine.redaction import redact

log = logging.getLogger("runbook.runs")


class LogSink:
    def __init__(self, logger: logging.Logger = log) -> None:
        self.log = logger

    def emit(self, event: RunEvent) -> None:
        data = event.data
        where = f"run {event.run_id} ({event.runbook})"
        if event.kind == "run_started":
            self.log.info("%s started by %s with %s", where, data.get("requester"), redact(str(data.get("params"))))
        elif event.kind == "step_finished":
            extra = f": {redact(str(data['error']))}" if data.get("error") else ""
            findings = "; ".join(redact(str(f.get("summary", ""))) for f in data.get("findings") or [])
            self.log.info("%s step %s %s%s%s", where, event.step, data.get("status"), extra,
                          f" [{findings}]" if findings else "")
        elif event.kind == "approval_needed":
            proposal = data.get("proposal") or {}
            self.log.info("%s awaits approval of %s: %s", where, event.step, redact(str(proposal.get("summary", ""))))
        elif event.kind == "approval_decided":
            self.log.info("%s step %s %s by %s", where, event.step, data.get("decision"), data.get("actor"))
        elif event.kind == "run_finished":
            error = f": {redact(str(data['error']))}" if data.get("error") else ""
            self.log.info("%s finished %s%s", where, data.get("status"), error)

    def note(self, run_id: str, body: str) -> None:
        self.log.info("run %s: %s", run_id, body)
