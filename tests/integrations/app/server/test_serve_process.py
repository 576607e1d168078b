"""`serve()` as `runbook serve` runs it: its own process, settings from a file and RUNBOOK_* variables,
the Kubernetes client opened from a kubeconfig (the simulator's), Slack through the fake; stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from integrations.kubesim import SimulatedCluster, load_scenario
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

ROOT = Path(__file__).resolve().parents[4]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_process(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "runbooks" / "scenarios" / "kubesim-basic.yaml")
    with SimulatedCluster(objects=scenario) as sim, FakeSlack() as fake:
        config = tmp_path / "runbook.yaml"
        config.write_text(yaml.safe_dump({
            "db": str(tmp_path / "runs.db"), "runbook_path": [str(ROOT / "runbooks" / "node-not-ready.yaml")],
            "kubeconfig": str(sim.write_kubeconfig(tmp_path / "kubeconfig")), "slack_api_url": fake.url,
            "slack_channel": "C0OPS", "workers": 2}), encoding="utf-8")
        env = {**os.environ, "RUNBOOK_CONFIG": str(config), "RUNBOOK_SLACK_BOT_TOKEN": fake.token,
               "RUNBOOK_SLACK_SIGNING_SECRET": SIGNING_SECRET, "RUNBOOK_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
               "RUNBOOK_READ_TOKEN": READ_TOKEN}
        port = _port()
        code = ("from engine.settings import Settings; from integrations.app.serve import serve; "
                f"serve(Settings.load(), '127.0.0.1', {port})")
        log = (tmp_path / "serve.log").open("wb")
        process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=tmp_path)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_serving(url, process, tmp_path / "serve.log")
            body = alert_payload([alert("KubeNodeNotReady", {"node": "worker-c", "severity": "critical"})])
            auth = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
            started = httpx.post(f"{url}/hooks/alertmanager", json=body, headers=auth, timeout=10).json()["started"]
            run_id = started[0]["run_id"]
            read = {"Authorization": f"Bearer {READ_TOKEN}"}
            wait_for(lambda: httpx.get(f"{url}/runs/{run_id}", headers=read, timeout=5).json()["status"]
                     == "awaiting_approval", timeout=60, what="the run to await approval")
            wait_for(lambda: "Approval needed" in fake.transcript(), timeout=30, what="the card in Slack")
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                # uvicorn shuts down gracefully, then re-raises the signal so the exit status reflects it
                assert process.wait(30) in (0, -signal.SIGTERM), (tmp_path / "serve.log").read_text()
            finally:
                if process.poll() is None:
                    process.kill()
        output = (tmp_path / "serve.log").read_text()
        assert "loaded 1 runbook(s): node-not-ready" in output and "Application shutdown complete" in output
        assert f"run {run_id} (node-not-ready) awaits approval of cordon" in output
        assert fake.token not in output and SIGNING_SECRET not in output
