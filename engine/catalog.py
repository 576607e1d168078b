"""Finds and loads the runbooks in the runbook path; a bad file never hides the good ones."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import DefinitionError, Problem
from engine.hints import did_you_mean
from engine.loader import Loader
from engine.model import Runbook

log = logging.getLogger("runbook.catalog")


def runbook_files(paths: Iterable[str | Path]) -> list[Path]:
    """YAML files named directly, plus the `*.yaml`/`*.yml` files at the top of named folders
    (sub-folders hold scenarios and tests, not runbooks)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()))
        else:
            found.append(path)
    return found


@dataclass
class Catalog:
    runbooks: dict[str, Runbook] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @classmethod
    def load(cls, paths: Iterable[str | Path], loader: Loader) -> Catalog:
        catalog = cls()
        for path in runbook_files(paths):
            if not path.exists():
                catalog.problems.append(Problem(str(path), 0, 0, "", "no such file or folder"))
                continue
            try:
                runbook = loader.load_file(path)
            except DefinitionError as exc:
                catalog.problems.extend(exc.problems)
                continue
            except Exception as exc:  # a bug meeting one odd file must not keep every other runbook from loading
                log.exception("could not load %s", path)
                catalog.problems.append(Problem(str(path), 0, 0, "", f"could not load: {type(exc).__name__}: {exc}"))
                continue
            if runbook.name in catalog.runbooks:
                first = catalog.files[runbook.name]
                catalog.problems.append(Problem(str(path), 1, 1, "metadata.name",
                                                f"runbook {runbook.name!r} is already defined in {first}"))
                continue
            catalog.runbooks[runbook.name] = runbook
            catalog.files[runbook.name] = path
        return catalog

    def get(self, name: str) -> Runbook:
        """The runbook called `name`, or a KeyError whose message suggests the closest name."""
        if name in self.runbooks:
            return self.runbooks[name]
        hint = did_you_mean(name, self.runbooks)
        known = ", ".join(sorted(self.runbooks)) or "none"
        broken = sorted({p.file for p in self.problems})
        failed = f"; {len(broken)} file(s) did not load ({', '.join(broken)}): see `runbook validate`" if broken else ""
        raise KeyError(f"no runbook named {name!r}{hint} (known: {known}){failed}")

    def for_command(self, command: str) -> Runbook | None:
        return next((r for r in self.runbooks.values() if r.triggers.command == command), None)
