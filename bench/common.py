"""Shared pieces of the figures: result rows, percentiles, progress lines and paths.

Every figure returns a list of `Row`s; `__main__` puts them in one table. A row without a baseline has
no ratio; a row whose measurement could not be made says why in `note` instead of crashing the run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work"
RUNBOOKS = ROOT / "runbooks"
SCENARIO = RUNBOOKS / "scenarios" / "node-not-ready" / "kubelet-stopped.yaml"
STATUS_FILE = Path("/tmp/bench-status.txt")
SIM_TOKEN = "admin-token"


@dataclass
class Row:
    """One line of the table. `ours`/`baseline` are numbers in `unit`; `lower_is_better` orients the ratio."""

    figure: str
    ours: float | None
    unit: str
    baseline: float | None = None
    baseline_what: str = ""
    target: str = ""
    met: bool | None = None
    lower_is_better: bool = True
    note: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """How many times better ours is than the baseline (>1 is better for us)."""
        if self.ours is None or self.baseline is None or self.ours == 0 or self.baseline == 0:
            return None
        return self.baseline / self.ours if self.lower_is_better else self.ours / self.baseline


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); with few samples p99 is the maximum, which is the honest answer."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def progress(message: str) -> None:
    """A progress line on stderr-free storage: /tmp/bench-status.txt (the table owns stdout)."""
    line = f"{time.strftime('%H:%M:%S')} {message}\n"
    with STATUS_FILE.open("a", encoding="utf-8") as handle:
        handle.write(line)


def fmt(value: float | None, unit: str) -> str:
    """A number with its unit, precise enough to compare and short enough for a table."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "ms":
        text = f"{value:.3f}" if value < 1 else f"{value:.1f}" if value < 100 else f"{value:.0f}"
    elif unit in ("s",):
        text = f"{value:.2f}"
    elif unit in ("req", "runs", "alerts", "workers", "lost") or value >= 100:
        text = f"{value:.0f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}"
