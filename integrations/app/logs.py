"""The one logging setup of the CLI and the server: one record is one line, text or JSON.

`RUNBOOK_LOG_FORMAT` (`text`, the default, or `json`) and `RUNBOOK_LOG_LEVEL` (`debug`, `info`, `warning`,
`error`) choose. Messages carry outside data (alert labels, group keys, object names), so in text every
control character is escaped (`\\n`, `\\x1b`): a CR/LF in a label cannot forge a log line, and a traceback
is indented under its record. JSON lines escape by construction, for log collectors. Messages and tracebacks
are redacted here, where every line is written: an exception's text may quote a URL with credentials.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from engine.errors import SettingsError
from engine.redaction import redact, redact_values
from engine.text import escape_controls

FORMATS = ("text", "json")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
LOGGERS = ("runbook", "uvicorn", "uvicorn.error", "uvicorn.access")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, control characters escaped; a traceback follows, indented."""

    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
        line = f"{when} {record.levelname} {record.name}: {escape_controls(redact(record.getMessage()))}"
        if record.exc_info:
            trace = redact(self.formatException(record.exc_info))
            line += "\n" + "\n".join("    " + escape_controls(part) for part in trace.splitlines())
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, exception, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "message": redact(record.getMessage()),
        }
        entry.update({k: redact_values(v) for k, v in vars(record).items()
                      if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def log_options(env: Mapping[str, str] | None = None, default_level: str = "info") -> tuple[str, int]:
    """(format, level) from RUNBOOK_LOG_FORMAT and RUNBOOK_LOG_LEVEL; SettingsError names a bad one."""
    env = os.environ if env is None else env
    fmt = env.get("RUNBOOK_LOG_FORMAT", "text").strip().lower() or "text"
    level = env.get("RUNBOOK_LOG_LEVEL", default_level).strip().lower() or default_level
    if fmt not in FORMATS:
        raise SettingsError(f"RUNBOOK_LOG_FORMAT must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if level not in LEVELS:
        raise SettingsError(f"RUNBOOK_LOG_LEVEL must be one of {', '.join(LEVELS)}, got {level!r}")
    return fmt, LEVELS[level]


def configure_logging(stream: TextIO | None = None, env: Mapping[str, str] | None = None,
                      default_level: str = "info") -> None:
    """Send the engine's, the server's and uvicorn's records to `stream` (stdout: what a container's log
    collector reads) in the chosen format and level (`default_level` when RUNBOOK_LOG_LEVEL is unset)."""
    fmt, level = log_options(env, default_level)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
