"""The webhook payload model, trigger matching and the dedup key (no server, no Alertmanager)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.actions import ActionRegistry
from engine.builtins import register_builtins
from engine.loader import Loader
from engine.model import Runbook
from engine.triggers import NoMatch, TriggerMatch
from integrations.alertmanager import Alert, PayloadError, dedup_key, key_for, match_alert, parse_payload

SAMPLE = Path(__file__).with_name("alertmanager-webhook-firing.json")  # captured from Alertmanager 0.25
ROOT = Path(__file__).resolve().parents[3]


def _runbook(triggers: str, params: str = "node: {type: string}"):  # type: ignore[no-untyped-def]
    text = (f"apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: rb, title: T}}\nparams:\n  {params}\n"
            f"triggers:\n  alerts:\n{triggers}\nsteps: [{{id: a, title: A, action: noop}}]\n")
    return Loader(register_builtins(ActionRegistry())).load_text(text)


def _hit(runbook: Runbook, alert: Alert) -> TriggerMatch:
    match = match_alert([runbook], alert)
    assert isinstance(match, TriggerMatch), match
    return match


def _sample() -> bytes:
    return json.dumps(json.loads(SAMPLE.read_text())["body"]).encode()


def test_captured_alertmanager_payload_parses() -> None:
    payload = parse_payload(_sample())
    assert payload.version == "4" and payload.status == "firing" and payload.truncated_alerts == 0
    alert = payload.alerts[0]
    assert alert.name == "KubeNodeNotReady" and alert.labels["node"] == "node-b"
    assert alert.fingerprint == "d39a1530706d1828" and alert.ends_at == "0001-01-01T00:00:00Z"
    assert payload.group_key.startswith("{}:") and payload.external_url == "http://alertmanager.example:9093"


def test_extra_keys_are_tolerated() -> None:
    data = json.loads(_sample())
    data["newField"] = {"from": "a future Alertmanager"}
    data["alerts"][0]["silencedBy"] = []
    assert parse_payload(json.dumps(data).encode()).alerts[0].model_extra == {"silencedBy": []}


@pytest.mark.parametrize(("body", "message"), [
    (b"", "not valid JSON"), (b"null", "JSON object"), (b'{"version": 4}', "unsupported payload version 4"),
    (b'{"version": "4", "status": "firing", "alerts": [{"labels": {}}]}', "alerts.0.status"),
    (b'{"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": {"a": 1}}]}', "labels.a"),
])
def test_bad_payloads(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message.replace("(", r"\(")):
        parse_payload(body)


def test_matching_and_param_mapping() -> None:
    runbook = _runbook("    - match: {alertname: NodeDown}\n      match_re: {severity: 'critical|page'}\n"
                       "      params: {node: instance}")
    hit = Alert(status="firing", labels={"alertname": "NodeDown", "severity": "page", "instance": "n1"})
    match = match_alert([runbook], hit)
    assert isinstance(match, TriggerMatch)
    assert (match.runbook.name, match.params, match.missing) == ("rb", {"node": "n1"}, ())
    partial = match_alert([runbook], Alert(status="firing", labels={"alertname": "NodeDown", "severity": "critical"}))
    assert isinstance(partial, TriggerMatch) and partial.missing == ("instance",)
    for labels in ({"alertname": "NodeDown", "severity": "low"}, {"alertname": "NodeDownX", "severity": "page"}):
        assert match_alert([runbook], Alert(status="firing", labels=labels)) == NoMatch(
            "no-trigger", "no runbook trigger matches the alert's labels")


def test_dedup_key_is_runbook_plus_target() -> None:
    runbook = _runbook("    - match: {alertname: NodeDown}\n      params: {node: node}")
    a = Alert(status="firing", labels={"alertname": "NodeDown", "node": "n1", "pod": "x"}, fingerprint="f1")
    b = Alert(status="firing", labels={"alertname": "NodeDown", "node": "n1", "pod": "y"}, fingerprint="f2")
    c = Alert(status="firing", labels={"alertname": "NodeDown", "node": "n2"}, fingerprint="f3")
    keys = [key_for(_hit(runbook, x), x) for x in (a, b, c)]
    assert keys[0] == keys[1] != keys[2] and keys[0].startswith("alert/rb/")
    assert dedup_key("rb", {}, "f1") != dedup_key("rb", {}, "f2")  # no params: the fingerprint decides
    assert dedup_key("rb", {"a": "1", "b": "2"}, "") == dedup_key("rb", {"b": "2", "a": "1"}, "")
    assert dedup_key("rb", {"node": "n1"}, "") != dedup_key("other", {"node": "n1"}, "")


def test_label_values_stay_literal() -> None:
    runbook = _runbook("    - match: {alertname: X}\n      params: {node: node}")
    alert = Alert(status="firing", labels={"alertname": "X", "node": "{{ run.id }}"})
    assert _hit(runbook, alert).params == {"node": "{{ run.id }}"}


def test_node_not_ready_runbook_trigger() -> None:
    from integrations.alertmanager import register as register_alertmanager
    from integrations.kubernetes import register

    registry = register_builtins(ActionRegistry())
    register(registry, None)
    register_alertmanager(registry)
    runbook = Loader(registry).load_file(ROOT / "runbooks" / "node-not-ready.yaml")
    payload = parse_payload(_sample())
    assert _hit(runbook, payload.alerts[0]).params == {"node": "node-b"}
