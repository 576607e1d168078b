"""Renders run events in a terminal as they happen, so a person running `runbook run` sees progress."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.markup import escape as escape_markup

from engine.events import RunEvent
from engine.text import escape_controls

_SEVERITY = {"critical": "bold red", "warning": "yellow", "info": "green"}
_STEP = {"succeeded": "[green]✓[/]", "failed": "[red]✗[/]", "skipped": "[dim]–[/]", "proposed": "[cyan]?[/]",
         "rejected": "[red]✗[/]", "interrupted": "[red]![/]"}


def escape(text: str) -> str:
    """Text from outside made safe for a rich terminal: markup escaped, control characters (ESC, NUL) shown
    as escapes instead of driving the terminal."""
    return escape_markup(escape_controls(text, keep_newlines=True))


def terminal(stderr: bool = False) -> Console:
    """A console that does not wrap or truncate when output goes to a file or a pipe."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


class ConsoleSink:
    """Prints one line per step with its findings, and each proposal with its exact dry-run change."""

    def __init__(self, console: Console | None = None, verbose: bool = False) -> None:
        self.console = console or terminal(stderr=True)
        self.verbose = verbose

    def emit(self, event: RunEvent) -> None:
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event)

    def _on_run_started(self, event: RunEvent) -> None:
        params = " ".join(f"{k}={v}" for k, v in event.data.get("params", {}).items() if v is not None)
        mode = " [yellow](dry-run)[/]" if event.data.get("dry_run") else ""
        self.console.print(f"[bold]▶ {escape(event.runbook)}[/] {escape(params)}  [dim]run {event.run_id}[/]{mode}")

    def _on_step_finished(self, event: RunEvent) -> None:
        data = event.data
        status = data.get("status", "")
        if status == "skipped" and not self.verbose:
            return
        took = ""
        if data.get("started_at") and data.get("finished_at"):
            took = f" [dim]{(data['finished_at'] - data['started_at']) * 1000:.0f} ms[/]"
        self.console.print(f"  {_STEP.get(status, status)} {escape(data.get('title') or event.step)}{took}")
        if data.get("error"):
            self.console.print(f"      [red]{escape(data['error'])}[/]")
        for finding in data.get("findings", []):
            self._finding(finding)
        if data.get("action") == "notify" and status == "succeeded":
            self.console.print(f"      [blue]💬 {escape(str(data.get('output', {}).get('text', '')))}[/]")
        for change in data.get("changes", []):
            if not change.get("dry_run"):
                self.console.print(f"      [magenta]changed[/] {escape(change['verb'])} {escape(change['target'])}")
                for line in change.get("diff", []):
                    self.console.print(f"        {escape(line)}")

    def _finding(self, finding: dict[str, Any]) -> None:
        style = _SEVERITY.get(finding["severity"], "")
        self.console.print(f"      [{style}]{finding['severity'].upper()}[/] {escape(finding['summary'])}")
        for ev in finding.get("evidence", []):
            value = "" if ev.get("value") is None else f" = {ev['value']}"
            self.console.print(f"        [dim]{escape(ev['object'])} {escape(ev['field'])}{escape(value)}[/]")

    def _on_approval_needed(self, event: RunEvent) -> None:
        proposal = event.data["proposal"]
        self.console.print(f"\n  [bold cyan]PROPOSED[/] {escape(proposal['summary'])} "
                           f"[dim](risk {proposal['risk']}, target {escape(proposal['target'])})[/]")
        if proposal.get("reason"):
            self.console.print(f"    why: {escape(proposal['reason'])}")
        for warning in proposal.get("warnings", []):
            self.console.print(f"    [yellow]⚠ {escape(warning)}[/]")
        as_whom = f" as {escape(proposal['dry_run_as'])}" if proposal.get("dry_run_as") else ""
        for change in proposal.get("dry_run", []):
            self.console.print(f"    dry-run{as_whom} {escape(change['verb'])} {escape(change['target'])}:")
            for line in change.get("diff", []) or ["(no field changes)"]:
                self.console.print(f"      {escape(line)}")
        self._plan(proposal.get("planned", []))
        self.console.print(f"  [bold]awaiting approval:[/] runbook approve {event.run_id} --as NAME"
                           f"   |   runbook reject {event.run_id} --as NAME\n")

    def _plan(self, planned: list[dict[str, Any]]) -> None:
        """The rest of the plan, so the whole of it is on screen before the first approval."""
        for n, item in enumerate(planned, start=2):
            condition = escape(item["condition"])
            self.console.print(f"    [cyan]then {n}.[/] {escape(item['summary'])} [dim]({condition})[/]")
            for change in item.get("preview", []):
                self.console.print(f"      [dim]preview {escape(change['verb'])} {escape(change['target'])}: "
                                   f"{escape('; '.join(change.get('diff', [])) or '(no field changes)')}[/]")

    def _on_approval_decided(self, event: RunEvent) -> None:
        self.console.print(f"  [bold]{event.data['decision']}[/] by {escape(event.data['actor'])}"
                           + (f": {escape(event.data['reason'])}" if event.data.get("reason") else ""))

    def _on_run_finished(self, event: RunEvent) -> None:
        status = event.data["status"]
        style = "green" if status == "succeeded" else "red"
        tail = f": {escape(event.data['error'])}" if event.data.get("error") else ""
        self.console.print(f"[bold {style}]■ {status}[/]{tail}")
