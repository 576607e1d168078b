"""Slack's two endpoints: the `/runbook` slash command and the Approve/Reject buttons.

The server has already bounded and verified the body; these parse Slack's form encoding, call the
chat operations (which ask the policy gate) and answer in Slack's shapes. A refused click is told to
the clicker alone, as an ephemeral message in the channel of the card.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from engine.chat import ChatAnswer, ChatOps, ChatRequestError
from integrations.slack.render import APPROVE, REJECT

# (channel, user, text, run_id): an ephemeral message
Ephemeral = Callable[[str, str, str, str], None]


def slash_command(body: bytes, ops: ChatOps) -> ChatAnswer:
    form = _form(body)
    user, channel = _first(form, "user_id"), _first(form, "channel_id")
    if not user:
        raise ChatRequestError("user_id missing from the slash command")
    reply = ops.command(user, channel, _first(form, "text"))
    return ChatAnswer(200, {"response_type": "ephemeral", "text": reply.text})


def interaction(body: bytes, ops: ChatOps, ephemeral: Ephemeral) -> ChatAnswer:
    payload, user, actions, channel = _block_actions(_first(_form(body), "payload"))
    if payload.get("type") != "block_actions":
        return ChatAnswer(200)  # other interaction types are not ours; Slack needs a 200
    for action in actions:
        action_id, value = str(action.get("action_id", "")), str(action.get("value", ""))
        if action_id not in (APPROVE, REJECT):
            continue
        try:
            target = json.loads(value)
            run_id, step = str(target["run"]), str(target["step"])
        except (ValueError, KeyError, TypeError):
            if channel:
                ephemeral(channel, user, "This button is malformed; use `/runbook approve RUN_ID STEP`.", "")
            continue
        approve = action_id == APPROVE
        reply = ops.decide(user, run_id, approve, step=step, reason="" if approve else "rejected in Slack")
        if not reply.ok and channel:
            ephemeral(channel, user, reply.text, reply.run_id)
    return ChatAnswer(200)


def _block_actions(raw: str) -> tuple[dict[str, Any], str, list[dict[str, Any]], str]:
    try:
        payload = json.loads(raw)
        user = str(payload["user"]["id"])
        actions = payload.get("actions") or []
        places = [payload.get("channel") or {}, payload.get("container") or {}]
        if not isinstance(actions, list) or not all(isinstance(a, dict) for a in [*actions, *places]):
            raise TypeError("actions must be a list of objects; channel and container objects")
    except (ValueError, KeyError, TypeError, RecursionError):
        raise ChatRequestError("expected a form field 'payload' with a block_actions JSON document") from None
    channel = str(places[0].get("id") or places[1].get("channel_id") or "")
    return payload, user, actions, channel


def _form(body: bytes) -> dict[str, list[str]]:
    return parse_qs(body.decode("utf-8", "replace"))


def _first(form: dict[str, list[str]], key: str) -> str:
    values = form.get(key) or [""]
    return values[0]

