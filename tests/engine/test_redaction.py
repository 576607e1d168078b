"""Secrets in cluster text never reach a person."""

from __future__ import annotations

import pytest

from engine.redaction import MASK, redact, redact_data


@pytest.mark.parametrize(("text", "secret"), [
    ("connecting with DB_PASSWORD=hunter2 to db", "hunter2"),
    ('{"api_key": "abc123def"}', "abc123def"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlMTIz", "eyJhbGciOiJIUzI1NiJ9"),
    ("slack token xoxb-123456789012-abcdefghij", "xoxb-123456789012"),
    ("postgres://billing:s3cr3t@db.internal:5432/billing", "s3cr3t"),
    ("aws key AKIAABCDEFGHIJKLMNOP used", "AKIAABCDEFGHIJKLMNOP"),
])
def test_secrets_are_masked(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned and MASK in cleaned


def test_ordinary_text_is_left_alone() -> None:
    text = "Back-off restarting failed container billing in pod billing-28911-x (exit code 1)"
    assert redact(text) == text


def test_nested_data() -> None:
    assert redact_data({"a": ["token=abc123"], "n": 3}) == {"a": [f"token={MASK}"], "n": 3}


def test_values_under_secret_keys_and_secret_env_vars() -> None:
    job = {"env": [{"name": "DB_PASSWORD", "value": "hunter2"}, {"name": "MODE", "value": "fast"}],
           "api_key": "k-123", "secret_exists": True, "author": "bob"}
    assert redact_data(job) == {"env": [{"name": "DB_PASSWORD", "value": MASK}, {"name": "MODE", "value": "fast"}],
                                "api_key": MASK, "secret_exists": True, "author": "bob"}
