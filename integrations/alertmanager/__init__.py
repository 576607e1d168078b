"""Alertmanager webhook payloads and how their alerts map onto runbooks."""

from integrations.alertmanager.matching import Match, dedup_key, key_for, match_alert
from integrations.alertmanager.payload import Alert, PayloadError, WebhookPayload, parse_payload

__all__ = ["Alert", "Match", "PayloadError", "WebhookPayload", "dedup_key", "key_for", "match_alert", "parse_payload"]
