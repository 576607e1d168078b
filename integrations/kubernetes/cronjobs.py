"""`k8s.cronjob.inspect`: why a CronJob's runs fail or do not happen, in one classification.

This module reads (the CronJob, its Jobs by ownership, their pods, the missing object, the logs); the
classification itself is `crondiag`: facts, an ordered cause table, findings per cause.
"""

from __future__ import annotations

from typing import Any

from engine.actions import ActionArgs, ActionContext, ActionKind, action
from engine.redaction import redact
from integrations.kubernetes.base import KubeActions
from integrations.kubernetes.client import Kube
from integrations.kubernetes.crondiag import LOG_CAUSES, analyze_cronjob
from integrations.kubernetes.events import fetch_events
from integrations.kubernetes.jobs import by_creation
from integrations.kubernetes.objects import meta, name_of, owned_by, path
from integrations.kubernetes.permissions import CRON_GET, NS_EVENTS, NS_REFS, perm
from integrations.kubernetes.pods import suggest_renamed

D = ActionKind.DIAGNOSE

__all__ = ["CronJobActions", "CronJobInspectArgs", "analyze_cronjob"]


class CronJobInspectArgs(ActionArgs):
    namespace: str
    cronjob: str
    max_jobs: int = 5
    tail_lines: int = 30


def jobs_of(kube: Kube, cron: dict[str, Any]) -> list[dict[str, Any]]:
    uid = str(meta(cron).get("uid"))
    return [j for j in kube.list(path("jobs", namespace=meta(cron).get("namespace"))) if owned_by(j, uid)]


def pods_of(kube: Kube, namespace: str, jobs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Pods per Job, by ownerReference uid (one namespace list: labels differ across Kubernetes versions)."""
    if not jobs:
        return {}
    uids = {str(meta(j).get("uid")): name_of(j) for j in jobs}
    out: dict[str, list[dict[str, Any]]] = {}
    for pod in kube.list(path("pods", namespace=namespace)):
        for owner in meta(pod).get("ownerReferences") or []:
            if owner.get("uid") in uids:
                out.setdefault(uids[owner["uid"]], []).append(pod)
    return out


def _repoint(kube: Kube, cron: dict[str, Any], missing: dict[str, Any] | None) -> None:
    """With exactly one look-alike that holds every key the template reads from it, the JSON patch that
    points the job template at it (each reference tested first, so a template changed since is refused, not
    overwritten): `missing["repoint"]`. Only key names are read; values are dropped at once."""
    if not missing or missing.get("exists") is not False or missing.get("key"):
        return
    similar, paths = missing.get("similar") or [], missing.get("ref_paths") or []
    if len(similar) != 1 or not paths:
        return
    needed = {k for p in paths if p.endswith("KeyRef/name") and (k := _at(cron, p.rsplit("/", 1)[0] + "/key"))}
    resource = "secrets" if missing["kind"] == "Secret" else "configmaps"
    full = kube.get_or_none(path(resource, similar[0], missing["namespace"])) or {}
    keys = set(full.get("data") or {}) | set(full.get("binaryData") or {})
    del full
    if needed <= keys:
        missing["repoint"] = [op for p in paths for op in ({"op": "test", "path": p, "value": missing["name"]},
                                                            {"op": "replace", "path": p, "value": similar[0]})]


def _at(obj: Any, pointer: str) -> Any:
    for part in pointer.strip("/").split("/"):
        obj = obj[int(part)] if isinstance(obj, list) and part.isdigit() and int(part) < len(obj) else \
            obj.get(part) if isinstance(obj, dict) else None
    return obj


class CronJobActions(KubeActions):
    @action("k8s.cronjob.inspect", kind=D, args=CronJobInspectArgs,
            permissions=(CRON_GET, perm("jobs", "list", "batch", ns=True), perm("pods", "list", ns=True),
                         perm("pods", "get", sub="log", ns=True), *NS_REFS, NS_EVENTS))
    def inspect(self, ctx: ActionContext, args: CronJobInspectArgs) -> dict[str, Any]:
        """Why a CronJob's runs fail or do not happen.

        Output: `cause` (healthy | missing_secret | missing_configmap | missing_key | config_error | image_pull |
        oom_killed | exit_code | crash_loop | deadline_exceeded | backoff_limit | job_failed |
        blocked_by_active_job | suspended | never_scheduled | missed_deadline | missed_schedule), `schedule`,
        `time_zone`, `suspended`, `concurrency_policy`, `starting_deadline_seconds`,
        `successful_jobs_history_limit`, `failed_jobs_history_limit`, `last_schedule_time`,
        `last_successful_time`, `next_runs` (in the CronJob's zone), `next_runs_utc`, `missed_runs`,
        `too_many_missed`, `runs_since_success`, `skipped_runs` (runs Forbid skipped for the active Job),
        `active_jobs`, `manual_jobs`, `jobs` (newest `max_jobs`
        summaries), `last_failed_job`, `problem_job`, `failing_repeatedly` (the run failed and at least two
        scheduled times passed without a success), `pod`, `container`, `missing_object` {kind, namespace, name,
        key, exists, ref_paths (JSON pointers of its references in the job template), similar, repoint (the JSON
        patch re-pointing them at the one look-alike)}, `memory_limit`, `exit_code`, `exit_meaning`, `image`,
        `template_image` (what the CronJob's template runs now), `image_fixed` (image_pull and the template's
        image changed since), `logs` {current, previous} (redacted tails), `events`, `schedule_error`.
        Findings: `cronjob.<cause>` (critical) for failure causes, `cronjob.blocked_by_active_job`,
        `cronjob.missed_runs` / `cronjob.never_scheduled` (critical), `cronjob.suspended`,
        `cronjob.failing_repeatedly` (warning),
        `cronjob.healthy` (info, only when nothing is wrong).
        """
        kube = self.kube_for(ctx)
        cron = kube.get(path("cronjobs", args.cronjob, args.namespace))
        jobs = by_creation(jobs_of(kube, cron))
        recent = jobs[-args.max_jobs:]
        pods = pods_of(kube, args.namespace, recent)
        now = kube.now()
        report = analyze_cronjob(cron, jobs, pods, now, args.max_jobs)
        out = report.output
        missing = out["missing_object"]
        exists: dict[tuple[str, str, str], bool] = {}
        logs: dict[str, str | None] = {}
        if missing is not None:
            resource = "secrets" if missing["kind"] == "Secret" else "configmaps"
            found = kube.get_metadata(path(resource, missing["name"], missing["namespace"])) is not None
            exists[(missing["kind"], missing["namespace"], missing["name"])] = found
        elif out["cause"] in LOG_CAUSES and out["pod"] and out["container"]:
            for which, previous in (("current", False), ("previous", True)):
                text = kube.log(args.namespace, out["pod"], out["container"], previous, args.tail_lines)
                if text:
                    logs[which] = redact(text)
        events = fetch_events(kube, "CronJob", args.cronjob, args.namespace)
        final = analyze_cronjob(cron, jobs, pods, now, args.max_jobs, exists, logs, events)
        output = final.emit(ctx)
        suggest_renamed(ctx, kube, output.get("missing_object"), "cronjob.similar_object")
        _repoint(kube, cron, output.get("missing_object"))
        return output
