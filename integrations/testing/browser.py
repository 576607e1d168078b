"""Headless Chromium (Debian's `chromium` package) driven from its command line: the DOM after load, and a
screenshot. For the run-page tests and the README screenshot; no WebDriver, no extra Python package."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-extensions", "--no-first-run", "--hide-scrollbars", "--mute-audio")
NAMES = ("chromium", "chromium-browser", "google-chrome")


class BrowserError(RuntimeError):
    """Chromium failed or timed out; carries what it printed."""


def find_chromium() -> str | None:
    return next((path for name in NAMES if (path := shutil.which(name))), None)


@dataclass(frozen=True)
class Chromium:
    binary: str
    timeout: float = 60.0
    budget_ms: int = 0  # virtual time granted to scripts before the dump (0: dump at load)

    def _run(self, *args: str) -> str:
        with tempfile.TemporaryDirectory(prefix="runbook-chromium-") as profile:
            budget = [f"--virtual-time-budget={self.budget_ms}"] if self.budget_ms else []
            command = [self.binary, *FLAGS, f"--user-data-dir={profile}", *budget, *args]
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=self.timeout, check=False)
            except subprocess.TimeoutExpired as exc:
                raise BrowserError(f"chromium timed out after {self.timeout:g}s: {' '.join(args)}") from exc
        if done.returncode != 0:
            raise BrowserError(f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
        return done.stdout

    def dump_dom(self, url: str) -> str:
        """The document as serialized after load (scripts have run): text nodes escaped, as a browser sees them."""
        return self._run("--dump-dom", url)

    def screenshot(self, url: str, path: Path, size: tuple[int, int] = (1280, 1600)) -> Path:
        self._run(f"--screenshot={path}", f"--window-size={size[0]},{size[1]}", url)
        if not path.exists() or path.stat().st_size == 0:
            raise BrowserError(f"chromium wrote no screenshot to {path}")
        return path
