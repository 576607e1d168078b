"""Text the engine itself records is redacted where it is recorded: an unexpected exception's message (the
"engine error" a run fails with), reasons people type (reject, cancel, freeze) and every audit detail; and
markers are keyed with the installation's key.

The exceptions come from a permission checker standing in for a cluster whose client fails unexpectedly
(its message quoting a URL with credentials and a header, as HTTP libraries do)."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.actions import ActionRegistry, Identity, Permission
from engine.executor import Executor
from engine.loader import Loader
from engine.policy import Policy
from engine.records import RunRecord, RunStatus, StepStatus
from engine.redaction import MARKER_PREFIX, marker, redact, redact_params, use_installation_key
from engine.run_store import RunStore
from engine.sqlstore.sqlite import SqliteStore
from tests.conftest import TEAM

Write = Callable[[str, str], Path]

PASSWORD = "Kq8vZ2pL9xW4rT7m"
TOKEN = "ghp_Q4w8E2r6T0y3U7i1O5p9A2s6D0f4G8h2J6k0"
RUNBOOK = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: set-it, title: Set a value}
params:
  key: {type: string}
steps:
  - id: set
    title: Set it
    action: toy.set
    with: {key: "{{ params.key }}", value: "on"}
"""


class BrokenClusterChecker:
    """A permission checker whose client fails in a way nobody planned for."""

    def missing(self, permissions: tuple[Permission, ...], namespace: str | None,
                identity: Identity | None) -> list[Permission]:
        raise RuntimeError(f"POST https://admin:{PASSWORD}@10.0.0.1:6443/apis/authorization.k8s.io/v1 failed; "
                           f"sent Authorization: token {TOKEN}")


def _everything(store: RunStore, run: RunRecord) -> str:
    """All the store holds about the run, as text."""
    stored = store.get_run(run.id)
    return json.dumps([stored.to_dict(), [e.__dict__ for e in store.audit_log()],
                       [d.__dict__ for d in store.decisions(run.id)]], default=str)


def test_an_engine_error_is_redacted_where_it_is_recorded(registry: ActionRegistry, store: RunStore, loader: Loader,
                                                          write: Write, caplog: pytest.LogCaptureFixture) -> None:
    executor = Executor(registry, store, checker=BrokenClusterChecker(), policy=Policy(approvers=TEAM))
    with caplog.at_level(logging.ERROR, logger="runbook"):
        run = executor.run(loader.load_file(write(RUNBOOK)), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.FAILED and run.steps[0].status == StepStatus.FAILED
    assert (run.error or "").startswith("engine error: RuntimeError: POST https://admin:[REDACTED:")
    assert "Authorization: token [REDACTED:" in (run.steps[0].error or "")
    recorded = _everything(store, run)
    assert PASSWORD not in recorded and TOKEN not in recorded
    assert "[REDACTED:" in recorded
    assert any("engine error in run" in r.getMessage() for r in caplog.records)  # logged; the log formatter redacts


@pytest.mark.parametrize("how", ["reject", "cancel"])
def test_reasons_people_type_are_redacted(executor: Executor, store: RunStore, loader: Loader, write: Write,
                                          how: str) -> None:
    run = executor.run(loader.load_file(write(RUNBOOK)), {"key": "a"}, requester="alice")
    assert run.status == RunStatus.AWAITING_APPROVAL
    reason = f"not now, and the admin password is https://root:{PASSWORD}@db.internal / {TOKEN}"
    if how == "reject":
        done = executor.decide(run.id, False, "bob", reason=reason)
    else:
        done = executor.cancel(run.id, "bob", reason=reason)
    assert done.status in (RunStatus.REJECTED, RunStatus.ABORTED)
    recorded = _everything(store, done)
    assert PASSWORD not in recorded and TOKEN not in recorded
    assert "not now" in recorded and "[REDACTED:" in recorded


def test_a_freeze_reason_is_redacted(executor: Executor, store: RunStore) -> None:
    executor.freeze("alice", f"incident; bridge at https://meet:{PASSWORD}@call.example/x")
    executor.unfreeze("alice", f"done, rotated {TOKEN}")
    frozen: Any = [store.freeze_state(), [e.__dict__ for e in store.audit_log()]]
    recorded = json.dumps(frozen, default=str)
    assert PASSWORD not in recorded and TOKEN not in recorded and "incident" in recorded


def test_markers_are_keyed_per_installation(make_store: Callable[..., RunStore]) -> None:
    """Replicas and restarts on one database share its key (markers of one secret match); another key gives
    other markers; without the key a marker cannot be recomputed from a guess (no plain hash of it)."""
    one, restarted = make_store("replica-a"), make_store("replica-b")
    key = one.redaction_key()
    assert len(key) == 32 and restarted.redaction_key() == key
    assert marker("hunter2", key) == marker("hunter2", restarted.redaction_key())
    other = secrets.token_bytes(32)
    assert marker("hunter2", key) != marker("hunter2", other)
    plain = [hashlib.sha256(prefix + b"hunter2").hexdigest()[:8] for prefix in (b"", b"runbook-redaction/v1:",
                                                                                  b"runbook-redaction/v2:")]
    assert not any(h in marker("hunter2", key) for h in plain)


def test_another_installation_has_another_key(tmp_path: Path) -> None:
    first, second = SqliteStore(tmp_path / "a.db"), SqliteStore(tmp_path / "b.db")
    try:
        with sqlite3.connect(tmp_path / "a.db") as db:  # made with the schema: reading it never has to write
            (made,) = db.execute("SELECT redaction_key FROM installation").fetchone()
        assert first.redaction_key() == bytes.fromhex(made) != second.redaction_key()
    finally:
        first.close()
        second.close()


def test_the_process_marks_with_the_installation_key(store: RunStore) -> None:
    key = store.redaction_key()
    use_installation_key(key)
    assert redact(f"token {TOKEN}") == f"token {marker(TOKEN, key)}"
    with pytest.raises(ValueError, match="at least 16 bytes"):
        use_installation_key(b"short")


def test_typed_params_are_hidden_by_a_credentials_name_too() -> None:
    """`-p password=hunter2` holds nothing a format detector knows; its name says what it is. `secret=` alone
    names a Secret object in runbooks, so it stays (a value that looks like a token is still redacted)."""
    params = {"password": "hunter2", "db_token": "plainword", "api_key": "x1", "node": "node-a",
              "secret": "db-creds", "note": "see ghp_abcdefghijklmnopqrstuvwxyz0123456789"}
    kept = redact_params(params)
    assert all(kept[k].startswith(MARKER_PREFIX) for k in ("password", "db_token", "api_key"))
    assert (kept["node"], kept["secret"]) == ("node-a", "db-creds")
    assert "ghp_" not in kept["note"] and kept["note"].startswith("see ")
