"""The Event-Driven Ansible peer of figure 3: ansible-rulebook + ansible-core in a bench-only venv
(`bench/.work/eda-venv`, created on first use and cached), its built-in webhook source receiving the same
Alertmanager webhook, and a playbook posting the first message to the same Slack fake.

Everything that can go wrong here (no network, no JDK, a failed install) becomes a reason string that
the table shows instead of a number; our own figures are measured regardless.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.common import ROOT, WORK, progress
from bench.fig3_ours import first_times
from integrations.testing.alertmanager import Alertmanager, free_port
from integrations.testing.slack_fake import FakeSlack

VENV = WORK / "eda-venv"
EDA_DIR = ROOT / "bench" / "eda"
PACKAGES = ("ansible-rulebook==1.3.2", "ansible-core==2.19.14")
JAVA_CANDIDATES = ("/usr/lib/jvm/java-17-openjdk-amd64", "/usr/lib/jvm/default-java")


class PeerUnavailable(Exception):
    """The peer cannot run on this machine; the message says exactly why."""


def java_home() -> str:
    home = os.environ.get("JAVA_HOME")
    for candidate in (home, *JAVA_CANDIDATES):
        if candidate and Path(candidate, "bin", "java").exists():
            return candidate
    java = shutil.which("java")
    if java:
        return str(Path(os.path.realpath(java)).parents[1])
    raise PeerUnavailable("no JDK: ansible-rulebook needs Java 17 (JAVA_HOME or java on PATH)")


def ensure_venv(timeout: float = 420.0) -> Path:
    """The venv's ansible-rulebook, installing it from PyPI the first time (then cached under bench/.work)."""
    rulebook = VENV / "bin" / "ansible-rulebook"
    if rulebook.exists() and (VENV / "bin" / "ansible-playbook").exists():
        return rulebook
    progress("fig3 peer: installing ansible-rulebook and ansible-core into bench/.work/eda-venv")
    WORK.mkdir(parents=True, exist_ok=True)
    python = shutil.which("python3.11") or sys.executable
    try:
        subprocess.run([python, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=120)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", *PACKAGES], check=True,
                       capture_output=True, text=True, timeout=timeout)
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise PeerUnavailable(f"pip install {' '.join(PACKAGES)} failed: {tail[0][:160]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise PeerUnavailable(f"installing {' '.join(PACKAGES)} took over {exc.timeout:.0f}s") from exc
    if not rulebook.exists():
        raise PeerUnavailable("ansible-rulebook was not installed into bench/.work/eda-venv")
    return rulebook


def version() -> str:
    try:
        rulebook = VENV / "bin" / "ansible-rulebook"
        out = subprocess.run([str(rulebook), "--version"], capture_output=True, text=True, timeout=60,
                             env=_env()).stdout
        return out.splitlines()[0].strip() if out else "unknown"
    except (OSError, subprocess.SubprocessError, PeerUnavailable):
        return "not installed"


def _env() -> dict[str, str]:
    home = java_home()
    path = f"{VENV / 'bin'}:{home}/bin:{os.environ.get('PATH', '')}"
    return {**os.environ, "JAVA_HOME": home, "PATH": path, "ANSIBLE_LOCAL_TEMP": str(WORK / "ansible-tmp"),
            "ANSIBLE_HOME": str(WORK / "ansible-home"), "ANSIBLE_NOCOLOR": "1"}


def _wait_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PeerUnavailable(f"ansible-rulebook exited with {process.returncode} before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise PeerUnavailable(f"ansible-rulebook's webhook did not listen within {timeout:.0f}s")


def measure(alerts: int = 10, timeout_each: float = 60.0) -> dict[str, object]:
    """Fire `alerts` alerts one at a time (each waits for its Slack message): the peer's best case."""
    rulebook = ensure_venv()
    env = _env()
    nodes = [f"node-{i:05d}" for i in range(alerts)]
    with tempfile.TemporaryDirectory() as name, FakeSlack(rate_limits=False) as fake:  # as for our side (fig3_ours)
        tmp = Path(name)
        port = free_port()
        variables = tmp / "vars.yml"
        variables.write_text(yaml.safe_dump({"webhook_port": port, "slack_url": fake.url.rstrip("/") + "/",
                                             "slack_token": fake.token}), encoding="utf-8")
        log = (tmp / "rulebook.log").open("wb")
        process = subprocess.Popen(
            [str(rulebook), "--rulebook", str(EDA_DIR / "rulebook.yml"), "-i", str(EDA_DIR / "inventory.yml"),
             "--vars", str(variables)],
            cwd=EDA_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            began = time.monotonic()
            _wait_port(port, process, 120)
            startup = time.monotonic() - began
            with Alertmanager(tmp / "am", f"http://127.0.0.1:{port}/endpoint", send_resolved=False,
                              repeat_interval="1h") as am:
                sent: dict[str, float] = {}
                for node in nodes:
                    sent[node] = am.fire({"alertname": "KubeNodeNotReady", "node": node, "severity": "critical"})
                    deadline = time.monotonic() + timeout_each
                    while node not in first_times(fake, [node])[0] and time.monotonic() < deadline:
                        time.sleep(0.01)
                first, _ = first_times(fake, nodes)
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            log.close()
            (WORK / "eda-rulebook.log").write_bytes((tmp / "rulebook.log").read_bytes())
    if not first:
        raise PeerUnavailable("ansible-rulebook ran but posted no Slack message (see bench/.work/eda-rulebook.log)")
    return {"sent": sent, "first": first, "startup_s": startup}
