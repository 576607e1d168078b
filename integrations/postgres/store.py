"""The PostgreSQL backend: several `runbook serve` replicas on one database.

Every operation is one short transaction on a pooled connection (nothing depends on session state,
so a transaction-mode pooler in between is fine). Races between replicas are decided by the database:
row locks (`FOR UPDATE`, `SKIP LOCKED` for claims), unique constraints (dedup keys, one decision per
step) and compare-and-set updates fenced by the run's lease epoch. `LISTEN/NOTIFY` only wakes pollers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from engine.errors import SchemaError, StoreError
from engine.run_store import SchemaState
from engine.sqlstore.base import ACTIVE, Db, SqlStore, default_instance
from engine.sqlstore.versions import check, serves
from engine.version import ENGINE_VERSION
from integrations.postgres import alerts as attached
from integrations.postgres import schema

log = logging.getLogger("runbook.postgres")
CHANNEL = "runbook_work"
_UNSYNCED = "BEGIN; SET LOCAL synchronous_commit = off"  # rows safe to lose in a crash: no WAL flush wait


class _Statements:
    """A connection that takes the `?` placeholders the shared statements are written with."""

    _cache: dict[str, str] = {}

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Any = (), /) -> Any:
        query = self._cache.get(sql)
        if query is None:
            query = self._cache[sql] = sql.replace("?", "%s")
        return self.conn.execute(query, args)


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


class PostgresStore(SqlStore):
    backend = "postgresql"
    remote = True
    FOR_UPDATE = " FOR UPDATE"
    SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, instance: str | None = None, *, migrate: bool = False, pool_size: int = 8,
                 engine_version: str = ENGINE_VERSION, connect_timeout: float = 10.0, prepare: bool = False) -> None:
        super().__init__(instance or default_instance())
        self.where = redacted(url)
        self._url = url
        self._wake = threading.Condition()
        self._listener: threading.Thread | None = None
        self._closed = threading.Event()
        # server-side prepared statements (psycopg prepares a statement on its 5th use) only when asked: a
        # transaction-mode pooler before PgBouncer 1.21 hands the next transaction to a server without them
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size,
                                    kwargs={"autocommit": True, "prepare_threshold": 5 if prepare else None},
                                    timeout=connect_timeout, open=False, name="runbook")
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreError(f"cannot connect to PostgreSQL at {self.where}: {exc}") from exc
        try:
            self._open(migrate, engine_version)
        except BaseException:
            self._pool.close()
            raise

    def _open(self, migrate: bool, engine_version: str) -> None:
        with self._conn() as conn, conn.transaction():
            state = schema.read_state(conn)
            if state is not None:
                (serves if migrate else check)(state, self.where, engine_version)
            if migrate:
                state = schema.migrate(conn)
        if state is None:
            raise SchemaError(f"the database {self.where} has no runbook schema: run `runbook db migrate`")

    def schema(self) -> SchemaState:
        with self._conn() as conn:
            state = schema.read_state(conn)
        if state is None:
            raise SchemaError(f"the database {self.where} has no runbook schema: run `runbook db migrate`")
        return state

    def close(self) -> None:
        self._closed.set()
        self._pool.close()
        if self._listener is not None:
            self._listener.join(3)

    # connections ----------------------------------------------------------------------------------

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.Error, PoolTimeout) as exc:
            if isinstance(exc, psycopg.errors.RaiseException):
                raise StoreError(f"PostgreSQL at {self.where} refused: {exc.diag.message_primary}") from exc
            raise StoreError(f"PostgreSQL at {self.where}: {type(exc).__name__}: {exc}") from exc

    # Transactions are begun and ended by hand, each in one round trip (the begin carries its settings):
    # on a busy database the round trips, not the statements, are what a webhook waits for.

    @contextmanager
    def _write(self, durable: bool = True) -> Iterator[Db]:
        with self._conn() as conn, self._transaction(conn, "BEGIN" if durable else _UNSYNCED):
            yield _Statements(conn)

    @contextmanager
    def _read(self, snapshot: bool = False) -> Iterator[Db]:
        with self._conn() as conn:
            if not snapshot:  # one statement is its own consistent snapshot
                yield _Statements(conn)
                return
            with self._transaction(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"):
                yield _Statements(conn)

    @staticmethod
    @contextmanager
    def _transaction(conn: psycopg.Connection[Any], begin: str) -> Iterator[None]:
        conn.execute(begin)
        try:
            yield
        except BaseException:
            if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.UNKNOWN:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # a webhook's alerts: one statement, one round trip each (see alerts.py)

    def attach_by_dedup_keys(self, alerts: list[tuple[str, str, str, dict[str, Any]]],
                             cooldown: float) -> dict[str, str]:
        if not alerts:
            return {}
        args = {**attached.columns(alerts), "active": [status.value for status in ACTIVE],
                "since": time.time() - cooldown}
        with self._conn() as conn:
            rows = conn.execute(attached.ATTACH_BY_KEYS, args).fetchall()
        return {str(key): str(run_id) for key, run_id in rows}

    def attach_alerts(self, alerts: list[tuple[str, str, str, dict[str, Any]]]) -> None:
        if alerts:
            with self._conn() as conn:
                conn.execute(attached.ATTACH, attached.columns(alerts))

    def _delete_audit(self, db: Db, before: float) -> int:
        db.execute("SET LOCAL runbook.prune_audit = 'on'")
        return int(db.execute("DELETE FROM audit WHERE at < ?", (before,)).rowcount)

    # wake-up hints --------------------------------------------------------------------------------

    def hint_work(self) -> None:
        try:
            with self._conn() as conn:
                conn.execute(f"NOTIFY {CHANNEL}")
        except StoreError as exc:  # only a hint: the pollers find the work anyway
            log.debug("could not notify: %s", exc)

    def wait_for_work(self, timeout: float) -> None:
        if self._listener is None and not self._closed.is_set():
            self._listener = threading.Thread(target=self._listen, name="runbook-pg-listen", daemon=True)
            self._listener.start()
        with self._wake:
            self._wake.wait(timeout)

    def _listen(self) -> None:
        """Turn notifications into wake-ups, reconnecting after failures, until the store closes."""
        while not self._closed.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._closed.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            with self._wake:
                                self._wake.notify_all()
            except psycopg.Error as exc:
                log.debug("listener reconnecting: %s", exc)
                self._closed.wait(1.0)
