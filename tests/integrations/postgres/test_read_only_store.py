"""A PostgreSQL store that turns read-only (as after a failover to a standby): requests that need a commit
answer 503 + the database's reason + Retry-After, /readyz says the store cannot commit, a bad credential
is still a plain 401, and all is well again once the database accepts writes."""

from __future__ import annotations

import psycopg

from engine.actions import ActionRegistry
from engine.builtins import register_builtins
from integrations.postgres import PostgresStore
from integrations.testing.postgres import PostgresCluster
from integrations.testing.server import Harness, alert, make_engine, server_settings, wait_for

RUNBOOK = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: look, title: Look, severity: warning}
params:
  node: {type: string, required: true}
triggers:
  alerts:
    - match: {alertname: NodeSad}
      params: {node: node}
steps:
  - id: first
    title: First look
    action: noop
"""


def _read_only(url: str, on: bool) -> None:
    """Switch the database's default, then end its sessions so every connection picks it up."""
    with psycopg.connect(url, autocommit=True) as conn:
        name = conn.info.dbname
        conn.execute("SET default_transaction_read_only = off")  # this session itself may start read-only
        verb = "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
        conn.execute(f'ALTER DATABASE "{name}" {verb}')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                     " AND pid <> pg_backend_pid()")


def test_a_read_only_database_makes_the_server_say_so(postgres: PostgresCluster) -> None:
    url = postgres.new_database()
    PostgresStore(url, "setup/0/x", migrate=True).close()
    settings = server_settings("unused.db", database_url=url)
    harness = Harness(make_engine(settings, register_builtins(ActionRegistry()), (RUNBOOK,)), None).start()
    try:
        assert harness.post_alerts([alert("NodeSad", {"node": "n0"})]).status_code == 200
        assert harness.http.get(f"{harness.url}/readyz").status_code == 200
        _read_only(url, True)

        def refused_for_read_only(node: list[int] = [0]) -> bool:  # noqa: B006 (a counter across probes)
            node[0] += 1
            answer = harness.post_alerts([alert("NodeSad", {"node": f"n{node[0]}"})])
            assert answer.status_code == 503, answer.text  # never a 200 that was not committed, nor a 500
            assert answer.headers["Retry-After"]
            return "read-only transaction" in answer.json()["error"]

        wait_for(refused_for_read_only, timeout=20, what="a 503 naming the read-only database")
        ready = harness.http.get(f"{harness.url}/readyz")
        assert ready.status_code == 503 and any("cannot commit" in p or "could not commit" in p
                                                for p in ready.json()["problems"]), ready.text
        bad = harness.post_alerts([alert("NodeSad", {"node": "n1"})], token="wrong")
        assert bad.status_code == 401 and "invalid bearer token" in bad.json()["error"]

        _read_only(url, False)
        wait_for(lambda: harness.post_alerts([alert("NodeSad", {"node": "again"})]).status_code == 200,
                 timeout=20, what="alerts accepted again")
        wait_for(lambda: harness.http.get(f"{harness.url}/readyz").status_code == 200, timeout=30,
                 what="ready again")
    finally:
        harness.close()
