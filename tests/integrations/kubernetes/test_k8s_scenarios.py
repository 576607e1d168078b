"""The three flagship situations as scenario files (time-shifted by kubesim), through the registered actions."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import SettingsError
from integrations.kubesim import load_scenario

SCENARIOS = Path(__file__).parent / "scenarios"


def run(registry, name: str, ctx, **args):
    action = registry.get(name)
    return action.func(ctx, action.args.model_validate(args))


def test_registry_is_complete_and_precise(registry_for):
    """Every Kubernetes action declares its permissions (fixed, or computed from its arguments) and docs on
    itself; diagnose actions only read."""
    registry = registry_for(None)
    kube_actions = [a for a in registry if a.name.startswith("k8s.")]
    assert len(kube_actions) >= 17
    for action in kube_actions:
        assert (action.permissions or action.permits) and action.description, action.name
        if action.kind == "diagnose":
            assert all(p.verb in ("get", "list") for p in action.permissions), action.name
    drain = {str(p) for p in registry.get("k8s.node.drain").permissions}
    assert "pods/eviction:create" in drain and "nodes:patch" in drain
    assert {str(p) for p in registry.get("k8s.cronjob.suspend").permissions} == {"cronjobs.batch:get",
                                                                                 "cronjobs.batch:patch"}


def test_without_a_cluster_actions_fail_clearly(registry_for, ctx):
    with pytest.raises(SettingsError, match="no Kubernetes cluster"):
        run(registry_for(None), "k8s.node.inspect", ctx(), node="node-b")


def test_node_not_ready_scenario(cluster, registry_for, ctx):
    _, kube = cluster(load_scenario(SCENARIOS / "node-b-kubelet-stopped.yaml"))
    registry = registry_for(kube)
    c = ctx()
    node = run(registry, "k8s.node.inspect", c, node="node-b", many_not_ready_share="0.3")
    assert node["cause"] == "kubelet_stopped" and 360 <= node["lease_age_seconds"] < 420
    pods = run(registry, "k8s.node.pods", c, node="node-b")
    assert pods["statefulset_pods"] == ["db/postgres-0"] and pods["stuck_pods"] == ["db/postgres-0", "shop/debug-shell"]
    assert [w["name"] for w in pods["workloads_without_ready_replicas"]] == ["postgres"]  # web is Ready on node-a
    dry = ctx(dry_run=True)
    run(registry, "k8s.node.cordon", dry, node="node-b")
    assert dry.changes[0].diff == ("spec.unschedulable: false -> true",)


def test_billing_scenario(cluster, registry_for, ctx):
    _, kube = cluster(load_scenario(SCENARIOS / "billing-missing-secret.yaml"))
    c = ctx()
    out = run(registry_for(kube), "k8s.cronjob.inspect", c, namespace="billing", cronjob="billing-report")
    assert out["cause"] == "missing_secret" and out["missing_object"]["exists"] is False
    assert out["time_zone"] == "Europe/Berlin" and out["next_runs"][0].endswith(("02:00:00+01:00", "02:00:00+02:00"))
    assert "c3VwZXItc2VjcmV0" not in repr(out) + repr(c.findings)


def test_duplicate_migration_scenario(cluster, registry_for, ctx):
    _, kube = cluster(load_scenario(SCENARIOS / "duplicate-migration.yaml"))
    c = ctx()
    out = run(registry_for(kube), "k8s.jobs.overlap", c, namespace="shop", cronjob="db-migrate", selector=None)
    assert out["duplicate_job"] == "db-migrate-manual-x7k2p" and out["original_job"] == "db-migrate-29540280"
    assert out["overlaps"][0]["ongoing"] and out["overlaps"][0]["overlap_seconds"] == pytest.approx(1080, abs=5)
    assert "have been running at the same time" in c.findings[0].summary
