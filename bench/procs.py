"""Child processes for figure 5: a simulator process and an engine process, so the engine's peak RSS is
its own (the 150,000-pod store lives in the other process).

`python -m bench.procs sim NODES PODS_PER_NODE NOT_READY` prints `URL <url>` when it serves, then answers
`count` / `reset` lines on stdin with the request count, and stops at EOF.
`python -m bench.procs engine URL NODE DB` runs node-not-ready once and prints one JSON line.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def serve_sim(nodes: int, pods_per_node: int, not_ready: str) -> None:
    from integrations.kubesim import SimulatedCluster, generate_cluster

    began = time.perf_counter()
    sim = SimulatedCluster(objects=generate_cluster(nodes, pods_per_node, not_ready=[not_ready])).start()
    print(f"URL {sim.url} {time.perf_counter() - began:.1f}", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "reset":
            sim.reset_requests()
            print("ok", flush=True)
        elif command == "count":
            print(json.dumps({"count": sim.request_count,
                              "requests": {f"{m} {p}": n for (m, p), n in sim.requests.items()}}), flush=True)
    sim.stop()


def _peak_rss_mb() -> float:
    """VmHWM from /proc (the kernel's peak resident set of this process), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_engine(url: str, node: str, db: str) -> None:
    from engine.settings import Settings
    from integrations.app.wiring import build
    from integrations.kubernetes.client import Kube

    with Kube.from_url(url, "admin-token") as kube:
        engine = build(Settings(db=db), kube=kube)
        runbook = engine.catalog.get("node-not-ready")
        began = time.perf_counter()
        run = engine.executor.run(runbook, {"node": node}, requester="bench")
        seconds = time.perf_counter() - began
        findings = [f.id for f in run.findings]
        engine.close()
    print(json.dumps({"seconds": seconds, "status": str(run.status), "peak_rss_mb": _peak_rss_mb(),
                      "findings": findings}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "sim":
        serve_sim(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "engine":
        run_engine(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(f"unknown role {sys.argv[1]!r}")
