"""Figure 1, engine overhead: a runbook of N no-op steps, each with a `when` and a templated argument.

Per-step time is the wall time between consecutive step records' `finished_at` as stored in the run
store (the first step is measured from the run's `created_at`), so it covers the condition, argument
rendering, validation, the pooled action call and both run-store commits of every step. Cold is the
first run (every template compiled on first use); warm is a second run of the same runbook through the
same Executor (templates cached).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml

from bench.common import Row, percentile, progress
from engine.actions import ActionRegistry
from engine.builtins import register_builtins
from engine.executor import Executor
from engine.loader import MAX_STEPS, Loader
from engine.model import Runbook
from engine.records import RunRecord
from engine.sqlstore.sqlite import SqliteStore

TARGET_MS = 1.0


def noop_runbook(steps: int) -> str:
    """The runbook as YAML text: every step has its own template (so cold runs really compile N of them)."""
    doc = {
        "apiVersion": "runbook/v1",
        "kind": "Runbook",
        "metadata": {"name": "bench-noop", "title": "Engine overhead", "severity": "info"},
        "params": {"n": {"type": "integer", "default": 1}},
        "steps": [
            {"id": f"s{i}", "title": f"step {i}", "action": "noop", "when": f"params.n > {-i}",
             "with": {"value": f"{{{{ params.n + {i} }}}}"}}
            for i in range(steps)
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def step_times_ms(run: RunRecord) -> list[float]:
    """Wall time of each step: the gap between consecutive stored `finished_at` stamps."""
    previous = run.created_at
    gaps = []
    for record in sorted(run.steps, key=lambda s: s.index):
        assert record.finished_at is not None
        gaps.append((record.finished_at - previous) * 1000)
        previous = record.finished_at
    return gaps


def measure(steps: int = 1000) -> dict[str, dict[str, float]]:
    registry = register_builtins(ActionRegistry())
    loader = Loader(registry)
    loader.load_text(noop_runbook(min(steps, MAX_STEPS)))  # the shape passes the loader's checks
    # past the loader's step cap: this figure measures the executor per step, not loading
    runbook = Runbook.model_validate(yaml.safe_load(noop_runbook(steps)))
    for step in runbook.steps:  # compiled as loading compiles them (loading stops at MAX_STEPS steps)
        if step.when:
            loader.templating.compile_condition(step.when)
        for value in step.with_.values():
            loader.templating.compile(value)
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "runs.db", instance="bench")
        executor = Executor(registry, store, templating=loader.templating)
        for phase in ("cold", "warm"):
            began = time.perf_counter()
            run = executor.run(runbook, {}, requester="bench")
            total = time.perf_counter() - began
            if run.status != "succeeded" or len(run.steps) != steps:
                raise RuntimeError(f"the no-op run ended {run.status} with {len(run.steps)} steps")
            gaps = step_times_ms(run)
            out[phase] = {"p50": percentile(gaps, 50), "p99": percentile(gaps, 99),
                          "mean": total * 1000 / steps, "total_s": total}
        store.close()
    return out


def run(steps: int = 1000) -> list[Row]:
    progress(f"fig1: {steps} no-op steps")
    res = measure(steps)
    rows = []
    for phase in ("cold", "warm"):
        r = res[phase]
        note = f"p99 {r['p99']:.3f} ms, total/steps {r['mean']:.3f} ms, run {r['total_s']:.2f} s"
        rows.append(Row(f"1. engine overhead per step, {phase} (p50)", r["p50"], "ms", target="< 1 ms p50",
                        met=r["p50"] < TARGET_MS, note=note, extra=r))
    progress(f"fig1 done: {res}")
    return rows
