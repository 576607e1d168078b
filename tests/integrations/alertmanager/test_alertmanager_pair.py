"""The Alertmanager HA pair the replica tests rely on is a real cluster: its members see each other, share
one notification log (the second in line skips what the first delivered), both notify at once with
`peer_timeout` 0, and when the first's target is down the second's notification gets through."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from integrations.testing.alertmanager import Alertmanager
from integrations.testing.alertmanager_pair import AlertmanagerPair
from integrations.testing.replicas import free_port
from integrations.testing.server import wait_for

LABELS = {"alertname": "NodeLost", "node": "worker-c", "severity": "critical"}


class Receiver:
    """A webhook target on loopback that keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, Any], str | None]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                received.append((body, self.headers.get("Authorization")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/alertmanager"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made = [Receiver(), Receiver()]
    yield made
    for receiver in made:
        receiver.close()


def metric(member: Alertmanager, name: str) -> float:
    """One of a member's own metrics, summed over its series."""
    text = httpx.get(f"{member.url}/metrics", timeout=5).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith((f"{name} ", f"{name}{{")))


def test_members_see_each_other_and_both_notify_at_once(tmp_path: Path, receivers: list[Receiver],
                                                         alertmanager_binary: str) -> None:
    with AlertmanagerPair(tmp_path, [r.url for r in receivers], "tok", binary=alertmanager_binary) as pair:
        for member in pair.members:
            status = member.cluster_status()
            assert status["status"] == "ready" and len(status["peers"]) == 2
        assert [metric(m, "alertmanager_peer_position") for m in pair.members] == [0, 1]  # first, second in line
        pair.fire(LABELS)
        wait_for(lambda: all(r.received for r in receivers), 30, "both members to notify")
    sent = [r.received[0] for r in receivers]
    assert [auth for _, auth in sent] == ["Bearer tok", "Bearer tok"]
    alerts = [body["alerts"][0] for body, _ in sent]
    assert alerts[0]["labels"] == alerts[1]["labels"] == LABELS
    assert alerts[0]["startsAt"] == alerts[1]["startsAt"]  # as Prometheus sends it: the same alert to both
    assert alerts[0]["fingerprint"] == alerts[1]["fingerprint"]


def test_the_second_member_skips_what_the_first_delivered(tmp_path: Path, receivers: list[Receiver],
                                                          alertmanager_binary: str) -> None:
    with AlertmanagerPair(tmp_path, [r.url for r in receivers], "tok", peer_timeout="2s",
                          binary=alertmanager_binary) as pair:
        pair.fire(LABELS)
        # each member has flushed the group twice: the first flush (and its send, if any) is over
        wait_for(lambda: all(metric(m, "alertmanager_nflog_queries_total") >= 2 for m in pair.members), 60,
                 "two flushes on each member", interval=0.2)
    assert [len(r.received) for r in receivers] == [1, 0]  # the first delivered; the pair shares one log


def test_when_one_target_is_down_the_other_members_notification_gets_through(
        tmp_path: Path, receivers: list[Receiver], alertmanager_binary: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hooks/alertmanager"  # nothing listens there
    with AlertmanagerPair(tmp_path, [dead, receivers[1].url], "tok", peer_timeout="1s",
                          binary=alertmanager_binary) as pair:
        pair.fire(LABELS)
        wait_for(lambda: receivers[1].received, 30, "the second member's notification")
        assert pair.members[0].notifications()["requests_failed"] >= 1  # the first tried its dead target
    assert receivers[1].received[0][0]["alerts"][0]["labels"] == LABELS
