"""The example plug-in, installed: loaded only when the settings name it, and its action runs through the
engine's client against the simulator over HTTP."""

from __future__ import annotations

import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from engine.actions import ActionContext
from engine.errors import SettingsError
from integrations.app.cli.main import app
from integrations.app.wiring import build_registry
from integrations.kubernetes import Kube
from integrations.kubesim import SimulatedCluster

CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "checkout-config", "namespace": "shop"},
              "data": {"gateway_url": "https://gateway.internal", "log_level": "info"}}


def test_the_entry_point_is_installed() -> None:
    assert "example" in {ep.name for ep in entry_points(group="runbook.actions")}


def test_installed_but_not_named_adds_nothing() -> None:
    assert "example.configmap.keys" not in build_registry()


def test_named_in_settings_it_registers_and_runs_against_the_cluster() -> None:
    with SimulatedCluster([CONFIG_MAP]) as sim, Kube.from_url(sim.url, "admin-token") as kube:
        registry = build_registry(kube, {"example": {"required_keys": ["gateway_url", "timeout_ms"]}})
        action = registry.get("example.configmap.keys")
        assert [str(p) for p in action.permissions] == ["configmaps:get"]
        ctx = ActionContext(run_id="t", step="s", dry_run=False, deadline=time.monotonic() + 10)
        out = action.func(ctx, action.args.model_validate({"namespace": "shop", "name": "checkout-config"}))
    assert out == {"keys": ["gateway_url", "log_level"], "missing": ["timeout_ms"]}
    assert ctx.findings[0].id == "example.configmap.missing_keys"


def test_naming_a_plugin_that_is_not_installed_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="no installed package provides"):
        build_registry(plugins={"nonexistent": {}})


RUNBOOK = """apiVersion: runbook/v1
kind: Runbook
metadata: {name: checkout-config, title: Checkout configuration keys}
steps:
  - id: keys
    title: Keys of the checkout ConfigMap
    action: example.configmap.keys
    with: {namespace: shop, name: checkout-config}
tests:
  - name: a required key is missing
    scenario: scenario.yaml
    expect:
      status: succeeded
      findings: [example.configmap.missing_keys]
      steps:
        keys: {output: {missing: [timeout_ms]}}
"""


def test_runbooks_using_it_are_rehearsed_with_the_settings_plugins(tmp_path: Path) -> None:
    (tmp_path / "checkout-config.yaml").write_text(RUNBOOK)
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(CONFIG_MAP))
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump(
        {"plugins": {"example": {"required_keys": ["gateway_url", "timeout_ms"]}}}))
    result = CliRunner().invoke(app, ["test", str(tmp_path / "checkout-config.yaml"),
                                      "--config", str(tmp_path / "settings.yaml")])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "1 passed, 0 failed" in result.stdout
    without = CliRunner().invoke(app, ["test", str(tmp_path / "checkout-config.yaml")])
    assert without.exit_code == 1 and "unknown action 'example.configmap.keys'" in without.stderr
