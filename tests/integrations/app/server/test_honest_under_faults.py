"""The server stays honest under abuse and faults: refused requests cannot fill the disk through the
audit log, and a store that cannot commit makes the server say so (503 + reason, not ready) without
losing anything it acknowledged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from widgets import ALICE

from engine.sqlstore.sqlite import SqliteStore
from integrations.testing.server import Harness, alert

REFUSED_ACTIONS = ("webhook.refused", "slack.request.refused")


def _refusal_rows(harness: Harness) -> list[Any]:
    return [e for e in harness.engine.store.audit_log() if e.action.startswith(REFUSED_ACTIONS)]


def test_a_flood_of_refused_requests_is_counted_not_audited_row_by_row(harness: Harness) -> None:
    for _ in range(150):
        assert harness.post_alerts([alert("WidgetDown", {"widget": "w1"})], token="wrong").status_code == 401
        assert harness.command(ALICE, "list", secret="forged").status_code == 401
    assert harness.metrics.refusals.value(endpoint="alertmanager", reason="auth") == 150
    assert harness.metrics.refusals.value(endpoint="slack_commands", reason="signature") == 150
    rows = _refusal_rows(harness)
    assert [r.action for r in rows] == ["webhook.refused", "slack.request.refused"]  # the first per source
    assert rows[0].detail["source"] == "127.0.0.1 /hooks/alertmanager" and rows[0].detail["reason"] == "authentication"
    assert rows[1].detail["endpoint"] == "/slack/commands"


def _fill(harness: Harness) -> tuple[httpx.Response, list[tuple[str, str]]]:
    """Send alerts until the store refuses one; the (run, fingerprint) pairs acknowledged before it."""
    acknowledged: list[tuple[str, str]] = []
    pad = "filler-" * 120
    for i in range(3000):
        answer = harness.post_alerts([alert("WidgetDown", {"widget": f"w{i}", "pad": pad})])
        if answer.status_code != 200:
            return answer, acknowledged
        body = answer.json()
        acknowledged += [(a["run_id"], a["fingerprint"]) for a in body["started"] + body["deduplicated"]]
    raise AssertionError("the store never filled up")


def test_a_full_store_answers_503_with_the_reason_and_loses_nothing_acknowledged(
        make_harness: Callable[..., Harness], tmp_path: Path) -> None:
    harness = make_harness(db_max_bytes=400_000)
    assert harness.http.get(f"{harness.url}/readyz").status_code == 200
    refused, acknowledged = _fill(harness)
    assert refused.status_code == 503, refused.text
    assert "database or disk is full" in refused.json()["error"] and refused.headers["Retry-After"]
    ready = harness.http.get(f"{harness.url}/readyz")
    assert ready.status_code == 503 and any("commit" in p and "full" in p for p in ready.json()["problems"])
    # a bad credential is still a 401 that says why, not a 5xx
    bad = harness.post_alerts([alert("WidgetDown", {"widget": "w1"})], token="wrong")
    assert bad.status_code == 401 and "invalid bearer token" in bad.json()["error"]
    assert harness.command(ALICE, "list", secret="forged").status_code == 401
    # everything acknowledged is in the store, as another process sees it
    assert len(acknowledged) > 10
    other = SqliteStore(tmp_path / "runs.db", "reader")
    try:
        for run_id, fingerprint in acknowledged:
            assert fingerprint in {a["fingerprint"] for a in other.alerts(run_id)}, run_id
    finally:
        other.close()
