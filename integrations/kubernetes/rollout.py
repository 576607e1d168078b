"""Rollouts: `k8s.rollout.history`, `k8s.rollout.restart`, `k8s.rollout.undo` (as `kubectl rollout ...`).

A Deployment's revisions are its ReplicaSets' `deployment.kubernetes.io/revision` annotations; an undo
copies the chosen ReplicaSet's pod template back into the Deployment (kubectl does the same, with a
JSON patch), after which the controller re-labels that ReplicaSet with a new, higher revision and keeps
the numbers it had in `deployment.kubernetes.io/revision-history`. StatefulSets and DaemonSets keep
their revisions as ControllerRevisions.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from engine.actions import ActionArgs, ActionContext, ActionKind, Permission, action
from engine.errors import PermanentError
from integrations.kubernetes.base import KubeActions
from integrations.kubernetes.change import Plan, apply, managed_warning, request_record
from integrations.kubernetes.client import PATCH_TYPES, Kube
from integrations.kubernetes.kinds import KindRef, builtin, kind_permits
from integrations.kubernetes.objects import annotations_of, condition, controller_of, meta, name_of, selector_string
from integrations.kubernetes.once import with_run_id
from integrations.kubernetes.timeutil import format_time, parse_time

D, R = ActionKind.DIAGNOSE, ActionKind.REMEDIATE
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
CHANGE_CAUSE = "kubernetes.io/change-cause"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
HASH_LABEL = "pod-template-hash"
# Annotations that describe the Deployment itself, not a revision: an undo keeps the Deployment's own.
_DEPLOYMENT_OWN = ("kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY,
                   "deployment.kubernetes.io/desired-replicas", "deployment.kubernetes.io/max-replicas")


class HistoryArgs(ActionArgs):
    kind: Literal["Deployment", "StatefulSet", "DaemonSet"] = "Deployment"
    name: str
    namespace: str


class RestartArgs(ActionArgs):
    kind: Literal["Deployment", "StatefulSet", "DaemonSet"] = "Deployment"
    name: str
    namespace: str


class UndoArgs(ActionArgs):
    kind: Literal["Deployment"] = "Deployment"
    name: str
    namespace: str
    to_revision: int | None = Field(default=None, ge=1, description="Default: the previous revision.")


def _revision(obj: Mapping[str, Any]) -> int:
    try:
        return int(annotations_of(obj).get(REVISION, "0"))
    except ValueError:
        return 0


def _images(template: Mapping[str, Any]) -> list[str]:
    return [str(c.get("image")) for c in (template.get("spec") or {}).get("containers") or []]


def _history_permits(arguments: Mapping[str, Any]) -> tuple[Permission, ...]:
    own = kind_permits("get")(arguments)
    kind = arguments.get("kind", "Deployment")
    owned = ("replicasets" if kind == "Deployment" else "controllerrevisions")
    return (*own, Permission(owned, "list", "apps", "", bool(own) and own[0].namespaced))


def replica_sets(kube: Kube, deployment: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ReplicaSets the Deployment controls (by selector, then by controller uid), newest revision first."""
    namespace, uid = meta(deployment).get("namespace"), meta(deployment).get("uid")
    selector = selector_string((deployment.get("spec") or {}).get("selector") or {})
    found = kube.list(f"/apis/apps/v1/namespaces/{namespace}/replicasets", label_selector=selector or None,
                      limit=1000)
    owned = [rs for rs in found if (controller_of(rs) or {}).get("uid") == uid]
    return sorted(owned, key=_revision, reverse=True)


def became_current(deployment: Mapping[str, Any], current: Mapping[str, Any] | None) -> datetime | None:
    """When the current revision became current.

    A ReplicaSet created for this revision (no `revision-history`: it was never re-used) became current
    when it was created. One re-used by an undo or a roll back to an old template is years older than
    its revision: then the Deployment's `Progressing` condition, when it names that ReplicaSet, tells
    when the controller last moved it forward (its lastUpdateTime), the closest the API records."""
    if current is None:
        return None
    if not annotations_of(current).get(REVISION_HISTORY):
        return parse_time(meta(current).get("creationTimestamp"))
    progressing = condition(deployment, "Progressing") or {}
    if f'"{name_of(current)}"' in str(progressing.get("message", "")):
        return parse_time(progressing.get("lastUpdateTime") or progressing.get("lastTransitionTime"))
    return None


def _summary(kube: Kube, revisions: list[dict[str, Any]], current: int, since: datetime | None) -> dict[str, Any]:
    older = [r["revision"] for r in revisions if 0 < r["revision"] < current]
    return {"revisions": revisions, "current_revision": current or None,
            "previous_revision": max(older) if older else None,
            "rolled_out_at": format_time(since) if since else None,
            "rolled_out_seconds_ago": round((kube.now() - since).total_seconds()) if since else None}


def _entry(revision: int, template: Mapping[str, Any], obj: Mapping[str, Any]) -> dict[str, Any]:
    return {"revision": revision, "images": _images(template), "created": meta(obj).get("creationTimestamp"),
            "change_cause": annotations_of(obj).get(CHANGE_CAUSE), "name": name_of(obj)}


def deployment_history(kube: Kube, deployment: dict[str, Any]) -> dict[str, Any]:
    sets = replica_sets(kube, deployment)
    current_revision = _revision(deployment) or (_revision(sets[0]) if sets else 0)
    current = next((rs for rs in sets if _revision(rs) == current_revision), None)
    revisions = [_entry(_revision(rs), (rs.get("spec") or {}).get("template") or {}, rs)
                 for rs in sorted(sets, key=_revision) if _revision(rs) > 0]
    return _summary(kube, revisions, current_revision, became_current(deployment, current))


def _controller_revision(obj: Mapping[str, Any]) -> int:
    return int(obj.get("revision") or 0)


def _controller_template(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = (obj.get("data") or {}).get("spec") or {}
    return spec.get("template") or {}


def controller_history(kube: Kube, obj: dict[str, Any]) -> dict[str, Any]:
    """StatefulSet/DaemonSet revisions from their ControllerRevisions (never re-used, so their creation
    is when they became current)."""
    namespace, uid = meta(obj).get("namespace"), meta(obj).get("uid")
    found = kube.list(f"/apis/apps/v1/namespaces/{namespace}/controllerrevisions", limit=1000)
    owned = sorted((r for r in found if (controller_of(r) or {}).get("uid") == uid), key=_controller_revision)
    status = obj.get("status") or {}
    current_name = status.get("updateRevision") or status.get("currentRevision")
    current = next((r for r in owned if name_of(r) == current_name), owned[-1] if owned else None)
    revisions = [_entry(_controller_revision(r), _controller_template(r), r) for r in owned]
    since = parse_time(meta(current).get("creationTimestamp")) if current else None
    return _summary(kube, revisions, _controller_revision(current) if current else 0, since)


def choose_revision(sets: list[dict[str, Any]], current: int, wanted: int | None, target: str) -> dict[str, Any]:
    """The ReplicaSet of revision `wanted`, or of the newest revision before `current`."""
    if wanted is None:
        wanted = max((_revision(rs) for rs in sets if 0 < _revision(rs) < current), default=0)
    chosen = next((rs for rs in sets if _revision(rs) == wanted), None)
    if chosen is None:
        known = ", ".join(str(_revision(rs)) for rs in sets) or "none"
        raise PermanentError(f"{target} has no revision {wanted or 'before ' + str(current)} (revisions: {known})")
    return chosen


def undo_patch(deployment: Mapping[str, Any], chosen: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch that puts the chosen revision's pod template (and its annotations, such as the change
    cause) back, keeping the Deployment's own annotations."""
    template = copy.deepcopy((chosen.get("spec") or {}).get("template") or {})
    (template.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    annotations = {k: v for k, v in annotations_of(deployment).items() if k in _DEPLOYMENT_OWN}
    annotations.update({k: v for k, v in annotations_of(chosen).items() if k not in _DEPLOYMENT_OWN})
    return [{"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/metadata/annotations", "value": annotations}]


class RolloutActions(KubeActions):
    def _ref(self, kind: str) -> KindRef:
        ref = builtin(kind)
        if ref is None:
            raise PermanentError(f"unknown kind {kind!r}")
        return ref

    @action("k8s.rollout.history", kind=D, args=HistoryArgs, permits=_history_permits,
            permits_doc="<kind>:get, replicasets.apps:list (controllerrevisions.apps:list)")
    def history(self, ctx: ActionContext, args: HistoryArgs) -> dict[str, Any]:
        """Revisions of a Deployment (its ReplicaSets), StatefulSet or DaemonSet (ControllerRevisions).

        Output: `revisions` [{revision, images, created, change_cause}], `current_revision`,
        `previous_revision`, `rolled_out_seconds_ago` (on the API server's clock). For a Deployment that is
        the current ReplicaSet's creation when it was made for this revision; when an undo re-used an older
        ReplicaSet (it carries `deployment.kubernetes.io/revision-history`), it is the `Progressing`
        condition's lastUpdateTime when that condition names the ReplicaSet, else null. Never the re-used
        ReplicaSet's creation time, which would make an undo look ancient.
        """
        kube = self.kube_for(ctx)
        ref = self._ref(args.kind)
        obj = kube.get(ref.path(args.name, args.namespace))
        if args.kind == "Deployment":
            return deployment_history(kube, obj)
        return controller_history(kube, obj)

    @action("k8s.rollout.restart", kind=R, args=RestartArgs, permits=kind_permits("get", "patch"),
            permits_doc="<kind>:get, <kind>:patch")
    def restart(self, ctx: ActionContext, args: RestartArgs) -> dict[str, Any]:
        """Restart every pod by a rolling update (as `kubectl rollout restart`: stamps the pod template's
        `kubectl.kubernetes.io/restartedAt` with the API server's time). Output: `outcome`, `diff`, `object`."""
        kube = self.kube_for(ctx)
        ref = self._ref(args.kind)
        api_path, target = ref.path(args.name, args.namespace), ref.describe(args.name, args.namespace)
        before = kube.get(api_path)
        stamp = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: format_time(kube.now())}}}}}
        body = with_run_id(stamp, "strategic", ctx, before)
        plan = Plan("patch", target, api_path, before,
                    lambda dry: kube.patch(api_path, body, "strategic", dry_run=dry),
                    request_record("PATCH", api_path, body, False, PATCH_TYPES["strategic"]),
                    managed_warning(before, target))
        return apply(kube, ctx, plan)

    @action("k8s.rollout.undo", kind=R, args=UndoArgs, permits=kind_permits("get", "patch"),
            permissions=(Permission("replicasets", "list", "apps", "", True),),
            permits_doc="deployments.apps:get, deployments.apps:patch")
    def undo(self, ctx: ActionContext, args: UndoArgs) -> dict[str, Any]:
        """Roll a Deployment back to `to_revision` (default: the previous one) by copying that revision's
        pod template back (as `kubectl rollout undo`). The diff shows the images before -> after.

        Output: `outcome`, `diff`, `object`, `from_revision`, `to_revision`, `images_before`, `images_after`.
        """
        kube = self.kube_for(ctx)
        ref = self._ref("Deployment")
        api_path, target = ref.path(args.name, args.namespace), ref.describe(args.name, args.namespace)
        before = kube.get(api_path)
        sets = replica_sets(kube, before)
        current = _revision(before) or (_revision(sets[0]) if sets else 0)
        chosen = choose_revision(sets, current, args.to_revision, target)
        body = with_run_id(undo_patch(before, chosen), "json", ctx, before)
        images_before = _images((before.get("spec") or {}).get("template") or {})
        images_after = _images(body[0]["value"])
        wanted = _revision(chosen)
        plan = Plan("rollback", target, api_path, before,
                    lambda dry: kube.patch(api_path, body, "json", dry_run=dry),
                    request_record("PATCH", api_path, body, False, PATCH_TYPES["json"]),
                    managed_warning(before, target),
                    [f"revision {current} -> {wanted}: images {', '.join(images_before)} -> {', '.join(images_after)}"])
        out = apply(kube, ctx, plan)
        return {**out, "from_revision": current, "to_revision": wanted, "images_before": images_before,
                "images_after": images_after}
