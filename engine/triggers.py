"""From an alert's labels to a runbook's params: which trigger wins, and how each mapping resolves.

Shared by every trigger source (the Alertmanager webhook, rehearsals), so a rehearsal starts exactly the
run the server would. Label values are data: copied, or cut by a regex, never templated. An owner lookup
reads the cluster (read-only) through the `OwnerLookup` the app passes in; its transient failures surface
as `TransientError` so the caller can ask the sender to retry instead of losing the alert.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from engine.model import AlertTrigger, ParamMapping, Runbook

OTHER_CLUSTER = "other-cluster"
NO_TRIGGER = "no-trigger"
UNRESOLVED = "unresolved-mapping"


class OwnerLookup(Protocol):
    """Finds the object of `kind` that owns a pod, following controller ownerReferences (read-only)."""

    def owner_of(self, namespace: str, name: str, kind: str, of: str = "Pod") -> str | None:
        """The name of the `kind` owning the `of` object `name` (None: it has no such owner).

        Raises TransientError when the cluster cannot answer now, MappingError when the object is gone.
        """
        ...


class MappingError(Exception):
    """A mapping that cannot be resolved for this alert: the alert is unmatched, with this reason."""


@dataclass(frozen=True)
class ClusterScope:
    """The cluster this engine acts on, and the alert label that names an alert's cluster."""

    name: str | None = None
    label: str = "cluster"

    def foreign(self, labels: Mapping[str, str]) -> str | None:
        """The other cluster an alert names, or None when it is ours (or names none, or ours is unset)."""
        named = labels.get(self.label)
        return named if self.name and named and named != self.name else None

    def of(self, labels: Mapping[str, str]) -> str | None:
        return labels.get(self.label) or self.name


@dataclass(frozen=True)
class TriggerMatch:
    """The runbook an alert starts and its resolved params (`missing`: mapped labels the alert lacks)."""

    runbook: Runbook
    trigger: AlertTrigger
    params: dict[str, str]
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class NoMatch:
    """Why an alert starts nothing: `reason` is one of the module's reason codes, `detail` says more."""

    reason: str
    detail: str


def first_trigger(runbook: Runbook, labels: Mapping[str, str]) -> AlertTrigger | None:
    """The runbook's first alert trigger matching the labels, if any."""
    plain = dict(labels)
    return next((t for t in runbook.triggers.alerts if t.matches(plain)), None)


def candidates(runbooks: Iterable[Runbook], labels: Mapping[str, str]) -> list[tuple[Runbook, AlertTrigger]]:
    """Every (runbook, its first matching trigger), best first: priority, then specificity, then name."""
    found = [(rb, trigger) for rb in runbooks if (trigger := first_trigger(rb, labels)) is not None]
    return sorted(found, key=lambda pair: (-pair[1].priority, -pair[1].specificity, pair[0].name))


def select(runbooks: Iterable[Runbook], labels: Mapping[str, str], lookup: OwnerLookup | None = None,
           scope: ClusterScope | None = None) -> TriggerMatch | NoMatch:
    """The one runbook an alert starts, with resolved params; or why none.

    Raises TransientError (from the owner lookup) when the answer depends on a cluster that cannot answer now.
    """
    scope = scope or ClusterScope()
    other = scope.foreign(labels)
    if other is not None:
        return NoMatch(OTHER_CLUSTER, f"the alert is for cluster {other!r}; this engine acts on {scope.name!r}")
    ranked = candidates(runbooks, labels)
    if not ranked:
        return NoMatch(NO_TRIGGER, "no runbook trigger matches the alert's labels")
    runbook, trigger = ranked[0]
    try:
        params, missing = resolve(trigger, labels, lookup)
    except MappingError as exc:
        return NoMatch(UNRESOLVED, f"{runbook.name}: {exc}")
    return TriggerMatch(runbook, trigger, params, missing)


def resolve(trigger: AlertTrigger, labels: Mapping[str, str],
            lookup: OwnerLookup | None = None) -> tuple[dict[str, str], tuple[str, ...]]:
    """The params a trigger maps from labels, and the labels it needed but the alert lacks."""
    params: dict[str, str] = {}
    missing: list[str] = []
    for name, mapping in trigger.mappings().items():
        value = _resolve_one(name, mapping, labels, lookup)
        if value is None:
            missing.extend(label for label in mapping.labels if label not in labels)
        else:
            params[name] = value
    return params, tuple(dict.fromkeys(missing))


def _resolve_one(name: str, m: ParamMapping, labels: Mapping[str, str], lookup: OwnerLookup | None) -> str | None:
    if m.value is not None:
        return m.value
    raw = labels.get(m.from_ or "")
    if raw is None:
        return m.default
    if m.regex is not None:
        hit = re.fullmatch(m.regex, raw)
        if hit is None or hit.group(1) is None:
            if m.default is not None:
                return m.default
            raise MappingError(f"param {name}: label {m.from_}={raw!r} does not match {m.regex!r}")
        return hit.group(1)
    if m.owner is None:
        return raw
    namespace = labels.get(m.namespace_from or "")
    if not namespace:
        return None
    if lookup is None:
        raise MappingError(f"param {name}: no cluster to look up the {m.owner} owning {m.of} {namespace}/{raw}")
    owner = lookup.owner_of(namespace, raw, m.owner, m.of)
    if owner is None:
        if m.default is not None:
            return m.default
        raise MappingError(f"param {name}: {m.of} {namespace}/{raw} is not owned by a {m.owner}")
    return owner
