"""How every generic remediation sends its change: dry-run first, an exact diff, at most one real request,
and an outcome (`applied` | `not_applied` | `unknown`) that is true even after an ambiguous failure.

The server-side dry-run (`dryRun=All`) answers with the object as it would be stored, so the diff shows
what the API server accepted (defaulting, admission) rather than what we hoped. When the real request
fails in a way that leaves its effect unknown (timeout, connection dropped), the object is read back
once and compared with the dry-run's prediction before anything is said about it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.actions import ActionContext
from engine.errors import OutcomeUnknown, PermanentError, StepError, StepTimeout
from engine.verdict import Change, ChangeOutcome
from integrations.kubernetes.client import Kube
from integrations.kubernetes.objects import annotations_of, labels, meta
from integrations.kubernetes.once import RUN_ID_ANNOTATION

# Fields that change on every write or carry nothing a reviewer decides on.
_VOLATILE = {("metadata", "resourceVersion"), ("metadata", "managedFields"), ("metadata", "generation"),
             ("metadata", "uid"), ("metadata", "creationTimestamp"), ("status",),
             ("metadata", "annotations", RUN_ID_ANNOTATION)}  # bookkeeping: shown in the request, not the diff
# This module's outcome words -> the Change's (engine.verdict.ChangeOutcome).
_OUTCOME: dict[str, ChangeOutcome] = {"applied": "applied", "not_applied": "not applied", "unknown": "effect unknown"}
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_DIFF_LINES = 40
REREAD_SECONDS = 5.0


def clean(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object without managedFields and the last-applied copy (noise, and a copy of every value)."""
    out = dict(obj)
    metadata = dict(meta(obj))
    metadata.pop("managedFields", None)
    if _LAST_APPLIED in (metadata.get("annotations") or {}):
        metadata["annotations"] = {k: v for k, v in metadata["annotations"].items() if k != _LAST_APPLIED}
    if metadata:
        out["metadata"] = metadata
    return out


def _flatten(value: Any, prefix: tuple[str, ...], out: dict[tuple[str, ...], Any]) -> None:
    if any(prefix[:len(v)] == v for v in _VOLATILE):
        return
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, (*prefix, str(key)), out)
    elif isinstance(value, list) and value and all(isinstance(i, dict) and "name" in i for i in value):
        for item in value:  # containers, env, volumes: addressed by name, as reviewers think of them
            _flatten(item, (*prefix, f"[{item['name']}]"), out)
    else:
        out[prefix] = value


def _show(value: Any) -> str:
    return "unset" if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def object_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """`path: old -> new` for every field that differs, volatile metadata and status left out."""
    old: dict[tuple[str, ...], Any] = {}
    new: dict[tuple[str, ...], Any] = {}
    _flatten(clean(before), (), old)
    _flatten(clean(after), (), new)
    lines = []
    for path in sorted(set(old) | set(new)):
        if old.get(path) != new.get(path):
            dotted = ".".join(path).replace(".[", "[")
            lines.append(f"{dotted}: {_show(old.get(path))} -> {_show(new.get(path))}")
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... and {len(lines) - MAX_DIFF_LINES} more changed fields"]
    return lines


def managed_by(obj: Mapping[str, Any]) -> str | None:
    """The GitOps or release tool that owns the object and would revert a change made here, if any."""
    found_labels, found_annotations = labels(obj), annotations_of(obj)
    keys = set(found_labels) | set(found_annotations)
    if any(k.startswith("argocd.argoproj.io/") for k in keys):
        return "Argo CD"
    if any(k.startswith(("kustomize.toolkit.fluxcd.io/", "helm.toolkit.fluxcd.io/")) for k in keys):
        return "Flux"
    if found_labels.get("app.kubernetes.io/managed-by") == "Helm" or "meta.helm.sh/release-name" in keys:
        return "Helm"
    return None


def managed_warning(obj: Mapping[str, Any], target: str) -> list[str]:
    tool = managed_by(obj)
    if tool is None:
        return []
    return [f"{target} is managed by {tool}: this change will be reverted at its next sync or upgrade unless "
            "it is also made at the source (the Git repository or the chart values)"]


@dataclass
class Plan:
    """One change to send: how to send it (with or without dry-run) and what the Change record says."""

    verb: str
    target: str
    api_path: str
    before: dict[str, Any]
    send: Callable[[bool], dict[str, Any]]
    request: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    # Lines the diff starts with (images before -> after, "delete ..."); with `field_diff=False` they are
    # the whole diff (a delete, a scale through the subresource), and the change always applies.
    summary: list[str] = field(default_factory=list)
    field_diff: bool = True
    # Whether a re-read object shows the change (default: it looks as the dry-run predicted).
    took_effect: Callable[[Mapping[str, Any]], bool] | None = None


def request_record(method: str, api_path: str, body: Any, dry_run: bool, content_type: str | None = None,
                   query: Mapping[str, str] | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"method": method, "path": api_path,
                              "query": {**(query or {}), **({"dryRun": "All"} if dry_run else {})}}
    if content_type:
        record["content_type"] = content_type
    if body is not None:
        record["body"] = body
    return record


def apply(kube: Kube, ctx: ActionContext, plan: Plan) -> dict[str, Any]:
    """Dry-run, diff, and (unless the step is a dry-run) send once. Output: outcome, diff, object, warnings."""
    preview = plan.send(True)
    fields = object_diff(plan.before, preview) if plan.field_diff else []
    diff = [*plan.summary, *fields] if fields or not plan.field_diff else []
    shown = [*diff, *(f"WARNING: {w}" for w in plan.warnings)]
    output: dict[str, Any] = {"target": plan.target, "outcome": "not_applied", "diff": shown,
                              "warnings": list(plan.warnings), "changed": bool(diff)}
    if not diff:
        ctx.finding("change.unchanged", "info", f"{plan.target} already has this; nothing to change")
        return {**output, "object": clean(plan.before)}
    request = {**plan.request, "query": {**plan.request.get("query", {}), **({"dryRun": "All"} if ctx.dry_run else {})}}
    if ctx.dry_run:
        ctx.change(Change(verb=plan.verb, target=plan.target, request=request, diff=tuple(shown), dry_run=True))
        return {**output, "object": clean(preview)}
    try:
        answer = plan.send(False)
    except StepError as exc:
        ambiguous = _ambiguous(exc)
        outcome = settle(kube, plan, preview) if ambiguous else "not_applied"
        ctx.change(Change(verb=plan.verb, target=plan.target, request=request, diff=tuple(shown), dry_run=False,
                          result={"outcome": outcome, "error": str(exc)}, outcome=_OUTCOME[outcome]))
        if outcome == "applied":
            return {**output, "outcome": "applied", "object": clean(preview)}
        if outcome == "unknown":
            raise OutcomeUnknown(f"{plan.verb} {plan.target}: {exc}; read back after the failure, it was not sent "
                                 f"again; effect unknown: check {plan.target}", plan.target) from exc
        if ambiguous:
            raise PermanentError(f"{plan.verb} {plan.target}: {exc}; outcome {outcome} (read back after the "
                                 "failure); it was not sent again") from exc
        raise
    ctx.change(Change(verb=plan.verb, target=plan.target, request=request, diff=tuple(shown), dry_run=False,
                      result={"outcome": "applied", "resourceVersion": meta(answer).get("resourceVersion")},
                      outcome="applied"))
    return {**output, "outcome": "applied", "object": clean(answer)}


def _ambiguous(exc: StepError) -> bool:
    """A failure after which the request may or may not have taken effect (the client says so)."""
    return isinstance(exc, OutcomeUnknown | StepTimeout)


def settle(kube: Kube, plan: Plan, preview: Mapping[str, Any]) -> str:
    """After an ambiguous failure: `applied` when the object now looks as the dry-run predicted,
    `not_applied` when it is unchanged, `unknown` otherwise (or when it cannot be read)."""
    try:
        now = kube.with_deadline(time.monotonic() + REREAD_SECONDS).get_or_none(plan.api_path)
    except StepError:
        return "unknown"
    if plan.verb == "delete":
        return "applied" if now is None or meta(now).get("deletionTimestamp") else "not_applied"
    if now is None:
        return "unknown"
    if plan.took_effect(now) if plan.took_effect else not object_diff(preview, now):
        return "applied"
    if meta(now).get("resourceVersion") == meta(plan.before).get("resourceVersion"):
        return "not_applied"
    return "unknown"
