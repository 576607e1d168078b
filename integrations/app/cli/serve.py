"""`runbook serve`, and `runbook serve --fake-slack`: the local Slack fake beside the server for a tour.

With `--fake-slack` the server posts to a Slack fake on loopback (nothing leaves the machine), the channel
is printed here whenever it changes, and each line typed on stdin reaches the server as a signed `/runbook`
slash command from the user `U0YOU` (`approve RUN_ID`, `reject RUN_ID`, `status RUN_ID`, `run NAME k=v`),
exactly the path Slack would take. The fake is a test harness, so only this module imports it.
"""

from __future__ import annotations

import difflib
import json
import secrets
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TextIO
from urllib.parse import urlencode

import typer
from pydantic import SecretStr

from engine.errors import RunbookError, SettingsError
from engine.settings import Settings
from integrations.app.cli.console import escape, terminal
from integrations.slack import sign
from integrations.testing.slack_fake import FakeSlack

TOUR_USER = "U0YOU"
TOUR_CHANNEL = "C0INCIDENTS"
err = terminal(stderr=True)


class ChannelPrinter:
    """Prints what changed in the fake's transcript (new messages, edits, thread replies), polling it."""

    def __init__(self, fake: FakeSlack, write: Callable[[str], None], interval: float = 0.3) -> None:
        self.fake = fake
        self.write = write
        self.interval = interval
        self._seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tour-channel", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.poll()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        lines = self.fake.transcript().splitlines() if self.fake.messages or self.fake.ephemerals else []
        changed = changed_lines(self._seen, lines)
        self._seen = lines
        if changed:
            self.write("\n".join(["── Slack (fake) ──", *changed, "──"]))


def changed_lines(before: list[str], after: list[str]) -> list[str]:
    """The lines of `after` that are new or edited since `before`, in order."""
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    return [line for tag, _, _, j1, j2 in matcher.get_opcodes() if tag in ("insert", "replace")
            for line in after[j1:j2]]


class SlashCommands:
    """Lines from stdin, sent to the server as Slack would send `/runbook <line>` (signed)."""

    def __init__(self, url: str, secret: str, write: Callable[[str], None], user: str = TOUR_USER) -> None:
        self.url = url
        self.secret = secret
        self.write = write
        self.user = user

    def send(self, line: str) -> str:
        """`line` as the text of `/runbook`; a leading `@U123` sends it as that user (someone else approves)."""
        user, text = self.user, line.strip().removeprefix("/runbook").strip()
        if text.startswith("@"):
            user, _, text = text[1:].partition(" ")
        form = {"command": "/runbook", "text": text.strip(), "user_id": user, "user_name": user.lower(),
                "channel_id": TOUR_CHANNEL, "team_id": "T0FAKE"}
        body = urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(self.secret, body)}
        request = urllib.request.Request(f"{self.url}/slack/commands", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # loopback: our own server
                return str(json.loads(answer.read()).get("text", ""))
        except OSError as exc:
            return f"(the server did not answer: {exc})"

    def read(self, stream: TextIO) -> None:
        for line in stream:
            if line.strip():
                self.write(f"you: /runbook {line.strip()}\n{self.send(line)}")

    def start(self, stream: TextIO) -> None:
        threading.Thread(target=self.read, args=(stream,), name="tour-stdin", daemon=True).start()


@contextmanager
def fake_slack_tour(settings: Settings, host: str, port: int) -> Iterator[Settings]:
    """The settings pointed at a fresh Slack fake, with the channel printer and stdin commands running."""
    secret = secrets.token_urlsafe(24)
    with FakeSlack() as fake:
        tour = settings.model_copy(update={
            "slack_bot_token": SecretStr(fake.token), "slack_signing_secret": SecretStr(secret),
            "slack_api_url": fake.url, "slack_channel": settings.slack_channel or TOUR_CHANNEL,
            # with no approvers configured nobody may approve: on the tour, you (and whoever you act as) may
            "approvers": settings.approvers or (TOUR_USER, "U0BOB")})
        printer = ChannelPrinter(fake, typer.echo)
        printer.start()
        local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        SlashCommands(f"http://{local}:{port}", secret, typer.echo).start(sys.stdin)
        typer.echo(f"Slack fake at {fake.url}; the channel is printed here as it changes. Type /runbook commands "
                   f"(`run NAME key=value`, `status RUN_ID`, `approve RUN_ID STEP`, `@U0BOB approve RUN_ID STEP` "
                   f"to act as someone else): they reach the server signed, as {TOUR_USER} by default.")
        if tour.read_token is None:
            token = secrets.token_urlsafe(16)
            tour = tour.model_copy(update={"read_token": SecretStr(token)})
            typer.echo(f"Run pages (a read token made for this tour): http://tour:{token}@{local}:{port}/runs")
        try:
            yield tour
        finally:
            printer.stop()


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    config: Annotated[Path | None, typer.Option("--config", help="Settings file (YAML).")] = None,
    scenario: Annotated[Path | None, typer.Option(help="Serve against a simulated cluster from this manifest.",
                                                  exists=True, dir_okay=False)] = None,
    kubeconfig: Annotated[str | None, typer.Option(help="kubeconfig path (default: settings, in-cluster).")] = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context.")] = None,
    fake_slack: Annotated[bool, typer.Option("--fake-slack", help="A local Slack fake instead of Slack, printed "
                                             "here as it changes; type /runbook commands on stdin.")] = False,
) -> None:
    """Serve Alertmanager webhooks, Slack commands and approvals, and the run pages (see README: Serving)."""
    from integrations.app.clusters import open_cluster
    from integrations.app.serve import serve as run_server

    try:
        settings = Settings.load(config)
        with open_cluster(settings, scenario, kubeconfig, context) as kube:
            if not fake_slack:
                run_server(settings, host, port, kube=kube)
                return
            with fake_slack_tour(settings, host, port) as tour:
                run_server(tour, host, port, kube=kube)
    except (RunbookError, SettingsError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
