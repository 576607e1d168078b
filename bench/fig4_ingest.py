"""Figure 4, webhook ingestion: the load generator (`bench.loadgen`, its own process) against `runbook serve`
(create_app on uvicorn via `Harness`, default workers/queue size, no Slack) whose one runbook matches every
alert and maps the `node` label to its param, so dedup identities are the distinct nodes sent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from bench.common import ROOT, Row, percentile, progress
from engine.actions import ActionRegistry
from engine.builtins import register_builtins
from engine.settings import Settings
from integrations.testing.server import WEBHOOK_TOKEN, Harness, alert, alert_payload, make_engine, server_settings

RUNBOOK = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: bench-node-down, title: Bench node down, severity: warning}
params:
  node: {type: string, required: true}
triggers:
  alerts:
    - match: {alertname: BenchNodeDown}
      params: {node: node}
steps:
  - id: look
    title: Look at {{ params.node }}
    action: noop
    with: {value: "{{ params.node }}"}
"""


WARM_NODES = 3


def warm_up(harness: Harness) -> None:
    """A server that has been up for a while is not cold when a storm hits: send 100 alerts for a few
    other nodes first (their runs are left out of the dedup count), so first-call costs are not measured."""
    with httpx.Client(headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"}) as client:
        for i in range(20):
            alerts = [alert("BenchNodeDown", {"node": f"warm-{(i + j) % WARM_NODES}", "instance": f"w{i}-{j}"})
                      for j in range(5)]
            client.post(f"{harness.url}/hooks/alertmanager", json=alert_payload(alerts)).raise_for_status()


def measure(total: int = 20000, concurrency: int = 48, per_payload: int = 1, nodes: int = 60,
            seconds: float = 60.0, database_url: str | None = None) -> dict[str, object]:
    """One storm; with `database_url` the run store is that (migrated) PostgreSQL database, else SQLite (the
    bench connects directly, so with `database_prepared_statements`, the setting for a direct connection)."""
    with tempfile.TemporaryDirectory() as tmp:
        defaults = Settings()
        settings = server_settings(str(Path(tmp) / "runs.db"), workers=defaults.workers,
                                   queue_size=defaults.queue_size, database_url=database_url,
                                   database_prepared_statements=database_url is not None)  # a direct connection
        registry = register_builtins(ActionRegistry())
        harness = Harness(make_engine(settings, registry, (RUNBOOK,)), None, settle_heap=True).start()
        try:
            warm_up(harness)
            done = subprocess.run(
                [sys.executable, "-m", "bench.loadgen", f"{harness.url}/hooks/alertmanager", WEBHOOK_TOKEN,
                 str(total), str(concurrency), str(per_payload), str(nodes), str(seconds)],
                cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60, check=True)
            result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
            runs = [r for r in harness.engine.store.list_runs(limit=10 * nodes + WARM_NODES)
                    if not str(r.params.get("node", "")).startswith("warm-")]
        finally:
            harness.close()
    return {**result, "runs": len(runs), "workers": settings.workers, "queue_size": settings.queue_size}


def run(total: int = 20000, concurrency: int = 4, per_payload: int = 5) -> list[Row]:
    progress(f"fig4: {total} alerts, concurrency {concurrency}, {per_payload} alert(s) per payload")
    res = measure(total, concurrency, per_payload)
    lat: list[float] = res["latencies"]  # type: ignore[assignment]
    accepted = int(res["started"]) + int(res["deduplicated"])  # type: ignore[call-overload]
    rate = accepted / float(res["elapsed"])  # type: ignore[arg-type]
    p99 = percentile(lat, 99)
    lost = int(res["alerts_sent"]) - accepted - int(res["rejected"]) - int(res["unmatched"])  # type: ignore[call-overload]
    dedup_ok = int(res["runs"]) == int(res["distinct_nodes"]) == int(res["started"])  # type: ignore[call-overload]
    common = (f"after a 100-alert warm-up, {res['alerts_sent']} alerts in {res['payloads']} payloads, "
              f"concurrency {concurrency}, "
              f"{res['elapsed']:.1f} s; 503s retried: {res['retried_503']}; workers {res['workers']}, "
              f"queue {res['queue_size']}")
    rows = [
        Row("4. webhook ingestion, accepted alerts/s", rate, "alerts/s", target=">= 2,000/s at p99 < 20 ms",
            met=rate >= 2000 and p99 < 20, lower_is_better=False, note=common),
        Row("4. webhook response time (p99)", p99, "ms", target="< 20 ms", met=p99 < 20,
            note=f"p50 {percentile(lat, 50):.1f} ms over {len(lat)} responses"),
        Row("4. runs started vs distinct dedup identities", float(res["runs"]), "runs",  # type: ignore[arg-type]
            baseline=float(res["distinct_nodes"]), baseline_what="distinct nodes sent",  # type: ignore[arg-type]
            target="equal (dedup holds)", met=dedup_ok,
            note=f"started {res['started']}, deduplicated {res['deduplicated']}"),
        Row("4. lost alerts", float(lost), "lost", target="0", met=lost == 0 and int(res["left"]) == 0,  # type: ignore[call-overload]
            note=f"unsent at the time limit: {res['left']} payloads"),
    ]
    progress(f"fig4 done: {rate:.0f} alerts/s p99 {p99:.1f} ms runs {res['runs']} distinct {res['distinct_nodes']}")
    return rows
