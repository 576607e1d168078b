"""Which runbooks an alert starts, with which params, and under which dedup key.

Dedup key design: `alert/<runbook>/<sha256 of the params mapped from the alert's labels>`.
Two alerts that would start the same runbook with the same inputs are the same incident for that
runbook, so they share one run. This is stricter than Alertmanager's fingerprint (a hash of *all*
labels): an alert re-sent with a different `pod`, `instance` or `prometheus` replica label has a new
fingerprint but targets the same node, and running the same runbook twice on it helps nobody.
The group key is not used: a group spans different targets (every NotReady node of a cluster) and
changes whenever the route's `group_by` does. When a trigger maps no params at all, the alert's
fingerprint is part of the key, so unrelated alerts never silently merge.
The key lives in the run store, so dedup survives restarts; the cooldown is `settings.dedup_cooldown`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.model import Runbook
from integrations.alertmanager.payload import Alert


@dataclass(frozen=True)
class Match:
    runbook: Runbook
    params: dict[str, str]
    missing: tuple[str, ...] = ()


def match_alert(runbooks: Iterable[Runbook], alert: Alert) -> list[Match]:
    """One Match per runbook with a trigger matching the alert's labels (first matching trigger wins).

    Params are copied verbatim from labels: they are validated by the executor, never templated.
    `missing` names mapped labels the alert lacks, so the rejection can say which label to add.
    """
    found: list[Match] = []
    for runbook in runbooks:
        for trigger in runbook.triggers.alerts:
            if not trigger.matches(alert.labels):
                continue
            params = {param: alert.labels[label] for param, label in trigger.params.items() if label in alert.labels}
            missing = tuple(label for label in trigger.params.values() if label not in alert.labels)
            found.append(Match(runbook, params, missing))
            break
    return found


def dedup_key(runbook: str, params: dict[str, Any], fingerprint: str) -> str:
    """The key under which alerts for `runbook` coalesce into one run (see the module docstring)."""
    identity: dict[str, Any] = {"params": params} if params else {"fingerprint": fingerprint}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"alert/{runbook}/{digest[:24]}"


def key_for(match: Match, alert: Alert) -> str:
    return dedup_key(match.runbook.name, match.params, alert.fingerprint)
