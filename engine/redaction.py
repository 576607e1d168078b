"""Scrubs secrets from text before it reaches a finding, a log or chat.

Kubernetes objects and container logs routinely carry tokens and passwords; anything the engine
shows a person goes through `redact` first.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "[REDACTED]"

_PATTERNS = [
    re.compile(r"(?i)(?P<key>\bbearer\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})"),
    re.compile(r"(?i)(?P<key>\bbasic\s+)(?P<value>[A-Za-z0-9+/=]{8,})"),
    # key=value or key: value where the key names a secret
    re.compile(
        r"(?i)(?P<key>\b[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key"
        r"|credential|auth)[\w.-]*\b[\"']?\s*[:=]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&\"'}]+)"
    ),
    re.compile(r"(?P<key>)(?P<value>\bxox[abposr]-[A-Za-z0-9-]{8,})"),
    re.compile(r"(?P<key>)(?P<value>\bAKIA[0-9A-Z]{16}\b)"),
    re.compile(r"(?P<key>)(?P<value>\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"),
    re.compile(r"(?P<key>)(?P<value>-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----)"),
    re.compile(r"(?P<key>\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)(?P<value>[^\s@/]+)(?=@)"),
]


def redact(text: str) -> str:
    """Replace anything that looks like a credential with a mask, keeping the surrounding text readable."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: f"{m.group('key')}{MASK}", text)
    return text


_SECRET_KEY = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential)")


def redact_data(value: Any) -> Any:
    """`redact` applied to every string inside JSON-like data, and whole values masked under keys that name
    secrets: `{"password": ...}`, and the Kubernetes env shape `{"name": "DB_PASSWORD", "value": ...}`."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        secret_env = isinstance(value.get("name"), str) and bool(_SECRET_KEY.search(value["name"]))
        return {k: MASK if _masked(k, v, secret_env) else redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value


def _masked(key: Any, value: Any, secret_env: bool) -> bool:
    if not isinstance(value, str):  # flags and counts (`secret_exists: true`) are not secrets
        return False
    return (isinstance(key, str) and bool(_SECRET_KEY.search(key))) or (secret_env and key == "value")
