"""PostgreSQL: the run store for several replicas sharing one database (psycopg 3 with a pool)."""

from __future__ import annotations

from integrations.postgres.store import PostgresStore, redacted

__all__ = ["PostgresStore", "redacted"]
