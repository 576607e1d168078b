"""Job state and `k8s.jobs.overlap`: did two runs of the same job work at the same time?

Duplicate runs of a migration or a billing job are how data gets written twice. The usual reasons
are mundane: `concurrencyPolicy: Allow`, someone triggering a manual run while the scheduled one was
still going, a Helm hook or CI pipeline re-running. The action names the duplicate and the reason,
and says plainly "no duplicate" when runs did not overlap.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.actions import ActionArgs, ActionContext, ActionKind, action
from engine.errors import PermanentError
from integrations.kubernetes.base import KubeActions
from integrations.kubernetes.objects import (
    INSTANTIATE_ANNOTATION,
    annotations_of,
    condition,
    labels,
    meta,
    name_of,
    owned_by,
    path,
)
from integrations.kubernetes.permissions import CRON_GET, perm
from integrations.kubernetes.report import Report, ev
from integrations.kubernetes.timeutil import format_time, human_duration, parse_time

D = ActionKind.DIAGNOSE

HELM_HOOK = "helm.sh/hook"
MANAGED_BY = "app.kubernetes.io/managed-by"


def job_state(job: dict[str, Any]) -> str:
    """`complete`, `failed`, `suspended`, `terminating` (being deleted), `active` or `pending` (no pod yet)."""
    for kind, state in (("Complete", "complete"), ("Failed", "failed"), ("Suspended", "suspended")):
        cond = condition(job, kind)
        if cond and cond.get("status") == "True":
            return state
    if meta(job).get("deletionTimestamp"):
        return "terminating"
    status = job.get("status") or {}
    return "active" if status.get("active") or status.get("startTime") else "pending"


def is_manual(job: dict[str, Any]) -> bool:
    return annotations_of(job).get(INSTANTIATE_ANNOTATION) == "manual"


def is_helm_hook(job: dict[str, Any]) -> bool:
    return HELM_HOOK in annotations_of(job) or labels(job).get(MANAGED_BY) == "Helm"


def job_start(job: dict[str, Any]) -> datetime | None:
    return parse_time((job.get("status") or {}).get("startTime")) or parse_time(meta(job).get("creationTimestamp"))


def job_end(job: dict[str, Any], now: datetime) -> datetime:
    """When the Job stopped running: completion, the Failed condition's time, or `now` while active."""
    status = job.get("status") or {}
    state = job_state(job)
    if state == "complete":
        return parse_time(status.get("completionTime")) or _cond_time(job, "Complete") or now
    if state == "failed":
        return _cond_time(job, "Failed") or now
    return now


def _cond_time(job: dict[str, Any], kind: str) -> datetime | None:
    cond = condition(job, kind) or {}
    return parse_time(cond.get("lastTransitionTime")) or parse_time(cond.get("lastProbeTime"))


def job_summary(job: dict[str, Any], now: datetime) -> dict[str, Any]:
    status = job.get("status") or {}
    failed = condition(job, "Failed") or {}
    start = job_start(job)
    end = job_end(job, now)
    return {
        "name": name_of(job),
        "state": job_state(job),
        "created": meta(job).get("creationTimestamp"),
        "start_time": status.get("startTime"),
        "completion_time": status.get("completionTime"),
        "failed_reason": failed.get("reason") if failed.get("status") == "True" else None,
        "failed_message": failed.get("message") if failed.get("status") == "True" else None,
        "active": int(status.get("active") or 0),
        "succeeded": int(status.get("succeeded") or 0),
        "failed": int(status.get("failed") or 0),
        "duration_seconds": round((end - start).total_seconds(), 1) if start else None,
        "manual": is_manual(job),
        "helm_hook": is_helm_hook(job),
    }


def by_creation(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(jobs, key=lambda j: (str(meta(j).get("creationTimestamp") or ""), name_of(j)))


def find_overlaps(jobs: list[dict[str, Any]], now: datetime) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Pairs (earlier, later) whose run intervals [start, end) intersect; jobs that never started are ignored."""
    spans = []
    for job in by_creation(jobs):
        start = job_start(job)
        if start is None or job_state(job) == "pending":
            continue
        spans.append((start, job_end(job, now), job))
    spans.sort(key=lambda s: s[0])
    pairs = []
    for i, (_start_a, end_a, a) in enumerate(spans):
        for start_b, _end_b, b in spans[i + 1:]:
            if start_b >= end_a:
                break
            pairs.append((a, b))
    return pairs


def run_signature(pod_spec: dict[str, Any]) -> tuple[tuple[str, str, str], ...]:
    """What a pod runs: (image, command, args) per container, init containers first."""
    containers = [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]
    return tuple((str(c.get("image")), repr(c.get("command")), repr(c.get("args"))) for c in containers
                 if isinstance(c, dict))


def _job_pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    return ((job.get("spec") or {}).get("template") or {}).get("spec") or {}


def members_of(cron: dict[str, Any], jobs: list[dict[str, Any]]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The runs of a CronJob among a namespace's Jobs, and the Jobs that only look like them.

    A run is owned by the CronJob (ownerReferences uid; `kubectl create job --from` sets it too) or runs
    exactly what its job template runs (same images, commands and args: a copied manifest, a CI job, an
    old CronJob left behind after a rename). A Job named like the CronJob that is neither is a look-alike.
    Returns ({job name: "owner" | "template"}, look-alikes)."""
    uid, name = str(meta(cron).get("uid")), name_of(cron)
    template = (((cron.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    signature = run_signature(template.get("spec") or {})
    members: dict[str, str] = {}
    lookalikes = []
    for job in jobs:
        if owned_by(job, uid):
            members[name_of(job)] = "owner"
        elif signature and run_signature(_job_pod_spec(job)) == signature:
            members[name_of(job)] = "template"
        elif name_of(job).startswith(f"{name}-"):
            lookalikes.append(job)
    return members, lookalikes


def overlap_reason(earlier: dict[str, Any], later: dict[str, Any], concurrency_policy: str | None,
                   how: str = "owner") -> str:
    """Why the later run exists alongside the earlier one, from what the objects record."""
    if how == "template":
        owner = (meta(later).get("ownerReferences") or [{}])[0]
        by = f"owned by {owner.get('kind')} {owner.get('name')}" if owner.get("name") else "with no owner"
        return f"{name_of(later)} runs the same images and commands as the CronJob's job template but was " \
               f"created outside it ({by}: a copied manifest, a pipeline or an old CronJob left behind) while " \
               f"{name_of(earlier)} was still running"
    if is_manual(later):
        return f"{name_of(later)} was started by hand (annotation {INSTANTIATE_ANNOTATION}=manual) while " \
               f"{name_of(earlier)} was still running"
    if is_helm_hook(later):
        hook = annotations_of(later).get(HELM_HOOK)
        return f"{name_of(later)} is a Helm {'hook (' + hook + ')' if hook else 'release job'} re-run while " \
               f"{name_of(earlier)} was still running (a retried or repeated helm upgrade)"
    if concurrency_policy == "Allow":
        return "the CronJob has concurrencyPolicy: Allow, so a scheduled run started while the previous one " \
               "was still running"
    if concurrency_policy is None:
        creator = labels(later).get(MANAGED_BY) or "its creator"
        return f"two Jobs matching the selector ran at once; {name_of(later)} was created by {creator} " \
               "(a retried pipeline or deploy creates a new Job without waiting for the old one)"
    return f"{name_of(later)} started while {name_of(earlier)} was running despite concurrencyPolicy " \
           f"{concurrency_policy} (created outside the CronJob controller's schedule)"


def analyze_overlap(
    jobs: list[dict[str, Any]], now: datetime, source: str, concurrency_policy: str | None,
    how: dict[str, str] | None = None, lookalikes: list[dict[str, Any]] | None = None,
) -> Report:
    how = how or {}
    pairs = find_overlaps(jobs, now)
    summaries = [job_summary(j, now) for j in by_creation(jobs)]
    overlaps = [_overlap_row(a, b, now, overlap_reason(a, b, concurrency_policy, how.get(name_of(b), "owner")))
                for a, b in pairs]
    first = overlaps[0] if overlaps else {}
    later = next((j for j in jobs if name_of(j) == first.get("duplicate")), None)
    report = Report({
        "duplicate": bool(pairs),
        "jobs": summaries,
        "active_jobs": [s["name"] for s in summaries if s["state"] == "active"],
        "overlaps": overlaps,
        "duplicate_job": first.get("duplicate"),
        "original_job": first.get("original"),
        "reason": first.get("reason"),
        "concurrency_policy": concurrency_policy,
        "members": [{"name": s["name"], "how": how.get(s["name"], "selector")} for s in summaries],
        "lookalikes": [name_of(j) for j in lookalikes or []],
        "duplicate_origin": _origin(later, how.get(name_of(later), "selector")) if later is not None else None,
    })
    for row in overlaps:
        when = "have been running at the same time for" if row["ongoing"] else "ran at the same time for"
        report.add(
            "jobs.duplicate_run", "critical",
            f"Jobs {row['original']} and {row['duplicate']} of {source} {when} "
            f"{human_duration(row['overlap_seconds'])}: {row['duplicate']} is the duplicate; {row['reason']}",
            [ev(f"Job {row['original']}", "status.startTime", row["original_start"]),
             ev(f"Job {row['duplicate']}", "status.startTime", row["duplicate_start"]),
             *_why_evidence(jobs, row["duplicate"], concurrency_policy, source)],
        )
    if not overlaps:
        _no_duplicate(report, summaries, source)
    _lookalikes(report, lookalikes or [], source)
    return report


def _overlap_row(earlier: dict[str, Any], later: dict[str, Any], now: datetime, reason: str) -> dict[str, Any]:
    a_start, b_start = job_start(earlier), job_start(later)
    overlap_end = min(job_end(earlier, now), job_end(later, now))
    seconds = (overlap_end - b_start).total_seconds() if b_start else 0.0
    return {
        "original": name_of(earlier), "duplicate": name_of(later), "overlap_seconds": round(seconds, 1),
        "ongoing": job_state(earlier) == "active" and job_state(later) == "active",
        "original_start": format_time(a_start) if a_start else None,
        "duplicate_start": format_time(b_start) if b_start else None, "reason": reason,
    }


def _no_duplicate(report: Report, summaries: list[dict[str, Any]], source: str) -> None:
    active = report.output["active_jobs"]
    report.add(
        "jobs.no_duplicate", "info",
        f"no duplicate: {len(summaries)} Job(s) of {source}, none ran at the same time as another"
        + (f" ({len(active)} active now)" if active else ""),
        [ev(f"Job {s['name']}", "status.startTime..completionTime",
            f"{s['start_time']} .. {s['completion_time'] or s['state']}") for s in summaries[-3:]],
    )


def _origin(job: dict[str, Any], how: str) -> str:
    """Who made the duplicate: the CronJob's `schedule`, a person (`manual`), `helm`, a copy of the
    `template` made outside the CronJob, or only a `selector` match. Only `schedule` is fixed by Forbid."""
    if how == "template":
        return "template"
    if is_manual(job):
        return "manual"
    if is_helm_hook(job):
        return "helm"
    return "schedule" if how == "owner" else "selector"


def _lookalikes(report: Report, lookalikes: list[dict[str, Any]], source: str) -> None:
    """Jobs named like the runs that are not runs: said once, so nobody stops the wrong one."""
    if not lookalikes:
        return
    names = ", ".join(name_of(j) for j in lookalikes[:10])
    report.add("jobs.lookalike", "info",
               f"{len(lookalikes)} Job(s) named like runs of {source} are not runs of it (another owner and "
               f"different images or commands), so they are not counted: {names}",
               [ev(f"Job {name_of(j)}", "metadata.ownerReferences, spec.template.spec.containers",
                   ", ".join(f"{o.get('kind')}/{o.get('name')}" for o in meta(j).get("ownerReferences") or [])
                   or "no owner") for j in lookalikes[:5]])


def _why_evidence(jobs: list[dict[str, Any]], name: str, policy: str | None, source: str) -> list[Any]:
    job = next(j for j in jobs if name_of(j) == name)
    out = []
    if is_manual(job):
        out.append(ev(f"Job {name}", f"metadata.annotations[{INSTANTIATE_ANNOTATION}]", "manual"))
    if HELM_HOOK in annotations_of(job):
        out.append(ev(f"Job {name}", f"metadata.annotations[{HELM_HOOK}]", annotations_of(job)[HELM_HOOK]))
    if policy:
        out.append(ev(source, "spec.concurrencyPolicy", policy))
    return out


class OverlapArgs(ActionArgs):
    namespace: str
    cronjob: str | None = None
    selector: str | None = None


class JobActions(KubeActions):
    @action("k8s.jobs.overlap", kind=D, args=OverlapArgs,
            permissions=(CRON_GET, perm("jobs", "list", "batch", ns=True)))
    def overlap(self, ctx: ActionContext, args: OverlapArgs) -> dict[str, Any]:
        """Find Jobs of one CronJob (ownerReferences) or label selector that ran at the same time.

        Output: `duplicate` (bool), `duplicate_job`, `original_job`, `reason`, `overlaps` [{original, duplicate,
        overlap_seconds, ongoing, original_start, duplicate_start, reason}], `jobs` [job summaries: name, state,
        created, start_time, completion_time, failed_reason, failed_message, active, succeeded, failed,
        duration_seconds, manual, helm_hook], `active_jobs`, `concurrency_policy` (CronJob only), `members`
        [{name, how: owner | template | selector}] (a run is owned by the CronJob or runs exactly its job
        template), `lookalikes` (Jobs named like runs that are neither), `duplicate_origin` (schedule | manual | helm |
        template | selector: who made the duplicate; only `schedule` is prevented by concurrencyPolicy Forbid).
        Findings: `jobs.duplicate_run` (critical, one per overlapping pair) or `jobs.no_duplicate` (info);
        `jobs.lookalike` (info) naming Jobs that only look like runs.
        """
        if bool(args.cronjob) == bool(args.selector):
            raise PermanentError("give exactly one of cronjob or selector")
        kube = self.kube_for(ctx)
        jobs_path = path("jobs", namespace=args.namespace)
        policy = None
        how: dict[str, str] = {}
        lookalikes: list[dict[str, Any]] = []
        if args.cronjob:
            cron = kube.get(path("cronjobs", args.cronjob, args.namespace))
            policy = (cron.get("spec") or {}).get("concurrencyPolicy") or "Allow"
            every = kube.list(jobs_path)
            how, lookalikes = members_of(cron, every)
            jobs = [j for j in every if name_of(j) in how]
            source = f"CronJob {args.namespace}/{args.cronjob}"
        else:
            jobs = kube.list(jobs_path, label_selector=args.selector)
            source = f"selector {args.selector} in {args.namespace}"
        return analyze_overlap(jobs, kube.now(), source, policy, how, lookalikes).emit(ctx)
