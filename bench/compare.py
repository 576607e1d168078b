"""`python -m bench.compare BEFORE [AFTER] [--runs 3] [--only 1,2,3,4,5,6]`: the before/after protocol.

A refactor is judged by the same figures before and after it, and one `make bench` run is too noisy to judge
by (a single-shot figure moves by a third from run to run on a small machine). This checks both revisions out
in throwaway worktrees, runs their own `python -m bench` alternately (before, after, before, ...) so both see
the same machine, and prints the median of the runs per figure with the change. Older trees whose bench has
no `--only` run all their figures; only figures both sides print are compared. Nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, WORK, progress

ROW = re.compile(r"^(\d+\. .*?)\s+\| ([\d.,]+) (\S+)")


def parse_rows(table: str) -> dict[str, tuple[float, str]]:
    """Figure name -> (value, unit) from the table `python -m bench` prints."""
    rows = {}
    for line in table.splitlines():
        found = ROW.match(line)
        if found:
            rows[found.group(1).strip()] = (float(found.group(2).replace(",", "")), found.group(3))
    return rows


def median_table(before: list[dict[str, tuple[float, str]]], after: list[dict[str, tuple[float, str]]],
                 names: tuple[str, str]) -> str:
    """Markdown: each figure both sides measured, its median per side (the runs in brackets) and the change."""
    out = [f"| figure | {names[0]}: median ({len(before)} runs) | {names[1]}: median ({len(after)} runs) | change |",
           "|---|---|---|---|"]
    both = [f for f in (before[0] if before else {}) if all(f in run for run in before + after)]
    for figure in both:
        unit = before[0][figure][1]
        old, new = ([run[figure][0] for run in side] for side in (before, after))
        was, now = statistics.median(old), statistics.median(new)
        change = f"{(now - was) / was * 100:+.0f}%" if was else "-"
        listed = lambda values: ", ".join(f"{v:g}" for v in values)  # noqa: E731
        out.append(f"| {figure} | {was:g} {unit} ({listed(old)}) | {now:g} {unit} ({listed(new)}) | {change} |")
    return "\n".join(out)


def checkout(revision: str, parent: Path) -> Path:
    tree = parent / re.sub(r"[^\w.-]", "_", revision)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(tree), revision],
                   check=True, capture_output=True, text=True)
    return tree


def run_bench(tree: Path, only: str) -> dict[str, tuple[float, str]]:
    """One `python -m bench` of `tree`'s own code (with `--only` where its bench has it)."""
    command = [sys.executable, "-m", "bench"]
    if "--only" in (tree / "bench" / "__main__.py").read_text(encoding="utf-8"):
        command += ["--only", only]
    done = subprocess.run(command, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True,
                          text=True, timeout=3600)
    return parse_rows(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.splitlines()[0])
    parser.add_argument("before", help="the revision before the change (e.g. a commit or main~20)")
    parser.add_argument("after", nargs="?", default="HEAD", help="the revision after it (default HEAD)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each side (default 3)")
    parser.add_argument("--only", default="1,2,3,4,5,6", help="figures to run where the bench supports it")
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict[str, tuple[float, str]]]] = {args.before: [], args.after: []}
    with tempfile.TemporaryDirectory(dir=WORK) as parent:
        trees = {revision: checkout(revision, Path(parent)) for revision in runs}
        try:
            for i in range(args.runs):
                for revision, tree in trees.items():
                    progress(f"compare: run {i + 1}/{args.runs} of {revision}")
                    runs[revision].append(run_bench(tree, args.only))
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                               capture_output=True)
    table = median_table(runs[args.before], runs[args.after], (args.before, args.after))
    (WORK / "COMPARE.md").write_text(table + "\n", encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
