"""API-server rules runbooks lean on: eviction reads budgets' status, exact access reviews, option and
field validation, field selectors as the real server renders them."""

from __future__ import annotations

import http.client
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubesim_helpers import status_of

from engine.actions import Identity, Permission
from integrations.kubernetes.access import AccessChecker
from integrations.kubernetes.client import Kube
from integrations.kubesim import SimulatedCluster, load_scenario

BASIC = Path(__file__).resolve().parents[3] / "runbooks" / "scenarios" / "kubesim-basic.yaml"


def _request(sim: SimulatedCluster, method: str, path: str, body: Any = None) -> tuple[int, dict, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    return resp.status, dict(resp.getheaders()), json.loads(raw) if raw else None


def _with_budgets(*budgets: dict) -> SimulatedCluster:
    objects = [o for o in load_scenario(BASIC) if o["kind"] != "PodDisruptionBudget"]
    return SimulatedCluster(objects=[*objects, *budgets])


def _budget(name: str, selector: dict | None, generation: int = 1, observed: int = 1, allowed: int = 0,
            min_available: int = 2) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": "shop", "generation": generation},
            "spec": {"minAvailable": min_available, **({"selector": selector} if selector is not None else {})},
            "status": {"observedGeneration": observed, "disruptionsAllowed": allowed, "currentHealthy": 2,
                       "desiredHealthy": 2, "expectedPods": 3}}


EVICT = "/api/v1/namespaces/shop/pods/web-7d4b9c8f5d-x2k9p/eviction"
EVICTION = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-7d4b9c8f5d-x2k9p"}}


# -- eviction (pkg/registry/core/pod/storage/eviction.go) ----------------------------------------
def test_eviction_against_an_unobserved_budget_says_retry_after_10() -> None:
    with _with_budgets(_budget("web", {"matchLabels": {"app": "web"}}, generation=2, observed=1, allowed=1)) as sim:
        code, headers, body = _request(sim, "POST", EVICT, EVICTION)
        assert code == 429 and headers["Retry-After"] == "10"
        assert body["details"]["causes"] == [{"reason": "DisruptionBudget", "message":
                                              "The disruption budget web is still being processed by the server."}]
        assert sim.get("pods", "web-7d4b9c8f5d-x2k9p", "shop") is not None


def test_eviction_ignores_a_budget_with_an_empty_selector() -> None:
    with _with_budgets(_budget("everything", {}, min_available=50), _budget("nothing", None)) as sim:
        code, _, body = _request(sim, "POST", EVICT, EVICTION)
        assert code == 201 and body["status"] == "Success"
        assert sim.get("pods", "web-7d4b9c8f5d-x2k9p", "shop") is None


def test_eviction_under_two_budgets_is_201_with_a_failure_status() -> None:
    web = {"matchLabels": {"app": "web"}}
    with _with_budgets(_budget("a", web, allowed=1), _budget("b", web, allowed=1)) as sim:
        code, _, body = _request(sim, "POST", EVICT, EVICTION)
        assert code == 201 and body["status"] == "Failure" and body["code"] == 500
        assert body["message"] == ("This pod has more than one PodDisruptionBudget, which the eviction "
                                   "subresource does not support.")
        assert sim.get("pods", "web-7d4b9c8f5d-x2k9p", "shop") is not None


def test_eviction_spends_the_budget_and_the_controller_recounts() -> None:
    with _with_budgets(_budget("web", {"matchLabels": {"app": "web"}}, allowed=1)) as sim:
        assert _request(sim, "POST", EVICT, EVICTION)[0] == 201
        status = sim.get("poddisruptionbudgets", "web", "shop")["status"]
        # the ReplicaSet replaced the pod on a live node; the budget counts 2 ready of the 3 expected
        assert status["currentHealthy"] == 2 and status["disruptionsAllowed"] == 0
        assert status["expectedPods"] == 3 and status["observedGeneration"] == 1


# -- access reviews ------------------------------------------------------------------------------
def test_subject_access_review_uses_exactly_the_given_groups() -> None:
    with SimulatedCluster(objects=load_scenario(BASIC), rbac=True) as sim:
        attrs = {"verb": "create", "group": "authorization.k8s.io", "resource": "selfsubjectaccessreviews"}

        def review(groups: list[str]) -> bool:
            spec = {"user": "bob@corp.example", "groups": groups, "resourceAttributes": attrs}
            body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
            conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
            conn.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", json.dumps(body),
                         {"Authorization": "Bearer admin-token", "Content-Type": "application/json"})
            return bool(json.loads(conn.getresponse().read())["status"]["allowed"])

        assert review([]) is False  # system:basic-user is bound to system:authenticated, not given here
        assert review(["system:authenticated"]) is True


def test_approver_check_adds_system_authenticated() -> None:
    """An approver's impersonated request carries system:authenticated, so the check asks with it."""
    sim = SimulatedCluster(objects=load_scenario(BASIC), rbac=True)
    with sim, Kube.from_url(sim.url, "admin-token") as kube:
        checker = AccessChecker(kube)
        permission = Permission(verb="create", group="authorization.k8s.io", resource="selfsubjectaccessreviews",
                                namespaced=False)
        assert checker.allowed(permission, None, Identity(user="bob@corp.example", groups=())) is True


# -- options and field validation ---------------------------------------------------------------
def test_dry_run_values_other_than_all_are_refused(core: client.CoreV1Api, sim: SimulatedCluster) -> None:
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("shop", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x")),
                                          dry_run="true")
    assert err.value.status == 422
    assert status_of(err.value)["message"] == ('CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported '
                                               'value: []string{"true"}: supported values: "All"')
    assert sim.get("configmaps", "x", "shop") is None
    code, _, body = _request(sim, "DELETE", "/api/v1/namespaces/shop/pods/redis-0?dryRun=yes")
    assert code == 422 and body["details"]["kind"] == "DeleteOptions"
    code, _, _ = _request(sim, "PATCH", "/api/v1/nodes/worker-a?fieldValidation=Loose", {})
    assert code == 422
    code, _, _ = _request(sim, "DELETE", "/api/v1/namespaces/shop/pods/redis-0?propagationPolicy=Later")
    assert code == 422 and sim.get("pods", "redis-0", "shop")["metadata"]["uid"].startswith("6f1c2d4e")


def _job(name: str, **spec: Any) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "busybox"}]}}, **spec}}


def test_job_and_cronjob_name_limits_and_enums(sim: SimulatedCluster) -> None:
    jobs = "/apis/batch/v1/namespaces/shop/jobs"
    code, _, body = _request(sim, "POST", jobs, _job("j" * 64))
    assert code == 422 and body["details"]["causes"][0]["field"] == "spec.template.labels"
    assert _request(sim, "POST", jobs, _job("j" * 63))[0] == 201
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c" * 53},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": _job("x")["spec"]}}}
    code, _, body = _request(sim, "POST", "/apis/batch/v1/namespaces/shop/cronjobs", cron)
    assert code == 422 and "must be no more than 52 characters" in body["message"]
    cron["metadata"]["name"] = "c" * 52
    cron["spec"]["concurrencyPolicy"] = "Sometimes"
    code, _, body = _request(sim, "POST", "/apis/batch/v1/namespaces/shop/cronjobs", cron)
    assert code == 422 and body["details"]["causes"] == [{
        "reason": "FieldValueNotSupported", "field": "spec.concurrencyPolicy",
        "message": 'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"'}]
    code, _, body = _request(sim, "POST", jobs, _job("always", template={"spec": {
        "restartPolicy": "Always", "containers": [{"name": "c", "image": "busybox"}]}}))
    assert code == 422 and body["details"]["causes"][0]["field"] == "spec.template.spec.restartPolicy"


# -- field selectors ----------------------------------------------------------------------------
def test_field_selectors_render_values_like_the_server(sim: SimulatedCluster) -> None:
    code, _, body = _request(sim, "GET", "/apis/batch/v1/jobs?fieldSelector=status.successful%3D1")
    assert code == 200 and [j["metadata"]["name"] for j in body["items"]] == ["nightly-report-29396520"]
    code, _, body = _request(sim, "GET", "/apis/batch/v1/jobs?fieldSelector=status.successful%3D0")
    assert body["items"] == []
    code, _, body = _request(sim, "GET", "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dfalse")
    assert [n["metadata"]["name"] for n in body["items"]] == ["worker-a", "worker-b", "worker-c"]
    assert [n["metadata"]["name"] for n in sim.list("nodes", field_selector="spec.unschedulable=false")] == [
        "worker-a", "worker-b", "worker-c"]


# -- representations and events ------------------------------------------------------------------
def _get_accept(sim: SimulatedCluster, path: str, accept: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    conn.request("GET", path, headers={"Accept": accept})
    return json.loads(conn.getresponse().read())


def test_partial_object_metadata(sim: SimulatedCluster) -> None:
    accept = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
    pod = _get_accept(sim, "/api/v1/namespaces/shop/pods/redis-0", accept)
    assert pod["kind"] == "PartialObjectMetadata" and pod["apiVersion"] == "meta.k8s.io/v1"
    assert set(pod) == {"kind", "apiVersion", "metadata"} and pod["metadata"]["name"] == "redis-0"
    listed = _get_accept(sim, "/api/v1/namespaces/shop/pods",
                         "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
    assert listed["kind"] == "PartialObjectMetadataList" and listed["metadata"]["resourceVersion"]
    assert {i["kind"] for i in listed["items"]} == {"PartialObjectMetadata"}
    assert all(set(i) == {"kind", "apiVersion", "metadata"} for i in listed["items"])


def test_events_are_one_store_for_both_apis(sim: SimulatedCluster) -> None:
    v1 = _request(sim, "GET", "/apis/events.k8s.io/v1/namespaces/default/events")[2]
    assert v1["apiVersion"] == "events.k8s.io/v1" and len(v1["items"]) == 1
    (event,) = v1["items"]
    assert event["regarding"]["name"] == "worker-c" and event["note"] == "Node worker-c status is now: NodeNotReady"
    assert event["reportingController"] == "node-controller" and "involvedObject" not in event
    created = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
               "eventTime": "2026-11-22T11:59:00.000000Z", "reportingController": "runbook",
               "reportingInstance": "runbook-0", "action": "Cordon", "reason": "Cordoned", "type": "Normal",
               "regarding": {"kind": "Node", "name": "worker-c", "apiVersion": "v1"}, "note": "cordoned"}
    code, _, body = _request(sim, "POST", "/apis/events.k8s.io/v1/namespaces/default/events", created)
    assert code == 201 and body["note"] == "cordoned" and body["apiVersion"] == "events.k8s.io/v1"
    core = _request(sim, "GET", "/api/v1/namespaces/default/events/e1")[2]
    assert core["message"] == "cordoned" and core["involvedObject"]["name"] == "worker-c"
    assert core["reportingComponent"] == "runbook" and "note" not in core
    selected = _request(sim, "GET", "/apis/events.k8s.io/v1/events?fieldSelector=regarding.name%3Dworker-c,"
                                     "reason%3DCordoned")[2]
    assert [e["metadata"]["name"] for e in selected["items"]] == ["e1"]


def test_events_expire_an_hour_after_they_were_stored(sim: SimulatedCluster) -> None:
    """Not by their own timestamps: loaded events live an hour from load, then vanish like a lease expiring."""
    names = {e["metadata"]["name"] for e in sim.list("events")}
    assert len(names) == 2  # the scenario's events are hours old by their timestamps, still served
    sim.clock.offset += timedelta(minutes=59)
    assert len(_request(sim, "GET", "/api/v1/events")[2]["items"]) == 2
    sim.clock.offset += timedelta(minutes=2)
    assert _request(sim, "GET", "/api/v1/events")[2]["items"] == []


# -- unknown fields (fieldValidation) ---------------------------------------------------------
def _send(sim: SimulatedCluster, method: str, path: str, body: Any,
          ctype: str = "application/json") -> tuple[int, str, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    conn.request(method, path, body=json.dumps(body), headers={"Content-Type": ctype})
    resp = conn.getresponse()
    return resp.status, resp.getheader("Warning") or "", json.loads(resp.read())


def test_unknown_fields_are_dropped_with_a_warning_or_refused_when_strict(sim: SimulatedCluster) -> None:
    job = _job("typo", backofLimit=3)
    job["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    code, warning, body = _send(sim, "POST", "/apis/batch/v1/namespaces/shop/jobs", job)
    assert code == 201
    assert warning == ('299 - "unknown field \\"spec.template.spec.containers[0].imagee\\"", '
                       '299 - "unknown field \\"spec.backofLimit\\""')  # in the order they were written
    stored = sim.get("jobs", "typo", "shop")
    assert "backofLimit" not in stored["spec"] and "imagee" not in stored["spec"]["template"]["spec"]["containers"][0]
    code, _, body = _send(sim, "POST", "/apis/batch/v1/namespaces/shop/jobs?fieldValidation=Strict",
                          {**_job("strict"), "spec": {**_job("strict")["spec"], "paralelism": 2}})
    assert code == 400 and body["message"] == ('Job in version "v1" cannot be handled as a Job: strict decoding '
                                               'error: unknown field "spec.paralelism"')
    assert sim.get("jobs", "strict", "shop") is None
    code, warning, _ = _send(sim, "PATCH", "/api/v1/nodes/worker-a?fieldValidation=Ignore",
                             {"spec": {"unschedulabel": True}}, "application/merge-patch+json")
    assert code == 200 and warning == "" and "unschedulabel" not in sim.get("nodes", "worker-a")["spec"]
    code, warning, _ = _send(sim, "PATCH", "/api/v1/nodes/worker-a", {"spec": {"unschedulable": True}},
                             "application/merge-patch+json")
    assert code == 200 and warning == "" and sim.get("nodes", "worker-a")["spec"]["unschedulable"] is True
