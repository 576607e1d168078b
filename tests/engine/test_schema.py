"""The committed JSON Schema must match the model, so editors validate what the engine accepts."""

from __future__ import annotations

from pathlib import Path

from engine.model import json_schema

SCHEMA = Path(__file__).resolve().parents[2] / "runbooks" / "schema.json"


def test_committed_schema_is_current() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == json_schema(), (
        "runbooks/schema.json is stale: run `runbook schema --write runbooks/schema.json`"
    )
