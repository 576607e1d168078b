"""Secrets planted in a cluster (a CronJob's env values and container arguments, a failed pod's log) or typed
by people (params of `/runbook run` and `runbook run -p`, a freeze reason) never surface anywhere a value can:
what is sent to Slack, the server log, the CLI's output, `runbook show` (text and JSON), `GET /runs/{id}`, the
audit log (`runbook audit`), and the bytes of the run store's files. Markers are keyed per installation:
the serve process and the CLI (two processes on one store) mark a secret alike.

The whole path runs for real: `serve()` in its own process, the billing runbook diagnosing a failed run,
proposing a recovery Job built from the CronJob (whose body carries the env), approved in Slack, executed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from integrations.kubesim import SimulatedCluster, load_scenario
from integrations.kubesim.scenario import scenario_now
from integrations.testing.server import (
    READ_TOKEN,
    SIGNING_SECRET,
    WEBHOOK_TOKEN,
    alert,
    alert_payload,
    wait_for,
    wait_serving,
)
from integrations.testing.slack_fake import FakeSlack

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = ROOT / "runbooks" / "scenarios" / "billing-cronjob-failed" / "exit-code.yaml"
APPROVER = "U0APPROVER"

ENV = {  # name -> value, in the CronJob's job template: each value must vanish
    "STRIPE_KEY": "sk_live_51HbQ2rKx9vT3mN7pL4wY8zA",
    "GITHUB_PAT": "ghp_Q4w8E2r6T0y3U7i1O5p9A2s6D0f4G8h2J6k0",
    "NPM_AUTH": "npmAuthTok3nPlain",
    "DB_PASS": "correct-horse-battery-staple",
    "SENTRY_DSN": "https://9f3c2b1a8e7d4c6b5a4f3e2d1c0b9a8f@o447.ingest.sentry.io/5512",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0ABCDEF/B0GHIJKL/q1w2e3r4t5y6u7i8o9p0asdf",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ9vL2mN8k",
}
ARGS = ["--password", "hunter2-billing-arg",
        "--token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiaWxsaW5nIn0.dGhpc2lzYXNpZ25hdHVyZQ"]
LOG = [  # (line, the secret in it)
    ("charging card with sk_live_LOGa8Kd93jfQ0pZ7xW2vN5", "sk_live_LOGa8Kd93jfQ0pZ7xW2vN5"),
    ("restricted rk_live_LOGr3stricted9Kd93jfQ0pZ", "rk_live_LOGr3stricted9Kd93jfQ0pZ"),
    ("pushing with gho_LOG16C7e42F292c6912E7710c838347Ae178", "gho_LOG16C7e42F292c6912E7710c838347Ae178"),
    ("git clone https://x-access-token:ghs_LOG9aB8cD7eF6gH5iJ4kL3mN2oP1qR0s@github.com/acme/billing",
     "ghs_LOG9aB8cD7eF6gH5iJ4kL3mN2oP1qR0s"),
    ("fine-grained github_pat_LOG11ABCDEFG0123456789_abcdefghijklmnop", "github_pat_LOG11ABCDEFG0123456789"),
    ("slack token xoxb-2718281828-3141592653-LOGtokenAbCdEf", "xoxb-2718281828-3141592653-LOGtokenAbCdEf"),
    ("AWS key AKIALOGQ7X2M4N6P8R0T in use", "AKIALOGQ7X2M4N6P8R0T"),
    ("aws_secret_access_key=LOGsecretXUtnFEMI/K7MDENG/bPxRfiCY", "LOGsecretXUtnFEMI"),
    ('gcp {"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIELOGpemBODY0123456789'
     'abcdef\\n-----END PRIVATE KEY-----\\n"}', "MIIELOGpemBODY0123456789"),
    ("id token eyJhbGciOiJSUzI1NiJ9.eyJMT0ciOiJqd3QifQ.TE9Hc2lnbmF0dXJlMTIzNDU2", "eyJMT0ciOiJqd3QifQ"),
    ("GET /api with Authorization: Bearer LOGbearer7f9a2c4e6b8d0f1a3c5e", "LOGbearer7f9a2c4e6b8d0f1a3c5e"),
    ("exec billing --password LOGhunter2pw --period current", "LOGhunter2pw"),
    ("the session token is LOGq8Wz3Xr5Ty7Uv9Ab1Cd2Ef4Gh6", "LOGq8Wz3Xr5Ty7Uv9Ab1Cd2Ef4Gh6"),
    ("FATAL: password authentication failed: DATABASE_URL=postgres://billing:LOGdbpass99@db:5432/billing",
     "LOGdbpass99"),
]
TYPED = "sk_live_TYPEDq8Wz3Xr5Ty7Uv9Ab1Cd"  # one token typed as a param in chat and on the CLI
TYPED_REFUSED = "ghp_TYPEDr3fus3dQ4w8E2r6T0y3U7i1O5p9A2"  # typed where the param's pattern refuses it
FREEZE_PASSWORD = "FRZpw9Kd2xQ7"
NAMED = "hunter2wolf"  # a plain word typed under a credential's name (`db_password=`): hidden by the name
TYPED_SECRETS = [TYPED, TYPED_REFUSED, FREEZE_PASSWORD, NAMED]
NOTE_RUNBOOK = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: echo-note, title: Echo a note}
params:
  note: {type: string, required: true}
  db_password: {type: string, default: ""}
steps:
  - {id: keep, title: Keep the note, action: noop, with: {value: "{{ params.note }}"}}
  - {id: tell, title: Tell the channel, action: notify, with: {text: "note: {{ params.note }}"}}
"""
SECRETS = [*TYPED_SECRETS, *ENV.values(), *(a.split("=", 1)[-1] for a in ARGS[1:]), "eyJzdWIiOiJiaWxsaW5nIn0",
           *(s for _, s in LOG)]


def _plant(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for obj in objects:
        if obj["kind"] == "CronJob":
            container = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
            container["env"] = [*container["env"], *({"name": k, "value": v} for k, v in ENV.items())]
            container["args"] = [*container["args"], *ARGS]
        annotations = obj.get("metadata", {}).get("annotations") or {}
        if obj["kind"] == "Pod" and "kubesim.runbook.dev/log" in annotations:
            annotations["kubesim.runbook.dev/log"] += "\n".join(line for line, _ in LOG) + "\n"
    return objects


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(config: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "integrations.app.cli", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_planted_secrets_never_surface(tmp_path: Path) -> None:
    objects = _plant(load_scenario(SCENARIO))
    with SimulatedCluster(objects=objects, now=scenario_now(SCENARIO.read_text())) as sim, FakeSlack() as fake:
        config = tmp_path / "runbook.yaml"
        (tmp_path / "note.yaml").write_text(NOTE_RUNBOOK, encoding="utf-8")
        config.write_text(yaml.safe_dump({
            "db": str(tmp_path / "runs.db"),
            "runbook_path": [str(ROOT / "runbooks" / "billing-cronjob-failed.yaml"), str(tmp_path / "note.yaml")],
            "kubeconfig": str(sim.write_kubeconfig(tmp_path / "kubeconfig")), "slack_api_url": fake.url,
            "slack_channel": "C0OPS", "workers": 2, "approvers": [APPROVER]}), encoding="utf-8")
        env = {**os.environ, "RUNBOOK_CONFIG": str(config), "RUNBOOK_SLACK_BOT_TOKEN": fake.token,
               "RUNBOOK_SLACK_SIGNING_SECRET": SIGNING_SECRET, "RUNBOOK_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
               "RUNBOOK_READ_TOKEN": READ_TOKEN}
        port = _port()
        code = ("from engine.settings import Settings; from integrations.app.serve import serve; "
                f"serve(Settings.load(), '127.0.0.1', {port})")
        log_path = tmp_path / "serve.log"
        process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log_path.open("wb"),
                                   stderr=subprocess.STDOUT, cwd=tmp_path)
        url, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {READ_TOKEN}"}
        try:
            run_id = _drive(url, auth, fake, process, log_path)
            typed_ids, typed_output = _type_secrets(url, auth, config)
            from_api = httpx.get(f"{url}/runs/{run_id}", headers={**auth, "Accept": "application/json"}, timeout=10)
            page = httpx.get(f"{url}/runs/{run_id}", headers={**auth, "Accept": "text/html"}, timeout=10)
            assert from_api.status_code == page.status_code == 200, (from_api.text, page.text)
            typed_pages = [httpx.get(f"{url}/runs/{i}", headers={**auth, "Accept": accept}, timeout=10).text
                           for i in typed_ids for accept in ("application/json", "text/html")]
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            finally:
                if process.poll() is None:
                    process.kill()
        chat = json.dumps([call.params for call in fake.requests])
        created = [j for j in sim.list("Job", "billing")
                   if j["metadata"].get("annotations", {}).get("cronjob.kubernetes.io/instantiate") == "manual"]
    # redaction never changes what is sent: the Job the approval created carries the real values
    [job] = created
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in container["env"]} | ENV == {
        e["name"]: e.get("value") for e in container["env"]}
    assert container["args"][-len(ARGS):] == ARGS
    surfaces = {
        "chat": chat,
        "server log": log_path.read_text(),
        "show": _cli(config, "show", run_id),
        "show --output json": _cli(config, "show", run_id, "--output", "json"),
        "GET /runs (JSON)": from_api.text,
        "GET /runs (page)": page.text,
        "CLI run and its refusal": typed_output,
        "show (typed params)": "".join(_cli(config, "show", i, *o) for i in typed_ids for o in ((), ("-o", "json"))),
        "GET /runs (typed params)": "".join(typed_pages),
        "audit": _cli(config, "audit"),
        "run store files": b"".join(p.read_bytes() for p in tmp_path.glob("runs.db*")).decode("latin-1"),
    }
    leaks = {where: [secret for secret in SECRETS if secret in text] for where, text in surfaces.items()}
    assert not any(leaks.values()), {where: found for where, found in leaks.items() if found}
    # and the values were there to leak: each surface that shows them shows markers instead
    for where in ("chat", "show", "show --output json", "GET /runs (JSON)", "GET /runs (page)", "audit",
                  "run store files"):
        assert "[REDACTED:" in surfaces[where], where
    shown = json.loads(surfaces["show --output json"])
    executed = shown["mutations"][0]["request"]["body"]["spec"]["template"]["spec"]["containers"][0]
    # one secret typed in chat (the serve process) and on the CLI (another process) gets one marker
    typed_params = [json.loads(_cli(config, "show", i, "--output", "json"))["params"]["note"] for i in typed_ids]
    assert typed_params[0] == typed_params[1] and re.fullmatch(r"the token \[REDACTED:[0-9a-f]{8}\]", typed_params[0])
    assert executed["image"] == "registry.example.com/billing/runner:2026.11.2" and executed["name"] == "runner"
    assert all(e.get("value", "[REDACTED:").startswith("[REDACTED:") for e in executed["env"])


def _slash(url: str, text: str) -> str:
    """`/runbook <text>` from the approver, as Slack sends it; the reply's text."""
    from urllib.parse import urlencode

    from integrations.slack import sign
    form = urlencode({"command": "/runbook", "text": text, "user_id": APPROVER, "user_name": "approver",
                      "channel_id": "C0OPS", "team_id": "T0FAKE", "response_url": "http://127.0.0.1:9/x"}).encode()
    answer = httpx.post(f"{url}/slack/commands", content=form, timeout=10,
                        headers={"Content-Type": "application/x-www-form-urlencoded", **sign(SIGNING_SECRET, form)})
    assert answer.status_code == 200, answer.text
    return str(answer.json().get("text", ""))


def _type_secrets(url: str, auth: dict[str, str], config: Path) -> tuple[list[str], str]:
    """Type secrets where people type: a param in chat and on the CLI (the same token: its runs' ids), a param
    whose pattern refuses it (chat and CLI), a freeze reason. Returns the runs' ids and the replies and CLI
    output."""
    started = _slash(url, f"run echo-note note='the token {TYPED}' db_password={NAMED}")
    match = re.search(r"Started run `?([0-9a-z-]+)", started)
    assert match, started
    refused = _slash(url, f"run billing-cronjob-failed cronjob={TYPED_REFUSED}")
    assert "does not match the pattern" in refused and "[REDACTED:" in refused, refused
    froze = _slash(url, f"freeze on bridge at https://oncall:{FREEZE_PASSWORD}@bridge.example/room")
    froze += _slash(url, "freeze off")
    cli_run = subprocess.run([sys.executable, "-m", "integrations.app.cli", "run", "echo-note", "-p",
                              f"note=the token {TYPED}", "-p", f"db_password={NAMED}", "--config", str(config),
                              "--output", "json"],
                             capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert cli_run.returncode == 0, cli_run.stderr
    cli_refused = subprocess.run([sys.executable, "-m", "integrations.app.cli", "run", "billing-cronjob-failed",
                                  "-p", f"cronjob={TYPED_REFUSED}", "--config", str(config)],
                                 capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert cli_refused.returncode == 2 and "does not match the pattern" in cli_refused.stderr, cli_refused.stderr

    def finished(run_id: str) -> bool:
        answer = httpx.get(f"{url}/runs/{run_id}", headers={**auth, "Accept": "application/json"}, timeout=5)
        return str(answer.json()["status"]) == "succeeded"

    wait_for(lambda: finished(match.group(1)), timeout=60, what="the run started from chat")
    ids = [match.group(1), json.loads(cli_run.stdout)["run_id"]]
    return ids, started + refused + froze + cli_run.stdout + cli_run.stderr + cli_refused.stdout + cli_refused.stderr


def _drive(url: str, auth: dict[str, str], fake: FakeSlack, process: subprocess.Popen[bytes], log: Path) -> str:
    """Alert -> diagnosis -> proposal -> approval in Slack -> executed; the run's id."""
    wait_serving(url, process, log)
    body = alert_payload([alert("BillingRunMissed", {"namespace": "billing", "cronjob": "billing-monthly",
                                                     "severity": "critical"})])
    hook = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
    started = httpx.post(f"{url}/hooks/alertmanager", json=body, headers=hook, timeout=10).json()["started"]
    run_id: str = started[0]["run_id"]

    def status() -> str:
        answer = httpx.get(f"{url}/runs/{run_id}", headers={**auth, "Accept": "application/json"}, timeout=5)
        return str(answer.json()["status"])

    wait_for(lambda: status() == "awaiting_approval", timeout=60, what="the recovery run proposal")
    wait_for(lambda: "Approval needed" in fake.transcript(), timeout=30, what="the card in Slack")
    value = json.dumps({"run": run_id, "step": "recovery_run"}, separators=(",", ":"))
    payload = {"type": "block_actions", "user": {"id": APPROVER, "username": "approver"},
               "channel": {"id": "C0OPS"}, "container": {"type": "message", "channel_id": "C0OPS"},
               "actions": [{"action_id": "runbook_approve", "value": value, "type": "button"}]}
    from urllib.parse import urlencode

    from integrations.slack import sign
    form = urlencode({"payload": json.dumps(payload)}).encode()
    answer = httpx.post(f"{url}/slack/interactions", content=form, timeout=10,
                        headers={"Content-Type": "application/x-www-form-urlencoded", **sign(SIGNING_SECRET, form)})
    assert answer.status_code == 200, answer.text
    wait_for(lambda: status() in ("succeeded", "failed"), timeout=60, what="the run to finish")
    assert status() == "succeeded", log.read_text()
    wait_for(lambda: "succeeded" in fake.transcript().lower(), timeout=30, what="the result in Slack")
    return run_id
