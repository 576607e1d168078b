"""pvc-pending-or-full reads how full a volume is and how fast it fills from a real Prometheus (Debian's
package, scraping kubelet_volume_stats_* from an exporter the test serves), through the CLI contract."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from integrations.app.cli.main import app
from integrations.testing.prometheus import Exporter, Prometheus
from tests.integrations.prometheus.conftest import require_prometheus

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "runbooks" / "scenarios" / "pvc-pending-or-full" / "filling-expandable.yaml"
GI = 1024 ** 3
LABELS = 'namespace="data",persistentvolumeclaim="orders-db"'


@pytest.fixture
def kubelet_stats(tmp_path: Path) -> Iterator[Prometheus]:
    """A volume of 50Gi, 45Gi used and growing by 64 MiB every second."""
    exporter = Exporter()
    exporter.values = {"kubelet_volume_stats_capacity_bytes": {LABELS: 50 * GI},
                       "kubelet_volume_stats_used_bytes": {LABELS: 45 * GI}}
    stop = threading.Event()

    def grow() -> None:
        while not stop.wait(0.5):
            exporter.values["kubelet_volume_stats_used_bytes"] = {
                LABELS: exporter.values["kubelet_volume_stats_used_bytes"][LABELS] + 32 * 1024 ** 2}

    exporter.start()
    grower = threading.Thread(target=grow, daemon=True)
    grower.start()
    server = Prometheus(tmp_path / "prometheus", [exporter.address], binary=require_prometheus()).start()
    try:
        server.scraped()
        yield server
    finally:
        stop.set()
        server.stop()
        exporter.stop()


def test_fill_level_and_time_to_full_come_from_prometheus(tmp_path: Path, kubelet_stats: Prometheus) -> None:
    config = tmp_path / "runbook.yaml"
    source = {"name": "main", "url": kubelet_stats.url}
    config.write_text(json.dumps({"plugins": {"prometheus": {"sources": [source]}}}))
    args = ["run", "pvc-pending-or-full", "--scenario", str(SCENARIO), "--output", "json", "--quiet",
            "--config", str(config), "-p", "namespace=data", "-p", "pvc=orders-db"]
    for _ in range(20):  # deriv() needs two samples of a growing series in the window
        result = CliRunner().invoke(app, args, env={"RUNBOOK_DB": str(tmp_path / "runs.db"),
                                                   "RUNBOOK_RUNBOOK_PATH": str(ROOT / "runbooks")})
        verdict = json.loads(result.stdout)
        steps = {s["id"]: s for s in verdict["steps"]}
        if steps["time_to_full"].get("output", {}).get("value") is not None:
            break
        time.sleep(1)  # the next scrape brings another sample
    assert result.exit_code == 0, result.stderr
    assert 0.88 < steps["usage"]["output"]["value"] < 0.99
    assert 0 < steps["time_to_full"]["output"]["value"] < 4 * 86400
    filling = next(f for f in verdict["findings"] if f["id"] == "pvc-filling")
    assert "% used, full in about" in filling["summary"]
    assert [p["id"] for p in verdict["proposals"]] == ["expand"]  # started by hand: Prometheus says it fills
