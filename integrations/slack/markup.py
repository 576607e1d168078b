"""Slack's mrkdwn as the server's `Markup`: how replies, notes and refusals look in Slack."""

from __future__ import annotations

import re

from engine.chat import Icon
from integrations.slack.directory import is_group
from integrations.slack.render import status_label, text, who

_ICONS: dict[str, str] = {"refused": ":no_entry:", "warning": ":warning:", "resolved": ":large_green_circle:",
                          "frozen": ":snowflake:", "thawed": ":sunny:"}
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]+$")


class SlackMarkup:
    def data(self, value: object, limit: int = 2900) -> str:
        return text(value, limit)

    def bold(self, text: str) -> str:
        return f"*{text}*"

    def code(self, text: str) -> str:
        return f"`{text}`"

    def mention(self, entry: str) -> str:
        """A user (`U123`), a user group (`S123` links; `@handle` stays as typed) or a plain name."""
        if is_group(entry) and not entry.startswith("@"):
            return f"<!subteam^{entry}>"
        return who(entry)

    def channel(self, channel: str) -> str:
        """`<#C123>` for a channel id; a name configured as `ops-alerts` or `#ops-alerts` shows as `#ops-alerts`."""
        return f"<#{channel}>" if _CHANNEL_ID.match(channel) else f"#{text(channel.lstrip('#'), 100)}"

    def icon(self, name: Icon) -> str:
        return _ICONS.get(name, "")

    def status(self, status: str) -> str:
        return status_label(status)
