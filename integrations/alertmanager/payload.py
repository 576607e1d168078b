"""The Alertmanager webhook payload (version "4") as a tolerant pydantic model.

Alertmanager adds keys over time (`truncatedAlerts` came in 0.19), so unknown keys are kept, not
rejected; what the server relies on is typed and required. Label and annotation values are data:
they are stored and shown, never rendered as templates.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.redaction import redact

SUPPORTED_VERSION = "4"


class PayloadError(ValueError):
    """The request body is not an Alertmanager webhook payload we can process; the message says why."""


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class Alert(_Tolerant):
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: str = Field(default="", alias="startsAt")
    ends_at: str = Field(default="", alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = ""

    @field_validator("labels", "annotations")
    @classmethod
    def _redacted(cls, values: dict[str, str]) -> dict[str, str]:
        """Secrets in label and annotation values are replaced as the alert arrives, before anything stores or
        shows them (a remediation refuses a param mapped from a redacted label). By value only: a label
        named `secret` (kube-state-metrics) names a Secret, it does not hold one."""
        return {key: redact(value) for key, value in values.items()}

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    def record(self) -> dict[str, Any]:
        """The alert as stored on a run and exposed to templates as `alert`."""
        return {
            "status": self.status, "labels": dict(self.labels), "annotations": dict(self.annotations),
            "startsAt": self.starts_at, "endsAt": self.ends_at, "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
        }


class WebhookPayload(_Tolerant):
    version: str
    receiver: str = ""
    status: Literal["firing", "resolved"]
    alerts: list[Alert]
    group_key: str = Field(default="", alias="groupKey")
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts")

    @field_validator("group_labels", "common_labels", "common_annotations")
    @classmethod
    def _redacted(cls, values: dict[str, str]) -> dict[str, str]:
        return {key: redact(value) for key, value in values.items()}


def parse_payload(body: bytes) -> WebhookPayload:
    """Parse and validate a webhook body; PayloadError says what is wrong in words a sender can act on."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # bad JSON or encoding, absurd numbers, absurd nesting
        raise PayloadError(f"the body is not valid JSON: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise PayloadError("the body must be a JSON object (an Alertmanager webhook payload)")
    version = data.get("version")
    if version != SUPPORTED_VERSION:
        raise PayloadError(f"unsupported payload version {version!r}; this server speaks Alertmanager "
                           f"webhook version {SUPPORTED_VERSION!r}")
    try:
        return WebhookPayload.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors(include_url=False)[:5])
        raise PayloadError(f"not an Alertmanager webhook payload: {problems}") from None
