"""`alertmanager.silenced`: is someone already on it? An active Alertmanager silence says so.

A person who silences an alert has taken it; a run that proposes changes for a silenced alert races them.
Configured by `plugins.alertmanager` (`url`, optional `bearer_token_file`, `timeout`); without it the
answer is "not known" (`checked: false`), never an error, so runbooks stay quiet where no Alertmanager is
reachable. Only silences whose every matcher matches the given labels count, as Alertmanager's own
silencer decides (equal or regex, negated with isEqual false).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.actions import ActionArgs, ActionContext, ActionKind, action
from engine.errors import SettingsError, TransientError
from engine.verdict import Evidence

MAX_SILENCES = 1000


class SilenceSettings(BaseModel):
    """`plugins.alertmanager` in the settings file."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    url: str = Field(pattern=r"^https?://", description="e.g. http://alertmanager.monitoring:9093")
    bearer_token_file: str | None = None
    timeout: float = Field(default=10.0, gt=0, le=60)

    @classmethod
    def parse(cls, section: Mapping[str, Any] | None) -> SilenceSettings | None:
        if not section:
            return None
        try:
            return cls.model_validate(dict(section))
        except ValidationError as exc:
            raise SettingsError(f"plugins.alertmanager: {exc.errors(include_url=False)[0]['msg']}") from None


class SilencedArgs(ActionArgs):
    labels: dict[str, str] = Field(max_length=50, description="The alert's labels (or the target's).")


def matches(matcher: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """One Alertmanager matcher against a label set (a missing label is the empty string, as there)."""
    value = labels.get(str(matcher.get("name")), "")
    wanted = str(matcher.get("value", ""))
    try:
        hit = re.fullmatch(wanted, value) is not None if matcher.get("isRegex") else value == wanted
    except re.error:
        return False
    return hit if matcher.get("isEqual", True) else not hit


def silencing(silences: list[dict[str, Any]], labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """The active silences whose matchers all match `labels`."""
    return [s for s in silences[:MAX_SILENCES]
            if (s.get("status") or {}).get("state") == "active" and s.get("matchers")
            and all(matches(m, labels) for m in s["matchers"] if isinstance(m, dict))]


class SilenceActions:
    def __init__(self, settings: SilenceSettings | None) -> None:
        self.settings = settings

    @action("alertmanager.silenced", kind=ActionKind.DIAGNOSE, args=SilencedArgs)
    def silenced(self, ctx: ActionContext, args: SilencedArgs) -> dict[str, Any]:
        """Whether an active Alertmanager silence covers these labels. Output: `checked` (false without
        `plugins.alertmanager`), `silenced`, `silences` [{id, created_by, comment, ends_at}].
        Findings: `alertmanager.silenced` (info) naming who silenced it and until when."""
        if self.settings is None:
            return {"checked": False, "silenced": False, "silences": []}
        found = silencing(self._silences(ctx), args.labels)
        rows = [{"id": s.get("id"), "created_by": s.get("createdBy"), "comment": s.get("comment"),
                 "ends_at": s.get("endsAt")} for s in found[:10]]
        if rows:
            first = rows[0]
            ctx.finding("alertmanager.silenced", "info",
                        f"{first['created_by']} silenced this alert until {first['ends_at']} "
                        f"(\"{first['comment']}\"): someone is on it, so nothing is proposed",
                        [Evidence(object=f"Silence {first['id']}", field="status.state", value="active")])
        return {"checked": True, "silenced": bool(rows), "silences": rows}

    def _silences(self, ctx: ActionContext) -> list[dict[str, Any]]:
        import httpx  # here, not at module level: httpx pulls in its CLI (rich, click: ~10 MB) on import
        assert self.settings is not None
        headers = {}
        if self.settings.bearer_token_file:
            token = Path(self.settings.bearer_token_file).read_text(encoding="utf-8").strip()
            headers["Authorization"] = f"Bearer {token}"
        timeout = min(self.settings.timeout, max(0.1, ctx.remaining()))
        try:
            response = httpx.get(f"{self.settings.url.rstrip('/')}/api/v2/silences", headers=headers,
                                 timeout=timeout)
        except httpx.HTTPError as exc:
            raise TransientError(f"Alertmanager at {self.settings.url} did not answer: {exc}") from None
        if response.status_code != 200:
            raise TransientError(f"Alertmanager answered {response.status_code} for its silences")
        body = response.json()
        return [s for s in body if isinstance(s, dict)] if isinstance(body, list) else []
