"""Webhooks on a PostgreSQL store are handled several at once (in threads, so their round trips overlap):
racing payloads that carry the same new alerts still start one run per alert identity, and every alert
of every payload is kept with its run, once."""

from __future__ import annotations

import collections

import httpx

from engine.actions import ActionRegistry
from engine.builtins import register_builtins
from integrations.postgres import PostgresStore
from integrations.testing.postgres import PostgresCluster
from integrations.testing.server import WEBHOOK_TOKEN, Harness, alert, alert_payload, make_engine, server_settings
from tests.engine.test_store import race
from tests.integrations.postgres.test_read_only_store import RUNBOOK  # the same one-step look at a node

SENDERS, PAYLOADS, NODES = 8, 6, 3


def test_racing_webhooks_start_one_run_per_node_and_keep_every_alert(postgres: PostgresCluster) -> None:
    url = postgres.new_database()
    PostgresStore(url, "setup/0/x", migrate=True).close()
    harness = Harness(make_engine(server_settings("unused.db", database_url=url),
                                  register_builtins(ActionRegistry()), (RUNBOOK,)), None).start()
    try:
        def send(sender: int) -> list[dict[str, object]]:
            answers = []
            with httpx.Client(headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"}, timeout=30) as client:
                for p in range(PAYLOADS):  # every payload names every node, one with the same alert twice
                    alerts = [alert("NodeSad", {"node": f"n{i}", "instance": f"{sender}-{p}"}) for i in range(NODES)]
                    response = client.post(f"{harness.url}/hooks/alertmanager",
                                           json=alert_payload([*alerts, alerts[0]]))
                    assert response.status_code == 200, response.text
                    answers.append(response.json())
            return answers

        answers = [a for per_sender in race(SENDERS, send) for a in per_sender]
        started = [s for a in answers for s in a["started"]]
        deduplicated = [d for a in answers for d in a["deduplicated"]]
        assert len(started) == NODES
        assert len(started) + len(deduplicated) == SENDERS * PAYLOADS * (NODES + 1)
        runs = {run.params["node"]: run.id for run in harness.engine.store.list_runs("look")}
        assert sorted(runs) == [f"n{i}" for i in range(NODES)]
        assert {s["run_id"] for s in started} == set(runs.values())
        for node, run_id in runs.items():
            kept = collections.Counter(a["alert"]["labels"]["instance"] for a in harness.engine.store.alerts(run_id))
            twice = 2 if node == "n0" else 1
            assert kept == {f"{s}-{p}": twice for s in range(SENDERS) for p in range(PAYLOADS)}, node
    finally:
        harness.close()
