"""`pg_ctl restart -m immediate` (a crash of the database) during an alert burst: every alert the server
acknowledged ends up in a run, refused ones get 503 + a reason (and are re-sent, as Alertmanager does),
and the runs under way carry on once the database is back. A Slack post that Slack took while the
database was down is recorded once it is back, not posted a second time."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from slack_sdk import WebClient

from engine.actions import ActionRegistry
from engine.builtins import register_builtins
from integrations.postgres import PostgresStore
from integrations.slack.outbox import Message, Outbox
from integrations.slack.sender import OutboxSender
from integrations.testing.postgres import PostgresCluster
from integrations.testing.server import (
    WEBHOOK_TOKEN,
    Harness,
    alert,
    alert_payload,
    make_engine,
    server_settings,
    wait_for,
)
from integrations.testing.slack_fake import FakeSlack
from tests.conftest import require_postgres

RUNBOOK = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: burst, title: Burst, severity: warning}
params:
  node: {type: string, required: true}
triggers:
  alerts:
    - match: {alertname: Burst}
      params: {node: node}
steps:
  - id: first
    title: First look
    action: sleep
    with: {seconds: 0.2}
  - id: second
    title: Second look
    action: noop
"""


@pytest.fixture
def database() -> Iterator[PostgresCluster]:
    require_postgres()
    with PostgresCluster() as cluster:  # its own cluster: this test crashes it
        yield cluster


def test_acknowledged_alerts_survive_a_database_crash_and_runs_continue(database: PostgresCluster) -> None:
    url = database.new_database()
    PostgresStore(url, "setup/0/x", migrate=True).close()
    settings = server_settings("unused.db", database_url=url, run_lease=3, workers=4)
    harness = Harness(make_engine(settings, register_builtins(ActionRegistry()), (RUNBOOK,)), None).start()
    acknowledged: list[str] = []
    refusals: list[str] = []
    stop = threading.Event()

    def burst() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"}, timeout=10) as client:
            i = 0
            while not stop.is_set():
                node = f"n{i}"
                while True:  # re-sent until acknowledged, as Alertmanager does
                    try:
                        answer = client.post(f"{harness.url}/hooks/alertmanager",
                                             json=alert_payload([alert("Burst", {"node": node})]))
                    except httpx.TransportError as exc:
                        refusals.append(f"transport: {exc}")
                        continue
                    if answer.status_code == 200:
                        acknowledged.append(node)
                        break
                    assert answer.status_code == 503 and "run store is unavailable" in answer.json()["error"]
                    refusals.append(answer.json()["error"])
                    stop.wait(0.05)
                i += 1

    sender = threading.Thread(target=burst)
    try:
        sender.start()
        wait_for(lambda: len(acknowledged) >= 20, what="the burst to get going")
        database.restart("immediate")
        count = len(acknowledged)
        wait_for(lambda: len(acknowledged) >= count + 20, timeout=60, what="alerts acknowledged again")
        stop.set()
        sender.join(30)
        store = harness.engine.store
        runs = store.list_runs(limit=10_000)
        assert set(acknowledged) <= {r.params["node"] for r in runs}, "an acknowledged alert has no run"
        assert len(runs) == len({r.params["node"] for r in runs})  # and none has two
        wait_for(lambda: all(r.status == "succeeded" for r in store.list_runs(limit=10_000)), timeout=90,
                 what="every run to finish after the crash")
    finally:
        stop.set()
        sender.join(30)
        harness.close()
        harness.engine.close()


def test_a_slack_post_taken_while_the_database_crashes_is_recorded_not_posted_again(
        database: PostgresCluster) -> None:
    store = PostgresStore(database.new_database(), "sender/0/x", migrate=True)
    outbox = Outbox(store)
    with FakeSlack() as fake:
        client = WebClient(token=fake.token, base_url=fake.url, timeout=30, retry_handlers=[])
        sender = OutboxSender(outbox, client, poll=0.05, backoff=0.05)
        fake.fail("slow", channel="C1")  # the thread's parent is held at Slack ...
        outbox.put("r1", [Message("chat.postMessage", {"channel": "C1", "text": "parent"}, remember="parent"),
                          Message("chat.postMessage", {"channel": "C1", "text": "reply"}, thread="parent")])
        sender.start()
        try:
            assert fake.holding.wait(30), "the parent never reached Slack"
            database.halt("immediate")  # ... while the database crashes
            fake.release()  # Slack takes it while the database is down, then the database comes back:
            wait_for(lambda: fake.parents("C1"), timeout=30, what="Slack to take the parent")
            database.start()  # the sender must record the parent, not post it again once its claim lapses
            wait_for(lambda: outbox.pending() == 0, timeout=60, what="the thread delivered")
        finally:
            sender.stop()
            store.close()
        assert [m.text for m in fake.parents("C1")] == ["parent"]
        assert [m.text for m in fake.thread(fake.parents("C1")[0].ts)] == ["reply"]
