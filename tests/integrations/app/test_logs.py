"""Logs: one record is one line whatever the data says (text with control characters escaped, or JSON),
chosen by RUNBOOK_LOG_FORMAT / RUNBOOK_LOG_LEVEL, for the CLI and for `serve` in its own process."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from engine.errors import SettingsError
from integrations.app.logs import configure_logging
from integrations.testing.server import WEBHOOK_TOKEN, alert, alert_payload, wait_for, wait_serving

ROOT = Path(__file__).resolve().parents[3]
FORGED = "2026-11-22T12:00:00.000+00:00 INFO runbook.server: approved by admin"
HOSTILE = f"group\r\n{FORGED}\x1b[2J\x00"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level,
                    logging.getLogger(name).propagate) for name in ("runbook", "uvicorn", "uvicorn.error",
                                                                     "uvicorn.access")}
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


def _log(env: dict[str, str]) -> str:
    stream = io.StringIO()
    configure_logging(stream, env)
    log = logging.getLogger("runbook.server")
    log.warning("truncated alerts of group %s", HOSTILE)
    log.debug("only at debug")
    try:
        raise ValueError(f"bad\n{FORGED}")
    except ValueError:
        log.exception("while handling %s", "x")
    return stream.getvalue()


def test_text_logs_escape_control_characters(restore_logging: None) -> None:
    lines = _log({}).splitlines()
    assert not [line for line in lines if line.startswith(FORGED)]
    assert lines[0].endswith(f"truncated alerts of group group\\r\\n{FORGED}\\x1b[2J\\0")
    assert "only at debug" not in "\n".join(lines)
    trace = lines[2:]
    assert trace and all(line.startswith("    ") for line in trace)


def test_json_logs_one_object_per_line(restore_logging: None) -> None:
    lines = _log({"RUNBOOK_LOG_FORMAT": "json", "RUNBOOK_LOG_LEVEL": "debug"}).splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["level"] for r in records] == ["warning", "debug", "error"]
    assert records[0]["message"] == f"truncated alerts of group {HOSTILE}" and records[0]["logger"] == "runbook.server"
    assert "ValueError: bad" in records[2]["exception"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_messages_and_tracebacks_are_redacted(restore_logging: None, fmt: str) -> None:
    """An exception's text is logged as it is (with its traceback): a URL with credentials or a token in
    it is replaced where the line is written, whoever logged it."""
    password, token = "Kq8vZ2pL9xW4rT7m", "ghp_Q4w8E2r6T0y3U7i1O5p9A2s6D0f4G8h2J6k0"
    stream = io.StringIO()
    configure_logging(stream, {"RUNBOOK_LOG_FORMAT": fmt})
    log = logging.getLogger("runbook.engine")
    try:
        raise ConnectionError(f"POST https://admin:{password}@10.0.0.1/apis failed")
    except ConnectionError as exc:
        log.exception("engine error in run r1: %s", exc, extra={"header": f"Authorization: token {token}"})
    text = stream.getvalue()
    assert password not in text and token not in text
    assert "engine error in run r1: POST https://admin:[REDACTED:" in text
    assert "ConnectionError: POST https://admin:[REDACTED:" in text  # the traceback's last line


@pytest.mark.parametrize("env", [{"RUNBOOK_LOG_FORMAT": "xml"}, {"RUNBOOK_LOG_LEVEL": "loud"}])
def test_bad_settings_are_named(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match=next(iter(env))):
        configure_logging(io.StringIO(), env)
    done = subprocess.run([sys.executable, "-m", "integrations.app.cli", "list"], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and next(iter(env)) in done.stderr


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_serve_logs_cannot_be_forged(tmp_path: Path, fmt: str) -> None:
    config = tmp_path / "runbook.yaml"
    config.write_text(yaml.safe_dump({"db": str(tmp_path / "runs.db"), "workers": 1,
                                      "runbook_path": [str(ROOT / "runbooks" / "node-not-ready.yaml")]}))
    port = _port()
    env = {**os.environ, "RUNBOOK_CONFIG": str(config), "RUNBOOK_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
           "RUNBOOK_LOG_FORMAT": fmt}
    code = ("from engine.settings import Settings; from integrations.app.serve import serve; "
            f"serve(Settings.load(), '127.0.0.1', {port}, kube=object())")
    log_path = tmp_path / "serve.log"
    process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log_path.open("wb"),
                               stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_serving(url, process, log_path, "/healthz")
        body = alert_payload([alert("SomethingElse", {"x": HOSTILE})], groupKey=HOSTILE, truncatedAlerts=2)
        answer = httpx.post(f"{url}/hooks/alertmanager", json=body, timeout=10,
                            headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"})
        assert answer.status_code == 200, answer.text
        wait_for(lambda: "truncated" in log_path.read_text(), timeout=10, what="the warning in the log")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
    lines = log_path.read_text().splitlines()
    assert lines and not [line for line in lines if line.startswith(FORGED) or "\x1b" in line or "\x00" in line]
    if fmt == "json":
        records = [json.loads(line) for line in lines]
        warning = next(r for r in records if "truncated" in r["message"])
        assert HOSTILE in warning["message"]
        assert any(r["logger"] == "uvicorn.access" for r in records)  # uvicorn's records are JSON too
    else:
        assert any("truncated" in line and "\\r\\n" + FORGED in line for line in lines)


def test_the_terminal_shows_control_characters_from_the_cluster_escaped(tmp_path: Path) -> None:
    """A pod log line with ESC/NUL reaches `runbook run` progress and `runbook show` as visible escapes."""
    scenario = ROOT / "runbooks" / "scenarios" / "billing-cronjob-failed" / "exit-code.yaml"
    docs = list(yaml.safe_load_all(scenario.read_text()))
    for doc in docs:
        annotations = (doc or {}).get("metadata", {}).get("annotations") or {}
        if "kubesim.runbook.dev/log" in annotations:
            annotations["kubesim.runbook.dev/log"] += "\x1b[2J\x1b]0;pwned\x07 cleared\x00\n"
    planted = tmp_path / "scenario.yaml"
    planted.write_text(scenario.read_text().split("---", 1)[0] + "---\n" + yaml.safe_dump_all(docs))
    env = {**os.environ, "RUNBOOK_DB": str(tmp_path / "runs.db")}
    cli = [sys.executable, "-m", "integrations.app.cli"]
    ran = subprocess.run([*cli, "run", "billing-cronjob-failed", "-p", "cronjob=billing-monthly", "--scenario",
                          str(planted), "--runbooks", str(ROOT / "runbooks")], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=120)
    run_id = next(line.split("run ")[-1].split()[0] for line in ran.stderr.splitlines() if "▶" in line)
    shown = subprocess.run([*cli, "show", run_id], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert shown.returncode == 0, shown.stderr
    for output in (ran.stdout, ran.stderr, shown.stdout):
        assert "\x1b" not in output and "\x00" not in output and "\x07" not in output
    assert "\\x1b[2J\\x1b]0;pwned\\x07 cleared\\0" in ran.stderr + shown.stdout
