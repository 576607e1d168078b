"""`runbook db migrate|check`, `runbook prune`, and a replica refusing a schema that no longer serves it,
on both backends."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from engine.records import RunStatus
from engine.settings import Settings
from engine.sqlstore.versions import LATEST
from integrations.app.cli.main import app
from integrations.app.stores import open_store
from integrations.testing.postgres import PostgresCluster

ROOT = Path(__file__).resolve().parents[3]
Cli = Callable[..., tuple[int, str]]


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    base = {"RUNBOOK_RUNBOOK_PATH": str(ROOT / "runbooks"), "RUNBOOK_USER": "alice",
            "RUNBOOK_DB": str(tmp_path / "runs.db")}
    if request.param == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        base["RUNBOOK_DATABASE_URL"] = cluster.new_database()
    return base


@pytest.fixture
def cli(env: dict[str, str]) -> Cli:
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args), env=env)
        return result.exit_code, result.stdout + result.stderr

    return invoke


def settings_of(env: dict[str, str]) -> Settings:
    return Settings.load(environ=env)


def set_min_engine(env: dict[str, str], version: str) -> None:
    """What a newer engine's migration does when it stops serving older ones."""
    if "RUNBOOK_DATABASE_URL" in env:
        with psycopg.connect(env["RUNBOOK_DATABASE_URL"], autocommit=True) as conn:
            conn.execute("UPDATE schema_info SET min_engine = %s", (version,))
    else:
        with sqlite3.connect(env["RUNBOOK_DB"]) as conn:
            conn.execute("UPDATE schema_info SET min_engine = ?", (version,))


def test_check_then_migrate_then_check(cli: Cli, env: dict[str, str]) -> None:
    code, text = cli("db", "check")
    assert code == 1 and "runbook db migrate" in text
    code, text = cli("db", "migrate")
    assert code == 0 and f"schema version {LATEST}" in text and "password" not in text
    code, text = cli("db", "migrate")  # idempotent
    assert code == 0
    code, text = cli("db", "check")
    assert code == 0 and "this engine is 0.2.0: ok" in text


def test_an_older_replica_refuses_to_start_and_says_why(cli: Cli, env: dict[str, str]) -> None:
    assert cli("db", "migrate")[0] == 0
    set_min_engine(env, "0.9.0")
    code, text = cli("db", "check")
    assert code == 1 and "only serves engines 0.9.0 or newer: upgrade this replica" in text
    serve = subprocess.run([sys.executable, "-m", "integrations.app.cli", "serve", "--port", "0", "--scenario",
                            str(ROOT / "runbooks" / "scenarios" / "kubesim-basic.yaml")],
                           env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                           timeout=60)
    assert serve.returncode != 0 and "upgrade this replica" in serve.stderr


def test_prune_keeps_the_audit_log_unless_asked(cli: Cli, env: dict[str, str]) -> None:
    assert cli("db", "migrate")[0] == 0
    store = open_store(settings_of(env), instance="cli-test")
    run_id, _ = store.create_run("rb", "{}", {}, "alice")
    assert store.claim(run_id, RunStatus.PENDING, RunStatus.SUCCEEDED)
    store.close()
    time.sleep(1.1)
    code, text = cli("prune", "--older-than", "1s")
    assert code == 0 and "1 runs" in text and "audit log kept" in text
    code, text = cli("audit")
    assert "run.requested" in text and "store.pruned" in text
    code, text = cli("prune", "--older-than", "0s", "--audit")
    assert code == 0 and "audit" in text
    code, text = cli("audit")
    assert "run.requested" not in text and "store.pruned" in text
    code, text = cli("prune", "--older-than", "ninety days")
    assert code == 2 and "not an age like 90d" in text
