"""Figure 2, diagnosis vs. the manual procedure, on the same simulated incident.

Ours: the real `node-not-ready` runbook run by the executor (in-process, as `runbook run` does) against
`kubelet-stopped.yaml`; it pauses at the first remediation, which is the diagnosis. The first run of a
fresh engine is reported (connection set-up and template compilation included).
Baseline: a bash script running the seven kubectl commands an engineer types for the same diagnosis,
against the same simulator. kubectl's discovery requests are real requests and count: the baseline is
run with an empty discovery cache (a fresh $HOME, as on a new laptop or bastion), and with a warm one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import SCENARIO, SIM_TOKEN, Row, progress
from engine.settings import Settings
from integrations.app.wiring import build
from integrations.kubernetes.client import Kube
from integrations.kubesim import SimulatedCluster

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
COMMANDS = (
    "get node node-b -o json",
    "describe node node-b",
    "get pods -A --field-selector spec.nodeName=node-b -o wide",
    "get events -A --field-selector involvedObject.name=node-b",
    "get lease -n kube-node-lease node-b -o yaml",
    "get nodes",
    "get pdb -A",
)


def manual_script(kubeconfig: Path) -> str:
    lines = ["set -e", f"export KUBECONFIG={kubeconfig}"]
    lines += [f"{KUBECTL} {command} >/dev/null" for command in COMMANDS]
    return "\n".join(lines) + "\n"


def run_manual(sim: SimulatedCluster, tmp: Path, home: Path) -> tuple[float, int]:
    """(seconds, API requests) of one pass of the kubectl script with `home` as $HOME (its discovery cache)."""
    script = tmp / "diagnose.sh"
    script.write_text(manual_script(sim.write_kubeconfig(tmp / "kubeconfig")), encoding="utf-8")
    env = {**os.environ, "HOME": str(home)}
    sim.reset_requests()
    began = time.perf_counter()
    subprocess.run(["bash", str(script)], check=True, env=env, timeout=120)
    return time.perf_counter() - began, sim.request_count


def run_ours(sim: SimulatedCluster, tmp: Path) -> tuple[float, int, str]:
    """(seconds, API requests, status) of the first node-not-ready run of a freshly built engine."""
    with Kube.from_url(sim.url, SIM_TOKEN) as kube:
        engine = build(Settings(db=str(tmp / "runs.db")), kube=kube)
        runbook = engine.catalog.get("node-not-ready")
        sim.reset_requests()
        began = time.perf_counter()
        run = engine.executor.run(runbook, {"node": "node-b"}, requester="bench")
        seconds = time.perf_counter() - began
        count = sim.request_count
        engine.close()
    return seconds, count, str(run.status)


def run() -> list[Row]:
    progress("fig2: diagnosis vs kubectl")
    with tempfile.TemporaryDirectory() as name, SimulatedCluster.from_files([SCENARIO]) as sim:
        tmp = Path(name)
        ours_s, ours_req, status = run_ours(sim, tmp)
        if not shutil.which(KUBECTL):
            why = f"kubectl not found at {KUBECTL}"
            return [Row("2. diagnosis wall time", ours_s * 1000, "ms", note=why),
                    Row("2. diagnosis API requests", ours_req, "req", note=why)]
        home = tmp / "home"
        home.mkdir()
        cold_s, cold_req = run_manual(sim, tmp, home)
        warm_s, warm_req = run_manual(sim, tmp, home)
    note = (f"ours ended {status}; kubectl with a warm discovery cache: {warm_s * 1000:.0f} ms, "
            f"{warm_req} requests")
    time_row = Row("2. diagnosis wall time (node-not-ready vs 7 kubectl cmds)", ours_s * 1000, "ms",
                   baseline=cold_s * 1000, baseline_what="kubectl script", target=">= 5x faster", note=note)
    time_row.met = (time_row.ratio or 0) >= 5
    req_row = Row("2. diagnosis API requests", ours_req, "req", baseline=cold_req, baseline_what="kubectl script",
                  target="fewer", met=ours_req < min(cold_req, warm_req),
                  note=f"warm-cache kubectl: {warm_req} requests")
    progress(f"fig2 done: ours {ours_s:.3f}s/{ours_req} req, kubectl cold {cold_s:.3f}s/{cold_req}, "
             f"warm {warm_s:.3f}s/{warm_req}")
    return [time_row, req_row]
