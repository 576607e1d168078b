"""Schema versions shared by both backends, and the start-up check a replica makes against them.

Each migration names the oldest engine that can still run on a schema that includes it. The database
records the highest of those (`min_engine`), so during a rolling upgrade older replicas keep running
as long as the new schema still serves them, and refuse to start, saying why, once it does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import SchemaError
from engine.run_store import SchemaState
from engine.version import ENGINE_VERSION


@dataclass(frozen=True)
class Migration:
    version: int
    min_engine: str
    summary: str


MIGRATIONS = (
    Migration(1, "0.1.0", "runs, steps, decisions, alerts and the append-only audit log"),
    Migration(2, "0.2.0", "lease epochs, dedup keys, one decision per step, the chat outbox with claims, "
                          "remembered request signatures, schema info"),
    Migration(3, "0.2.0", "the global change freeze"),
    Migration(4, "0.2.0", "rate-limited auditing of refused requests, commit probes"),
    Migration(5, "0.2.0", "chat pauses every replica honours (a rate limit on a workspace-wide chat method)"),
    Migration(6, "0.2.0", "the installation's redaction key, generated once and shared by every replica"),
)
LATEST = MIGRATIONS[-1].version


def parse(version: str) -> tuple[int, ...]:
    """'0.10.2' -> (0, 10, 2); anything after a non-digit in a part is ignored ('1.2.0rc1' -> (1, 2, 0))."""
    parts = []
    for part in version.split("."):
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        parts.append(int(digits or 0))
    return tuple(parts)


def min_engine_for(version: int) -> str:
    """The oldest engine a schema at `version` serves: the newest requirement among its migrations."""
    return max((m.min_engine for m in MIGRATIONS if m.version <= version), key=parse)


def serves(state: SchemaState, where: str, engine_version: str = ENGINE_VERSION) -> None:
    """Raise SchemaError when the schema no longer serves an engine this old (checked before migrating too)."""
    if parse(engine_version) < parse(state.min_engine):
        raise SchemaError(
            f"this runbook engine is version {engine_version}, but the database {where} (schema version "
            f"{state.version}) only serves engines {state.min_engine} or newer: upgrade this replica")


def check(state: SchemaState, where: str, engine_version: str = ENGINE_VERSION) -> None:
    """Raise SchemaError unless this engine may run on the database at `where` as it is."""
    serves(state, where, engine_version)
    if state.version < LATEST:
        raise SchemaError(
            f"the database {where} has schema version {state.version}, this engine needs {LATEST}: "
            "run `runbook db migrate`")
