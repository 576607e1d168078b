"""The chat-backend interface: what the server needs from a chat product (Slack is one implementation).

A backend brings its run-event sink (the run's thread), notes and ephemeral replies, request
verification, the HTTP endpoints it answers, its markup, and its user/group directory (for approver
and runner groups). The server bounds and verifies every request before a backend sees it, audits
refusals, and answers errors; `wiring.chat_backend` chooses the backend from the settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from engine.chat import ChatAnswer, ChatOps, Markup
from engine.events import EventSink
from engine.model import Runbook
from engine.policy import GroupDirectory, Outlook
from engine.records import RunRecord

# A backend endpoint: the verified request body and the chat operations -> the HTTP answer.
ChatEndpoint = Callable[[bytes, ChatOps], ChatAnswer]


class ChatBackend(Protocol):
    @property
    def name(self) -> str:
        """Names its endpoints' metrics and audit entries (e.g. `slack.request.refused`)."""
        ...

    @property
    def markup(self) -> Markup: ...

    @property
    def directory(self) -> GroupDirectory: ...

    @property
    def sink(self) -> EventSink: ...

    def endpoints(self) -> Mapping[str, ChatEndpoint]:
        """Path -> handler of the POST endpoints the chat product calls."""
        ...

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """None for an authentic request, else why it is refused (forged, stale, replayed)."""
        ...

    def note(self, run_id: str, body: str) -> None:
        """A message in the run's thread that is not a run event (e.g. an alert resolved); `body` is safe markup."""
        ...

    def ephemeral(self, channel: str, user: str, body: str, run_id: str = "") -> None:
        """A message only `user` sees."""
        ...

    def channel_of(self, runbook: Runbook, run: RunRecord) -> str | None:
        """Where the run's thread is, if anywhere."""
        ...

    def show_outlook(self, outlook: Callable[[RunRecord, Runbook], list[Outlook]]) -> None:
        """Let proposals say who can approve them (used when approvers act with their own identities)."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    @property
    def alive(self) -> bool: ...

    def pending(self) -> int:
        """Messages not yet delivered."""
        ...

    def oldest_pending_age(self) -> float:
        """Seconds the oldest undelivered message has waited (0: none waits)."""
        ...
