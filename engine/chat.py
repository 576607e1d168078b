"""What a chat backend and the server say to each other, without naming any chat product.

The server implements `ChatOps` (the `/runbook` command and approve/reject); a backend (Slack, or any
other) parses its own requests, calls those operations and words the answers with its `Markup`. Replies
are composed from markup primitives, so the server never writes a backend's syntax and a backend never
re-implements the policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from engine.redaction import redact

Icon = Literal["refused", "warning", "resolved", "frozen", "thawed"]


@dataclass(frozen=True)
class Reply:
    """The answer to one chat request: shown only to the person who asked."""

    text: str
    ok: bool = True
    run_id: str = ""


@dataclass(frozen=True)
class ChatAnswer:
    """What a backend's endpoint answers over HTTP (`body` is JSON; None: an empty body)."""

    status: int = 200
    body: dict[str, Any] | None = field(default=None)


class ChatRequestError(Exception):
    """A chat request that cannot be understood: the server answers 400 with this reason."""


class ChatOps(Protocol):
    """The operations people trigger from chat; every decision goes through the executor's policy gate."""

    def command(self, user: str, channel: str, line: str) -> Reply:
        """One `/runbook ...` command line typed by `user` in `channel`."""
        ...

    def decide(self, user: str, run_id: str, approve: bool, *, step: str, reason: str = "") -> Reply:
        """An approve or reject of a named step (a button press)."""
        ...


class Markup(Protocol):
    """How a backend marks up text. `data` makes outside data safe (redacted, escaped, bounded); the others
    take text that is already safe."""

    def data(self, value: object, limit: int = 2900) -> str: ...

    def bold(self, text: str) -> str: ...

    def code(self, text: str) -> str: ...

    def mention(self, entry: str) -> str: ...

    def channel(self, channel: str) -> str: ...

    def icon(self, name: Icon) -> str: ...

    def status(self, status: str) -> str: ...


class PlainMarkup:
    """Markup for places without any (logs, a terminal): data is redacted and bounded, nothing else."""

    def data(self, value: object, limit: int = 2900) -> str:
        out = redact(str(value))
        return out if len(out) <= limit else out[: limit - 1] + "…"

    def bold(self, text: str) -> str:
        return text

    def code(self, text: str) -> str:
        return f"'{text}'"

    def mention(self, entry: str) -> str:
        return self.data(entry, 100)

    def channel(self, channel: str) -> str:
        return f"#{self.data(channel, 100)}"

    def icon(self, name: Icon) -> str:
        return ""

    def status(self, status: str) -> str:
        return self.data(status, 50)
