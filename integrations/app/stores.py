"""Opens the run store the settings name: PostgreSQL when `database_url` is set, else SQLite at `db`."""

from __future__ import annotations

from engine.errors import SettingsError
from engine.redaction import use_installation_key
from engine.run_store import RunStore
from engine.settings import Settings
from engine.sqlstore.base import default_instance
from engine.sqlstore.sqlite import SqliteStore


def open_store(settings: Settings, *, instance: str | None = None, migrate: bool | None = None) -> RunStore:
    """The configured store, its schema checked against this engine.

    `migrate`: None applies SQLite migrations in place (the embedded default needs no set-up step) but only
    checks PostgreSQL's (shared by replicas: `runbook db migrate` upgrades it); True and False force either."""
    if instance is None and settings.replica_name:
        instance = default_instance(settings.replica_name)
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        if not url.startswith(("postgresql://", "postgres://")):
            raise SettingsError("database_url must be a postgresql:// URL (RUNBOOK_DATABASE_URL or the config file)")
        from integrations.postgres import PostgresStore

        return PostgresStore(url, instance, migrate=bool(migrate), prepare=settings.database_prepared_statements)
    return SqliteStore(settings.db, instance, migrate=migrate is not False, max_bytes=settings.db_max_bytes)


def adopt_redaction_key(settings: Settings, store: RunStore) -> None:
    """Key this process's redaction markers for the installation: the `redaction_key` setting, else the key
    the store generated once. Every replica and restart then marks a secret alike (an operator can tell two
    markers of one secret), another installation differently, and nobody can test guesses against them."""
    configured = settings.redaction_key
    use_installation_key(configured.get_secret_value().encode() if configured else store.redaction_key())


def describe(settings: Settings) -> str:
    """Where the store is, without secrets: for messages."""
    if settings.database_url is not None:
        from integrations.postgres import redacted

        return redacted(settings.database_url.get_secret_value())
    return settings.db
