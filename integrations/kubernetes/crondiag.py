"""Why a CronJob's runs fail or do not happen: facts, the ordered cause table, findings per cause.

A CronJob fails in layers: the controller may not create Jobs (suspended, missed starting deadline,
too many missed times, Forbid blocked by a stuck run), a Job may not start its pod (missing Secret,
image pull) or the pod may fail (OOMKilled, exit code, deadline). The facts walk those layers from the
newest failing run, reusing the pod decoding so the cause names the exact object; the table below is
their precedence. Pure: everything here works on plain dicts, `k8s.cronjob.inspect` does the reading.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.verdict import Evidence
from integrations.kubernetes.cronmath import MissedRuns, Schedule, ScheduleError, missed_runs
from integrations.kubernetes.diagnosis import first_cause, render
from integrations.kubernetes.events import summarize_events
from integrations.kubernetes.jobs import by_creation, is_manual, job_start, job_state, job_summary
from integrations.kubernetes.objects import condition, meta, name_of
from integrations.kubernetes.podstatus import CAUSE_ORDER, ContainerState, PodState, decode_pod
from integrations.kubernetes.report import Report, ev
from integrations.kubernetes.timeutil import format_time, human_duration, parse_time, stamp_with_age

POD_BLOCKERS = ("missing_secret", "missing_configmap", "missing_key", "config_error", "image_pull")
LOG_CAUSES = ("oom_killed", "exit_code", "crash_loop")
JOB_CAUSES = (*POD_BLOCKERS, "deadline_exceeded", *LOG_CAUSES, "backoff_limit", "job_failed")
MISSING = ("missing_secret", "missing_configmap", "missing_key")
RUN_FAILURES = ("exit_code", "deadline_exceeded", "backoff_limit", "job_failed", "crash_loop")


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


@dataclass(frozen=True)
class CronFacts:
    """What the CronJob, its Jobs and their pods say, read once; the cause and findings use only this."""

    namespace: str
    name: str
    spec: dict[str, Any]
    status: dict[str, Any]
    jobs: tuple[dict[str, Any], ...]
    now: datetime
    created: datetime
    last_schedule: datetime | None
    last_success: datetime | None
    schedule: Schedule | None
    schedule_error: str | None
    missed: MissedRuns | None
    problem: dict[str, Any] | None  # the newest run that did not succeed, if newer than the last success
    job_cause: str
    pod: PodState | None
    skipped_runs: int  # runs Forbid skipped while `problem` is active
    exists: dict[tuple[str, str, str], bool]
    logs: dict[str, str | None]
    events: tuple[dict[str, Any], ...]

    @property
    def worst(self) -> ContainerState | None:
        return self.pod.worst if self.pod else None

    @property
    def suspended(self) -> bool:
        return bool(self.spec.get("suspend"))

    @property
    def concurrency_policy(self) -> str:
        return str(self.spec.get("concurrencyPolicy") or "Allow")

    @property
    def blocked(self) -> bool:
        return self.skipped_runs > 0

    @property
    def missed_count(self) -> int:
        return self.missed.missed if self.missed is not None else 0

    @property
    def scheduled_since_success(self) -> int:
        """Scheduled times since the last success (or creation); capped at 1000."""
        if self.schedule is None:
            return 0
        return len(self.schedule.times_between(self.last_success or self.created, self.now, cap=1000)[0])

    @property
    def failing_repeatedly(self) -> bool:
        """The run failed and so did the ones before it: at least two scheduled times passed without a success
        (finished Jobs may be gone: failedJobsHistoryLimit keeps one by default, lastSuccessfulTime remains)."""
        return self.job_cause in RUN_FAILURES and self.scheduled_since_success >= 2

    @property
    def obj(self) -> str:
        return f"CronJob {self.namespace}/{self.name}"

    @property
    def job_ref(self) -> str:
        return f"Job {self.namespace}/{name_of(self.problem)}" if self.problem is not None else ""

    @property
    def pod_ref(self) -> str:
        return f"Pod {self.namespace}/{self.pod.name}" if self.pod is not None else ""


def _parse_schedule(spec: dict[str, Any]) -> tuple[Schedule | None, str | None]:
    try:
        return Schedule.parse(str(spec.get("schedule") or ""), spec.get("timeZone")), None
    except ScheduleError as exc:
        return None, str(exc)


def _last_success(status: dict[str, Any], jobs: list[dict[str, Any]]) -> datetime | None:
    """The later of status.lastSuccessfulTime and the newest completed run's completionTime: a manual re-run
    that succeeded counts (the controller only records the runs it started)."""
    completed = [t for j in jobs if job_state(j) == "complete"
                 if (t := parse_time((j.get("status") or {}).get("completionTime"))) is not None]
    times = [t for t in (parse_time(status.get("lastSuccessfulTime")), *completed) if t is not None]
    return max(times) if times else None


def _problem(jobs: list[dict[str, Any]], last_success: datetime | None, now: datetime) -> dict[str, Any] | None:
    problem = next((j for j in reversed(jobs) if job_state(j) in ("failed", "active")), None)
    if problem is not None and last_success and (job_start(problem) or now) < last_success:
        return None
    return problem


def _skipped_runs(problem: dict[str, Any] | None, policy: str, schedule: Schedule | None, now: datetime) -> int:
    """Scheduled times Forbid skipped since the active problem Job started."""
    if problem is None or job_state(problem) != "active" or policy != "Forbid":
        return 0
    started = job_start(problem)
    return len(schedule.times_between(started, now, cap=1000)[0]) if schedule and started else 0


def cron_facts(cron: dict[str, Any], jobs: list[dict[str, Any]], pods: dict[str, list[dict[str, Any]]],
               now: datetime, exists: dict[tuple[str, str, str], bool] | None = None,
               logs: dict[str, str | None] | None = None, events: list[dict[str, Any]] | None = None) -> CronFacts:
    spec, status = cron.get("spec") or {}, cron.get("status") or {}
    jobs = by_creation(jobs)
    last_schedule, last_success = parse_time(status.get("lastScheduleTime")), _last_success(status, jobs)
    schedule, schedule_error = _parse_schedule(spec)
    created = parse_time(meta(cron).get("creationTimestamp")) or now
    missed = missed_runs(schedule, last_schedule or created, now, spec.get("startingDeadlineSeconds")) \
        if schedule is not None else None
    problem = _problem(jobs, last_success, now)
    cause, pod = job_cause(problem, [decode_pod(p) for p in pods.get(name_of(problem), [])]) \
        if problem is not None else ("healthy", None)
    return CronFacts(
        namespace=str(meta(cron).get("namespace", "")), name=name_of(cron), spec=spec, status=status,
        jobs=tuple(jobs), now=now, created=created, last_schedule=last_schedule, last_success=last_success,
        schedule=schedule, schedule_error=schedule_error, missed=missed, problem=problem, job_cause=cause, pod=pod,
        skipped_runs=_skipped_runs(problem, str(spec.get("concurrencyPolicy") or "Allow"), schedule, now),
        exists=dict(exists or {}), logs=dict(logs or {}), events=tuple(summarize_events(events or [], 10)),
    )


def _job_says(cause: str) -> Callable[[CronFacts], bool]:
    return lambda f: f.job_cause == cause


# The order is the precedence: what the newest failing run says (its pod's blocker first, see
# `job_cause`), then a run Forbid keeps alive, then why the controller creates no Jobs at all.
CRON_CAUSES: tuple[tuple[str, Callable[[CronFacts], bool]], ...] = (
    *((cause, _job_says(cause)) for cause in JOB_CAUSES),
    ("blocked_by_active_job", lambda f: f.blocked),
    ("suspended", lambda f: f.suspended),
    ("never_scheduled", lambda f: f.missed_count > 0 and f.last_schedule is None),
    ("missed_deadline", lambda f: f.missed_count > 0 and (f.spec.get("startingDeadlineSeconds") is not None
                                                          or bool(f.missed and f.missed.too_many))),
    ("missed_schedule", lambda f: f.missed_count > 0),
)


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
    facts = cron_facts(cron, jobs, pods, now, exists, logs, events)
    cause = first_cause(CRON_CAUSES, facts, "healthy")
    out = {**cron_output(facts, max_jobs), **run_output(facts), "cause": cause}
    return render(Report(out), facts, cause, _CAUSE_FINDINGS, _always_findings(cause))


def cron_output(f: CronFacts, max_jobs: int) -> dict[str, Any]:
    """The CronJob's own fields and its runs (the first half of `k8s.cronjob.inspect`'s output)."""
    spec, status = f.spec, f.status
    failed = [j for j in f.jobs if job_state(j) == "failed"]
    return {
        "cronjob": f.name, "namespace": f.namespace, "schedule": spec.get("schedule"),
        "time_zone": spec.get("timeZone") or "UTC", "suspended": f.suspended,
        "concurrency_policy": f.concurrency_policy, "starting_deadline_seconds": spec.get("startingDeadlineSeconds"),
        "successful_jobs_history_limit": spec.get("successfulJobsHistoryLimit", 3),
        "failed_jobs_history_limit": spec.get("failedJobsHistoryLimit", 1),
        "last_schedule_time": status.get("lastScheduleTime"), "last_successful_time": status.get("lastSuccessfulTime")
        or (format_time(f.last_success) if f.last_success else None),
        "active_jobs": [name_of(j) for j in f.jobs if job_state(j) in ("active", "pending")],
        "manual_jobs": [name_of(j) for j in f.jobs if is_manual(j)],
        "jobs": [job_summary(j, f.now) for j in f.jobs[-max_jobs:]],
        **_schedule_output(f),
        "last_failed_job": name_of(failed[-1]) if failed else None,
        "problem_job": name_of(f.problem) if f.problem is not None else None,
        "failing_repeatedly": f.failing_repeatedly,
    }


def _schedule_output(f: CronFacts) -> dict[str, Any]:
    nxt = f.schedule.next_times(f.now, 3) if f.schedule is not None else []
    since: Any = None
    if f.schedule is not None:
        times, capped = f.schedule.times_between(f.last_success or f.created, f.now, cap=1000)
        since = f">{len(times)}" if capped else len(times)
    return {"next_runs": [t.isoformat() for t in nxt], "next_runs_utc": [format_time(t) for t in nxt],
            "missed_runs": f.missed_count, "too_many_missed": bool(f.missed and f.missed.too_many),
            "runs_since_success": since}


def run_output(f: CronFacts) -> dict[str, Any]:
    """The failing run's pod and container (the second half of the output)."""
    w = f.worst
    out: dict[str, Any] = {
        "missing_object": None, "memory_limit": None, "exit_code": None, "exit_meaning": None, "image": None,
        "container": None, "pod": f.pod.name if f.pod else None, "skipped_runs": f.skipped_runs, "logs": f.logs,
        "events": list(f.events), "schedule_error": f.schedule_error, "template_image": None,
        "image_fixed": False,
    }
    if w is not None:
        template_image = _template_image(f.spec, w.name)
        out.update(template_image=template_image,
                   image_fixed=f.job_cause == "image_pull" and bool(template_image) and template_image != w.image)
        out.update(container=w.name, memory_limit=w.memory_limit, image=w.image,
                   exit_code=w.exit_code if w.exit_code is not None else w.last_exit_code,
                   exit_meaning=w.meaning or None)
    if w is not None and w.missing is not None:
        m = w.missing
        out["missing_object"] = {"kind": m.kind, "namespace": m.namespace, "name": m.name, "key": m.key,
                                 "exists": f.exists.get((m.kind, m.namespace, m.name)),
                                 "ref_paths": reference_paths(f.spec, m.kind, m.name)}
    return out


_REFS = {  # where a pod spec names a Secret / ConfigMap: (list, item path to the name) per kind
    "Secret": (("env", ("valueFrom", "secretKeyRef", "name")), ("envFrom", ("secretRef", "name"))),
    "ConfigMap": (("env", ("valueFrom", "configMapKeyRef", "name")), ("envFrom", ("configMapRef", "name"))),
}
_VOLUME_REFS = {"Secret": ("secret", "secretName"), "ConfigMap": ("configMap", "name")}


def reference_paths(spec: dict[str, Any], kind: str, name: str) -> list[str]:
    """JSON pointers into the CronJob where its job template names this Secret / ConfigMap (env, envFrom,
    volumes), so a fix can re-point exactly those references."""
    root = "/spec/jobTemplate/spec/template/spec"
    pod = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    paths = []
    for group in ("initContainers", "containers"):
        for i, container in enumerate(pod.get(group) or []):
            for field, keys in _REFS.get(kind, ()):
                for j, item in enumerate(container.get(field) or []):
                    if _dig(item, keys) == name:
                        paths.append(f"{root}/{group}/{i}/{field}/{j}/" + "/".join(keys))
    source, key = _VOLUME_REFS.get(kind, ("", ""))
    for k, volume in enumerate(pod.get("volumes") or []):
        if _dig(volume, (source, key)) == name:
            paths.append(f"{root}/volumes/{k}/{source}/{key}")
    return paths


def _dig(obj: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _template_image(spec: dict[str, Any], container: str) -> str | None:
    """The image the CronJob's job template runs now for `container` (a fix since the run changes it)."""
    pod = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    return next((str(c.get("image")) for c in pod.get("containers") or [] if c.get("name") == container), None)


def _missing(report: Report, f: CronFacts) -> None:
    m, w = report.output["missing_object"], f.worst
    if m is None or w is None:
        return
    now_text = {True: "it exists now (created since?)", False: "still missing now", None: "not re-checked"}
    what = f"key {m['key']} of {m['kind']} {m['namespace']}/{m['name']}" if m["key"] else \
        f"{m['kind']} {m['namespace']}/{m['name']}"
    report.add(f"cronjob.{f.job_cause}", "critical",
               f"{f.job_ref} cannot start container {w.name}: {what} does not exist ({now_text[m['exists']]})",
               [ev(f.pod_ref, f"{_cstat(w)}.state.waiting", f"{w.reason}: {w.message}"),
                ev(f"{m['kind']} {m['namespace']}/{m['name']}", "metadata" if not m["key"] else f"data[{m['key']}]",
                   {True: "exists", False: "not found", None: "unknown"}[m["exists"]])])


def _pod_blocked(report: Report, f: CronFacts) -> None:
    if (w := f.worst) is None:
        return
    fixed = report.output["image_fixed"]
    since = f"; the CronJob's template now runs {report.output['template_image']}, so the cause is gone" \
        if fixed else ""
    report.add(f"cronjob.{f.job_cause}", "critical", f"{f.job_ref}: {f.pod.summary if f.pod else w.reason}{since}",
               [ev(f.pod_ref, f"{_cstat(w)}.state.waiting", f"{w.reason}: {w.message}"),
                *([ev(f.obj, "spec.jobTemplate.spec.template.spec.containers[*].image",
                      report.output["template_image"])] if fixed else [])])


def _oom(report: Report, f: CronFacts) -> None:
    if (w := f.worst) is not None:
        report.add("cronjob.oom_killed", "critical",
                   f"{f.job_ref} was OOMKilled: container {w.name} hit its memory limit "
                   f"{w.memory_limit or '(none set: node memory)'}",
                   [ev(f.pod_ref, f"{_cstat(w)}.state.terminated.reason", "OOMKilled"),
                    ev(f.pod_ref, f"spec.containers[{w.name}].resources.limits.memory", w.memory_limit),
                    *_log_evidence(f.logs, f.pod_ref)])


def _exit(report: Report, f: CronFacts) -> None:
    if (w := f.worst) is not None:
        report.add(f"cronjob.{f.job_cause}", "critical", f"{f.job_ref} failed: container {w.name} {w.meaning}",
                   [ev(f.pod_ref, f"{_cstat(w)}.state.terminated.exitCode", report.output["exit_code"]),
                    *_log_evidence(f.logs, f.pod_ref)])


def _job_failed(report: Report, f: CronFacts) -> None:
    if f.problem is None:
        return
    summary, job_spec = job_summary(f.problem, f.now), f.problem.get("spec") or {}
    limit = ("spec.activeDeadlineSeconds", job_spec.get("activeDeadlineSeconds")) \
        if f.job_cause == "deadline_exceeded" else ("spec.backoffLimit", job_spec.get("backoffLimit", 6))
    verdict = f"{summary['failed_reason']}: {summary['failed_message'] or 'no message'}"
    report.add(f"cronjob.{f.job_cause}", "critical", f"{f.job_ref} failed ({verdict})",
               [ev(f.job_ref, "status.conditions[Failed]", verdict), ev(f.job_ref, limit[0], limit[1])])


def _blocked(report: Report, f: CronFacts) -> None:
    if f.problem is None:
        return
    started = job_start(f.problem)
    running = human_duration((f.now - started).total_seconds()) if started else "?"
    report.add("cronjob.blocked_by_active_job", "critical",
               f"{f.job_ref} has been running for {running} and concurrencyPolicy Forbid skipped {f.skipped_runs} "
               "scheduled run(s) since it started; no run happens until it ends",
               [ev(f.obj, "spec.concurrencyPolicy", "Forbid"), ev(f.job_ref, "status.startTime",
                stamp_with_age((f.problem.get("status") or {}).get("startTime"), f.now))])


def _suspended(report: Report, f: CronFacts) -> None:
    report.add("cronjob.suspended", "warning", f"{f.obj} is suspended: no new runs are scheduled",
               [ev(f.obj, "spec.suspend", True)])


def _missed(report: Report, f: CronFacts) -> None:
    if f.missed is None:
        return
    out, missed = report.output, f.missed
    cause = out["cause"]
    fid = "cronjob.never_scheduled" if cause == "never_scheduled" else "cronjob.missed_runs"
    extra = " (more than 100: the controller gives up counting; set startingDeadlineSeconds)" \
        if missed.too_many else ""
    dl = out["starting_deadline_seconds"]
    severity = "critical" if cause in ("never_scheduled", "missed_deadline", "missed_schedule") else "warning"
    window = f"; startingDeadlineSeconds={dl} skips runs the controller could not start in time" if dl else ""
    report.add(fid, severity,  # type: ignore[arg-type]
               f"{missed.missed}{'+' if missed.too_many else ''} scheduled run(s) of {f.obj} produced no Job since "
               f"{out['last_schedule_time'] or 'creation'}{extra}{window}",
               [ev(f.obj, "status.lastScheduleTime", stamp_with_age(out["last_schedule_time"], f.now)),
                ev(f.obj, "spec.schedule", f"{out['schedule']} ({out['time_zone']})"),
                *([ev(f.obj, "spec.startingDeadlineSeconds", dl)] if dl is not None else [])])


def _repeated(report: Report, f: CronFacts) -> None:
    last = f.status.get("lastSuccessfulTime")
    report.add("cronjob.failing_repeatedly", "warning",
               f"{f.obj} has not succeeded for {f.scheduled_since_success} scheduled runs (last success "
               f"{stamp_with_age(last, f.now) if last else 'never'}): the failure is not a one-off, so a re-run "
               "will most likely fail the same way; fix the cause first",
               [ev(f.obj, "status.lastSuccessfulTime", last), ev(f.obj, "spec.schedule", f.spec.get("schedule"))])


def _healthy(report: Report, f: CronFacts) -> None:
    out = report.output
    last = out["last_successful_time"]
    report.add("cronjob.healthy", "info",
               f"{f.obj} is healthy: last success {stamp_with_age(last, f.now) if last else 'never (no run due yet)'}, "
               f"next run {out['next_runs_utc'][0] if out['next_runs_utc'] else 'unknown'}",
               [ev(f.obj, "status.lastSuccessfulTime", last), ev(f.obj, "spec.schedule", out["schedule"])])


def _cstat(w: ContainerState) -> str:
    return f"status.containerStatuses[{w.name}]"


def _log_evidence(logs: dict[str, str | None], pod_ref: str) -> list[Evidence]:
    out = []
    for which, text in logs.items():
        if text:
            tail = "\n".join(text.strip().splitlines()[-5:])
            out.append(ev(pod_ref, f"log ({which}, last lines)", tail))
    return out


_CAUSE_FINDINGS: dict[str, Callable[[Report, CronFacts], None]] = {
    **{cause: _missing for cause in MISSING},
    "config_error": _pod_blocked, "image_pull": _pod_blocked, "oom_killed": _oom,
    "exit_code": _exit, "crash_loop": _exit,
    "deadline_exceeded": _job_failed, "backoff_limit": _job_failed, "job_failed": _job_failed,
}


def _always_findings(cause: str) -> list[tuple[Callable[[CronFacts], bool], Callable[[Report, CronFacts], None]]]:
    """Findings beside the cause's own, in order: a stuck run, a suspension, missed times, or all clear."""
    return [
        (lambda f: f.blocked and f.problem is not None, _blocked),
        (lambda f: f.suspended, _suspended),
        (lambda f: f.missed_count > 0 and not f.suspended and not f.blocked, _missed),
        (lambda f: f.failing_repeatedly, _repeated),
        (lambda f: cause == "healthy", _healthy),
    ]
