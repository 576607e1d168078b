"""`alertmanager.silenced` against a real Alertmanager: a silence a person set is found by the alert's
labels (equal, regex and negated matchers as Alertmanager applies them), an expired or non-matching one is
not, and without settings the answer is "not known" rather than an error."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import httpx

from engine.actions import ActionContext
from integrations.alertmanager.silences import SilenceActions, SilencedArgs, SilenceSettings, matches
from integrations.testing.alertmanager import Alertmanager


def _ctx() -> ActionContext:
    return ActionContext("run-1", "silence", False, time.monotonic() + 30)


def _silence(am: Alertmanager, matchers: list[dict[str, object]], minutes: float, comment: str) -> str:
    now = dt.datetime.now(dt.UTC)
    ends = now + dt.timedelta(minutes=minutes)
    body = {"matchers": matchers, "startsAt": now.isoformat(), "endsAt": ends.isoformat(), "createdBy": "alice",
            "comment": comment}
    response = httpx.post(f"{am.url}/api/v2/silences", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["silenceID"])


def test_a_matching_active_silence_is_found(alertmanager: Callable[[str, str], Alertmanager]) -> None:
    am = alertmanager("http://127.0.0.1:9/hook", "t")
    sid = _silence(am, [{"name": "alertname", "value": "KubeNode.*", "isRegex": True, "isEqual": True},
                        {"name": "node", "value": "node-b", "isRegex": False, "isEqual": True}],
                   60, "replacing the disk")
    _silence(am, [{"name": "node", "value": "node-c", "isRegex": False, "isEqual": True}], 60, "other node")
    actions = SilenceActions(SilenceSettings(url=am.url))
    ctx = _ctx()
    out = actions.silenced(ctx, SilencedArgs(labels={"alertname": "KubeNodeNotReady", "node": "node-b"}))
    assert out["checked"] and out["silenced"] and [s["id"] for s in out["silences"]] == [sid]
    assert [f.id for f in ctx.findings] == ["alertmanager.silenced"] and "alice" in ctx.findings[0].summary
    other = actions.silenced(_ctx(), SilencedArgs(labels={"alertname": "KubeNodeNotReady", "node": "node-d"}))
    assert other == {"checked": True, "silenced": False, "silences": []}
    httpx.delete(f"{am.url}/api/v2/silence/{sid}", timeout=10)  # expired now: no longer covers the alert
    again = actions.silenced(_ctx(), SilencedArgs(labels={"alertname": "KubeNodeNotReady", "node": "node-b"}))
    assert again["silenced"] is False


def test_without_settings_the_answer_is_not_known() -> None:
    ctx = _ctx()
    assert SilenceActions(None).silenced(ctx, SilencedArgs(labels={"node": "node-b"})) == {
        "checked": False, "silenced": False, "silences": []}
    assert ctx.findings == []


def test_matchers_follow_alertmanager() -> None:
    labels = {"alertname": "KubeNodeNotReady", "node": "node-b"}
    assert matches({"name": "node", "value": "node-b"}, labels)
    assert not matches({"name": "node", "value": "node-b", "isEqual": False}, labels)
    assert matches({"name": "node", "value": "node-(a|b)", "isRegex": True}, labels)
    assert not matches({"name": "node", "value": "node", "isRegex": True}, labels)  # anchored, as Alertmanager
    assert matches({"name": "zone", "value": ""}, labels)  # an absent label is the empty string
    assert not matches({"name": "node", "value": "(", "isRegex": True}, labels)
