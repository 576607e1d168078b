"""http.check against a local HTTP server: status, body text, same-host redirects only, the allowlist."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from engine.actions import ActionContext, ActionRegistry
from engine.errors import PermanentError, TransientError
from integrations.http import register


class Site(BaseHTTPRequestHandler):
    other_port = 0

    def do_GET(self) -> None:
        self._answer(True)

    def do_HEAD(self) -> None:
        self._answer(False)

    def _answer(self, with_body: bool) -> None:
        routes = {"/health": (200, "status: ok"), "/broken": (503, "upstream down"),
                  "/moved": (302, "", "/health"), "/away": (302, "", f"http://localhost:{self.other_port}/health")}
        if self.path == "/slow":
            time.sleep(2)
        status, body, *location = routes.get(self.path, (404, "not found"))
        self.send_response(status)
        if location:
            self.send_header("Location", location[0])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    Site.other_port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def check(allow: list[str], **args: Any) -> dict[str, Any]:
    registry = ActionRegistry()
    register(registry, {"allow_hosts": allow})
    action = registry.get("http.check")
    ctx = ActionContext(run_id="t", step="s", dry_run=False, deadline=time.monotonic() + 30)
    return action.func(ctx, action.args.model_validate(args))


def test_ok_and_body_text(site: str) -> None:
    out = check(["127.0.0.1"], url=f"{site}/health", contains="status: ok")
    assert out["ok"] is True and out["status"] == 200 and out["elapsed_ms"] >= 0
    out = check(["127.0.0.1"], url=f"{site}/health", contains="degraded")
    assert out["ok"] is False and "does not contain" in out["reason"]


def test_unexpected_status_and_several_expected(site: str) -> None:
    out = check(["127.0.0.1"], url=f"{site}/broken")
    assert (out["ok"], out["status"], out["reason"]) == (False, 503, "status 503, expected 200")
    assert check(["127.0.0.1"], url=f"{site}/broken", expect_status=[200, 503])["ok"] is True


def test_head(site: str) -> None:
    assert check(["127.0.0.1"], url=f"{site}/health", method="HEAD")["status"] == 200


def test_redirects_are_followed_only_on_the_same_host(site: str) -> None:
    out = check(["127.0.0.1"], url=f"{site}/moved")
    assert out["status"] == 200 and out["url"].endswith("/health")
    out = check(["127.0.0.1", "localhost"], url=f"{site}/away")
    assert out["status"] == 302 and out["ok"] is False


def test_hosts_outside_the_allowlist_are_refused(site: str) -> None:
    with pytest.raises(PermanentError, match="not in the settings"):
        check(["*.svc.cluster.local"], url=f"{site}/health")
    with pytest.raises(PermanentError, match="not in the settings"):
        check([], url=f"{site}/health")


def test_timeout_is_transient(site: str) -> None:
    with pytest.raises(TransientError, match="did not answer within 0.5s"):
        check(["127.0.0.1"], url=f"{site}/slow", timeout="500ms")
