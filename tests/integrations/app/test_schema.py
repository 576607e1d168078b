"""The committed JSON Schema must match the model and the registered actions, so editors validate what the
engine accepts."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from engine.schema import json_schema
from integrations.app.wiring import build_registry

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = ROOT / "runbooks" / "schema.json"


def test_committed_schema_is_current() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == json_schema(build_registry()), (
        "runbooks/schema.json is stale: run `runbook schema --write runbooks/schema.json`"
    )


@pytest.mark.parametrize("path", sorted((ROOT / "runbooks").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_runbooks_match_the_schema(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()), yaml.safe_load(SCHEMA.read_text()))


def test_schema_checks_each_actions_arguments() -> None:
    schema = yaml.safe_load(SCHEMA.read_text())
    step = {"apiVersion": "runbook/v1", "kind": "Runbook", "metadata": {"name": "x", "title": "x"},
            "steps": [{"id": "a", "title": "a", "action": "k8s.node.cordon", "with": {"nod": "n1"}}]}
    with pytest.raises(jsonschema.ValidationError, match="nod"):
        jsonschema.validate(step, schema)
    step["steps"][0]["with"] = {"node": "{{ params.node }}"}
    jsonschema.validate(step, schema)
