"""Building the engine (wiring.build, as the CLI, the server and the bench do) loads no HTTP client library until
a plug-in sends a request: httpx brings its own command line (rich, click, pygments) along, about 6 MB of
resident memory in an engine process (3.5 MB in the CLI, which uses rich itself)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BUILD = """
import sys
from engine.settings import Settings
from integrations.app.wiring import build
engine = build(Settings(db=sys.argv[1]))
assert engine.catalog.get("node-not-ready") is not None
print(sorted(m for m in ("httpx", "rich", "click") if m in sys.modules))
"""


def test_building_the_engine_loads_no_http_client_library(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", BUILD, str(tmp_path / "runs.db")], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout
