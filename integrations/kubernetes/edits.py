"""Change any object: `k8s.patch`, `k8s.scale`, `k8s.resources.set`, `k8s.delete`.

Each reads the object, refuses what must never be done from a runbook (deleting a Namespace, a CRD, a
PersistentVolume or a Node; patching a Secret's values), warns when the change will not stick (an HPA
owns the replica count; Argo CD, Flux or Helm owns the object) and sends it through `change.apply`:
server-side dry-run, exact diff, at most one real request, an honest outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from engine.actions import ActionArgs, ActionContext, ActionKind, ArgumentProblem, Permission, ReadBack, action
from engine.errors import PermanentError
from engine.verdict import Change
from integrations.kubernetes.base import KubeActions
from integrations.kubernetes.change import Plan, apply, managed_warning, request_record
from integrations.kubernetes.client import PATCH_TYPES, Kube
from integrations.kubernetes.kinds import NEVER_DELETED, KindRef, KindResolver, kind_permits, literal_kind
from integrations.kubernetes.objects import meta
from integrations.kubernetes.once import with_run_id
from integrations.kubernetes.readback import patch_read_back
from integrations.kubernetes.remediations import force_delete_risks, pod_node

R = ActionKind.REMEDIATE
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"


class PatchArgs(ActionArgs):
    kind: str
    name: str
    namespace: str | None = None
    patch: dict[str, Any] | list[Any]
    patch_type: Literal["merge", "strategic", "json"] = "merge"
    api_version: str | None = None


class ScaleArgs(ActionArgs):
    kind: Literal["Deployment", "StatefulSet", "ReplicaSet"]
    name: str
    namespace: str
    replicas: int = Field(ge=0, le=10000)


class Quantities(ActionArgs):
    cpu: str | None = Field(default=None, pattern=QUANTITY)
    memory: str | None = Field(default=None, pattern=QUANTITY)


class ResourcesArgs(ActionArgs):
    kind: Literal["Deployment", "StatefulSet", "DaemonSet", "CronJob"]
    name: str
    namespace: str
    container: str
    requests: Quantities | None = None
    limits: Quantities | None = None

    @model_validator(mode="after")
    def _something(self) -> ResourcesArgs:
        if not (self.requests or self.limits):
            raise ValueError("give requests and/or limits (cpu, memory)")
        return self


class DeleteArgs(ActionArgs):
    kind: str
    name: str
    namespace: str | None = None
    propagation_policy: Literal["Foreground", "Background", "Orphan"] | None = None
    grace_period_seconds: int | None = Field(default=None, ge=0)
    api_version: str | None = None


def _patch_permits(arguments: Mapping[str, Any]) -> tuple[Permission, ...]:
    permissions = kind_permits("get", "patch")(arguments)
    ref = literal_kind(arguments) if permissions else None
    patch_type, patch = arguments.get("patch_type", "merge"), arguments.get("patch")
    if ref is not None:
        refuse_patch(ref, str(patch_type))
    if patch_type == "json" and isinstance(patch, dict):
        raise ArgumentProblem("patch", "a json patch is a list of operations ({op, path, value})")
    if patch_type in ("merge", "strategic") and isinstance(patch, list):
        raise ArgumentProblem("patch", f"a {patch_type} patch is a mapping; a list is a json patch")
    return permissions


def refuse_patch(ref: KindRef, patch_type: str) -> None:
    if ref.custom and patch_type == "strategic":
        raise ArgumentProblem("patch_type", "a strategic merge patch does not apply to a custom resource (the API "
                              "server answers 415 Unsupported Media Type): use merge or json")
    if ref.plural == "secrets" and not ref.group:
        raise ArgumentProblem("kind", "Secrets are not patched from runbooks: their values never pass through "
                              "the engine")


def _delete_permits(arguments: Mapping[str, Any]) -> tuple[Permission, ...]:
    permissions = kind_permits("get", "delete")(arguments)
    if not permissions:
        return ()
    ref = literal_kind(arguments)
    refuse_delete(ref)
    return (*permissions, Permission("nodes", "get")) if ref.plural == "pods" and not ref.group else permissions


def refuse_delete(ref: KindRef) -> None:
    if ref.kind in NEVER_DELETED:
        raise ArgumentProblem("kind", f"deleting a {ref.kind} is refused: it takes down far more than one object")


def _scale_permits(arguments: Mapping[str, Any]) -> tuple[Permission, ...]:
    hpa = Permission("horizontalpodautoscalers", "list", "autoscaling")
    return kind_permits("get", "patch", extra=(hpa,))(arguments)


def _pod_template_root(kind: str) -> list[str]:
    return ["spec", "jobTemplate", "spec", "template"] if kind == "CronJob" else ["spec", "template"]


def _nest(keys: list[str], leaf: Any) -> dict[str, Any]:
    out: Any = leaf
    for key in reversed(keys):
        out = {key: out}
    return dict(out)


class GenericEdits(KubeActions):
    def _resolve(self, kube: Kube, kind: str, api_version: str | None = None) -> KindRef:
        return KindResolver(kube).resolve(kind, api_version)

    def patched(self, ctx: ActionContext, args: ActionArgs, changes: tuple[Change, ...]) -> ReadBack:
        """Read-back of a patch or scale: are the values it sets and this run's annotation on the object?
        (A json patch, or one with lists, cannot be compared: effect unknown.)"""
        return patch_read_back(self.kube_for(ctx), ctx, changes)

    @action("k8s.patch", kind=R, args=PatchArgs, permits=_patch_permits, permits_doc="<kind>:get, <kind>:patch",
            read_back=patched)
    def patch(self, ctx: ActionContext, args: PatchArgs) -> dict[str, Any]:
        """Patch any object (merge, strategic or json patch). Output: `outcome`, `diff`, `object`.

        A strategic merge patch on a custom resource, and any patch of a Secret, are refused at load.
        """
        kube = self.kube_for(ctx)
        ref = self._resolve(kube, args.kind, args.api_version)
        try:
            refuse_patch(ref, args.patch_type)
        except ArgumentProblem as exc:
            raise PermanentError(exc.message) from None
        api_path, target = ref.path(args.name, args.namespace), ref.describe(args.name, args.namespace)
        before = kube.get(api_path)
        body = with_run_id(args.patch, args.patch_type, ctx, before)
        plan = Plan("patch", target, api_path, before,
                    lambda dry: kube.patch(api_path, body, args.patch_type, dry_run=dry),
                    request_record("PATCH", api_path, body, False, PATCH_TYPES[args.patch_type]),
                    managed_warning(before, target))
        return apply(kube, ctx, plan)


    @action("k8s.scale", kind=R, args=ScaleArgs, permits=_scale_permits, read_back=patched,
            permits_doc="<kind>:get, <kind>:patch, horizontalpodautoscalers.autoscaling:list")
    def scale(self, ctx: ActionContext, args: ScaleArgs) -> dict[str, Any]:
        """Set the replicas of a Deployment, StatefulSet or ReplicaSet. Warns when an HPA manages the count.

        Patches spec.replicas on the object itself rather than its scale subresource (what `kubectl scale`
        uses): the API server ignores metadata sent to /scale, and every change must carry
        `runbook.dev/run-id` in the same request. Output: `outcome`, `diff`, `object`, `before`."""
        kube = self.kube_for(ctx)
        ref = self._resolve(kube, args.kind)
        api_path, target = ref.path(args.name, args.namespace), ref.describe(args.name, args.namespace)
        before = kube.get(api_path)
        replicas = int((before.get("spec") or {}).get("replicas", 1))
        if replicas == args.replicas:
            ctx.finding("change.unchanged", "info", f"{target} already has {replicas} replicas; nothing to change")
            return {"target": target, "outcome": "not_applied", "changed": False, "diff": [], "warnings": [],
                    "object": before, "before": replicas}
        warnings = [*self._hpa_warnings(kube, args), *managed_warning(before, target)]
        body = with_run_id({"spec": {"replicas": args.replicas}}, "merge", ctx, before)
        plan = Plan("scale", target, api_path, before,
                    lambda dry: kube.patch(api_path, body, "merge", dry_run=dry),
                    request_record("PATCH", api_path, body, False, PATCH_TYPES["merge"]), warnings,
                    [f"spec.replicas: {replicas} -> {args.replicas}"], field_diff=False,
                    took_effect=lambda now: (now.get("spec") or {}).get("replicas") == args.replicas)
        return {**apply(kube, ctx, plan), "before": replicas}

    def _hpa_warnings(self, kube: Kube, args: ScaleArgs) -> list[str]:
        collection = f"/apis/autoscaling/v2/namespaces/{args.namespace}/horizontalpodautoscalers"
        response = kube.request("GET", collection, {"limit": 500}, allow=(404,))  # 404: no autoscaling API
        out = []
        for hpa in response.json().get("items") or [] if response.status == 200 else []:
            spec = hpa.get("spec") or {}
            target = spec.get("scaleTargetRef") or {}
            if target.get("kind") == args.kind and target.get("name") == args.name:
                out.append(f"HorizontalPodAutoscaler {meta(hpa).get('name')} manages the replicas of {args.kind} "
                           f"{args.namespace}/{args.name} (min {spec.get('minReplicas', 1)}, max "
                           f"{spec.get('maxReplicas')}): it will scale it back unless the HPA is changed")
        return out

    @action("k8s.resources.set", kind=R, args=ResourcesArgs, permits=kind_permits("get", "patch"),
            permits_doc="<kind>:get, <kind>:patch")
    def resources(self, ctx: ActionContext, args: ResourcesArgs) -> dict[str, Any]:
        """Set one container's CPU/memory requests and limits (for a CronJob: in its job template), e.g.
        raise a memory limit after OOMKilled. Output: `outcome`, `diff`, `object`."""
        kube = self.kube_for(ctx)
        ref = self._resolve(kube, args.kind)
        api_path, target = ref.path(args.name, args.namespace), ref.describe(args.name, args.namespace)
        before = kube.get(api_path)
        template: Any = before
        for key in _pod_template_root(args.kind):
            template = (template or {}).get(key) or {}
        names = [c.get("name") for c in (template.get("spec") or {}).get("containers") or []]
        if args.container not in names:
            raise PermanentError(f"{target} has no container {args.container!r} (it has {', '.join(map(str, names))})")
        resources = {k: v.model_dump(exclude_none=True) for k, v in (("requests", args.requests),
                                                                       ("limits", args.limits)) if v}
        body = with_run_id(_nest([*_pod_template_root(args.kind), "spec"],
                                 {"containers": [{"name": args.container, "resources": resources}]}),
                           "strategic", ctx, before)
        plan = Plan("patch", target, api_path, before,
                    lambda dry: kube.patch(api_path, body, "strategic", dry_run=dry),
                    request_record("PATCH", api_path, body, False, PATCH_TYPES["strategic"]),
                    managed_warning(before, target))
        return apply(kube, ctx, plan)

    @action("k8s.delete", kind=R, args=DeleteArgs, permits=_delete_permits,
            permits_doc="<kind>:get, <kind>:delete (+ nodes:get for pods)")
    def delete(self, ctx: ActionContext, args: DeleteArgs) -> dict[str, Any]:
        """Delete one object. Namespaces, CRDs, PersistentVolumes and Nodes are refused; a pod gets the
        checks of `k8s.pod.delete` (a forced delete of a StatefulSet pod on a NotReady node).

        Output: `outcome`, `diff`, `object` (as the API answered the delete).
        """
        kube = self.kube_for(ctx)
        ref = self._resolve(kube, args.kind, args.api_version)
        try:
            refuse_delete(ref)
        except ArgumentProblem as exc:
            raise PermanentError(exc.message) from None
        api_path, target = ref.path(args.name, args.namespace), ref.describe(args.name, args.namespace)
        before = kube.get(api_path)
        if ref.plural == "secrets" and not ref.group:
            before = {k: v for k, v in before.items() if k not in ("data", "stringData")}
        warnings = managed_warning(before, target)
        if ref.plural == "pods" and not ref.group and args.grace_period_seconds == 0:
            warnings += force_delete_risks(ctx, before, target, pod_node(kube, before))
        uid = meta(before).get("uid")
        how = f"propagation {args.propagation_policy or 'default'}, grace " + (
            f"{args.grace_period_seconds}s" if args.grace_period_seconds is not None else "default")
        body = {"propagationPolicy": args.propagation_policy, "gracePeriodSeconds": args.grace_period_seconds,
                "preconditions": {"uid": uid} if uid else None}
        plan = Plan("delete", target, api_path, before,
                    lambda dry: kube.delete(api_path, args.propagation_policy, args.grace_period_seconds, dry_run=dry,
                                            preconditions={"uid": uid} if uid else None),
                    request_record("DELETE", api_path, {k: v for k, v in body.items() if v is not None}, False),
                    warnings, [f"delete {target} ({how})"], field_diff=False)
        return apply(kube, ctx, plan)

