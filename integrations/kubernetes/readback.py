"""Read-backs: did an approved change whose sender died take effect? Read from the target alone.

The engine calls these (`engine.in_flight`) when it takes over a run whose process died while sending
a change; they only read, with the engine's own client. Every patch carries this run's
`runbook.dev/run-id` annotation in the same request as its fields, so the two appear together or not at
all: a target with the patched values AND this run's annotation was changed by this run; one with
neither was not; anything else (the values without the annotation, the annotation without the values)
means someone else wrote it too, and the answer is `effect unknown`.
A delete is judged by the uid its dry-run saw: gone, replaced by another uid, or being deleted means
applied; the same uid, not being deleted, means not applied. A create of a fixed name: the object of that
name with this run's annotation means applied; none, or someone else's (our create would have failed),
not applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.actions import ActionContext, ReadBack
from engine.verdict import Change
from integrations.kubernetes.client import Kube
from integrations.kubernetes.objects import meta
from integrations.kubernetes.once import RUN_ID_ANNOTATION, creation_reading, deletion_reading


def _the_request(changes: tuple[Change, ...], method: str) -> Mapping[str, Any] | None:
    """The one request of `method` the dry-run proposed (None when there is not exactly one)."""
    found = [c.request for c in changes if str(c.request.get("method", "")).upper() == method and c.request.get("path")]
    return found[0] if len(found) == 1 else None


def _show(value: Any) -> str:
    return "unset" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _leaves(value: Any, at: tuple[str, ...], out: dict[tuple[str, ...], Any]) -> bool:
    """Flatten a merge patch into path -> value; False when it holds what a value compare cannot judge
    (a list, which a strategic merge may merge rather than replace, or a `$` directive)."""
    if isinstance(value, list):
        return False
    if not isinstance(value, dict) or not value:
        out[at] = value
        return True
    return all(not str(k).startswith("$") and _leaves(v, (*at, str(k)), out) for k, v in value.items())


def _at(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


_OURS = ("metadata", "annotations", RUN_ID_ANNOTATION)


def patch_read_back(kube: Kube, ctx: ActionContext, changes: tuple[Change, ...]) -> ReadBack:
    """For a merge or strategic patch of plain values (maps of values, no lists): compare every value it
    sets, and the annotation."""
    request = _the_request(changes, "PATCH")
    body = request.get("body") if request else None
    wanted: dict[tuple[str, ...], Any] = {}
    if request is None or not isinstance(body, dict) or not _leaves(body, (), wanted) or _OURS not in wanted:
        return ReadBack("effect unknown", "this engine cannot compare the proposed request with the object: it is "
                                          "not a patch of plain values with this run's annotation (a json patch, "
                                          "or one with lists)")
    del wanted[_OURS]
    obj = kube.get_or_none(str(request["path"]))
    if obj is None:
        return ReadBack("effect unknown", f"{request['path']} no longer exists")
    seen = {k: _at(obj, k) for k in wanted}
    seen = {k: False if v is None and isinstance(wanted[k], bool) else v for k, v in seen.items()}  # unset = false
    annotation = _at(obj, _OURS)
    values, mine = seen == wanted, annotation == ctx.run_id
    shown = [f"{'.'.join(k)}={_show(v)}" for k, v in seen.items()]
    evidence = (", ".join(shown[:5]) + (f" and {len(shown) - 5} more" if len(shown) > 5 else "")
                + f", {RUN_ID_ANNOTATION}={annotation or 'unset'} at resourceVersion "
                + str(meta(obj).get("resourceVersion")))
    if values and mine:
        return ReadBack("applied", f"{evidence} (this run's)")
    if not values and not mine:
        return ReadBack("not applied", f"{evidence}: unchanged by this run")
    why = "another writer set these values" if values else "this run's annotation is there but the values differ"
    return ReadBack("effect unknown", f"{evidence}: {why}")


def create_read_back(kube: Kube, ctx: ActionContext, changes: tuple[Change, ...]) -> ReadBack:
    """For a create with a fixed name: does the object of that name exist and carry this run's annotation?"""
    request = _the_request(changes, "POST")
    name = _at(request.get("body"), ("metadata", "name")) if request else None
    if request is None or not name:
        return ReadBack("effect unknown", "the proposal holds no single create of a fixed name to check")
    reading = creation_reading(kube, f"{str(request['path']).rstrip('/')}/{name}", ctx)
    return ReadBack("applied" if reading.applied else "not applied", reading.evidence)


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
