"""The table and `bench/RESULTS.md`: machine, versions, date, the figures and notes on method."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench.common import ROOT, Row, fmt

HEADER = ("figure", "ours", "baseline", "ratio", "target", "met?")


def _cells(row: Row) -> tuple[str, ...]:
    base = fmt(row.baseline, row.unit) + (f" ({row.baseline_what})" if row.baseline_what else "")
    ratio = f"{row.ratio:.1f}x" if row.ratio is not None else "-"
    met = {True: "yes", False: "NO", None: "-"}[row.met]
    return row.figure, fmt(row.ours, row.unit), base if row.baseline is not None else "-", ratio, row.target, met


def table_text(rows: list[Row]) -> str:
    cells = [HEADER, *(_cells(r) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    line = lambda c: " | ".join(v.ljust(w) for v, w in zip(c, widths, strict=True))  # noqa: E731
    return "\n".join([line(HEADER), "-+-".join("-" * w for w in widths), *(line(c) for c in cells[1:])])


def table_markdown(rows: list[Row]) -> str:
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    out += ["| " + " | ".join(c.replace("|", "/") for c in _cells(r)) + " |" for r in rows]
    return "\n".join(out)


def _run(*cmd: str) -> str:
    if not shutil.which(cmd[0]) and not os.path.exists(cmd[0]):
        return "not installed"
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unavailable ({exc})"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


def machine() -> dict[str, str]:
    cpu = "unknown"
    mem = "unknown"
    try:
        found = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = found.group(1).strip() if found else cpu
        kb = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError, ValueError):
        pass
    return {"cores": str(os.cpu_count()), "memory": mem, "cpu": cpu, "os": platform.platform()}


def versions(eda: str) -> dict[str, str]:
    return {
        "Python": sys.version.split()[0],
        "kubectl": _run("kubectl", "version", "--client"),
        "Alertmanager": _run("prometheus-alertmanager", "--version"),
        "ansible-rulebook": eda,
        "Java": _run("java", "-version"),
    }


def write_results(rows: list[Row], notes: list[str], eda: str, elapsed: float, path: Path | None = None) -> Path:
    info = machine()
    vers = versions(eda)
    lines = [
        "# runbook benchmarks",
        "",
        f"Measured {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} by `python -m bench` "
        f"({elapsed:.0f} s). Every figure is one run; ratios are baseline / ours (higher is better for us).",
        "",
        f"**Machine:** {info['cores']} cores, {info['memory']}, {info['cpu']} ({info['os']})",
        "",
        "**Versions:** " + "; ".join(f"{k} {v}" for k, v in vers.items()),
        "",
        table_markdown(rows),
        "",
        "## Details per row",
        "",
        *[f"- **{r.figure}**: {r.note}" for r in rows if r.note],
        "",
        "## Method",
        "",
        *[f"- {n}" for n in notes],
        "",
    ]
    path = path or ROOT / "bench" / "RESULTS.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
