"""Read-backs: did an approved change whose sender died take effect? Read from the target alone.

The engine calls these (`engine.in_flight`) when it takes over a run whose process died while sending
a change; they only read, with the engine's own client. Every patch carries this run's
`runbook.dev/run-id` annotation in the same request as its fields, so the two appear together or not at
all: a target with the patched values AND this run's annotation was changed by this run; one with
neither was not; anything else (the values without the annotation, the annotation without the values)
means someone else wrote it too, and the answer is `effect unknown`.
A delete is judged by the uid its dry-run saw: gone, replaced by another uid, or being deleted means
applied; the same uid, not being deleted, means not applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.actions import ActionContext, ReadBack
from engine.verdict import Change
from integrations.kubernetes.client import Kube
from integrations.kubernetes.objects import annotations_of, meta
from integrations.kubernetes.once import RUN_ID_ANNOTATION, deletion_reading


def _the_request(changes: tuple[Change, ...], method: str) -> Mapping[str, Any] | None:
    """The one request of `method` the dry-run proposed (None when there is not exactly one)."""
    found = [c.request for c in changes if str(c.request.get("method", "")).upper() == method and c.request.get("path")]
    return found[0] if len(found) == 1 else None


def _show(value: Any) -> str:
    return "unset" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def patch_read_back(kube: Kube, ctx: ActionContext, changes: tuple[Change, ...]) -> ReadBack:
    """For a patch of `spec` fields (merge or strategic, plain values): compare them and the annotation."""
    request = _the_request(changes, "PATCH")
    spec = (request.get("body") or {}).get("spec") if request else None
    if request is None or not isinstance(spec, dict) or not spec or any(isinstance(v, dict | list)
                                                                        for v in spec.values()):
        return ReadBack("effect unknown", "the proposed request is not a plain spec patch this engine can compare")
    obj = kube.get_or_none(str(request["path"]))
    if obj is None:
        return ReadBack("effect unknown", f"{request['path']} no longer exists")
    now = obj.get("spec") or {}
    seen = {key: now.get(key, False if isinstance(value, bool) else None) for key, value in spec.items()}
    annotation = annotations_of(obj).get(RUN_ID_ANNOTATION)
    values = seen == spec
    mine = annotation == ctx.run_id
    evidence = (", ".join(f"spec.{k}={_show(v)}" for k, v in seen.items())
                + f", {RUN_ID_ANNOTATION}={annotation or 'unset'} at resourceVersion "
                + str(meta(obj).get("resourceVersion")))
    if values and mine:
        return ReadBack("applied", f"{evidence} (this run's)")
    if not values and not mine:
        return ReadBack("not applied", f"{evidence}: unchanged by this run")
    why = "another writer set these values" if values else "this run's annotation is there but the values differ"
    return ReadBack("effect unknown", f"{evidence}: {why}")


def delete_read_back(kube: Kube, changes: tuple[Change, ...]) -> ReadBack:
    """For a delete: by the uid the dry-run saw (without it an object of that name proves nothing)."""
    request = _the_request(changes, "DELETE")
    uid = next((str(c.result["uid"]) for c in changes if c.result.get("uid")), None)
    if request is None:
        return ReadBack("effect unknown", "the proposal holds no single delete request to check")
    reading = deletion_reading(kube, str(request["path"]), uid)
    if not reading.applied and uid is None:
        return ReadBack("effect unknown", f"{reading.evidence}, but the uid it had when proposed is not known")
    return ReadBack("applied" if reading.applied else "not applied", reading.evidence)
