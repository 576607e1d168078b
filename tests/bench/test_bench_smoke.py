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


def test_loading_figure_produces_numbers() -> None:
    from bench import fig8_loading

    rows = fig8_loading.run()
    assert len(rows) == 6 and all(row.ours is not None and row.ours > 0 for row in rows)
    assert all(row.met for row in rows if row.target)
