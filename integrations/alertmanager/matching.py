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
from typing import Any

from engine.model import Runbook
from engine.triggers import ClusterScope, NoMatch, OwnerLookup, TriggerMatch, select
from integrations.alertmanager.payload import Alert

Match = TriggerMatch


def match_alert(runbooks: Iterable[Runbook], alert: Alert, lookup: OwnerLookup | None = None,
                scope: ClusterScope | None = None) -> TriggerMatch | NoMatch:
    """The one runbook an alert starts (highest trigger priority, then the most specific matcher), or why none.

    Params are resolved from labels by the trigger's mappings: validated by the executor, never templated.
    `missing` names mapped labels the alert lacks, so the rejection can say which label to add. Raises
    TransientError when an owner lookup cannot reach the cluster: the webhook answers 503 and is re-sent.
    """
    return select(runbooks, alert.labels, lookup, scope)


def dedup_key(runbook: str, params: dict[str, Any], fingerprint: str) -> str:
    """The key under which alerts for `runbook` coalesce into one run (see the module docstring)."""
    identity: dict[str, Any] = {"params": params} if params else {"fingerprint": fingerprint}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"alert/{runbook}/{digest[:24]}"


def key_for(match: TriggerMatch, alert: Alert) -> str:
    return dedup_key(match.runbook.name, match.params, alert.fingerprint)
