"""prometheus.query against a real Prometheus scraping an exporter the test serves; auth against a real
Prometheus with basic auth, and the bearer header against a recording server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from engine.actions import ActionContext, ActionRegistry
from engine.errors import ForbiddenError, PermanentError, TransientError
from integrations.prometheus import register
from integrations.testing.alertmanager import free_port
from integrations.testing.prometheus import Exporter, Prometheus
from tests.integrations.prometheus.conftest import require_prometheus


def ctx() -> ActionContext:
    return ActionContext(run_id="t", step="s", dry_run=False, deadline=time.monotonic() + 30)


def query(sources: list[dict[str, Any]], **args: Any) -> dict[str, Any]:
    registry = ActionRegistry()
    register(registry, {"sources": sources})
    action = registry.get("prometheus.query")
    return action.func(ctx(), action.args.model_validate(args))


def test_instant_query_gives_samples_and_the_first_value(prometheus: Prometheus) -> None:
    sources = [{"name": "main", "url": prometheus.url}]
    out = query(sources, query="sum(queue_depth)")
    assert out["value"] == 10.0 and out["result"] == [{"labels": {}, "value": 10.0}]
    out = query(sources, query="queue_depth")
    assert {r["labels"]["queue"]: r["value"] for r in out["result"]} == {"billing": 7.0, "mail": 3.0}
    assert out["truncated"] is False


def test_an_empty_answer_has_no_value(prometheus: Prometheus) -> None:
    out = query([{"name": "main", "url": prometheus.url}], query='queue_depth{queue="none"}')
    assert out == {"result": [], "value": None, "truncated": False, "source": "main"}


def test_range_query_returns_series_of_values(prometheus: Prometheus) -> None:
    now = time.time()
    out = query([{"name": "main", "url": prometheus.url}], query='queue_depth{queue="billing"}',
                start=f"{now - 5:.3f}", end=f"{now:.3f}", step="1s")
    (series,) = out["result"]
    assert series["labels"]["queue"] == "billing" and series["values"] and all(v == 7.0 for _, v in series["values"])
    assert out["value"] == 7.0


def test_named_sources_and_the_default(prometheus: Prometheus) -> None:
    sources = [{"name": "down", "url": f"http://127.0.0.1:{free_port()}"}, {"name": "main", "url": prometheus.url}]
    assert query(sources, query="sum(queue_depth)", source="main")["value"] == 10.0
    with pytest.raises(TransientError, match="cannot reach Prometheus down"):
        query(sources, query="sum(queue_depth)")
    with pytest.raises(PermanentError, match="no Prometheus source named 'other'"):
        query(sources, query="1", source="other")


def test_bad_promql_is_a_clear_error(prometheus: Prometheus) -> None:
    with pytest.raises(PermanentError, match="rejected the query"):
        query([{"name": "main", "url": prometheus.url}], query="sum(queue_depth")


def test_not_configured_fails_clearly() -> None:
    with pytest.raises(PermanentError, match="no Prometheus is configured"):
        query([], query="1")


@pytest.fixture
def guarded(tmp_path: Path, exporter: Exporter) -> Iterator[Prometheus]:
    hashed = bcrypt.hashpw(b"s3cret-pw", bcrypt.gensalt(4)).decode()
    server = Prometheus(tmp_path / "guarded", [exporter.address], binary=require_prometheus(),
                        basic_auth=("runbook", hashed)).start()
    try:
        server.scraped(auth=("runbook", "s3cret-pw"))
        yield server
    finally:
        server.stop()


def test_basic_auth_from_a_secret_file(guarded: Prometheus, tmp_path: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("runbook:s3cret-pw\n")
    bad.write_text("runbook:wrong")
    out = query([{"name": "main", "url": guarded.url, "basic_auth_file": str(good)}], query="sum(queue_depth)")
    assert out["value"] == 10.0
    with pytest.raises(ForbiddenError, match="refused the credentials"):
        query([{"name": "main", "url": guarded.url, "basic_auth_file": str(bad)}], query="1")


def test_bearer_token_from_a_secret_file_is_sent(tmp_path: Path) -> None:
    seen: list[str | None] = []

    class Api(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            body = json.dumps({"status": "success", "data": {"resultType": "scalar", "result": [1, "42"]}}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = tmp_path / "token"
    token.write_text("tok-123\n")
    try:
        out = query([{"name": "p", "url": f"http://127.0.0.1:{server.server_address[1]}",
                      "bearer_token_file": str(token)}], query="scalar(1)")
    finally:
        server.shutdown()
        server.server_close()
    assert out["value"] == 42.0 and seen == ["Bearer tok-123"]
