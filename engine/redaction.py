"""Scrubs secrets from outside data before it is stored or shown, by what values look like and where they sit.

Kubernetes objects, container logs and alerts routinely carry tokens and passwords, under names nobody
can list in advance (`STRIPE_KEY`, `NPM_AUTH`, `SENTRY_DSN`). So besides values under secret-sounding
keys, `redact` replaces known token formats and high-entropy strings next to secret-ish words, and
`redact_data` replaces every env value and container argument in an object body (image references, names,
uids and resourceVersions stay readable). A secret becomes `[REDACTED:<hash>]`: the short hash lets an
approver see that a value changes, or that two values are equal, without seeing it. The hash is keyed
(HMAC-SHA256) with the installation's key, so whoever sees a marker cannot test guessed passwords against
it offline; the process adopts that key once at start (`use_installation_key`: the `redaction_key` setting,
else the key the run store generated), so every replica and restart marks a secret alike. The engine
applies this where outside data enters a run record; redacted values are never sent back to the cluster
(see `find_marker`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
from collections.abc import Callable
from typing import Any

MARKER_PREFIX = "[REDACTED:"
_MARKER = re.compile(r"\[REDACTED(?::[0-9a-f]{8})?\]")
_SECRET_WORD = (r"password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential"
                r"|auth(?!or)|dsn|webhook|bearer|cookie|passphrase")
_SECRET_KEY = re.compile(rf"(?i)({_SECRET_WORD}|[_.-](?:pat|key|pass)$)")
_SECRET_NEARBY = re.compile(rf"(?i)(?:{_SECRET_WORD}|(?:^|[^a-z])(?:key|pat|pass)(?:[^a-z]|$))")
SAFE_KEYS = frozenset({"image", "name", "uid", "resourceVersion", "namespace", "kind", "apiVersion",
                       "generateName", "imageID", "containerID", "podIP", "hostIP", "nodeName"})
_MAX_JSON = 256 * 1024  # embedded JSON (last-applied-configuration) parsed to redact structurally

_S = r"[A-Za-z0-9]"
# Values whose format alone says "credential": (pattern, group holding the secret).
_TOKENS: list[re.Pattern[str]] = [re.compile(p) for p in (
    # the body is base64, whitespace or JSON's `\n` (never `-`), so this stays linear however many BEGINs
    r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----[A-Za-z0-9+/=\s\\]*(?:-----END [A-Z ]{0,40}PRIVATE KEY-----)?",
    r"\b(?:sk|rk)_(?:live|test)_" + _S + r"{10,}",  # Stripe secret and restricted keys
    r"\bwhsec_" + _S + r"{16,}",  # Stripe webhook signing secrets
    r"\bgh[pousr]_" + _S + r"{30,}",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{30,}",
    r"\bglpat-[A-Za-z0-9_-]{20,}",  # GitLab
    r"\bxox[abposr]-[A-Za-z0-9-]{8,}", r"\bxapp-[A-Za-z0-9-]{16,}",  # Slack
    r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+",
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
    r"\bAIza[0-9A-Za-z_-]{35}\b",  # Google API keys
    r"\bnpm_" + _S + r"{36}\b",
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWTs
)]
# Secrets identified by what precedes them: group `key` is kept, group `value` is replaced.
_KEYED: list[re.Pattern[str]] = [re.compile(p) for p in (
    r"(?i)(?P<key>\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token|digest|negotiate"
    r"|aws4-hmac-sha256)\s+)?)(?P<value>[^\s\"',;]+)",
    r"(?i)(?P<key>\b(?:bearer|basic)\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})",
    # keys and schemes are bounded ({0,64}) and start at the secret word: an unbounded `[\w.-]*` before it
    # made "a-a-a-..." take quadratic time (52 s for 10 KB) in a log line
    r"(?i)(?P<key>(?<![\w-])--?[\w-]{0,40}?(?:" + _SECRET_WORD + r")[\w-]{0,40}(?:=|\s+))(?P<value>[^\s\"'-][^\s\"']*)",
    r"(?i)(?P<key>(?:" + _SECRET_WORD + r")[\w.-]{0,64}[\"']?\s*[:=]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&\"'}]+)",
    r"(?P<key>\b[a-z][a-z0-9+.-]{0,30}://[^\s:/@]{1,256}:)(?P<value>[^\s@/]{1,1024})(?=@)",  # user:password@ in URLs
    r"(?P<key>\b[a-z][a-z0-9+.-]{0,30}://)(?P<value>[A-Za-z0-9_-]{16,1024})(?=@)",  # token@ in URLs (Sentry DSNs)
)]
_CANDIDATE = re.compile(r"[A-Za-z0-9+/=_.~-]{20,}")
# What every pattern above needs, in one cheap scan: a secret-ish word, `xox` (Slack), a URL scheme, or a run
# of 18+ token characters (the shortest token format, `sk_test_` + 10, and every candidate). Text without any
# of these (most label values: "node-00012", "warning", "10.0.3.4:9100") cannot match, so it is returned as is.
_MAYBE = re.compile(r"(?i)pass|pwd|secret|token|key|credential|auth|dsn|webhook|bearer|basic|cookie|xox|://"
                    r"|[A-Za-z0-9+/=_.~-]{18,}")


# The one piece of process-wide state here, set once at start-up like the logging configuration: every
# redaction site (deep in client error paths too) must mark alike. Until set, a key of this process only:
# markers then link values within this process but can never be matched against guesses.
_KEY: list[bytes] = [secrets.token_bytes(32)]
MIN_KEY_BYTES = 16


def use_installation_key(key: bytes) -> None:
    """Mark secrets with `key` from now on (the installation's: the same on every replica and restart)."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a redaction key needs at least {MIN_KEY_BYTES} bytes, got {len(key)}")
    _KEY[0] = key


def marker(value: str, key: bytes | None = None) -> str:
    """`[REDACTED:<8 hex>]` for `value`: equal values get equal markers, so a diff still shows change.
    `key`: the installation's key by default."""
    digest = hmac.new(key or _KEY[0], b"runbook-redaction/v2:" + value.encode(), hashlib.sha256).hexdigest()
    return f"{MARKER_PREFIX}{digest[:8]}]"


def is_marker(value: str) -> bool:
    return bool(_MARKER.fullmatch(value.strip("\"'")))


def redact(text: str) -> str:
    """Replace everything in `text` that looks like a credential, keeping the surrounding text readable."""
    return _scrub(text) if _MAYBE.search(text) else text


def _scrub(text: str) -> str:
    for pattern in _TOKENS:
        text = pattern.sub(lambda m: _hide(m.group(0)), text)
    for pattern in _KEYED:
        text = pattern.sub(lambda m: m.group("key") + _hide(m.group("value")), text)
    return _CANDIDATE.sub(lambda m: _entropic(m, text), text)


# a param whose own name says it holds a credential (`password`, `db_token`, `api_key`): not `secret` alone,
# which in a runbook names a Secret object (`secret=db-creds`) rather than holding its value
_SECRET_PARAM = re.compile(r"(?i)(?:^|[_.-])(?:password|passwd|passphrase|token|api[_-]?key|access[_-]?key"
                           r"|private[_-]?key|credentials?|client[_-]?secret)$")


def redact_params(params: dict[str, Any]) -> dict[str, Any]:
    """Params people type (CLI `-p`, chat `/runbook run k=v`), redacted as they enter: by value and format like
    alert labels, and wholly when the param's name says it holds a credential (`-p password=hunter2`)."""
    return {k: _hide(v) if isinstance(v, str) and v and _SECRET_PARAM.search(str(k)) else redact_values(v)
            for k, v in params.items()}


def redact_values(value: Any) -> Any:
    """`redact` on every string inside `value` (dicts, lists), by value and format only: for what people and
    alerts hand in (alert labels, audit details, typed params through `redact_params`), where a key named
    `secret` names a Secret rather than holding one."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_values(v) for v in value]
    return value


def _hide(value: str) -> str:
    if is_marker(value) or MARKER_PREFIX in value:
        return value
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":  # the same secret quoted or not
        return value[0] + marker(value[1:-1]) + value[0]
    return marker(value)


def _entropic(match: re.Match[str], text: str) -> str:
    """A long random-looking string within a few words after a secret-ish word is taken for a secret."""
    value = match.group(0)
    if MARKER_PREFIX in text[max(0, match.start() - 10):match.start()] or not _random_looking(value):
        return value
    before = text[max(0, match.start() - 48):match.start()]
    return marker(value) if _SECRET_NEARBY.search(before) else value


_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def _random_looking(value: str) -> bool:
    if _UUID.fullmatch(value):  # object uids are identifiers, not secrets
        return False
    if not re.search("[A-Z]", value) and re.search(r"[-./]", value):  # object names, hosts, paths
        return False
    classes = sum(bool(re.search(p, value)) for p in ("[a-z]", "[A-Z]", "[0-9]"))
    if classes < 2 or value.count("-") + value.count(".") > len(value) // 4:  # words, names, versions
        return False
    counts = {c: value.count(c) for c in set(value)}
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 3.5


def redact_data(value: Any, key: Any = None) -> Any:
    """`redact` applied to JSON-like data, plus what the structure says: values under secret-sounding keys,
    every env value, every container argument, Secret data, and JSON embedded in strings (annotations such
    as `kubectl.kubernetes.io/last-applied-configuration`)."""
    if isinstance(value, str):
        if key in SAFE_KEYS:
            return value
        if isinstance(key, str) and _SECRET_KEY.search(key):
            return _hide(value)
        return _embedded_json(value) or redact(value)
    if isinstance(value, dict):
        return _redact_mapping(value)
    if isinstance(value, list | tuple):
        return [redact_data(item, key) for item in value]
    return value


# env values and container arguments (not `data[key]`: evidence there says "exists"/"not found", and the
# engine never reads Secret values)
_ARGUMENT_FIELD = re.compile(r"(?:^|\.)(?:env(?:\[\d+\])?(?:\.value)?|args(?:\[\d+\])?)$")


def redact_evidence(field: str, value: Any) -> Any:
    """`redact_data` for a value read at `field` (a finding's evidence): what the path says counts too, so
    `spec.containers[0].env[3].value` or `...args` is hidden however plain the value looks."""
    if _ARGUMENT_FIELD.search(field):
        return _all_hidden(value)
    return redact_data(value)


def _redact_mapping(value: dict[Any, Any]) -> dict[Any, Any]:
    special: dict[str, Callable[[Any], Any]] = {}
    if isinstance(value.get("image"), str):  # a container: its arguments may carry anything
        special = {"args": _all_hidden, "command": _command, "env": _env}
    elif value.get("kind") == "Secret":
        special = {"data": _all_hidden, "stringData": _all_hidden}
    elif isinstance(value.get("name"), str) and "value" in value and set(value) <= {"name", "value", "valueFrom"}:
        special = {"value": _all_hidden}  # an env entry met outside a container
    return {k: special[k](v) if k in special else redact_data(v, k) for k, v in value.items()}


def _all_hidden(value: Any) -> Any:
    if isinstance(value, str):
        return _hide(value)
    if isinstance(value, dict):
        return {k: _all_hidden(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_all_hidden(v) for v in value]
    return value


def _command(value: Any) -> Any:
    """The program stays readable (`python`, `/bin/sh`); everything after it is an argument."""
    if isinstance(value, list) and value and isinstance(value[0], str) and re.fullmatch(r"[\w./-]{1,64}", value[0]):
        return [value[0], *_all_hidden(value[1:])]
    return _all_hidden(value)


def _env(value: Any) -> Any:
    if not isinstance(value, list):
        return redact_data(value)
    return [{k: _all_hidden(v) if k == "value" else redact_data(v, k) for k, v in entry.items()}
            if isinstance(entry, dict) else _all_hidden(entry) for entry in value]


def _embedded_json(text: str) -> str | None:
    stripped = text.strip()
    if not stripped.startswith(("{", "[")) or len(stripped) > _MAX_JSON:
        return None
    try:
        parsed = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, dict | list):
        return None
    return json.dumps(redact_data(parsed), separators=(",", ":"))


def find_marker(value: Any, path: str = "") -> str | None:
    """The path of the first redaction marker inside `value` (`with.env[2].value`), or None."""
    if isinstance(value, str):
        return path if _MARKER.search(value) else None
    if isinstance(value, dict):
        return next((found for k, v in value.items() if (found := find_marker(v, f"{path}.{k}" if path else str(k)))),
                    None)
    if isinstance(value, list | tuple):
        return next((found for i, v in enumerate(value) if (found := find_marker(v, f"{path}[{i}]"))), None)
    return None
