"""Smoke test of the benchmark harness: one figure at minimal size produces numbers (no timing asserted)."""

from __future__ import annotations

import math

from bench import fig1_engine
from bench.report import table_text


def test_engine_overhead_figure_produces_numbers() -> None:
    rows = fig1_engine.run(steps=20)
    assert len(rows) == 2
    for row in rows:
        assert row.ours is not None and not math.isnan(row.ours) and row.ours > 0
    assert "engine overhead" in table_text(rows)
