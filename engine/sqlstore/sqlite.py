"""The SQLite backend: the embedded default, one database file that processes on one machine share.

One writer connection behind a lock (SQLite allows one writer at a time anyway; `BEGIN IMMEDIATE`
takes the file's write lock, so claims are atomic across processes too) and a read connection per
thread, so readers never queue behind the writer's fsync. Commits are fully synced unless a write
says its rows are safe to lose.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.errors import SchemaError, StoreError
from engine.run_store import SchemaState
from engine.sqlstore import sqlite_schema
from engine.sqlstore.base import Db, SqlStore, default_instance
from engine.sqlstore.versions import check, serves
from engine.version import ENGINE_VERSION


class SqliteStore(SqlStore):
    backend = "sqlite"

    def __init__(self, path: str | Path, instance: str | None = None, *, migrate: bool = True,
                 engine_version: str = ENGINE_VERSION, max_bytes: int | None = None) -> None:
        super().__init__(instance or default_instance())
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._wake = threading.Condition()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            if max_bytes is not None:  # writes beyond it fail with "database or disk is full", as on a full volume
                page = int(self._db.execute("PRAGMA page_size").fetchone()[0])
                self._db.execute(f"PRAGMA max_page_count = {max(1, int(max_bytes) // page)}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the run store {self.path}: {exc}") from exc
        self._open(migrate, engine_version)

    def _open(self, migrate: bool, engine_version: str) -> None:
        with self._write() as db:
            assert isinstance(db, sqlite3.Connection)
            state = sqlite_schema.read_state(db)
            if state is not None:
                (serves if migrate else check)(state, self.path, engine_version)
            if migrate:
                state = sqlite_schema.migrate(db)
        if state is None:
            raise SchemaError(f"the database {self.path} has no runbook schema: run `runbook db migrate`")

    def schema(self) -> SchemaState:
        with self._read() as db:
            assert isinstance(db, sqlite3.Connection)
            state = sqlite_schema.read_state(db)
        if state is None:
            raise SchemaError(f"the database {self.path} has no runbook schema: run `runbook db migrate`")
        return state

    def close(self) -> None:
        with self._lock:
            for reader in self._readers:
                reader.close()
            self._db.close()

    # connections ----------------------------------------------------------------------------------

    @contextmanager
    def _read(self, snapshot: bool = False) -> Iterator[Db]:
        """Each thread reads on its own connection, always in a snapshot (WAL makes that free)."""
        if self.path == ":memory:":  # one in-memory database per connection: share the writer's
            with self._lock:
                yield self._db
            return
        reader: sqlite3.Connection | None = getattr(self._local, "reader", None)
        try:
            if reader is None:
                reader = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
                reader.execute("PRAGMA query_only=ON")
                self._local.reader = reader
                with self._lock:
                    self._readers.append(reader)
            reader.execute("BEGIN")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the run store {self.path}: {exc}") from exc
        try:
            yield reader
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the run store {self.path}: {exc}") from exc
        finally:
            reader.execute("COMMIT")

    @contextmanager
    def _write(self, durable: bool = True) -> Iterator[Db]:
        with self._lock:
            try:
                if not durable:
                    self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write to the run store {self.path}: {exc}") from exc
            try:
                try:
                    yield self._db
                except BaseException:
                    if self._db.in_transaction:  # SQLite already rolled back after e.g. SQLITE_FULL: keep that error
                        self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise StoreError(f"cannot write to the run store {self.path}: {exc}") from exc
            finally:
                if not durable:
                    self._db.execute("PRAGMA synchronous=FULL")

    def _delete_audit(self, db: Db, before: float) -> int:
        db.execute("DROP TRIGGER audit_append_only_delete")  # lifted only inside this transaction
        deleted = int(db.execute("DELETE FROM audit WHERE at < ?", (before,)).rowcount)
        db.execute(sqlite_schema.AUDIT_GUARDS[1])
        return deleted

    # wake-ups (one process: a condition variable) ---------------------------------------------------

    def wait_for_work(self, timeout: float) -> None:
        with self._wake:
            self._wake.wait(timeout)

    def hint_work(self) -> None:
        with self._wake:
            self._wake.notify_all()

