"""Figure 5, a large cluster: 5,000 nodes and 150,000 pods, one node NotReady.

The simulator runs in one child process and the engine in another, so the engine's peak RSS (VmHWM of
its own process) excludes the simulated store. Run time is the executor's `run` of node-not-ready (to
its pause at the first remediation), requests are counted by the simulator.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, Row, progress


def measure(nodes: int = 5000, pods_per_node: int = 30) -> dict[str, object]:
    not_ready = f"node-{nodes // 2:0{max(5, len(str(nodes - 1)))}d}"
    sim = subprocess.Popen([sys.executable, "-m", "bench.procs", "sim", str(nodes), str(pods_per_node), not_ready],
                           cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert sim.stdin is not None and sim.stdout is not None
    try:
        ready = sim.stdout.readline().split()
        if not ready or ready[0] != "URL":
            raise RuntimeError("the simulator process did not start")
        url, build_s = ready[1], float(ready[2])
        sim.stdin.write("reset\n")
        sim.stdin.flush()
        sim.stdout.readline()
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run([sys.executable, "-m", "bench.procs", "engine", url, not_ready,
                                   str(Path(tmp) / "runs.db")], cwd=ROOT, capture_output=True, text=True,
                                  timeout=300, check=True)
        result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        sim.stdin.write("count\n")
        sim.stdin.flush()
        counted = json.loads(sim.stdout.readline())
    finally:
        if sim.stdin:
            sim.stdin.close()
        sim.wait(60)
    return {**result, "requests": counted["count"], "by_path": counted["requests"], "sim_build_s": build_s}


def run(nodes: int = 5000, pods_per_node: int = 30) -> list[Row]:
    progress(f"fig5: {nodes} nodes x {pods_per_node} pods")
    res = measure(nodes, pods_per_node)
    seconds, requests, rss = float(res["seconds"]), int(res["requests"]), float(res["peak_rss_mb"])  # type: ignore[arg-type]
    size = f"{nodes} nodes, {nodes * pods_per_node} pods"
    rows = [
        Row(f"5. large cluster run time ({size})", seconds, "s", target="< 2 s", met=seconds < 2,
            note=f"status {res['status']}"),
        Row("5. large cluster API requests", requests, "req", target="<= 15", met=requests <= 15),
        Row("5. large cluster engine peak RSS", rss, "MB", target="< 250 MB", met=rss < 250,
            note="VmHWM of the engine process alone"),
    ]
    progress(f"fig5 done: {res}")
    return rows
