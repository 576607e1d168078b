"""At-most-once changes: send a change once; when its answer is lost, re-read the target and say what is true.

`Kube.request` never sends a change twice by itself: after a lost connection, a timeout or a 5xx it
raises `OutcomeUnknown`. Here an action's change gets the rest of the rule. The target is re-read:
- the change is there: it was `applied` (the Change says so, and how it is known);
- it is provably not there: it is sent once more, with a precondition (`resourceVersion` or `uid`; a
  create's fixed name is its own), so a writer that came in between is never overwritten;
- the read fails, or the second send is lost too and the read cannot show it applied: `effect unknown`,
  and the step fails naming what to check.
The precondition also makes a late arrival of the first request harmless: the same value set twice, the
same uid deleted once, the same name created once.
A create answered 409 is resolved the same way: the object of that fixed name is read, and it is ours
when it carries this run's `runbook.dev/run-id` annotation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.actions import ActionContext
from engine.errors import ConflictError, OutcomeUnknown, PermanentError, StepError
from engine.verdict import ChangeOutcome
from integrations.kubernetes.client import Kube
from integrations.kubernetes.objects import meta

RUN_ID_ANNOTATION = "runbook.dev/run-id"

# Sends the change, with a precondition when one is given (the retry after a proven "not applied").
Send = Callable[[Mapping[str, str] | None], dict[str, Any]]


@dataclass(frozen=True)
class Reading:
    """What re-reading the target shows: is the change there, what proves it, how to send it again safely."""

    applied: bool
    evidence: str
    precondition: Mapping[str, str] = field(default_factory=dict)
    seen: dict[str, Any] | None = None  # the object as read (None when it is gone)


@dataclass(frozen=True)
class Sent:
    """The result of one change: the server's answer (None when learnt by re-reading) and what is true."""

    answer: dict[str, Any] | None  # what the server answered, or the object as re-read when the answer was lost
    outcome: ChangeOutcome | None  # None under dry-run
    note: str = ""  # how the outcome was established, when the answer did not say
    error: StepError | None = None  # raise it once the Change is recorded

    @property
    def notes(self) -> tuple[str, ...]:
        return (f"outcome: {self.outcome}: {self.note}",) if self.note else ()

    def result(self) -> dict[str, Any]:
        """The answered (or re-read) object; {} when there is none."""
        return self.answer or {}

    def raise_failure(self) -> None:
        if self.error is not None:
            raise self.error


def run_annotation(ctx: ActionContext) -> dict[str, str]:
    """The annotation every object the engine creates or patches carries, set in the same request."""
    return {RUN_ID_ANNOTATION: ctx.run_id}


def ours(obj: Mapping[str, Any], ctx: ActionContext) -> bool:
    return (meta(obj).get("annotations") or {}).get(RUN_ID_ANNOTATION) == ctx.run_id


def send_once(ctx: ActionContext, target: str, send: Send, read: Callable[[], Reading], *,
              create: bool = False) -> Sent:
    """Send a change at most once (twice only when a re-read proves the first did not apply).

    `create`: a 409 means the fixed name exists, which may be this run's own earlier create."""
    if ctx.dry_run:
        return Sent(send(None), None)
    try:
        return Sent(send(None), "applied")
    except OutcomeUnknown as lost:
        first: StepError = lost
    except ConflictError as exists:
        if not create:
            raise
        first = exists
    reading = _reread(target, read, first)
    if isinstance(reading, Sent):
        return reading
    if reading.applied:
        return _applied(target, first, reading)
    if isinstance(first, ConflictError):  # the name is someone else's: nothing of ours was applied
        return Sent(None, "not applied", reading.evidence, PermanentError(f"{first}: {reading.evidence}"))
    return _send_again(target, send, read, f"{_cause(first)}; re-reading {target} showed it was not applied "
                       f"({reading.evidence})", reading.precondition)


def _send_again(target: str, send: Send, read: Callable[[], Reading], why: str,
                precondition: Mapping[str, str]) -> Sent:
    """The one second send, conditional on what the re-read saw."""
    condition = ", ".join(f"{k} {v}" for k, v in precondition.items()) or "its fixed name"
    try:
        return Sent(send(precondition), "applied", f"{why}; sent once more, conditional on {condition}")
    except ConflictError as moved:  # the precondition failed: someone else changed it meanwhile
        return Sent(None, "not applied", f"{why}; sent again conditional on {condition}: {moved}",
                    PermanentError(f"not applied: {target} changed while the answer was lost ({moved}); "
                                   "read it again before acting"))
    except OutcomeUnknown as again:
        second = _reread(target, read, again)
        if isinstance(second, Sent):
            return second
        if second.applied:
            return _applied(target, again, second)
        note = f"{why}; sent again, {_cause(again)}; re-read: {second.evidence}, but a lost request may still land"
        return Sent(None, "effect unknown", note,
                    OutcomeUnknown(f"effect unknown: {note}; check {target} before acting again", target))


def _cause(exc: StepError) -> str:
    """What went wrong, without the client's own `effect unknown` advice (the re-read replaces it)."""
    return str(exc).split("; effect unknown")[0]


def _reread(target: str, read: Callable[[], Reading], cause: StepError) -> Reading | Sent:
    """The re-read, or an `effect unknown` result when even reading fails."""
    try:
        return read()
    except StepError as exc:
        note = f"{_cause(cause)}; re-reading {target} failed too: {exc}"
        return Sent(None, "effect unknown", note,
                    OutcomeUnknown(f"effect unknown: {note}; check {target} before acting again", target))


def _applied(target: str, cause: StepError, reading: Reading) -> Sent:
    return Sent(reading.seen, "applied",
                f"{_cause(cause)}; re-reading {target} shows it applied: {reading.evidence}")


# -- what re-reading shows, per kind of change ------------------------------------------------------


def spec_reading(kube: Kube, api_path: str, spec: Mapping[str, Any]) -> Reading:
    """For a spec patch: applied when every patched field has its new value (an absent boolean is false)."""
    obj = kube.get(api_path)
    now = obj.get("spec") or {}
    seen = {key: now.get(key, False if isinstance(value, bool) else None) for key, value in spec.items()}
    rv = str(meta(obj).get("resourceVersion") or "")
    shown = ", ".join(f"spec.{key}={value!r}" for key, value in seen.items())
    return Reading(seen == dict(spec), f"{shown} at resourceVersion {rv}", {"resourceVersion": rv}, obj)


def deletion_reading(kube: Kube, api_path: str, uid: str | None) -> Reading:
    """For a delete or an eviction: gone, replaced by a new object, or being deleted all mean applied."""
    obj = kube.get_or_none(api_path)
    if obj is None:
        return Reading(True, "it no longer exists")
    m = meta(obj)
    if uid and m.get("uid") != uid:
        return Reading(True, f"the object is gone; one with the same name but uid {m.get('uid')} replaced it")
    if m.get("deletionTimestamp"):
        return Reading(True, f"it is being deleted (deletionTimestamp {m['deletionTimestamp']})", seen=obj)
    return Reading(False, f"it still exists, not being deleted (uid {m.get('uid')})", {"uid": str(m.get("uid"))})


def creation_reading(kube: Kube, api_path: str, ctx: ActionContext) -> Reading:
    """For a create with a fixed name: applied when the object of that name carries this run's id."""
    obj = kube.get_or_none(api_path)
    if obj is None:
        return Reading(False, "it does not exist")
    if ours(obj, ctx):
        return Reading(True, f"it exists with {RUN_ID_ANNOTATION}={ctx.run_id} (uid {meta(obj).get('uid')})",
                       seen=obj)
    other = (meta(obj).get("annotations") or {}).get(RUN_ID_ANNOTATION)
    return Reading(False, f"an object of that name exists but was not created by this run "
                          f"({RUN_ID_ANNOTATION}: {other or 'none'})")


def patch_spec(kube: Kube, ctx: ActionContext, api_path: str, target: str, spec: Mapping[str, Any],
               patch_type: str = "strategic") -> tuple[dict[str, Any], Sent]:
    """Patch spec fields (and this run's annotation, in the same request) at most once: (body, result)."""
    body: dict[str, Any] = {"metadata": {"annotations": run_annotation(ctx)}, "spec": dict(spec)}

    def send(precondition: Mapping[str, str] | None) -> dict[str, Any]:
        sent = {**body, "metadata": {**body["metadata"], **(precondition or {})}}
        return kube.patch(api_path, sent, patch_type, dry_run=ctx.dry_run)

    return body, send_once(ctx, target, send, lambda: spec_reading(kube, api_path, spec))


def with_run_id(body: Any, patch_type: str, ctx: ActionContext, before: Mapping[str, Any]) -> Any:
    """A patch body that also sets this run's annotation, so the object tells who changed it.

    A merge or strategic patch gets `metadata.annotations`; a json patch gets one more `add` operation,
    at the key when the object has (or the patch sets) an annotations map, else the whole map."""
    if patch_type != "json":
        if not isinstance(body, dict):
            return body
        metadata = dict(body.get("metadata") or {})
        metadata["annotations"] = {**(metadata.get("annotations") or {}), **run_annotation(ctx)}
        return {**body, "metadata": metadata}
    ops = list(body) if isinstance(body, list) else []
    has_map = isinstance(meta(before).get("annotations"), dict) or any(
        isinstance(op, dict) and op.get("path") == "/metadata/annotations" and op.get("op") in ("add", "replace")
        for op in ops)
    if has_map:
        return [*ops, {"op": "add", "path": "/metadata/annotations/" + RUN_ID_ANNOTATION.replace("/", "~1"),
                       "value": ctx.run_id}]
    return [*ops, {"op": "add", "path": "/metadata/annotations", "value": run_annotation(ctx)}]
