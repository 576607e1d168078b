"""The one-statement attach of a webhook's alerts (integrations/postgres/alerts.py): the commit it makes
unsynced is its own, and no setting outlives it on the connection, which a transaction-mode pooler hands
to anyone next."""

from __future__ import annotations

import psycopg

from integrations.postgres import PostgresStore
from integrations.postgres import alerts as attached
from integrations.testing.postgres import PostgresCluster


def test_the_unsynced_commit_leaves_the_connection_as_it_found_it(postgres: PostgresCluster) -> None:
    url = postgres.new_database()
    store = PostgresStore(url, "pod-a/1/x", migrate=True, pool_size=1)
    try:
        run_id, _ = store.create_run("rb", "{}", {}, "am", dedup_key="k", cooldown=60)
    finally:
        store.close()
    with psycopg.connect(url, autocommit=True) as conn:
        rows = [("k", "fp", "firing", {"n": 1}), ("k-none", "fp2", "firing", {"n": 2})]
        found = conn.execute(attached.ATTACH_BY_KEYS, {**attached.columns(rows), "active": ["pending"],
                                                        "since": 0.0}).fetchall()
        assert found == [("k", run_id)]
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
        conn.execute(attached.ATTACH, attached.columns([(run_id, "fp", "resolved", {"n": 3})]))
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        kept = conn.execute("SELECT fingerprint, status, payload FROM alerts WHERE run_id = %s ORDER BY id",
                            (run_id,)).fetchall()
    assert kept == [("fp", "firing", '{"n":1}'), ("fp", "resolved", '{"n":3}')]


def test_prepared_statements_are_kept_only_when_asked(postgres: PostgresCluster) -> None:
    """`database_prepared_statements`: a direct connection lets PostgreSQL keep the plans of repeated statements;
    by default none is prepared, so a transaction-mode pooler can hand the connection to anyone next."""
    url = postgres.new_database()
    PostgresStore(url, "pod-a/1/x", migrate=True).close()
    for prepare, expect_prepared in ((False, False), (True, True)):
        store = PostgresStore(url, "pod-a/1/x", pool_size=1, prepare=prepare)
        try:
            run_id, _ = store.create_run("rb", "{}", {}, "am", dedup_key=f"k-{prepare}", cooldown=60)
            for n in range(8):
                found = store.attach_by_dedup_keys([(f"k-{prepare}", f"fp{n}", "firing", {"n": n})], cooldown=60)
                assert found == {f"k-{prepare}": run_id}
            with store._pool.connection() as conn:  # the pool's one connection: the session that ran them
                prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
        finally:
            store.close()
        assert (prepared is not None and prepared[0] > 0) is expect_prepared
        assert len(store_alerts(url, run_id)) == 8


def store_alerts(url: str, run_id: str) -> list[tuple[str]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT fingerprint FROM alerts WHERE run_id = %s", (run_id,)).fetchall()
