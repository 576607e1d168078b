"""Pure analysis over plain dicts: exit codes, kubelet messages, cron math with zones and DST, overlaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from k8s_objects import job, pod, terminated, waiting

from integrations.kubernetes.cronmath import Schedule, ScheduleError, missed_runs
from integrations.kubernetes.errors import from_response, parse_path
from integrations.kubernetes.jobs import analyze_overlap, find_overlaps, job_state
from integrations.kubernetes.objects import selector_matches, selector_string, singular
from integrations.kubernetes.podstatus import MissingObject, decode_pod, explain_exit_code, parse_config_error
from integrations.kubernetes.timeutil import human_duration, parse_time

UTC0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


# -- exit codes and waiting reasons ------------------------------------------------------------------


@pytest.mark.parametrize(("code", "reason", "expected"), [
    (0, "Completed", "completed successfully"),
    (1, "Error", "application failed"),
    (137, "OOMKilled", "OOM killer"),
    (137, "Error", "SIGKILL"),
    (139, "Error", "SIGSEGV"),
    (143, "Error", "SIGTERM"),
    (255, "Error", "out of range"),
    (127, "Error", "command not found"),
])
def test_exit_codes(code, reason, expected):
    assert expected in explain_exit_code(code, reason)


@pytest.mark.parametrize(("message", "expected"), [
    ('secret "billing-db" not found', MissingObject("Secret", "billing-db", "billing")),
    ('configmap "app-config" not found', MissingObject("ConfigMap", "app-config", "billing")),
    ("couldn't find key password in Secret billing/billing-db",
     MissingObject("Secret", "billing-db", "billing", "password")),
    ("couldn't find key LOG_LEVEL in ConfigMap other/app-config",
     MissingObject("ConfigMap", "app-config", "other", "LOG_LEVEL")),
    ("failed to sync secret cache: timed out waiting for the condition", None),
])
def test_config_error_messages(message, expected):
    assert parse_config_error(message, "billing") == expected


def test_decode_pod_prefers_config_error_over_oom():
    p = pod("x", statuses=[waiting("CreateContainerConfigError", 'secret "db" not found', "app"),
                           {**terminated(137, "OOMKilled", "sidecar"), "restartCount": 2}],
            containers=[{"name": "app", "image": "a"},
                        {"name": "sidecar", "image": "s", "resources": {"limits": {"memory": "64Mi"}}}])
    state = decode_pod(p)
    assert state.cause == "missing_secret"
    oom = next(c for c in state.containers if c.name == "sidecar")
    assert oom.cause == "oom_killed" and oom.memory_limit == "64Mi" and oom.signal == "SIGKILL"


def test_decode_pod_unschedulable_and_init_containers():
    p = pod("x", node_name=None, phase="Pending", ready=False, statuses=[])
    p["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                  "message": "0/5 nodes are available: 5 Insufficient memory."}]
    state = decode_pod(p)
    assert state.cause == "unschedulable" and "Insufficient memory" in state.summary
    q = pod("y", phase="Pending", ready=False, statuses=[])
    q["status"]["initContainerStatuses"] = [terminated(1, name="migrate")]
    state = decode_pod(q)
    assert state.cause == "exit_code" and "init container migrate" in state.summary


def test_image_pull_names_image():
    p = pod("x", ready=False, statuses=[waiting("ErrImagePull",
                                                'failed to pull image "reg.example/app:404": not found', "app")])
    state = decode_pod(p)
    assert state.cause == "image_pull" and state.containers[0].image == "reg.example/app:404"


def test_completed_pod_is_healthy():
    assert decode_pod(pod("x", phase="Succeeded", ready=False, statuses=[terminated(0, "Completed", "app")])).cause \
        == "healthy"


# -- cron math -------------------------------------------------------------------------------------------


def test_schedule_in_zone_vs_utc():
    s = Schedule.parse("0 3 * * *", "Europe/Berlin")
    winter = s.next_times(datetime(2026, 1, 10, tzinfo=UTC), 1)[0]
    summer = s.next_times(datetime(2026, 7, 10, tzinfo=UTC), 1)[0]
    assert winter.astimezone(UTC).hour == 2 and summer.astimezone(UTC).hour == 1


def test_spring_forward_skips_nonexistent_time():
    s = Schedule.parse("30 2 * * *", "Europe/Berlin")
    times = s.next_times(datetime(2026, 3, 27, 12, tzinfo=UTC), 3)
    assert [t.day for t in times] == [28, 30, 31]  # 02:30 does not exist on 29 March: no run that day


def test_fall_back_fires_twice_in_repeated_hour():
    s = Schedule.parse("30 2 * * *", "Europe/Berlin")
    times = s.next_times(datetime(2026, 10, 24, 12, tzinfo=UTC), 3)
    assert [t.astimezone(UTC).strftime("%d %H:%M") for t in times] == ["25 00:30", "25 01:30", "26 01:30"]


def test_hourly_across_dst_days():
    s = Schedule.parse("0 * * * *", "America/New_York")
    spring, _ = s.times_between(datetime(2026, 3, 8, 5, tzinfo=UTC), datetime(2026, 3, 9, 4, tzinfo=UTC))
    fall, _ = s.times_between(datetime(2026, 11, 1, 4, tzinfo=UTC), datetime(2026, 11, 2, 5, tzinfo=UTC))
    assert len(spring) == 23 and len(fall) == 25


def test_missed_runs_and_limit():
    s = Schedule.parse("*/15 * * * *", None)
    assert s.zone_name == "UTC" and s.zone_is_default
    m = missed_runs(s, UTC0 - timedelta(hours=2), UTC0)
    assert m.missed == 7 and not m.too_many  # 10:15 .. 11:45; 12:00 is within the controller's grace
    m = missed_runs(s, UTC0 - timedelta(days=2), UTC0)
    assert m.too_many and m.missed == 101
    m = missed_runs(s, UTC0 - timedelta(hours=1), UTC0, starting_deadline_seconds=60)
    assert m.window_expired and m.missed == 3  # 11:15, 11:30, 11:45; 12:00 is still inside its window


def test_legacy_tz_prefix_and_macros():
    s = Schedule.parse("CRON_TZ=Asia/Tokyo 0 9 * * *", None)
    assert s.zone_name == "Asia/Tokyo"
    assert s.next_times(UTC0, 1)[0].astimezone(UTC).hour == 0
    assert Schedule.parse("@hourly", None).next_times(UTC0, 1)[0] == UTC0 + timedelta(hours=1)
    with pytest.raises(ScheduleError):
        Schedule.parse("61 * * * *", None)
    with pytest.raises(ScheduleError):
        Schedule.parse("0 * * * *", "Mars/Olympus")


def test_previous_time():
    s = Schedule.parse("30 2 * * *", "Europe/Berlin")
    assert s.previous_time(datetime(2026, 3, 30, 0, tzinfo=UTC)).day == 28


# -- overlaps --------------------------------------------------------------------------------------------


def test_overlap_detection():
    a = job("a", state="complete", started=3600, finished=1800)
    b = job("b", state="complete", started=2000, finished=1000)  # starts before a ends
    c = job("c", state="active", started=500)                     # after b ended
    d = job("d", state="failed", started=400, finished=100)       # overlaps c (active)
    pairs = find_overlaps([c, a, d, b], datetime.now(UTC))
    assert [(x["metadata"]["name"], y["metadata"]["name"]) for x, y in pairs] == [("a", "b"), ("c", "d")]
    assert job_state(d) == "failed" and job_state(c) == "active"


def test_no_overlap_report_is_info():
    a = job("a", state="complete", started=3600, finished=3000)
    b = job("b", state="active", started=60)
    report = analyze_overlap([a, b], datetime.now(UTC), "CronJob x/y", "Forbid")
    assert report.output["duplicate"] is False
    assert [(f.id, f.severity) for f in report.findings] == [("jobs.no_duplicate", "info")]


def test_overlap_reason_allow_policy():
    a = job("a", state="active", started=3600)
    b = job("b", state="active", started=60)
    report = analyze_overlap([a, b], datetime.now(UTC), "CronJob x/y", "Allow")
    assert report.output["duplicate_job"] == "b" and "concurrencyPolicy: Allow" in report.output["reason"]


# -- small helpers ---------------------------------------------------------------------------------------


def test_selectors():
    sel = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]},
                                                              {"key": "canary", "operator": "DoesNotExist"}]}
    assert selector_matches(sel, {"app": "web", "tier": "a"})
    assert not selector_matches(sel, {"app": "web", "tier": "a", "canary": "1"})
    assert selector_matches({}, {"x": "y"}) and not selector_matches(None, {"x": "y"})
    assert selector_string(sel) == "app=web,tier in (a),!canary"


def test_paths_and_names():
    t = parse_path("/apis/batch/v1/namespaces/billing/cronjobs/report/status")
    assert (t.group, t.namespace, t.resource, t.name, t.subresource) == ("batch", "billing", "cronjobs", "report",
                                                                        "status")
    assert parse_path("/api/v1/namespaces/shop").resource == "namespaces"
    assert singular("poddisruptionbudgets") == "poddisruptionbudget" and singular("ingresses") == "ingress"
    assert human_duration(372) == "6m12s" and human_duration(90000) == "1d1h"
    assert parse_time("2026-01-02T03:04:05.123456Z") == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def test_error_translation_of_status_bodies():
    body = b'{"kind":"Status","code":422,"reason":"Invalid","details":{"name":"x","kind":"cronjobs","causes":' \
           b'[{"reason":"FieldValueInvalid","message":"Invalid value: \\"61 * * * *\\"","field":"spec.schedule"}]}}'
    error = from_response(422, body, {}, "PATCH", "/apis/batch/v1/namespaces/b/cronjobs/x", "http://k")
    assert 'cronjob "x" is invalid: spec.schedule: Invalid value' in str(error)
    error = from_response(503, b"", {"Retry-After": "7"}, "GET", "/api/v1/nodes", "http://k")
    assert error.transient and error.retry_after == 7.0
