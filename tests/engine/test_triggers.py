"""Trigger selection and param mappings: regex captures, defaults, constants, owner lookups, priority, cluster."""

from __future__ import annotations

import pytest

from engine.actions import ActionRegistry
from engine.builtins import register_builtins
from engine.errors import DefinitionError, TransientError
from engine.loader import Loader
from engine.model import Runbook
from engine.triggers import OTHER_CLUSTER, UNRESOLVED, ClusterScope, NoMatch, TriggerMatch, select

CRASH = {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "web-7d9f8b6c5d-x2x9q", "container": "app"}


def _runbook(name: str, triggers: str, params: str = "workload: {type: string}") -> Runbook:
    text = (f"apiVersion: runbook/v1\nkind: Runbook\nmetadata: {{name: {name}, title: T}}\nparams:\n  {params}\n"
            f"triggers:\n  alerts:\n{triggers}\nsteps: [{{id: a, title: A, action: noop}}]\n")
    return Loader(register_builtins(ActionRegistry())).load_text(text)


class Owners:
    """A stand-in cluster for the lookup seam: answers from a table, or fails like an unreachable API server."""

    def __init__(self, table: dict[tuple[str, str, str], str | None], down: bool = False) -> None:
        self.table, self.down, self.calls = table, down, 0

    def owner_of(self, namespace: str, name: str, kind: str, of: str = "Pod") -> str | None:
        self.calls += 1
        if self.down:
            raise TransientError("the API server is unreachable", retry_after=5)
        return self.table.get((namespace, f"{of}/{name}", kind))


def _match(result: TriggerMatch | NoMatch) -> TriggerMatch:
    assert isinstance(result, TriggerMatch), result
    return result


def test_regex_capture_default_and_constant() -> None:
    rb = _runbook("rb", "    - match: {alertname: KubePodCrashLooping}\n"
                  "      params:\n        workload: {from: pod, regex: '^(.*)-[a-z0-9]{5,10}-[a-z0-9]{5}$'}\n"
                  "        ns: {from: namespace}\n        tier: {from: tier, default: gold}\n"
                  "        mode: {value: diagnose}",
                  "workload: {type: string}\n  ns: {type: string}\n  tier: {type: string}\n  mode: {type: string}")
    assert _match(select([rb], CRASH)).params == {"workload": "web", "ns": "shop", "tier": "gold", "mode": "diagnose"}
    odd = select([rb], {**CRASH, "pod": "standalone"})
    assert isinstance(odd, NoMatch) and odd.reason == UNRESOLVED and "does not match" in odd.detail


def test_owner_lookup_resolves_pod_to_deployment() -> None:
    rb = _runbook("rb", "    - match: {alertname: KubePodCrashLooping}\n"
                  "      params: {workload: {from: pod, namespace_from: namespace, owner: Deployment}}")
    owners = Owners({("shop", f"Pod/{CRASH['pod']}", "Deployment"): "web"})
    assert _match(select([rb], CRASH, owners)).params == {"workload": "web"}
    bare = select([rb], {**CRASH, "pod": "bare-pod"}, owners)
    assert isinstance(bare, NoMatch) and bare.reason == UNRESOLVED and "not owned by a Deployment" in bare.detail
    with pytest.raises(TransientError):  # the webhook answers 503: Alertmanager re-sends, nothing is lost
        select([rb], CRASH, Owners({}, down=True))
    job = _runbook("rb", "    - match: {alertname: KubeJobFailed}\n"
                   "      params: {workload: {from: job_name, namespace_from: namespace, owner: CronJob, of: Job}}")
    failed = {"alertname": "KubeJobFailed", "namespace": "billing", "job_name": "report-29001"}
    assert _match(select([job], failed, Owners({("billing", "Job/report-29001", "CronJob"): "report"}))).params == {
        "workload": "report"}
    missing_ns = _match(select([rb], {k: v for k, v in CRASH.items() if k != "namespace"}, owners))
    assert missing_ns.params == {} and missing_ns.missing == ("namespace",)


def test_highest_priority_then_most_specific_wins() -> None:
    generic = _runbook("pod-crashloop", "    - match: {alertname: KubePodCrashLooping}\n      priority: 10\n"
                       "      params: {workload: pod}")
    rollback = _runbook("deployment-rollback", "    - match: {alertname: KubePodCrashLooping}\n"
                        "      params: {workload: pod}")
    assert _match(select([rollback, generic], CRASH)).runbook.name == "pod-crashloop"
    narrow = _runbook("narrow", "    - match: {alertname: KubePodCrashLooping, namespace: shop}\n"
                      "      params: {workload: pod}")
    assert _match(select([rollback, narrow], CRASH)).runbook.name == "narrow"
    assert _match(select([narrow, rollback], {**CRASH, "namespace": "other"})).runbook.name == "deployment-rollback"


def test_alerts_for_another_cluster_never_match() -> None:
    rb = _runbook("rb", "    - match: {alertname: KubePodCrashLooping}\n      params: {workload: pod}")
    scope = ClusterScope("prod-eu", "cluster")
    other = select([rb], {**CRASH, "cluster": "prod-us"}, scope=scope)
    assert isinstance(other, NoMatch) and other.reason == OTHER_CLUSTER and "prod-us" in other.detail
    assert _match(select([rb], {**CRASH, "cluster": "prod-eu"}, scope=scope)).runbook.name == "rb"
    assert _match(select([rb], CRASH, scope=scope)).runbook.name == "rb"  # no label: a single-cluster setup
    assert scope.of(CRASH) == "prod-eu" and scope.of({**CRASH, "cluster": "x"}) == "x"


@pytest.mark.parametrize(("mapping", "message"), [
    ("{from: pod, value: x}", "exactly one of 'from'"),
    ("{from: pod, owner: Deployment}", "namespace_from"),
    ("{from: pod, regex: '^.*$'}", "capture group"),
    ("{from: pod, owner: Pod, namespace_from: namespace}", "owner"),
])
def test_bad_mappings_fail_at_load(mapping: str, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        _runbook("rb", f"    - match: {{alertname: X}}\n      params: {{workload: {mapping}}}")
