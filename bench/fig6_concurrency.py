"""Figure 6, concurrency: 200 node-not-ready runs at once (different NotReady nodes) against the simulator
with 20 ms injected latency on every API request, carried by the server's own `RunQueue`
(`integrations.app.server.workers`) sized like `runbook serve`: `settings.workers`, and a wider pool for contrast.

Run time is each `executor.resume` call (start to pause or finish, queue wait excluded); the serial
estimate is their sum; overlap factor = serial estimate / total wall time (1 = fully queued).
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from bench.common import SIM_TOKEN, Row, percentile, progress
from bench.fig3_ours import node_names
from engine.records import RunStatus
from engine.settings import Settings
from integrations.app.server.workers import RunQueue
from integrations.app.wiring import build
from integrations.kubernetes.client import Kube
from integrations.kubesim import SimulatedCluster, generate_cluster

WAITING = (RunStatus.PENDING, RunStatus.RUNNING)


def measure(runs: int = 200, workers: int | None = None, nodes: int = 1000, latency: float = 0.02,
            sim: SimulatedCluster | None = None) -> dict[str, float]:
    targets = node_names(runs, nodes)
    own = sim is None
    if sim is None:
        sim = SimulatedCluster(objects=generate_cluster(nodes=nodes, pods_per_node=5, not_ready=targets)).start()
    rule = sim.faults.add(path=".*", latency=latency)
    durations: list[float] = []
    lock = threading.Lock()
    try:
        with tempfile.TemporaryDirectory() as tmp, Kube.from_url(sim.url, SIM_TOKEN) as kube:
            settings = Settings(db=str(Path(tmp) / "runs.db"))
            size = workers or settings.workers
            engine = build(settings, kube=kube)
            runbook = engine.catalog.get("node-not-ready")

            def timed_resume(run_id: str) -> None:
                began = time.perf_counter()
                engine.executor.resume(run_id)
                with lock:
                    durations.append(time.perf_counter() - began)

            pool = RunQueue(timed_resume, workers=size, capacity=settings.queue_size)
            pool.start()
            ids = [engine.executor.start(runbook, {"node": n}, requester="bench")[0] for n in targets]
            began = time.perf_counter()
            for run_id in ids:
                pool.submit(run_id)
            while len(durations) < len(ids) and time.perf_counter() - began < 300:
                time.sleep(0.02)
            total = time.perf_counter() - began
            pool.stop()
            statuses = [engine.store.get_run(i).status for i in ids]
            engine.close()
    finally:
        sim.faults.remove(rule)
        if own:
            sim.stop()
    serial = sum(durations)
    return {"total_s": total, "p50_s": percentile(durations, 50), "p99_s": percentile(durations, 99),
            "serial_s": serial, "overlap": serial / total if total else 0.0, "workers": float(size),
            "done": float(sum(s not in WAITING for s in statuses)),
            "awaiting": float(statuses.count(RunStatus.AWAITING_APPROVAL))}


def run(runs: int = 200, wide: int = 32) -> list[Row]:
    progress(f"fig6: {runs} runs at once, 20 ms API latency")
    nodes = 1000
    targets = node_names(runs, nodes)
    with SimulatedCluster(objects=generate_cluster(nodes=nodes, pods_per_node=5, not_ready=targets)) as sim:
        default = measure(runs, None, nodes, sim=sim)
        wider = measure(runs, wide, nodes, sim=sim)
    rows = []
    for label, res in (("server pool", default), ("wide pool", wider)):
        rows.append(Row(f"6. {runs} concurrent runs, {label} ({res['workers']:.0f} workers): total", res["total_s"],
                        "s", baseline=res["serial_s"], baseline_what="serial estimate (sum of run times)",
                        target="runs overlap", met=res["overlap"] > 0.8 * res["workers"],
                        note=f"p50 run {res['p50_s']:.2f} s, p99 run {res['p99_s']:.2f} s, overlap factor "
                        f"{res['overlap']:.1f} of {res['workers']:.0f}; {res['done']:.0f}/{runs} done, "
                        f"{res['awaiting']:.0f} awaiting approval"))
        progress(f"fig6 {label}: {res}")
    return rows
