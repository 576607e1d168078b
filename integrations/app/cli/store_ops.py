"""`runbook db migrate|check` and `runbook prune`: the run store's schema and retention."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from engine.errors import RunbookError, SchemaError
from engine.run_store import SchemaState
from engine.settings import Settings
from engine.version import ENGINE_VERSION
from integrations.app.cli.console import escape, terminal
from integrations.app.stores import describe, open_store

out = terminal()
err = terminal(stderr=True)
db = typer.Typer(help="The run store's schema: apply migrations, or check that this engine may start on it.",
                 no_args_is_help=True)
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="Settings file (YAML).")]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _fail(problem: object, code: int = 2) -> NoReturn:
    err.print(f"[red]error:[/] {escape(str(problem))}")
    raise typer.Exit(code)


def _settings(config: Path | None) -> Settings:
    try:
        return Settings.load(config)
    except RunbookError as exc:
        _fail(exc)


@db.command()
def migrate(config: ConfigOpt = None) -> None:
    """Create the schema or bring it up to this engine's version (safe to run from several replicas)."""
    settings = _settings(config)
    state = _schema_state(settings, migrate=True)
    out.print(f"{describe(settings)}: schema version {state.version}, serves engines {state.min_engine} and newer",
              markup=False)


@db.command()
def check(config: ConfigOpt = None) -> None:
    """Exit 0 when this engine may start on the store as it is; 1, saying why, when it needs a migration
    or only serves newer engines (what `runbook serve` checks at start)."""
    settings = _settings(config)
    if settings.database_url is None and not Path(settings.db).exists():
        _fail(f"no run store at {settings.db} (setting db / RUNBOOK_DB): run `runbook db migrate`", 1)
    state = _schema_state(settings, migrate=False)
    out.print(f"{describe(settings)}: schema version {state.version} serves engines {state.min_engine} and newer;"
              f" this engine is {ENGINE_VERSION}: ok", markup=False)


def parse_age(text: str) -> float:
    """'90d' -> seconds; units s, m, h, d, w."""
    match = re.fullmatch(r"\s*(\d{1,6})\s*([smhdw])\s*", text)
    if not match:
        raise typer.BadParameter(f"{text!r} is not an age like 90d, 12h or 2w")
    return int(match.group(1)) * _UNITS[match.group(2)]


def prune(
    older_than: Annotated[str, typer.Option("--older-than", help="Age like 90d, 12h, 2w.")],
    audit: Annotated[bool, typer.Option("--audit", help="Also delete audit entries older than that.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Delete finished runs (with their steps, decisions, alerts and chat outbox) older than --older-than.
    The audit log is kept unless --audit is given; the prune itself is audited."""
    seconds = parse_age(older_than)
    settings = _settings(config)
    if settings.database_url is None and not Path(settings.db).exists():
        _fail(f"no run store at {settings.db} (setting db / RUNBOOK_DB)")
    try:
        store = open_store(settings)
        counts = store.prune(time.time() - seconds, audit=audit)
        store.close()
    except RunbookError as exc:
        _fail(exc)
    summary = ", ".join(f"{n} {table}" for table, n in counts.items() if n)
    out.print(f"pruned {summary or 'nothing'} (finished before {older_than} ago"
              f"{'; audit entries too' if audit else '; audit log kept'})", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(db, name="db")
    app.command()(prune)


def _schema_state(settings: Settings, *, migrate: bool) -> SchemaState:
    """The store's schema state (after migrating, if asked); exit 1 for a schema this engine cannot use,
    2 for anything else wrong with the store."""
    try:
        store = open_store(settings, migrate=migrate)
        state = store.schema()
        store.close()
    except SchemaError as exc:
        _fail(exc, 1)
    except RunbookError as exc:
        _fail(exc)
    return state
