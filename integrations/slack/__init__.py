"""Slack as a chat backend: the run-thread sink with its persisted outbox, signature checks, user-group
lookups, the slash command and the buttons. The server sees it only through its chat-backend interface."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial

from slack_sdk import WebClient

from engine.chat import ChatAnswer, ChatOps
from engine.model import Runbook
from engine.policy import Outlook
from engine.records import RunRecord
from engine.run_store import RunStore
from engine.settings import Settings
from integrations.slack import endpoints, render
from integrations.slack.directory import Directory
from integrations.slack.markup import SlackMarkup
from integrations.slack.outbox import Message, Outbox
from integrations.slack.sender import OutboxSender
from integrations.slack.sink import Router, SlackSink
from integrations.slack.storm import Storms
from integrations.slack.verify import ReplayGuard, Verifier, sign

DEFAULT_API_URL = "https://slack.com/api/"

__all__ = ["Directory", "Message", "Outbox", "OutboxSender", "Router", "Slack", "SlackSink", "Verifier", "sign"]


@dataclass
class Slack:
    """Everything the server needs for Slack, built together so they share one store and client."""

    sink: SlackSink
    outbox: Outbox
    sender: OutboxSender
    verifier: Verifier
    directory: Directory
    name: str = "slack"
    markup: SlackMarkup = field(default_factory=SlackMarkup)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: RunStore,
        *,
        groups: Mapping[str, Iterable[str]] | None = None,
        on_error: Callable[[str], None] = lambda reason: None,
        timeout: int = 10,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
    ) -> Slack | None:
        """None unless both the bot token and the signing secret are set (chat needs both directions)."""
        if settings.slack_bot_token is None or settings.slack_signing_secret is None:
            return None
        base_url = settings.slack_api_url or DEFAULT_API_URL
        base_url = base_url if base_url.endswith("/") else base_url + "/"
        token = settings.slack_bot_token.get_secret_value()
        # Retries are the outbox's job (ordered, persisted); the client must not retry behind its back.
        client = WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=[])
        lookup = WebClient(token=token, base_url=base_url, timeout=2, retry_handlers=[])
        outbox = Outbox(store)
        sender = OutboxSender(outbox, client, on_error=on_error, backoff=backoff, max_backoff=max_backoff)
        sink = SlackSink(store, outbox, Router(settings.slack_channel, settings.severity_channels), sender.wake,
                         public_url=settings.public_url, storms=Storms(store, settings.storm_window),
                         detail=settings.chat_detail)
        sender.refresh = sink.fresh
        verifier = Verifier(settings.slack_signing_secret.get_secret_value(), first_time=ReplayGuard(store).first_time)
        return cls(sink, outbox, sender, verifier, Directory(lookup, groups))

    # the chat-backend interface -------------------------------------------------------------------

    def endpoints(self) -> dict[str, Callable[[bytes, ChatOps], ChatAnswer]]:
        """The HTTP paths Slack calls (configured in the Slack app manifest) and their handlers."""
        return {"/slack/commands": endpoints.slash_command,
                "/slack/interactions": partial(endpoints.interaction, ephemeral=self.ephemeral)}

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        return self.verifier.problem(body, headers)

    def note(self, run_id: str, body: str) -> None:
        self.sink.note(run_id, body)

    def ephemeral(self, channel: str, user: str, body: str, run_id: str = "") -> None:
        self.sink.ephemeral(channel, user, body, run_id)

    def channel_of(self, runbook: Runbook, run: RunRecord) -> str | None:
        return self.sink.router.channel(runbook, run)

    def show_outlook(self, outlook: Callable[[RunRecord, Runbook], list[Outlook]]) -> None:
        """Say in the proposal's thread who can approve it (asked of the cluster before anyone clicks)."""
        def rendered(run: RunRecord, runbook: Runbook, step: str) -> str | None:
            entries = outlook(run, runbook)
            return render.outlook(step, entries) if entries else None

        self.sink.outlook = rendered

    def start(self) -> None:
        self.sender.start()

    def stop(self) -> None:
        self.sender.stop()

    @property
    def alive(self) -> bool:
        return self.sender.alive

    def pending(self) -> int:
        return self.outbox.pending()

    def oldest_pending_age(self) -> float:
        return self.outbox.oldest_pending_age()
