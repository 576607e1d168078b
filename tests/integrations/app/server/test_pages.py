"""The run pages over real sockets: read access, HTML/JSON negotiation, the timeline's content, escaping of
outside data, and the live event stream."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import pytest
from pydantic import ValidationError
from widgets import ALICE, ECHO, WIDGET

from engine.settings import Settings
from integrations.app.server.pages import CSP
from integrations.testing.server import READ_TOKEN, WEBHOOK_TOKEN, Harness, alert, wait_for

READ = {"Authorization": f"Bearer {READ_TOKEN}"}
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def _awaiting(harness: Harness, labels: dict[str, str] | None = None, **fields: str) -> str:
    body = alert("WidgetDown", {"widget": "w1", "severity": "critical", **(labels or {})}) | fields
    run_id: str = harness.post_alerts([body]).json()["started"][0]["run_id"]
    harness.wait_status(run_id, "awaiting_approval")
    return run_id


def test_closed_until_a_read_credential_is_configured(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness(read_token=None)
    for headers in ({}, {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}, {"X-Forwarded-User": "alice"}):
        refused = harness.http.get(f"{harness.url}/runs", headers=headers)
        assert refused.status_code == 401
        assert "no read credential is configured" in refused.json()["error"]
        assert "read_token" in refused.json()["error"] and "trusted_proxy_cidrs" in refused.json()["error"]


def test_read_token_as_bearer_or_basic_password_never_the_webhook_token(harness: Harness) -> None:
    url = f"{harness.url}/runs"
    missing = harness.http.get(url, headers=HTML)
    assert missing.status_code == 401 and "missing read token" in missing.text
    assert missing.headers["www-authenticate"].startswith("Basic realm=")  # the browser's own login prompt
    webhook = harness.http.get(url, headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"})
    assert webhook.status_code == 401 and "invalid read token" in webhook.json()["error"]
    wrong = base64.b64encode(b"me:guess").decode()
    assert harness.http.get(url, headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    good = base64.b64encode(f"me:{READ_TOKEN}".encode()).decode()
    assert harness.http.get(url, headers={"Authorization": f"Basic {good}"}).status_code == 200
    assert harness.http.get(url, headers=READ).json() == {"runs": []}
    assert harness.metrics.refusals.value(endpoint="runs", reason="auth") == 3


def test_proxy_user_is_believed_only_from_trusted_addresses(make_harness: Callable[..., Harness]) -> None:
    trusted = make_harness(read_token=None, trusted_proxy_cidrs=["127.0.0.0/8"])
    page = trusted.http.get(f"{trusted.url}/runs", headers={"X-Forwarded-User": "alice@corp.example", **HTML})
    assert page.status_code == 200 and "alice@corp.example" in page.text
    missing = trusted.http.get(f"{trusted.url}/runs")
    assert missing.status_code == 401 and "missing X-Forwarded-User" in missing.json()["error"]
    trusted.close()
    elsewhere = make_harness(read_token=None, trusted_proxy_cidrs=["10.0.0.0/8"])
    spoofed = elsewhere.http.get(f"{elsewhere.url}/runs", headers={"X-Forwarded-User": "alice"})
    assert spoofed.status_code == 401
    assert "trusted only from trusted_proxy_cidrs; this request came from 127.0.0.1" in spoofed.json()["error"]


def test_read_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="read_token must differ from webhook_token"):
        Settings.model_validate({"read_token": "same", "webhook_token": "same"})
    with pytest.raises(ValidationError, match="'10.0.0/33' is not an address or CIDR block"):
        Settings.model_validate({"trusted_proxy_cidrs": ["10.0.0/33"]})


def test_list_filters_and_negotiation(harness: Harness) -> None:
    run_id = _awaiting(harness)
    echo = harness.post_alerts([alert("Echo", {"message": "hello"})]).json()["started"][0]["run_id"]
    harness.wait_status(echo, "succeeded")
    runs = harness.http.get(f"{harness.url}/runs", headers=READ).json()["runs"]
    assert {r["run_id"] for r in runs} == {run_id, echo}
    only = harness.http.get(f"{harness.url}/runs", params={"status": "awaiting_approval"}, headers=READ).json()
    assert [r["run_id"] for r in only["runs"]] == [run_id] and only["runs"][0]["target"] == "w1"
    by_name = harness.http.get(f"{harness.url}/runs?runbook=echo&limit=100000", headers=READ).json()["runs"]
    assert [r["run_id"] for r in by_name] == [echo]
    bad = harness.http.get(f"{harness.url}/runs?status=sideways", headers=READ)
    assert bad.status_code == 400 and "unknown status 'sideways'" in bad.json()["error"]
    assert harness.http.get(f"{harness.url}/runs?limit=many", headers=READ).status_code == 400
    page = harness.http.get(f"{harness.url}/runs?runbook=widget-down", headers={**READ, **HTML})
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CSP and "script-src 'self'" in CSP
    assert f'href="/runs/{run_id}"' in page.text and f"/runs/{echo}" not in page.text
    assert '<option value="widget-down" selected>' in page.text  # the filter form keeps its choice


def test_run_page_shows_the_timeline(harness: Harness, restarted: list[str]) -> None:
    run_id = _awaiting(harness)
    page = harness.http.get(f"{harness.url}/runs/{run_id}", headers={**READ, **HTML})
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    text = page.text
    assert 'data-events="/runs/' + run_id + '/events"' in text and '<script src="/static/live.js"' in text
    assert '<meta http-equiv="refresh" content="5">' in text  # inside <noscript>: live without JavaScript
    for expected in ("Look at w1", "Restart w1", "not reached", "w1 is down", "Widget w1",
                     '<span class="add">+ state: up</span>', '<span class="remove">- state: down</span>',
                     "it stopped answering", "awaiting_approval", "awaiting approval</span> Restart w1",
                     "silences/new?filter=", "WidgetDown"):
        assert expected in text, expected
    assert harness.click(ALICE, run_id, "restart").status_code == 200
    harness.wait_status(run_id, "succeeded")
    done = harness.http.get(f"{harness.url}/runs/{run_id}", headers={**READ, **HTML}).text
    assert "data-events" not in done and "refresh" not in done
    assert "U0ALICE" in done and "step.approved" in done and "remediation.executed" in done
    executed = done[done.index('id="changes"'):done.index("</section>", done.index('id="changes"'))]
    assert "restart widget/w1" in executed and "+ state: up" in executed
    missing = harness.http.get(f"{harness.url}/runs/nope", headers={**READ, **HTML})
    assert missing.status_code == 404 and "No run" in missing.text


def test_outside_data_is_text_and_links_are_only_http(harness: Harness) -> None:
    planted = "<script>document.title='pwned'</script>{{ 7*7 }}"
    run_id = _awaiting(harness, {"team": planted}, generatorURL="javascript:alert(1)")
    text = harness.http.get(f"{harness.url}/runs/{run_id}", headers={**READ, **HTML}).text
    assert "<script>document.title" not in text
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;{{ 7*7 }}" in text
    assert "javascript:" not in text


def test_events_stream_follows_an_active_run(harness: Harness) -> None:
    run_id = _awaiting(harness)
    events: list[tuple[str, str]] = []
    with httpx.stream("GET", f"{harness.url}/runs/{run_id}/events", headers=READ, timeout=30) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        event, data = "", []
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif not line and event:
                events.append((event, "\n".join(data)))
                if event == "update" and len(events) == 1:  # the page as it is now; then decide
                    assert harness.click(ALICE, run_id, "restart").status_code == 200
                if event == "end":
                    break
                event, data = "", []
    assert events[0][0] == "update" and "awaiting_approval" in events[0][1]
    assert events[-1] == ("end", "succeeded")
    assert "U0ALICE" in events[-2][1] and 'id="run-status">succeeded' in events[-2][1]
    metrics = harness.http.get(f"{harness.url}/metrics").text
    wait_for(lambda: "runbook_page_streams_open 0" in harness.http.get(f"{harness.url}/metrics").text,
             what=f"the stream to be counted closed\n{metrics}")
    missing = harness.http.get(f"{harness.url}/runs/nope/events", headers=READ)
    assert missing.status_code == 404


def test_static_files(harness: Harness) -> None:
    script = harness.http.get(f"{harness.url}/static/live.js")
    assert script.status_code == 200 and "EventSource" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert harness.http.get(f"{harness.url}/static/../app.py").status_code == 404
    assert harness.http.get(f"{harness.url}/static/secrets.txt").status_code == 404


def test_runbook_links_on_the_page(make_harness: Callable[..., Harness]) -> None:
    linked = WIDGET.replace("steps:", 'links:\n  - {title: Widget dashboard, url: "https://grafana.example/d/w?var-w='
                                      '{{ params.target | urlencode }}"}\n  - {title: Sneaky, url: "javascript:x"}\n'
                                      "steps:", 1)
    harness = make_harness(runbooks=(linked, ECHO))
    run_id = _awaiting(harness)
    text = harness.http.get(f"{harness.url}/runs/{run_id}", headers={**READ, **HTML}).text
    assert '<a href="https://grafana.example/d/w?var-w=w1" rel="noopener noreferrer">Widget dashboard</a>' in text
    assert "Sneaky" not in text and "javascript:" not in text
