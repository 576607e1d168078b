"""Secrets in outside data never reach a person: by key name, by value format, by entropy next to a secret-ish
word, and by position in an object body (env values, container arguments)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.executor import Executor
from engine.loader import Loader
from engine.records import RunStatus, StepStatus
from engine.redaction import find_marker, marker, redact, redact_data, redact_evidence
from tests.conftest import Toy

Write = Callable[[str, str], Path]

MARKER = re.compile(r"\[REDACTED:[0-9a-f]{8}\]")

PEM = ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nq2w3e4r5t6y7u8i9o0p\n"
       "-----END PRIVATE KEY-----")


@pytest.mark.parametrize(("text", "secret"), [
    ("connecting with DB_PASSWORD=hunter2 to db", "hunter2"),
    ('{"api_key": "abc123def"}', "abc123def"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlMTIz", "eyJhbGciOiJIUzI1NiJ9"),
    ("authorization: token 5f1e0c9a7b", "5f1e0c9a7b"),
    ("slack token xoxb-123456789012-abcdefghij", "xoxb-123456789012"),
    ("postgres://billing:s3cr3t@db.internal:5432/billing", "s3cr3t"),
    ("aws key AKIAABCDEFGHIJKLMNOP used", "AKIAABCDEFGHIJKLMNOP"),
    ("charging with sk_live_4eC39HqLyjWDarjtT1zdp7dc failed", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("restricted rk_live_51H8bqZ2eZvKYlo2C0123456789", "rk_live_51H8bqZ2eZvKYlo2C0123456789"),
    ("cloning with ghp_1234567890abcdefghijABCDEFGHIJ123456", "ghp_1234567890abcdefghijABCDEFGHIJ123456"),
    ("oauth gho_16C7e42F292c6912E7710c838347Ae178B4a ok", "gho_16C7e42F292c6912E7710c838347Ae178B4a"),
    ("pat github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_pat_11ABCDEFG0123456789"),
    ("posting to https://hooks.slack.com/services/T0001/B0002/XXXXXXXXXXXXXXXXXXXXXXXX", "XXXXXXXXXXXXXXXX"),
    ("run --password hunter2 --period current", "hunter2"),
    ("run --db-password=hunter2", "hunter2"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ("the secret for the upload is Zx8Qp2Lr7Ty5Wv1Nm4Kb9Hc3Jd6Gf0Sa", "Zx8Qp2Lr7Ty5Wv1Nm4Kb9Hc3Jd6Gf0Sa"),
    ("sentry https://4f9d2b7c1e8a4d3f9b6c2a1e7d8f3c5b@o12345.ingest.sentry.io/678", "4f9d2b7c1e8a4d3f9b6c2a1e"),
    ("npm config npm_abcdefghijklmnopqrstuvwxyz0123456789", "npm_abcdefghijklmnop"),
    (f"key file: {json.dumps({'type': 'service_account', 'private_key': PEM})}", "MIIEvQIBADANBgkqhkiG9w0B"),
    (PEM, "MIIEvQIBADANBgkqhkiG9w0B"),
])
def test_secrets_are_replaced_by_a_marker(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned and MARKER.search(cleaned), cleaned


@pytest.mark.parametrize("text", [
    "Back-off restarting failed container billing in pod billing-28911-x (exit code 1)",
    "pulling image registry.example.com/billing/runner:2026.11.2 for pod billing-monthly-29400870-7xk2p",
    "token bucket refilled; uid 607bb9b9-06c5-4fb0-b763-33fac2548012",
    "authorization failed for user bob",
    "couldn't find key url in Secret billing/billing-db-credentials-2026",
    "secret billing-db-credentials-v2-abc123 missing; token refresher-job-7f9c8d6b5-x2k4p restarted",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("text", [
    "a-" * 20000, "a.b" * 15000, "-----BEGIN RSA PRIVATE KEY-----" * 1000, "x://a:" * 5000, "--" * 20000 + "token",
])
def test_pathological_text_is_handled_in_linear_time(text: str) -> None:
    """Each of these took from 17 s to minutes with unbounded key, scheme or PEM-body patterns."""
    cleaned = redact(text)
    assert cleaned == text or ("BEGIN" in text and MARKER.search(cleaned))


def test_markers_are_stable_and_redaction_is_idempotent() -> None:
    once = redact("DB_PASSWORD=hunter2 and again password: 'hunter2'")
    assert once == f"DB_PASSWORD={marker('hunter2')} and again password: '{marker('hunter2')}'"
    assert redact(once) == once and redact_data({"password": once}) == {"password": once}
    assert marker("hunter2") != marker("hunter3")


def test_nested_data() -> None:
    assert redact_data({"a": ["token=abc123"], "n": 3}) == {"a": [f"token={marker('abc123')}"], "n": 3}


def test_values_under_secret_keys() -> None:
    data = {"api_key": "k-123", "STRIPE_KEY": "x", "secret_exists": True, "author": "bob", "key": "url"}
    assert redact_data(data) == {"api_key": marker("k-123"), "STRIPE_KEY": marker("x"), "secret_exists": True,
                                 "author": "bob", "key": "url"}


def test_every_env_value_and_container_argument_of_an_object_body() -> None:
    container = {
        "name": "runner", "image": "registry.example.com/billing/runner:2026.11.2",
        "command": ["python", "-m", "billing.run"], "args": ["--period", "current", "--password", "Tr0ub4dor"],
        "env": [{"name": "BILLING_ENV", "value": "production"}, {"name": "DB_PASS", "value": "Tr0ub4dor"},
                {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "billing-db", "key": "url"}}}],
    }
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "billing-manual-x", "uid": "607bb9b9-06c5-4fb0-b763-33fac2548012",
                        "resourceVersion": "48262627"},
           "spec": {"template": {"spec": {"containers": [container], "initContainers": [container]}}}}
    redacted = redact_data(job)
    for out in redacted["spec"]["template"]["spec"]["containers"] + redacted["spec"]["template"]["spec"][
            "initContainers"]:
        assert out["name"] == "runner" and out["image"] == container["image"]
        assert out["command"] == ["python", marker("-m"), marker("billing.run")]
        assert out["args"] == [marker(a) for a in container["args"]]
        assert [e.get("value") for e in out["env"]] == [marker("production"), marker("Tr0ub4dor"), None]
        assert out["env"][2]["valueFrom"] == {"secretKeyRef": {"name": "billing-db", "key": "url"}}
    assert redacted["metadata"] == job["metadata"]
    assert "Tr0ub4dor" not in json.dumps(redacted)


def test_secret_data_and_embedded_json_annotations() -> None:
    applied = json.dumps({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "app:1", "env": [{"name": "TOKEN", "value": "plain-value"}]}]}}}})
    obj = {"kind": "Secret", "data": {"password": "czNjcjN0"},
           "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied}}}
    redacted = redact_data(obj)
    assert redacted["data"] == {"password": marker("czNjcjN0")}
    embedded = json.loads(redacted["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert embedded["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == marker("plain-value")


def test_find_marker_names_the_argument() -> None:
    assert find_marker({"node": "a", "env": [{"value": "x"}, {"value": f"x{marker('s')}"}]}) == "env[1].value"
    assert find_marker({"node": "a"}) is None


def test_a_remediation_refuses_an_argument_that_holds_a_redacted_value(executor: Executor, loader: Loader,
                                                                        write: Write, toy: Toy) -> None:
    toy.values["token"] = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
    runbook = loader.load_file(write("""
        apiVersion: runbook/v1
        kind: Runbook
        metadata: {name: copy, title: Copy a value}
        policy: {allow_self_approval: true}
        steps:
          - {id: look, title: Look, action: toy.get, with: {key: token}}
          - id: copy
            title: Copy it
            action: toy.set
            with: {key: copy, value: "prefix {{ steps.look.output.value }}"}
        """))
    run = executor.run(runbook, {}, requester="alice", auto_approve=True)
    assert run.steps[0].output == {"value": marker("sk_live_4eC39HqLyjWDarjtT1zdp7dc")}
    assert run.status == RunStatus.FAILED and run.steps[1].status == StepStatus.FAILED
    assert "argument 'value' of toy.set contains a redacted value" in (run.steps[1].error or "")
    assert "copy" not in toy.values and run.steps[1].changes == []


@pytest.mark.parametrize(("field", "hidden"), [
    ("spec.template.spec.containers[0].env[3].value", True), ("spec.containers[0].env", True),
    ("spec.containers[1].args", True), ("spec.containers[1].args[2]", True),
    ("data[password]", False), ("status.conditions[Ready]", False), ("spec.nodeName", False),
])
def test_evidence_is_redacted_by_where_it_was_read(field: str, hidden: bool) -> None:
    assert (redact_evidence(field, "plainvalue") == marker("plainvalue")) is hidden


def test_text_the_quick_scan_passes_over_is_text_no_pattern_changes() -> None:
    """`redact` skips text without a secret-ish word, a scheme or a long token-like run (most alert label values);
    the full scrub must leave every such text unchanged, near-miss token formats included."""
    import random

    from engine.redaction import _MAYBE, _scrub

    pieces = ["sk_live_", "rk_test_", "whsec_", "ghp_", "gho_", "github_", "glpat-", "xapp-", "AKIA", "ASIA", "AIza",
              "npm_", "eyJ", "hooks.slack.com/services/", "http", ":/", "@", ":", "=", " ", "-", "--", ".", "_", "/",
              "+", "~", "'", '"', "Zx8Qp2", "Lr7Ty5", "Wv1N", "m4Kb9", "0123456789", "ABCDEFGH", "abcdefgh", "node-",
              "-----BEGIN ", "PRIVATE", "Beare", "Basi", "aut", "xoxb-", "Bearer ", "basic ", "pwd=", "://", "db://u:",
              "h@"]
    rng = random.Random(10)
    skipped = 0
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 8)))
        if not _MAYBE.search(text):
            skipped += 1
            assert _scrub(text) == text, text
    assert 2000 < skipped < 18000  # both sides of the quick scan were exercised
