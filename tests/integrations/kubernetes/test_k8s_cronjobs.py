"""k8s.cronjob.inspect, k8s.jobs.overlap and the CronJob/Job remediations against the simulator."""

from __future__ import annotations

import pytest
from k8s_objects import cronjob, job, job_pod, secret, terminated, ts, waiting

from engine.errors import NotFoundError, PermanentError
from integrations.kubernetes.cronjobs import CronJobActions, CronJobInspectArgs
from integrations.kubernetes.jobrun import CreateJobArgs, JobRunActions, manual_name
from integrations.kubernetes.jobs import JobActions, OverlapArgs
from integrations.kubernetes.remediations import ConcurrencyArgs, CronJobArgs, JobDeleteArgs, RemediationActions

HOUR = 3600


def inspect(kube, ctx, name: str = "billing-report"):
    c = ctx()
    out = CronJobActions(kube).inspect(c, CronJobInspectArgs(namespace="billing", cronjob=name))
    return out, c.findings


def test_healthy_cronjob(cluster, ctx):
    cron = cronjob(last_schedule=ts(1800), last_success=ts(1700), created=ts(30 * HOUR),
                   schedule=f"{int(ts(1800)[14:16])} * * * *")
    ok = job("billing-report-1", cron=cron, started=1800, finished=1700)
    _, kube = cluster([cron, ok, secret("billing-db", "billing", {"password": "aHVudGVyMg=="})])
    out, findings = inspect(kube, ctx)
    assert out["cause"] == "healthy" and out["missed_runs"] == 0
    assert [(f.id, f.severity) for f in findings] == [("cronjob.healthy", "info")]
    assert len(out["next_runs_utc"]) == 3 and out["jobs"][0]["state"] == "complete"


def test_missing_secret_blocks_active_job(cluster, ctx):
    cron = cronjob(last_schedule=ts(600), last_success=ts(HOUR + 500), created=ts(30 * HOUR), schedule="*/10 * * * *")
    stuck = job("billing-report-2", cron=cron, state="active", started=600)
    pod = job_pod(stuck, "billing-report-2-x7k2p", [waiting("CreateContainerConfigError",
                                                           'secret "billing-db" not found')], "Pending")
    _, kube = cluster([cron, job("billing-report-1", cron=cron, started=HOUR + 600, finished=HOUR + 500), stuck, pod])
    out, findings = inspect(kube, ctx)
    assert out["cause"] == "missing_secret"
    assert out["missing_object"] == {"kind": "Secret", "namespace": "billing", "name": "billing-db", "key": None,
                                     "exists": False, "similar": [], "ref_paths": [
                                         "/spec/jobTemplate/spec/template/spec/containers/0/env/0/valueFrom/"
                                         "secretKeyRef/name"]}
    assert out["problem_job"] == "billing-report-2" and out["active_jobs"] == ["billing-report-2"]
    ids = [f.id for f in findings]
    assert ids[0] == "cronjob.missing_secret" and "cronjob.blocked_by_active_job" in ids
    assert "cronjob.healthy" not in ids
    evidence = findings[0].evidence
    assert evidence[0].object == "Pod billing/billing-report-2-x7k2p"
    assert evidence[1].object == "Secret billing/billing-db" and evidence[1].value == "not found"


def test_a_renamed_secret_is_named_without_reading_values(cluster, ctx):
    cron = cronjob(last_schedule=ts(600), last_success=ts(HOUR + 500), created=ts(30 * HOUR), schedule="*/10 * * * *")
    stuck = job("billing-report-2", cron=cron, state="active", started=600)
    pod = job_pod(stuck, "billing-report-2-x7k2p", [waiting("CreateContainerConfigError",
                                                           'secret "billing-db-credentials" not found')], "Pending")
    renamed = secret("billing-db-creds", "billing", {"password": "aHVudGVyMg=="})
    unrelated = secret("payments-api-token", "billing", {"token": "c2VjcmV0"})
    _, kube = cluster([cron, stuck, pod, renamed, unrelated])
    out, findings = inspect(kube, ctx)
    assert out["missing_object"]["similar"] == ["billing-db-creds"]
    similar = next(f for f in findings if f.id == "cronjob.similar_object")
    assert "billing/billing-db-creds exists with a name like billing-db-credentials" in similar.summary
    assert "aHVudGVyMg" not in str(out) + str(findings) and "hunter2" not in str(out) + str(findings)


def test_the_fix_for_a_renamed_secret_is_a_tested_repoint_only_when_the_keys_are_there(cluster, ctx):
    cron = cronjob(last_schedule=ts(600), last_success=ts(HOUR + 500), created=ts(30 * HOUR), schedule="*/10 * * * *",
                   env_secret="billing-db-credentials")
    stuck = job("billing-report-2", cron=cron, state="active", started=600)
    pod = job_pod(stuck, "billing-report-2-x7k2p", [waiting("CreateContainerConfigError",
                                                           'secret "billing-db-credentials" not found')], "Pending")
    ref = "/spec/jobTemplate/spec/template/spec/containers/0/env/0/valueFrom/secretKeyRef/name"
    _, kube = cluster([cron, stuck, pod, secret("billing-db-creds", "billing", {"password": "aHVudGVyMg=="})])
    out, _ = inspect(kube, ctx)
    assert out["missing_object"]["repoint"] == [{"op": "test", "path": ref, "value": "billing-db-credentials"},
                                                {"op": "replace", "path": ref, "value": "billing-db-creds"}]
    assert "aHVudGVyMg" not in str(out)
    _, kube = cluster([cron, stuck, pod, secret("billing-db-creds", "billing", {"user": "YQ=="})])
    out, _ = inspect(kube, ctx)
    assert "repoint" not in out["missing_object"]  # the look-alike lacks the key the job reads: not the same Secret


def test_missing_key_in_existing_secret(cluster, ctx):
    cron = cronjob(last_schedule=ts(300), created=ts(5 * HOUR), schedule="*/5 * * * *", policy="Allow")
    stuck = job("billing-report-3", cron=cron, state="active", started=300)
    pod = job_pod(stuck, "billing-report-3-p", [waiting(
        "CreateContainerConfigError", "couldn't find key password in Secret billing/billing-db")], "Pending")
    _, kube = cluster([cron, stuck, pod, secret("billing-db", "billing", {"user": "YQ=="})])
    out, findings = inspect(kube, ctx)
    assert out["cause"] == "missing_key"
    assert out["missing_object"]["key"] == "password" and out["missing_object"]["exists"] is True
    assert findings[0].id == "cronjob.missing_key"


def test_oom_killed_with_limit_and_logs(cluster, ctx):
    cron = cronjob(last_schedule=ts(900), created=ts(5 * HOUR), schedule="0 */4 * * *")
    failed = job("billing-report-4", cron=cron, state="failed", started=900, finished=700)
    pod = job_pod(failed, "billing-report-4-a", [terminated(137, "OOMKilled")], "Failed",
                  annotations={"kubesim.runbook.dev/log": "loading invoices\npassword=hunter2\nallocating 2GiB\n"},
                  memory="256Mi")
    _, kube = cluster([cron, failed, pod])
    out, findings = inspect(kube, ctx)
    assert out["cause"] == "oom_killed" and out["memory_limit"] == "256Mi" and out["exit_code"] == 137
    assert out["last_failed_job"] == "billing-report-4"
    assert "hunter2" not in out["logs"]["current"] and "allocating 2GiB" in out["logs"]["current"]
    assert findings[0].id == "cronjob.oom_killed" and "256Mi" in findings[0].summary
    assert all("hunter2" not in str(e.value) for f in findings for e in f.evidence)


def test_exit_code_and_deadline(cluster, ctx):
    cron = cronjob(last_schedule=ts(900), created=ts(5 * HOUR), schedule="0 */4 * * *")
    failed = job("billing-report-5", cron=cron, state="failed", started=900, finished=700)
    pod = job_pod(failed, "billing-report-5-a", [terminated(1)], "Failed")
    _, kube = cluster([cron, failed, pod])
    out, findings = inspect(kube, ctx)
    assert out["cause"] == "exit_code" and "exit 1" in out["exit_meaning"]
    assert findings[0].id == "cronjob.exit_code"

    cron2 = cronjob(name="slow", last_schedule=ts(900), created=ts(5 * HOUR), schedule="0 */4 * * *")
    late = job("slow-1", cron=cron2, state="failed", started=900, finished=300, failed_reason="DeadlineExceeded")
    pod2 = job_pod(late, "slow-1-a", [terminated(143)], "Failed")
    _, kube2 = cluster([cron2, late, pod2])
    out, findings = inspect(kube2, ctx, "slow")
    assert out["cause"] == "deadline_exceeded"
    assert findings[0].evidence[1].field == "spec.activeDeadlineSeconds"


def test_backoff_limit_without_pods(cluster, ctx):
    cron = cronjob(last_schedule=ts(900), created=ts(5 * HOUR), schedule="0 */4 * * *")
    failed = job("billing-report-6", cron=cron, state="failed", started=900, finished=700)
    _, kube = cluster([cron, failed])
    out, findings = inspect(kube, ctx)
    assert out["cause"] == "backoff_limit" and findings[0].id == "cronjob.backoff_limit"


def test_suspended_and_missed(cluster, ctx):
    cron = cronjob(suspend=True, last_schedule=ts(5 * HOUR), last_success=ts(5 * HOUR - 60), created=ts(9 * HOUR))
    _, kube = cluster([cron])
    out, findings = inspect(kube, ctx)
    assert out["cause"] == "suspended" and out["suspended"] and out["missed_runs"] >= 4
    assert [f.id for f in findings] == ["cronjob.suspended"]


def test_missed_deadline_and_never_scheduled(cluster, ctx):
    cron = cronjob(last_schedule=ts(5 * HOUR + 10), last_success=ts(5 * HOUR), created=ts(9 * HOUR),
                   starting_deadline=60)
    _, kube = cluster([cron])
    out, findings = inspect(kube, ctx)
    assert out["cause"] == "missed_deadline" and out["missed_runs"] == 5
    assert findings[0].id == "cronjob.missed_runs" and "startingDeadlineSeconds=60" in findings[0].summary

    fresh = cronjob(name="never", created=ts(3 * HOUR), schedule="*/30 * * * *")
    _, kube2 = cluster([fresh])
    out, findings = inspect(kube2, ctx, "never")
    assert out["cause"] == "never_scheduled" and out["missed_runs"] >= 5
    assert findings[0].id == "cronjob.never_scheduled"


def test_too_many_missed(cluster, ctx):
    cron = cronjob(schedule="* * * * *", last_schedule=ts(5 * HOUR), created=ts(9 * HOUR))
    _, kube = cluster([cron])
    out, findings = inspect(kube, ctx)
    assert out["too_many_missed"] and out["missed_runs"] == 101
    assert "more than 100" in findings[0].summary


def test_time_zone_next_runs(cluster, ctx):
    cron = cronjob(schedule="30 2 * * *", time_zone="Europe/Berlin", created=ts(HOUR))
    _, kube = cluster([cron])
    out, _ = inspect(kube, ctx)
    assert out["time_zone"] == "Europe/Berlin"
    assert all(t[11:16] == "02:30" for t in out["next_runs"])
    assert all(t[11:16] in ("00:30", "01:30") for t in out["next_runs_utc"])


def test_cronjob_not_found(cluster, ctx):
    _, kube = cluster([])
    with pytest.raises(NotFoundError, match='cronjob "billing-report" not found in namespace "billing"'):
        inspect(kube, ctx)


# -- k8s.jobs.overlap ----------------------------------------------------------------------------------------


def test_overlap_manual_run_is_the_duplicate(cluster, ctx):
    cron = cronjob(name="migrate", policy="Forbid", created=ts(9 * HOUR))
    scheduled = job("migrate-100", cron=cron, state="active", started=1200)
    manual = job("migrate-manual-abcde", cron=cron, state="active", started=600,
                 annotations={"cronjob.kubernetes.io/instantiate": "manual"})
    _, kube = cluster([cron, scheduled, manual, job("migrate-99", cron=cron, started=7200, finished=6000)])
    c = ctx()
    out = JobActions(kube).overlap(c, OverlapArgs(namespace="billing", cronjob="migrate"))
    assert out["duplicate"] and out["duplicate_job"] == "migrate-manual-abcde" and out["original_job"] == "migrate-100"
    assert "started by hand" in out["reason"]
    assert [f.id for f in c.findings] == ["jobs.duplicate_run"]
    assert any(e.field.endswith("[cronjob.kubernetes.io/instantiate]") for e in c.findings[0].evidence)


def test_overlap_helm_hook_by_selector(cluster, ctx):
    hook = {"helm.sh/hook": "pre-upgrade"}
    a = job("db-migrate-41", state="complete", started=3000, finished=1000, labels={"app": "db-migrate"})
    b = job("db-migrate-42", state="active", started=2000, labels={"app": "db-migrate"}, annotations=hook)
    _, kube = cluster([a, b])
    c = ctx()
    out = JobActions(kube).overlap(c, OverlapArgs(namespace="billing", selector="app=db-migrate"))
    assert out["duplicate_job"] == "db-migrate-42" and "Helm hook (pre-upgrade)" in out["reason"]
    assert out["overlaps"][0]["overlap_seconds"] == pytest.approx(1000, abs=5)


def test_no_overlap_no_alarm(cluster, ctx):
    cron = cronjob(name="migrate", policy="Allow", created=ts(9 * HOUR))
    objs = [cron, job("m-1", cron=cron, started=7200, finished=7000), job("m-2", cron=cron, state="active", started=60)]
    _, kube = cluster(objs)
    c = ctx()
    out = JobActions(kube).overlap(c, OverlapArgs(namespace="billing", cronjob="migrate"))
    assert out["duplicate"] is False and out["active_jobs"] == ["m-2"]
    assert [(f.id, f.severity) for f in c.findings] == [("jobs.no_duplicate", "info")]


# -- remediations -------------------------------------------------------------------------------------------


def test_suspend_resume_and_concurrency(cluster, ctx):
    sim, kube = cluster([cronjob()])
    remediations = RemediationActions(kube)
    args = CronJobArgs(namespace="billing", cronjob="billing-report")
    dry = ctx(dry_run=True)
    remediations.suspend_cronjob(dry, args)
    assert dry.changes[0].diff == ("spec.suspend: false -> true",)
    assert dry.changes[0].request["content_type"] == "application/merge-patch+json"
    assert sim.get("cronjobs", "billing-report", "billing")["spec"]["suspend"] is False
    remediations.suspend_cronjob(ctx(), args)
    assert sim.get("cronjobs", "billing-report", "billing")["spec"]["suspend"] is True
    remediations.resume_cronjob(ctx(), args)
    assert sim.get("cronjobs", "billing-report", "billing")["spec"]["suspend"] is False
    c = ctx()
    args = ConcurrencyArgs(namespace="billing", cronjob="billing-report", policy="Replace")
    remediations.set_concurrency_policy(c, args)
    assert c.changes[0].diff == ("spec.concurrencyPolicy: Forbid -> Replace",)
    assert sim.get("cronjobs", "billing-report", "billing")["spec"]["concurrencyPolicy"] == "Replace"


def test_create_job_from_cronjob(cluster, ctx):
    cron = cronjob(created=ts(HOUR))
    sim, kube = cluster([cron, job("billing-report-1", cron=cron, started=600, finished=500)])
    runs = JobRunActions(kube)
    args = CreateJobArgs(namespace="billing", cronjob="billing-report")
    dry = ctx(dry_run=True)
    planned = runs.create_from_cronjob(dry, args)
    assert planned["job"] == manual_name("billing-report", "t/s/billing/billing-report")
    assert sim.get("jobs", planned["job"], "billing") is None
    body = dry.changes[0].request["body"]
    assert body["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual", "team": "billing",
                                               "runbook.dev/run-id": "t"}
    assert body["metadata"]["ownerReferences"][0]["uid"] == cron["metadata"]["uid"]
    assert body["metadata"]["ownerReferences"][0]["controller"] is True
    assert "blockOwnerDeletion" not in body["metadata"]["ownerReferences"][0]  # as kubectl: no 403 under
    assert body["spec"] == cron["spec"]["jobTemplate"]["spec"]  # OwnerReferencesPermissionEnforcement
    taken = ctx()
    with pytest.raises(PermanentError, match="not created by this run"):  # a name that exists, not ours
        runs.create_from_cronjob(taken, CreateJobArgs(namespace="billing", cronjob="billing-report",
                                                      name="billing-report-1"))
    assert [c.outcome for c in taken.changes] == ["not applied"]
    created = runs.create_from_cronjob(ctx(), args)
    assert created["job"] == planned["job"]  # the dry-run showed the name execution used
    stored = sim.get("jobs", created["job"], "billing")
    assert stored["metadata"]["labels"] == {"app": "billing-report"}
    sim.apply({**stored, "status": {"active": 1, "startTime": ts(1)}})
    again = CreateJobArgs(namespace="billing", cronjob="billing-report", name="again")
    with pytest.raises(PermanentError, match="still active"):
        runs.create_from_cronjob(ctx(), again)
    proposal = ctx(dry_run=True)  # a proposal may stop the active Job first: warn, do not fail
    assert runs.create_from_cronjob(proposal, again)["active_jobs"] == [created["job"]]
    assert [f.id for f in proposal.findings] == ["job_create.active_job"]
    stuck = sim.get("jobs", created["job"], "billing")
    sim.apply({**stuck, "metadata": {**stuck["metadata"], "deletionTimestamp": ts(0),
                                     "finalizers": ["foregroundDeletion"]}})
    assert runs.create_from_cronjob(ctx(), again)["job"] == "again"  # a Job being deleted does not block


def test_delete_job_foreground(cluster, ctx):
    cron = cronjob()
    stuck = job("billing-report-2", cron=cron, state="active", started=600)
    sim, kube = cluster([cron, stuck])
    remediations = RemediationActions(kube)
    args = JobDeleteArgs(namespace="billing", name="billing-report-2")
    dry = ctx(dry_run=True)
    out = remediations.delete_job(dry, args)
    assert out["owner"] == "billing-report" and out["active"] == 1
    assert dry.changes[0].request["body"]["propagationPolicy"] == "Foreground"
    assert sim.get("jobs", "billing-report-2", "billing") is not None
    remediations.delete_job(ctx(), args)
    gone = sim.get("jobs", "billing-report-2", "billing")
    assert gone is None or gone["metadata"].get("deletionTimestamp")
