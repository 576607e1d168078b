"""Mutating actions: cordon/uncordon, pod and job deletion, CronJob suspend/resume/concurrency.

Each one reads the object first (to write a human diff and to refuse no-ops), then sends the exact
request with `dryRun=All` under dry-run, so the proposal shows what the API server accepted, not
what we hoped it would. The Change records method, path, query and body verbatim.
"""

from __future__ import annotations

from typing import Any, Literal

from engine.actions import ActionArgs, ActionContext, ActionKind, ReadBack, action
from engine.errors import PermanentError
from engine.verdict import Change
from integrations.kubernetes.base import KubeActions
from integrations.kubernetes.client import PATCH_TYPES, Kube
from integrations.kubernetes.nodes import ready_status
from integrations.kubernetes.objects import controller_of, meta, path
from integrations.kubernetes.once import deletion_reading, patch_spec, send_once
from integrations.kubernetes.permissions import CRON_PATCH, NODE_GET, NODE_PATCH, perm
from integrations.kubernetes.readback import delete_read_back, patch_read_back
from integrations.kubernetes.report import Report, ev

R = ActionKind.REMEDIATE


class NodeArgs(ActionArgs):
    node: str


class PodDeleteArgs(ActionArgs):
    namespace: str
    name: str
    grace_period_seconds: int | None = None
    force: bool = False


class CronJobArgs(ActionArgs):
    namespace: str
    cronjob: str


class ConcurrencyArgs(ActionArgs):
    namespace: str
    cronjob: str
    policy: Literal["Allow", "Forbid", "Replace"]


class JobDeleteArgs(ActionArgs):
    namespace: str
    name: str
    propagation_policy: Literal["Foreground", "Background", "Orphan"] = "Foreground"


def request_record(
    method: str, api_path: str, body: Any, dry_run: bool, content_type: str | None = None
) -> dict[str, Any]:
    """The request as sent, for the Change: what an approver approves is exactly this."""
    record: dict[str, Any] = {"method": method, "path": api_path, "query": {"dryRun": "All"} if dry_run else {}}
    if content_type:
        record["content_type"] = content_type
    if body is not None:
        record["body"] = body
    return record


def _fmt(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def patch_field(
    kube: Kube, ctx: ActionContext, *, kind: str, api_path: str, target: str, field: str, value: Any,
    patch_type: str = "strategic",
) -> dict[str, Any]:
    """Set one spec field by patch; no request (and no Change) when it already has the value."""
    obj = kube.get(api_path)
    spec = obj.get("spec") or {}
    key = field.split(".", 1)[1]
    before = spec.get(key)
    if before is None and isinstance(value, bool):
        before = False  # an absent boolean is false to the API server
    report = Report({"target": target, "field": field, "before": before, "after": value, "changed": before != value})
    if before == value:
        report.output["changed"] = False
        report.add(f"{kind.lower()}.unchanged", "info", f"{target}: {field} is already {_fmt(value)}; nothing to do",
                   [ev(target, field, _fmt(before))])
        return report.emit(ctx)
    body, sent = patch_spec(kube, ctx, api_path, target, {key: value}, patch_type)
    after = (sent.result().get("spec") or {}).get(key, value if sent.outcome == "applied" else before)
    ctx.change(Change(
        verb="patch", target=target,
        request=request_record("PATCH", api_path, body, ctx.dry_run, PATCH_TYPES[patch_type]),
        diff=(f"{field}: {_fmt(before)} -> {_fmt(value)}", *sent.notes),
        dry_run=ctx.dry_run, outcome=sent.outcome,
        result={field: after, "resourceVersion": meta(sent.result()).get("resourceVersion")},
    ))
    sent.raise_failure()
    report.output.update(after=after, outcome=sent.outcome)
    return report.emit(ctx)


def pod_node(kube: Kube, pod: dict[str, Any]) -> dict[str, Any] | None:
    node_name = (pod.get("spec") or {}).get("nodeName")
    return kube.get_or_none(path("nodes", node_name)) if node_name else None


def force_delete_risks(ctx: ActionContext, pod: dict[str, Any], target: str, node: dict[str, Any] | None) -> list[str]:
    """Warnings for deleting `pod` with grace 0 (and a finding when it risks two writers on one volume):
    shared by `k8s.pod.delete` and `k8s.delete` so both run the same checks. `node` is the pod's node."""
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name or (node is not None and ready_status(node) == "True"):
        return []
    warnings = [f"{node_name} is not Ready: force deletion only removes the API object; the containers may still "
                "be running there and will be killed only when the kubelet returns"]
    if ((controller_of(pod) or {}).get("kind")) == "StatefulSet":
        warnings.append(
            "data-safety: the StatefulSet will create a new pod with the same identity at once; if "
            f"{node_name} comes back (or is only partitioned), two pods could write the same volume. "
            "Confirm the node is powered off or fenced first"
        )
        ctx.finding("pod_delete.split_brain_risk", "warning",
                    f"force-deleting StatefulSet pod {meta(pod).get('namespace')}/{meta(pod).get('name')} on "
                    f"NotReady {node_name} risks two pods with the same identity writing one volume",
                    [ev(f"Node {node_name}", "status.conditions[Ready]", ready_status(node or {})),
                     ev(target, "metadata.ownerReferences", "StatefulSet")])
    return warnings


class RemediationActions(KubeActions):
    def patched(self, ctx: ActionContext, args: ActionArgs, changes: tuple[Change, ...]) -> ReadBack:
        """Read-back of the field patches: are the proposed values and this run's annotation there?"""
        return patch_read_back(self.kube_for(ctx), ctx, changes)

    def deleted(self, ctx: ActionContext, args: ActionArgs, changes: tuple[Change, ...]) -> ReadBack:
        """Read-back of the deletes: is the object the dry-run saw (by uid) gone or going?"""
        return delete_read_back(self.kube_for(ctx), changes)

    @action("k8s.node.cordon", kind=R, args=NodeArgs, permissions=(NODE_GET, NODE_PATCH), read_back=patched)
    def cordon(self, ctx: ActionContext, args: NodeArgs) -> dict[str, Any]:
        """Mark a node unschedulable (as `kubectl cordon`): strategic merge patch of spec.unschedulable=true.

        Output: `target`, `field`, `before`, `after`, `changed` (false when already cordoned: no request made),
        `outcome` (`applied`, also when the answer was lost and a re-read showed it; null under dry-run).
        Findings: `node.unchanged` (info) when it was already cordoned.
        """
        return patch_field(self.kube_for(ctx), ctx, kind="Node", api_path=path("nodes", args.node),
                           target=f"Node {args.node}", field="spec.unschedulable", value=True)

    @action("k8s.node.uncordon", kind=R, args=NodeArgs, permissions=(NODE_GET, NODE_PATCH), read_back=patched)
    def uncordon(self, ctx: ActionContext, args: NodeArgs) -> dict[str, Any]:
        """Make a node schedulable again (as `kubectl uncordon`). Output and findings as `k8s.node.cordon`."""
        return patch_field(self.kube_for(ctx), ctx, kind="Node", api_path=path("nodes", args.node),
                           target=f"Node {args.node}", field="spec.unschedulable", value=False)

    @action("k8s.cronjob.suspend", kind=R, args=CronJobArgs, permissions=CRON_PATCH, read_back=patched)
    def suspend_cronjob(self, ctx: ActionContext, args: CronJobArgs) -> dict[str, Any]:
        """Suspend a CronJob (spec.suspend=true); running Jobs are not affected.

        Output: `target`, `field`, `before`, `after`, `changed`, `outcome`. Findings: `cronjob.unchanged` (info).
        """
        return patch_field(self.kube_for(ctx), ctx, kind="CronJob",
                           api_path=path("cronjobs", args.cronjob, args.namespace),
                           target=f"CronJob {args.namespace}/{args.cronjob}", field="spec.suspend", value=True,
                           patch_type="merge")

    @action("k8s.cronjob.resume", kind=R, args=CronJobArgs, permissions=CRON_PATCH, read_back=patched)
    def resume_cronjob(self, ctx: ActionContext, args: CronJobArgs) -> dict[str, Any]:
        """Resume a suspended CronJob (spec.suspend=false). Output and findings as `k8s.cronjob.suspend`."""
        return patch_field(self.kube_for(ctx), ctx, kind="CronJob",
                           api_path=path("cronjobs", args.cronjob, args.namespace),
                           target=f"CronJob {args.namespace}/{args.cronjob}", field="spec.suspend", value=False,
                           patch_type="merge")

    @action("k8s.cronjob.set_concurrency_policy", kind=R, args=ConcurrencyArgs, permissions=CRON_PATCH,
            read_back=patched)
    def set_concurrency_policy(self, ctx: ActionContext, args: ConcurrencyArgs) -> dict[str, Any]:
        """Set spec.concurrencyPolicy (Allow | Forbid | Replace); `Forbid` stops overlapping runs.

        Output: `target`, `field`, `before`, `after`, `changed`, `outcome`. Findings: `cronjob.unchanged` (info).
        """
        kube = self.kube_for(ctx)
        return patch_field(kube, ctx, kind="CronJob", api_path=path("cronjobs", args.cronjob, args.namespace),
                           target=f"CronJob {args.namespace}/{args.cronjob}", field="spec.concurrencyPolicy",
                           value=args.policy, patch_type="merge")

    @action("k8s.pod.delete", kind=R, args=PodDeleteArgs,
            permissions=(perm("pods", "get", ns=True), perm("pods", "delete", ns=True), NODE_GET), read_back=deleted)
    def delete_pod(self, ctx: ActionContext, args: PodDeleteArgs) -> dict[str, Any]:
        """Delete a pod; force (grace 0) only when asked. Warns when that risks two writers on one volume.

        Output: `target`, `grace_period_seconds`, `force`, `owner_kind`, `node`, `node_ready`, `warnings` [str],
        `outcome`.
        Findings: `pod_delete.split_brain_risk` (warning) for a force delete of a StatefulSet pod on a node
        that is not Ready.
        """
        if args.force and args.grace_period_seconds not in (None, 0):
            raise PermanentError("force deletion means grace period 0; do not combine force with a grace period")
        kube = self.kube_for(ctx)
        api_path = path("pods", args.name, args.namespace)
        pod = kube.get(api_path)
        node_name = (pod.get("spec") or {}).get("nodeName")
        node = pod_node(kube, pod)
        node_ready = node is not None and ready_status(node) == "True"
        owner = (controller_of(pod) or {}).get("kind") or "None"
        grace = 0 if args.force else args.grace_period_seconds
        target = f"Pod {args.namespace}/{args.name}"
        report = Report()
        warnings = force_delete_risks(ctx, pod, target, node) if args.force else []
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        if ctx.dry_run:
            body["dryRun"] = ["All"]
        uid = meta(pod).get("uid")
        sent = send_once(ctx, target, lambda pre: kube.delete(api_path, grace_period=grace, dry_run=ctx.dry_run,
                                                              preconditions=pre),
                         lambda: deletion_reading(kube, api_path, uid))
        how = "force, grace 0s" if args.force else (f"grace {grace}s" if grace is not None else "default grace")
        ctx.change(Change(
            verb="delete", target=target, request=request_record("DELETE", api_path, body, ctx.dry_run),
            diff=(f"delete {target} on {node_name or 'no node'} ({how})", *(f"WARNING: {w}" for w in warnings),
                  *sent.notes),
            dry_run=ctx.dry_run, outcome=sent.outcome,
            result={"deletionTimestamp": meta(sent.result()).get("deletionTimestamp"), "uid": uid},
        ))
        sent.raise_failure()
        report.output = {"target": target, "grace_period_seconds": grace, "force": args.force, "owner_kind": owner,
                         "node": node_name, "node_ready": node_ready, "warnings": warnings, "outcome": sent.outcome}
        return report.emit(ctx)

    @action("k8s.job.delete", kind=R, args=JobDeleteArgs,
            permissions=(perm("jobs", "get", "batch", ns=True), perm("jobs", "delete", "batch", ns=True)),
            read_back=deleted)
    def delete_job(self, ctx: ActionContext, args: JobDeleteArgs) -> dict[str, Any]:
        """Delete a Job; Foreground propagation removes its pods before the Job disappears.

        Output: `target`, `propagation_policy`, `active` (pods the Job had running), `owner` (its CronJob, if any),
        `outcome`.
        """
        kube = self.kube_for(ctx)
        api_path = path("jobs", args.name, args.namespace)
        job = kube.get(api_path)
        active = int((job.get("status") or {}).get("active") or 0)
        owner = controller_of(job) or {}
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions",
                                "propagationPolicy": args.propagation_policy}
        if ctx.dry_run:
            body["dryRun"] = ["All"]
        target = f"Job {args.namespace}/{args.name}"
        uid = meta(job).get("uid")
        sent = send_once(ctx, target, lambda pre: kube.delete(api_path, propagation=args.propagation_policy,
                                                              dry_run=ctx.dry_run, preconditions=pre),
                         lambda: deletion_reading(kube, api_path, uid))
        ctx.change(Change(
            verb="delete", target=target, request=request_record("DELETE", api_path, body, ctx.dry_run),
            diff=(f"delete {target} and its pods ({active} active, propagation {args.propagation_policy})",
                  *sent.notes),
            dry_run=ctx.dry_run, outcome=sent.outcome, result={"uid": uid},
        ))
        sent.raise_failure()
        return {"target": target, "propagation_policy": args.propagation_policy, "active": active,
                "owner": owner.get("name") if owner.get("kind") == "CronJob" else None, "outcome": sent.outcome}
