"""Secrets planted in a cluster (a CronJob's env values and container arguments, a failed pod's log) never
surface anywhere a value can: what is sent to Slack, the server log, `runbook show` (text and JSON),
`GET /runs/{id}`, the audit log (`runbook audit`), and the bytes of the run store's files.

The whole path runs for real: `serve()` in its own process, the billing runbook diagnosing a failed run,
proposing a recovery Job built from the CronJob (whose body carries the env), approved in Slack, executed.
"""

from __future__ import annotations

import json
import os
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
SECRETS = [*ENV.values(), *(a.split("=", 1)[-1] for a in ARGS[1:]), "eyJzdWIiOiJiaWxsaW5nIn0", *(s for _, s in LOG)]


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
        config.write_text(yaml.safe_dump({
            "db": str(tmp_path / "runs.db"), "runbook_path": [str(ROOT / "runbooks" / "billing-cronjob-failed.yaml")],
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
            from_api = httpx.get(f"{url}/runs/{run_id}", headers={**auth, "Accept": "application/json"}, timeout=10)
            page = httpx.get(f"{url}/runs/{run_id}", headers={**auth, "Accept": "text/html"}, timeout=10)
            assert from_api.status_code == page.status_code == 200, (from_api.text, page.text)
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
    assert executed["image"] == "registry.example.com/billing/runner:2026.11.2" and executed["name"] == "runner"
    assert all(e.get("value", "[REDACTED:").startswith("[REDACTED:") for e in executed["env"])


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
