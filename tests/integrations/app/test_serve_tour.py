"""`runbook serve --fake-slack` as a person would use it: its own process against a simulated cluster, an
alert from "Alertmanager", the channel printed as it changes, an approval typed on stdin."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from integrations.app.cli.serve import changed_lines
from integrations.testing.server import WEBHOOK_TOKEN, alert, alert_payload, wait_for

ROOT = Path(__file__).resolve().parents[3]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Output:
    """Everything the process prints, collected by a thread so the pipe never fills."""

    def __init__(self, stream: object) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)


def test_tour_prints_the_channel_and_takes_commands_on_stdin(tmp_path: Path) -> None:
    port = _port()
    env = {**os.environ, "RUNBOOK_DB": str(tmp_path / "runs.db"), "RUNBOOK_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
           "RUNBOOK_RUNBOOK_PATH": str(ROOT / "runbooks" / "node-not-ready.yaml"), "PYTHONUNBUFFERED": "1"}
    scenario = ROOT / "runbooks" / "scenarios" / "node-not-ready" / "kubelet-stopped.yaml"
    process = subprocess.Popen([sys.executable, "-m", "integrations.app.cli", "serve", "--fake-slack", "--port",
                                str(port), "--scenario", str(scenario)], env=env, cwd=tmp_path, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdin is not None
    output = Output(process.stdout)
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert process.poll() is None, output.text
            try:
                return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout=60, what="the server to be ready")
        body = alert_payload([alert("KubeNodeNotReady", {"node": "node-b", "severity": "critical"})])
        started = httpx.post(f"{url}/hooks/alertmanager", json=body, timeout=10,
                             headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"}).json()["started"]
        run_id = started[0]["run_id"]
        wait_for(lambda: "Approval needed" in output.text, timeout=60, what=f"the approval card\n{output.text}")
        assert "── Slack (fake) ──" in output.text and "node-b" in output.text

        process.stdin.write(f"approve {run_id} cordon\n")
        process.stdin.flush()
        wait_for(lambda: f"Approved `cordon` of run `{run_id}`" in output.text, timeout=30,
                 what=f"the slash command's answer\n{output.text}")
        wait_for(lambda: output.text.count("Approval needed") >= 2, timeout=60,
                 what=f"the second proposal after the cordon\n{output.text}")
        token = re.search(r"http://tour:(\S+)@127\.0\.0\.1:\d+/runs", output.text)
        assert token, output.text
        page = httpx.get(f"{url}/runs/{run_id}", headers={"Authorization": f"Bearer {token.group(1)}"}, timeout=10)
        assert page.status_code == 200 and page.json()["status"] == "awaiting_approval"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(30) in (0, -signal.SIGTERM), output.text
        finally:
            if process.poll() is None:
                process.kill()


def test_only_new_and_edited_lines_are_printed() -> None:
    before = ["#C1", "  parent: running", "    ↳ finding"]
    after = ["#C1", "  parent: succeeded (edited 1x)", "    ↳ finding", "    ↳ done"]
    assert changed_lines(before, after) == ["  parent: succeeded (edited 1x)", "    ↳ done"]
    assert changed_lines(after, after) == []
