"""Control characters from outside (ESC, NUL, CR, bidi overrides in an alert label) reach Slack as visible
escapes, never as raw characters that drive a terminal or hide text."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from integrations.testing.server import Harness, alert, wait_for
from integrations.testing.slack_fake import FakeSlack


def strings(value: Any) -> Iterator[str]:
    """Every string inside a Slack call's parameters (blocks may arrive JSON-encoded)."""
    if isinstance(value, str):
        yield value
        if value.startswith(("[", "{")):
            with contextlib.suppress(ValueError):
                yield from strings(json.loads(value))
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_control_characters_in_a_label_reach_slack_escaped(harness: Harness, fake_slack: FakeSlack) -> None:
    hostile = "\x1b[31mred\x1b[0m nul\x00 cr\rline \u202eevil"
    body = harness.post_alerts([alert("Echo", {"message": hostile})]).json()
    harness.wait_status(body["started"][0]["run_id"], "succeeded")
    wait_for(lambda: "echo:" in fake_slack.transcript(), what="the note in Slack")
    sent = [text for call in fake_slack.requests for text in strings(call.params)]
    for raw in ("\x1b", "\x00", "\r", "\u202e"):
        assert not [text for text in sent if raw in text], repr(raw)
    assert any("echo: \\x1b[31mred\\x1b[0m nul\\0 cr\\rline \\u202eevil" in text for text in sent), sent
