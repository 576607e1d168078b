"""The Alertmanager webhook: auth, validation, matching, dedup, storms and back-pressure."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from widgets import ALICE

from engine.redaction import marker, redact
from integrations.testing.server import READ_TOKEN, WEBHOOK_TOKEN, Harness, alert, alert_payload, wait_for
from integrations.testing.slack_fake import FakeSlack


def _hook(harness: Harness) -> str:
    return f"{harness.url}/hooks/alertmanager"


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}


def test_authentication(harness: Harness) -> None:
    body = alert_payload([alert("WidgetDown", {"widget": "w1"})])
    missing = harness.http.post(_hook(harness), json=body)
    assert missing.status_code == 401 and "missing Authorization" in missing.json()["error"]
    wrong = harness.post_alerts(body["alerts"], token="nope")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid bearer token"
    basic = harness.http.post(_hook(harness), json=body, headers={"Authorization": "Basic dTpw"})
    assert basic.status_code == 401 and "unsupported Authorization scheme" in basic.json()["error"]
    assert harness.engine.store.list_runs() == []
    assert any(e.action == "webhook.refused" for e in harness.engine.store.audit_log())


def test_basic_auth(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness(webhook_token=None, webhook_basic_auth="am:s3cret")
    body = alert_payload([alert("WidgetDown", {"widget": "w1"})])
    good = base64.b64encode(b"am:s3cret").decode()
    bad = base64.b64encode(b"am:guess").decode()
    assert harness.http.post(_hook(harness), json=body, headers={"Authorization": f"Basic {bad}"}).status_code == 401
    response = harness.http.post(_hook(harness), json=body, headers={"Authorization": f"Basic {good}"})
    assert response.status_code == 200 and len(response.json()["started"]) == 1


def test_bad_input_is_4xx_and_the_server_keeps_serving(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness(max_body_bytes=8192)
    cases = [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (json.dumps(alert_payload([], version="3")).encode(), 400, "unsupported payload version '3'"),
        (json.dumps({"version": "4", "status": "firing"}).encode(), 400, "alerts"),
        (json.dumps(alert_payload([{"status": "weird", "labels": {}}])).encode(), 400, "alerts.0.status"),
        (json.dumps(alert_payload([alert("X", {"pad": "x" * 9000})])).encode(), 413, "max_body_bytes"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (b'{"version": ' + b"9" * 4400 + b"}", 400, "not valid JSON"),  # a number Python refuses to parse
        (b"[" * 3000 + b"]" * 3000, 400, "not valid JSON"),  # nesting deeper than the parser allows
    ]
    for body, status, reason in cases:
        response = harness.http.post(_hook(harness), content=body, headers=_auth())
        assert response.status_code == status, (body[:40], response.text)
        assert reason in response.json()["error"], response.json()
    assert harness.http.get(f"{harness.url}/healthz").json() == {"status": "ok"}
    ok = harness.post_alerts([alert("WidgetDown", {"widget": "w1"})])
    assert ok.status_code == 200 and ok.json()["started"]


def test_summary_started_unmatched_rejected(harness: Harness) -> None:
    alerts = [alert("WidgetDown", {"widget": "w1"}), alert("DiskFull", {"instance": "db1"}),
              alert("WidgetDown", {"widget": "Bad_Name!"}), alert("WidgetDown", {"other": "x"})]
    body = harness.post_alerts(alerts).json()
    assert body["received"] == 4
    assert [s["runbook"] for s in body["started"]] == ["widget-down"]
    assert body["unmatched"] == [{"alertname": "DiskFull", "fingerprint": alerts[1]["fingerprint"],
                                  "reason": "no-trigger", "detail": "no runbook trigger matches the alert's labels"}]
    reasons = [r["reason"] for r in body["rejected"]]
    assert "does not match the pattern" in reasons[0]
    assert "missing required param 'target'" in reasons[1] and "lacks label(s) widget" in reasons[1]
    audited = [e for e in harness.engine.store.audit_log() if e.action == "alert.rejected"]
    assert len(audited) == 2 and audited[0].detail["labels"]["widget"] == "Bad_Name!"


def test_label_values_are_data_not_templates(harness: Harness, fake_slack: FakeSlack) -> None:
    evil = "{{ 7 * 7 }} <!channel> token=hunter2secret"
    body = harness.post_alerts([alert("Echo", {"message": evil})]).json()
    run = harness.wait_status(body["started"][0]["run_id"], "succeeded")
    assert run.params["text"] == redact(evil)  # alert labels are redacted as they arrive
    # rendered once, by the runbook's template only; outputs are stored redacted
    assert run.steps[0].output["text"] == redact(f"echo: {evil}") == \
        f"echo: {{{{ 7 * 7 }}}} <!channel> token={marker('hunter2secret')}"
    wait_for(lambda: "echo:" in fake_slack.transcript(), what="the note in Slack")
    text = fake_slack.transcript()
    assert "{{ 7 * 7 }}" in text and "echo: 49" not in text and "text=49" not in text  # (a run id may hold "49")
    assert "hunter2secret" not in text
    wire = json.dumps([m.blocks for m in fake_slack.messages])
    assert "<!channel>" not in wire and "&lt;!channel&gt;" in wire  # escaped: no @channel ping


def test_repeats_and_new_fingerprints_for_the_same_target_dedup(harness: Harness) -> None:
    first = harness.post_alerts([alert("WidgetDown", {"widget": "w1", "pod": "a"})]).json()["started"][0]["run_id"]
    again = harness.post_alerts([alert("WidgetDown", {"widget": "w1", "pod": "a"}),
                                 alert("WidgetDown", {"widget": "w1", "pod": "b"})]).json()
    assert [d["run_id"] for d in again["deduplicated"]] == [first, first] and not again["started"]
    assert len(harness.engine.store.alerts(first)) == 3
    other = harness.post_alerts([alert("WidgetDown", {"widget": "w2"})]).json()
    assert other["started"] and other["started"][0]["run_id"] != first


def test_full_queue_answers_503_and_creates_nothing(harness: Harness) -> None:
    pool = harness.services.queue
    while pool.reserve():  # occupy every slot, as a backlog of runs would
        pass
    try:
        response = harness.post_alerts([alert("WidgetDown", {"widget": "w1"})])
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert response.json()["deferred"][0]["reason"].startswith("the run queue is full")
        assert harness.engine.store.list_runs() == []
    finally:
        for _ in range(pool.capacity):
            pool.release()
    retried = harness.post_alerts([alert("WidgetDown", {"widget": "w1"})])
    assert retried.status_code == 200 and retried.json()["started"]


def test_burst_of_1000_alerts_is_a_handful_of_runs(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness(queue_size=3, workers=1)
    targets = [f"w{i}" for i in range(5)]
    alerts = [alert("WidgetDown", {"widget": targets[i % 5], "pod": f"p{i}"}) for i in range(1000)]
    batches = [alerts[i:i + 4] for i in range(0, 1000, 4)]
    statuses: list[int] = []

    def deliver(batch: list[dict[str, object]]) -> None:
        with httpx.Client(timeout=60) as client:
            for _ in range(100):  # Alertmanager retries; so do we, bounded
                response = client.post(_hook(harness), json=alert_payload(batch), headers=_auth())
                statuses.append(response.status_code)
                if response.status_code != 503:
                    assert response.status_code == 200, response.text
                    return
                wait_for(lambda: harness.services.queue.depth() < 3, timeout=30, what="room in the queue")
            raise AssertionError("still deferred after 100 attempts")

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(deliver, batches))
    print(f"statuses: {statuses.count(200)} x 200, {statuses.count(503)} x 503")
    assert set(statuses) <= {200, 503}
    runs = harness.engine.store.list_runs(limit=100)
    assert sorted(r.params["target"] for r in runs) == targets
    attached = {a["fingerprint"] for r in runs for a in harness.engine.store.alerts(r.id)}
    assert attached == {a["fingerprint"] for a in alerts}
    for run in runs:
        harness.wait_status(run.id, "awaiting_approval")
    assert harness.metrics.dedup_hits.value(runbook="widget-down") >= 995


def test_run_api(harness: Harness) -> None:
    run_id = harness.post_alerts([alert("WidgetDown", {"widget": "w1"})]).json()["started"][0]["run_id"]
    harness.wait_status(run_id, "awaiting_approval")
    assert harness.http.get(f"{harness.url}/runs/{run_id}").status_code == 401
    assert harness.http.get(f"{harness.url}/runs/{run_id}", headers=_auth()).status_code == 401  # a write token
    read = {"Authorization": f"Bearer {READ_TOKEN}"}
    body = harness.http.get(f"{harness.url}/runs/{run_id}", headers=read).json()
    assert body["run_id"] == run_id and body["status"] == "awaiting_approval"
    assert body["alerts"][0]["alert"]["labels"]["widget"] == "w1"
    missing = harness.http.get(f"{harness.url}/runs/nope", headers=read)
    assert missing.status_code == 404 and "no run with id 'nope'" in missing.json()["error"]


def test_health_readiness_and_metrics(harness: Harness) -> None:
    run_id = harness.command(ALICE, "run widget-down target=w1").json()["text"].split("`")[1]
    harness.wait_status(run_id, "awaiting_approval")
    harness.command(ALICE, f"reject {run_id}")
    harness.wait_status(run_id, "rejected")
    harness.post_alerts([alert("WidgetDown", {"widget": "w2"})])
    assert harness.http.get(f"{harness.url}/healthz").status_code == 200
    ready = harness.http.get(f"{harness.url}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
    metrics = harness.http.get(f"{harness.url}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    assert 'runbook_runs_total{outcome="rejected",runbook="widget-down"} 1' in text
    assert 'runbook_runs_started_total{runbook="widget-down",trigger="slack"} 1' in text
    assert 'runbook_step_duration_seconds_count{action="finding",status="succeeded"}' in text
    assert "runbook_webhook_duration_seconds_count 1" in text
    assert "runbook_queue_depth " in text and "runbook_chat_outbox_pending " in text
    assert 'runbook_alerts_total{outcome="started",status="firing"} 1' in text


def test_alerts_for_another_cluster_are_unmatched_and_audited(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness(cluster_name="prod-eu")
    body = harness.post_alerts([alert("WidgetDown", {"widget": "w1", "cluster": "prod-us"}),
                                alert("WidgetDown", {"widget": "w2", "cluster": "prod-eu"})]).json()
    assert [(u["reason"], "prod-us" in u["detail"]) for u in body["unmatched"]] == [("other-cluster", True)]
    assert [s["runbook"] for s in body["started"]] == ["widget-down"]
    run = harness.run(body["started"][0]["run_id"])
    assert run.params == {"target": "w2"} and run.trigger["cluster"] == "prod-eu"
    audited = [e for e in harness.engine.store.audit_log() if e.action == "alert.unmatched"]
    assert [e.detail["reason"] for e in audited] == ["other-cluster"]
    assert 'outcome="unmatched:other-cluster"' in harness.http.get(f"{harness.url}/metrics").text
    page = harness.http.get(f"{harness.url}/runs/{run.id}", headers={"Authorization": f"Bearer {READ_TOKEN}",
                                                                     "Accept": "text/html"})
    assert '<code id="run-cluster">prod-eu</code>' in page.text
