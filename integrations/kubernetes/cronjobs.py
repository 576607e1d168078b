"""`k8s.cronjob.inspect`: why a CronJob's runs fail or do not happen, in one classification.

A CronJob fails in layers: the controller may not create Jobs (suspended, missed starting deadline,
too many missed times, Forbid blocked by a stuck run), a Job may not start its pod (missing Secret,
image pull) or the pod may fail (OOMKilled, exit code, deadline). The inspection walks those layers
from the newest failing run, and reuses the pod decoding so the cause names the exact object.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.actions import ActionArgs, ActionContext, ActionKind, action
from engine.redaction import redact
from integrations.kubernetes.base import KubeActions
from integrations.kubernetes.client import Kube
from integrations.kubernetes.cronmath import Schedule, ScheduleError, missed_runs
from integrations.kubernetes.events import fetch_events, summarize_events
from integrations.kubernetes.jobs import by_creation, is_manual, job_start, job_state, job_summary
from integrations.kubernetes.objects import condition, meta, name_of, owned_by, path
from integrations.kubernetes.permissions import CRON_GET, NS_EVENTS, NS_REFS, perm
from integrations.kubernetes.pods import suggest_renamed
from integrations.kubernetes.podstatus import CAUSE_ORDER, ContainerState, PodState, decode_pod
from integrations.kubernetes.report import Report, ev
from integrations.kubernetes.timeutil import format_time, human_duration, parse_time, stamp_with_age

D = ActionKind.DIAGNOSE

POD_BLOCKERS = ("missing_secret", "missing_configmap", "missing_key", "config_error", "image_pull")
LOG_CAUSES = ("oom_killed", "exit_code", "crash_loop")


class CronJobInspectArgs(ActionArgs):
    namespace: str
    cronjob: str
    max_jobs: int = 5
    tail_lines: int = 30


def job_cause(job: dict[str, Any], pods: list[PodState]) -> tuple[str, PodState | None]:
    """The cause for one non-successful Job: a pod that could not start beats the Job's own verdict."""
    worst = min((p for p in pods if p.cause != "healthy"), key=lambda p: CAUSE_ORDER.index(p.cause), default=None)
    if worst is not None and worst.cause in POD_BLOCKERS:
        return worst.cause, worst
    cond = condition(job, "Failed") or {}
    failed = cond.get("reason") or "Failed" if cond.get("status") == "True" else None
    if failed == "DeadlineExceeded":
        return "deadline_exceeded", worst
    if worst is not None and worst.cause in LOG_CAUSES:
        return worst.cause, worst
    if failed == "BackoffLimitExceeded":
        return "backoff_limit", worst
    if failed:
        return "job_failed", worst
    return "healthy", worst


def analyze_cronjob(
    cron: dict[str, Any],
    jobs: list[dict[str, Any]],
    pods: dict[str, list[dict[str, Any]]],
    now: datetime,
    max_jobs: int = 5,
    exists: dict[tuple[str, str, str], bool] | None = None,
    logs: dict[str, str | None] | None = None,
    events: list[dict[str, Any]] | None = None,
) -> Report:
    """Pure classification. `pods` maps Job name to its pods; `exists` answers (kind, ns, name) checks."""
    ns, name = meta(cron).get("namespace", ""), name_of(cron)
    spec, status = cron.get("spec") or {}, cron.get("status") or {}
    jobs = by_creation(jobs)
    created = parse_time(meta(cron).get("creationTimestamp")) or now
    last_schedule = parse_time(status.get("lastScheduleTime"))
    completed = [j for j in jobs if job_state(j) == "complete"]
    last_success = parse_time(status.get("lastSuccessfulTime")) or (
        parse_time((completed[-1].get("status") or {}).get("completionTime")) if completed else None)
    deadline_s = spec.get("startingDeadlineSeconds")
    out: dict[str, Any] = {
        "cronjob": name, "namespace": ns, "schedule": spec.get("schedule"), "time_zone": spec.get("timeZone") or "UTC",
        "suspended": bool(spec.get("suspend")), "concurrency_policy": spec.get("concurrencyPolicy") or "Allow",
        "starting_deadline_seconds": deadline_s,
        "successful_jobs_history_limit": spec.get("successfulJobsHistoryLimit", 3),
        "failed_jobs_history_limit": spec.get("failedJobsHistoryLimit", 1),
        "last_schedule_time": status.get("lastScheduleTime"), "last_successful_time": status.get("lastSuccessfulTime")
        or (format_time(last_success) if last_success else None),
        "active_jobs": [name_of(j) for j in jobs if job_state(j) in ("active", "pending")],
        "manual_jobs": [name_of(j) for j in jobs if is_manual(j)],
        "jobs": [job_summary(j, now) for j in jobs[-max_jobs:]],
        "next_runs": [], "next_runs_utc": [], "missed_runs": 0, "too_many_missed": False,
        "runs_since_success": None, "last_failed_job": None, "problem_job": None, "missing_object": None,
        "memory_limit": None, "exit_code": None, "exit_meaning": None, "image": None, "container": None,
        "pod": None, "skipped_runs": 0, "logs": logs or {}, "events": summarize_events(events or [], 10),
        "schedule_error": None,
    }
    failed_jobs = [j for j in jobs if job_state(j) == "failed"]
    out["last_failed_job"] = name_of(failed_jobs[-1]) if failed_jobs else None
    report = Report(out)
    schedule = None
    try:
        schedule = Schedule.parse(str(spec.get("schedule") or ""), spec.get("timeZone"))
    except ScheduleError as exc:
        out["schedule_error"] = str(exc)
    missed = None
    if schedule is not None:
        nxt = schedule.next_times(now, 3)
        out["next_runs"] = [t.isoformat() for t in nxt]
        out["next_runs_utc"] = [format_time(t) for t in nxt]
        missed = missed_runs(schedule, last_schedule or created, now, deadline_s)
        out["missed_runs"], out["too_many_missed"] = missed.missed, missed.too_many
        since, capped = schedule.times_between(last_success or created, now, cap=1000)
        out["runs_since_success"] = f">{len(since)}" if capped else len(since)

    # 1. The newest run that did not succeed, if it is newer than the last success.
    problem = next((j for j in reversed(jobs) if job_state(j) in ("failed", "active")), None)
    if problem is not None and last_success and (job_start(problem) or now) < last_success:
        problem = None
    cause, pod = "healthy", None
    if problem is not None:
        states = [decode_pod(p) for p in pods.get(name_of(problem), [])]
        cause, pod = job_cause(problem, states)
        out["problem_job"] = name_of(problem)
    blocked = False
    if problem is not None and job_state(problem) == "active" and out["concurrency_policy"] == "Forbid":
        started = job_start(problem)
        skipped_runs = schedule.times_between(started, now, cap=1000)[0] if schedule and started else []
        out["skipped_runs"] = len(skipped_runs)
        blocked = bool(skipped_runs)
        if cause == "healthy" and blocked:
            cause = "blocked_by_active_job"
    if cause == "healthy":
        if out["suspended"]:
            cause = "suspended"
        elif missed is not None and missed.missed and last_schedule is None:
            cause = "never_scheduled"
        elif missed is not None and missed.missed:
            cause = "missed_deadline" if (deadline_s is not None or missed.too_many) else "missed_schedule"
    out["cause"] = cause

    worst: ContainerState | None = pod.worst if pod else None
    if pod is not None:
        out["pod"] = pod.name
    if worst is not None:
        out.update(container=worst.name, memory_limit=worst.memory_limit, image=worst.image,
                   exit_code=worst.exit_code if worst.exit_code is not None else worst.last_exit_code,
                   exit_meaning=worst.meaning or None)
        if worst.missing is not None:
            m = worst.missing
            key = (m.kind, m.namespace, m.name)
            out["missing_object"] = {"kind": m.kind, "namespace": m.namespace, "name": m.name, "key": m.key,
                                     "exists": (exists or {}).get(key)}
    _findings(report, cron, problem, pod, worst, missed, now, blocked)
    return report


def _findings(report: Report, cron: dict[str, Any], problem: dict[str, Any] | None, pod: PodState | None,
              worst: ContainerState | None, missed: Any, now: datetime, blocked: bool) -> None:
    out = report.output
    cause, ns, name = out["cause"], out["namespace"], out["cronjob"]
    obj = f"CronJob {ns}/{name}"
    job_ref = f"Job {ns}/{out['problem_job']}" if problem is not None else ""
    pod_ref = f"Pod {ns}/{pod.name}" if pod is not None else ""
    cstat = f"status.containerStatuses[{worst.name}]" if worst is not None else ""
    if cause in ("missing_secret", "missing_configmap", "missing_key") and worst is not None and worst.missing:
        m = out["missing_object"]
        now_text = {True: "it exists now (created since?)", False: "still missing now", None: "not re-checked"}
        what = f"key {m['key']} of {m['kind']} {m['namespace']}/{m['name']}" if m["key"] else \
            f"{m['kind']} {m['namespace']}/{m['name']}"
        report.add(f"cronjob.{cause}", "critical",
                   f"{job_ref} cannot start container {worst.name}: {what} does not exist "
                   f"({now_text[m['exists']]})",
                   [ev(pod_ref, f"{cstat}.state.waiting", f"{worst.reason}: {worst.message}"),
                    ev(f"{m['kind']} {m['namespace']}/{m['name']}", "metadata" if not m["key"] else f"data[{m['key']}]",
                       {True: "exists", False: "not found", None: "unknown"}[m["exists"]])])
    elif cause in ("config_error", "image_pull") and worst is not None:
        report.add(f"cronjob.{cause}", "critical", f"{job_ref}: {pod.summary if pod else worst.reason}",
                   [ev(pod_ref, f"{cstat}.state.waiting", f"{worst.reason}: {worst.message}")])
    elif cause == "oom_killed" and worst is not None:
        report.add("cronjob.oom_killed", "critical",
                   f"{job_ref} was OOMKilled: container {worst.name} hit its memory limit "
                   f"{worst.memory_limit or '(none set: node memory)'}",
                   [ev(pod_ref, f"{cstat}.state.terminated.reason", "OOMKilled"),
                    ev(pod_ref, f"spec.containers[{worst.name}].resources.limits.memory", worst.memory_limit),
                    *_log_evidence(out["logs"], pod_ref)])
    elif cause in ("exit_code", "crash_loop") and worst is not None:
        report.add(f"cronjob.{cause}", "critical", f"{job_ref} failed: container {worst.name} {worst.meaning}",
                   [ev(pod_ref, f"{cstat}.state.terminated.exitCode", out["exit_code"]),
                    *_log_evidence(out["logs"], pod_ref)])
    elif cause in ("deadline_exceeded", "backoff_limit", "job_failed") and problem is not None:
        summary = job_summary(problem, now)
        job_spec = problem.get("spec") or {}
        limit = ("spec.activeDeadlineSeconds", job_spec.get("activeDeadlineSeconds")) \
            if cause == "deadline_exceeded" else ("spec.backoffLimit", job_spec.get("backoffLimit", 6))
        verdict = f"{summary['failed_reason']}: {summary['failed_message'] or 'no message'}"
        report.add(f"cronjob.{cause}", "critical", f"{job_ref} failed ({verdict})",
                   [ev(job_ref, "status.conditions[Failed]", verdict), ev(job_ref, limit[0], limit[1])])
    if blocked and problem is not None:
        started = job_start(problem)
        running = human_duration((now - started).total_seconds()) if started else "?"
        skipped = out["skipped_runs"]
        report.add("cronjob.blocked_by_active_job", "critical",
                   f"{job_ref} has been running for {running} and concurrencyPolicy Forbid skipped {skipped} "
                   "scheduled run(s) since it started; no run happens until it ends",
                   [ev(obj, "spec.concurrencyPolicy", "Forbid"), ev(job_ref, "status.startTime",
                    stamp_with_age((problem.get("status") or {}).get("startTime"), now))])
    if out["suspended"]:
        report.add("cronjob.suspended", "warning", f"{obj} is suspended: no new runs are scheduled",
                   [ev(obj, "spec.suspend", True)])
    if missed is not None and missed.missed and not out["suspended"] and not blocked:
        fid = "cronjob.never_scheduled" if cause == "never_scheduled" else "cronjob.missed_runs"
        extra = " (more than 100: the controller gives up counting; set startingDeadlineSeconds)" \
            if missed.too_many else ""
        dl = out["starting_deadline_seconds"]
        severity = "critical" if cause in ("never_scheduled", "missed_deadline", "missed_schedule") else "warning"
        window = f"; startingDeadlineSeconds={dl} skips runs the controller could not start in time" if dl else ""
        report.add(fid, severity,  # type: ignore[arg-type]
                   f"{missed.missed}{'+' if missed.too_many else ''} scheduled run(s) of {obj} produced no Job since "
                   f"{out['last_schedule_time'] or 'creation'}{extra}{window}",
                   [ev(obj, "status.lastScheduleTime", stamp_with_age(out["last_schedule_time"], now)),
                    ev(obj, "spec.schedule", f"{out['schedule']} ({out['time_zone']})"),
                    *([ev(obj, "spec.startingDeadlineSeconds", dl)] if dl is not None else [])])
    if cause == "healthy":
        last = out["last_successful_time"]
        report.add("cronjob.healthy", "info",
                   f"{obj} is healthy: last success {stamp_with_age(last, now) if last else 'never (no run due yet)'}, "
                   f"next run {out['next_runs_utc'][0] if out['next_runs_utc'] else 'unknown'}",
                   [ev(obj, "status.lastSuccessfulTime", last), ev(obj, "spec.schedule", out["schedule"])])


def _log_evidence(logs: dict[str, str | None], pod_ref: str) -> list[Any]:
    out = []
    for which, text in logs.items():
        if text:
            tail = "\n".join(text.strip().splitlines()[-5:])
            out.append(ev(pod_ref, f"log ({which}, last lines)", tail))
    return out


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
        summaries), `last_failed_job`, `problem_job`, `pod`, `container`, `missing_object` {kind, namespace,
        name, key, exists}, `memory_limit`, `exit_code`, `exit_meaning`, `image`, `logs` {current, previous}
        (redacted tails), `events`, `schedule_error`.
        Findings: `cronjob.<cause>` (critical) for failure causes, `cronjob.blocked_by_active_job`,
        `cronjob.missed_runs` / `cronjob.never_scheduled` (critical), `cronjob.suspended` (warning),
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
        return output
