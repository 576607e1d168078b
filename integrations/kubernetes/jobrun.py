"""`k8s.job.create_from_cronjob`: `kubectl create job --from=cronjob/NAME`, refusing to double-run.

The Job is built exactly as kubectl builds it (jobTemplate labels, annotations and spec; annotation
`cronjob.kubernetes.io/instantiate: manual`; a controller ownerReference to the CronJob) so that
history limits, `k8s.jobs.overlap` and people reading `kubectl get jobs` treat it like kubectl's.
The generated name is derived from the run, so the dry-run shows the same name that execution creates
and a retried step gets 409 instead of a second Job.
"""

from __future__ import annotations

import hashlib
from typing import Any

from engine.actions import ActionArgs, ActionContext, ActionKind, ReadBack, action
from engine.errors import PermanentError
from engine.verdict import Change, Evidence
from integrations.kubernetes.base import KubeActions
from integrations.kubernetes.cronjobs import jobs_of
from integrations.kubernetes.jobs import job_state
from integrations.kubernetes.objects import INSTANTIATE_ANNOTATION, meta, name_of, path
from integrations.kubernetes.once import creation_reading, ours, run_annotation, send_once
from integrations.kubernetes.permissions import CRON_GET, perm
from integrations.kubernetes.readback import create_read_back
from integrations.kubernetes.remediations import request_record

R = ActionKind.REMEDIATE

# Kubernetes' name-suffix alphabet (no vowels, no look-alikes).
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
MAX_NAME = 63


class CreateJobArgs(ActionArgs):
    namespace: str
    cronjob: str
    name: str | None = None


def manual_name(cronjob: str, seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    suffix = "".join(ALPHABET[b % len(ALPHABET)] for b in digest[:5])
    return f"{cronjob[: MAX_NAME - len('-manual-') - 5]}-manual-{suffix}"


def job_from_cronjob(cron: dict[str, Any], name: str) -> dict[str, Any]:
    """What kubectl's `createJobFromCronJob` builds (kubectl staging/src/k8s.io/kubectl/pkg/cmd/create/
    create_job.go, `CreateJobOptions.createJobFromCronJob`): a controller reference to the CronJob without
    `blockOwnerDeletion`, which would need the cronjobs/finalizers permission, so that with the
    OwnerReferencesPermissionEnforcement admission plugin (on in OpenShift) the create is not refused 403."""
    template = (cron.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    annotations = {INSTANTIATE_ANNOTATION: "manual", **(tmeta.get("annotations") or {})}
    job_meta: dict[str, Any] = {
        "name": name,
        "namespace": meta(cron).get("namespace"),
        "annotations": annotations,
        "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "CronJob", "name": name_of(cron), "uid": meta(cron).get("uid"),
            "controller": True,  # and no blockOwnerDeletion, as kubectl: see the docstring
        }],
    }
    if tmeta.get("labels"):
        job_meta["labels"] = dict(tmeta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta, "spec": template.get("spec") or {}}


class JobRunActions(KubeActions):
    def created(self, ctx: ActionContext, args: CreateJobArgs, changes: tuple[Change, ...]) -> ReadBack:
        """Read-back: does the Job of the fixed name exist with this run's annotation?"""
        return create_read_back(self.kube_for(ctx), ctx, changes)

    @action("k8s.job.create_from_cronjob", kind=R, args=CreateJobArgs, read_back=created,
            permissions=(CRON_GET, perm("jobs", "list", "batch", ns=True), perm("jobs", "create", "batch", ns=True)))
    def create_from_cronjob(self, ctx: ActionContext, args: CreateJobArgs) -> dict[str, Any]:
        """Start a manual run of a CronJob now; refused while another Job of the CronJob is active.

        Output: `job` (name), `namespace`, `cronjob`, `uid` (None under dry-run), `manual` (true), `active_jobs`,
        `outcome`. The name is fixed by the run and step, so a create whose answer was lost is resolved by
        reading that name (the Job carries `runbook.dev/run-id`), never by a second Job.
        Raises PermanentError when a Job of the CronJob is still active (Jobs being deleted do not count).
        Under dry-run an active Job only yields the warning finding `job_create.active_job`, so a proposal
        can stop the stuck Job first and start the run after it.
        """
        kube = self.kube_for(ctx)
        cron = kube.get(path("cronjobs", args.cronjob, args.namespace))
        name = args.name or manual_name(args.cronjob, f"{ctx.run_id}/{ctx.step}/{args.namespace}/{args.cronjob}")
        # This run's own Job (sent before a crash or a lost answer) is not another run: the create resolves it.
        active = [name_of(j) for j in jobs_of(kube, cron)
                  if job_state(j) in ("active", "pending") and not (name_of(j) == name and ours(j, ctx))]
        refusal = (f"refusing to start a manual run of CronJob {args.namespace}/{args.cronjob}: Job(s) "
                   f"{', '.join(active)} still active; a second run would overlap (check k8s.jobs.overlap)")
        if active and not ctx.dry_run:
            raise PermanentError(refusal)
        if active:
            # A proposal may stop the active Job in an earlier step; the refusal then applies at execution.
            ctx.finding("job_create.active_job", "warning", refusal.replace("refusing", "execution will refuse"),
                        [Evidence(object=f"Job {args.namespace}/{job}", field="status.active", value="active")
                         for job in active])
        body = job_from_cronjob(cron, name)
        body["metadata"]["annotations"].update(run_annotation(ctx))
        api_path, target = path("jobs", namespace=args.namespace), f"Job {args.namespace}/{name}"
        sent = send_once(ctx, target, lambda _: kube.create(api_path, body, dry_run=ctx.dry_run),
                         lambda: creation_reading(kube, path("jobs", name, args.namespace), ctx), create=True)
        uid = None if ctx.dry_run else meta(sent.result()).get("uid")
        ctx.change(Change(
            verb="create", target=target, dry_run=ctx.dry_run, outcome=sent.outcome,
            request=request_record("POST", api_path, body, ctx.dry_run),
            diff=(f"create Job {args.namespace}/{name} from CronJob {args.cronjob} (manual run)", *sent.notes),
            result={"uid": uid},
        ))
        sent.raise_failure()
        return {"job": name, "namespace": args.namespace, "cronjob": args.cronjob, "uid": uid, "manual": True,
                "active_jobs": active, "outcome": sent.outcome}
