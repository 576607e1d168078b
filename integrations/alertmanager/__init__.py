"""Alertmanager webhook payloads and how their alerts map onto runbooks; `alertmanager.silenced`."""

from collections.abc import Mapping
from typing import Any

from engine.actions import ActionRegistry
from integrations.alertmanager.matching import Match, dedup_key, key_for, match_alert
from integrations.alertmanager.payload import Alert, PayloadError, WebhookPayload, parse_payload
from integrations.alertmanager.silences import SilenceActions, SilenceSettings

__all__ = ["Alert", "Match", "PayloadError", "WebhookPayload", "dedup_key", "key_for", "match_alert", "parse_payload",
           "register"]


def register(registry: ActionRegistry, section: Mapping[str, Any] | None = None) -> None:
    """Register `alertmanager.silenced`, configured by `plugins.alertmanager` (none: answers "not known")."""
    registry.add_declared(SilenceActions(SilenceSettings.parse(section)))
