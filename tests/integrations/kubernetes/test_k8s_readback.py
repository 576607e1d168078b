"""Read-backs of the Kubernetes remediations, over real HTTP against the simulator: after a dead sender, the
target alone says whether this run's change is there (values and run-id annotation, or the uid gone)."""

from __future__ import annotations

import time
from typing import Any

from k8s_objects import cronjob, lease, node, owner, pod, statefulset, uid

from engine.actions import Action, ActionContext, ActionRegistry
from engine.in_flight import read_back
from engine.records import RunRecord, RunStatus, StepRecord, StepStatus
from engine.verdict import Change
from engine.workers import WorkerPool

NODE = "/api/v1/nodes/node-1"


def fleet() -> list[dict[str, Any]]:
    return [node("node-1"), lease("node-1", 5),
            pod("cache-0", "shop", "node-1", [owner("ReplicaSet", "cache-1", uid())], {"app": "cache"}),
            statefulset("db", "shop", 1, 1, uid()), cronjob()]


def ctx_of(run_id: str, dry_run: bool) -> ActionContext:
    return ActionContext(run_id=run_id, step="fix", dry_run=dry_run, deadline=time.monotonic() + 20)


def proposed(action: Action[Any], args: dict[str, Any], run_id: str = "run-1") -> tuple[Change, ...]:
    """The dry-run the proposal holds (what the dead owner committed before sending)."""
    ctx = ctx_of(run_id, dry_run=True)
    action.func(ctx, action.args.model_validate(args))
    assert ctx.changes and all(c.dry_run for c in ctx.changes)
    return tuple(ctx.changes)


def send(action: Action[Any], args: dict[str, Any], run_id: str = "run-1") -> None:
    action.func(ctx_of(run_id, dry_run=False), action.args.model_validate(args))


def reread(action: Action[Any], args: dict[str, Any], changes: tuple[Change, ...], run_id: str = "run-1") -> Any:
    assert action.read_back is not None
    return action.read_back(ctx_of(run_id, dry_run=True), action.args.model_validate(args), changes)


def sent(action: Action[Any], args: dict[str, Any]) -> tuple[Change, ...]:
    """The dry-run's changes, after checking the read-back says `not applied` before the change is sent and
    then sending it."""
    changes = proposed(action, args)
    assert reread(action, args, changes).outcome == "not applied"
    send(action, args)
    return changes


def test_a_cordon_reads_back_not_applied_then_applied_by_this_run_only(cluster, registry_for) -> None:
    sim, kube = cluster(fleet())
    cordon = registry_for(kube).get("k8s.node.cordon")
    args = {"node": "node-1"}
    changes = proposed(cordon, args)
    before = reread(cordon, args, changes)
    assert before.outcome == "not applied"
    assert before.evidence.startswith("spec.unschedulable=false, runbook.dev/run-id=unset at resourceVersion ")
    send(cordon, args)
    after = reread(cordon, args, changes)
    assert after.outcome == "applied" and "spec.unschedulable=true, runbook.dev/run-id=run-1" in after.evidence
    other = reread(cordon, args, changes, run_id="run-2")  # cordoned, but not by run-2
    assert other.outcome == "effect unknown" and "another writer set these values" in other.evidence
    assert sim.requests[("PATCH", NODE)] == 2  # one dry-run, one real: reading back sent nothing


def test_a_failed_read_back_is_effect_unknown(cluster, registry_for) -> None:
    sim, kube = cluster(fleet())
    cordon = registry_for(kube).get("k8s.node.cordon")
    changes = proposed(cordon, {"node": "node-1"})
    sim.faults.add(path=f"{NODE}$", method="GET", status=503)
    run = RunRecord("run-1", "rb", RunStatus.RUNNING, {}, "alice", {}, "{}")
    record = StepRecord(0, "fix", "k8s.node.cordon", StepStatus.RUNNING, inputs={"node": "node-1"},
                        changes=list(changes))
    reading = read_back(cordon, run, record, WorkerPool())
    assert reading.outcome == "effect unknown" and reading.evidence.startswith("re-reading the target failed")


def test_a_pod_delete_reads_back_by_the_uid_the_dry_run_saw(cluster, registry_for) -> None:
    _sim, kube = cluster(fleet())
    delete = registry_for(kube).get("k8s.pod.delete")
    args = {"namespace": "shop", "name": "cache-0"}
    changes = sent(delete, args)
    gone = reread(delete, args, changes)
    assert gone.outcome == "applied", gone


def test_a_scale_reads_back_its_replicas_and_annotation(cluster, registry_for) -> None:
    _sim, kube = cluster(fleet())
    scale = registry_for(kube).get("k8s.scale")
    args = {"kind": "StatefulSet", "namespace": "shop", "name": "db", "replicas": 3}
    changes = sent(scale, args)
    assert reread(scale, args, changes).outcome == "applied"


def test_a_generic_patch_reads_back_every_value_it_sets(cluster, registry_for) -> None:
    _sim, kube = cluster(fleet())
    patch = registry_for(kube).get("k8s.patch")
    args = {"kind": "StatefulSet", "namespace": "shop", "name": "db",
            "patch": {"metadata": {"labels": {"tier": "db"}}, "spec": {"minReadySeconds": 5}}}
    changes = sent(patch, args)
    done = reread(patch, args, changes)
    assert done.outcome == "applied" and "metadata.labels.tier=db, spec.minReadySeconds=5" in done.evidence
    as_json = {**args, "patch_type": "json", "patch": [{"op": "add", "path": "/spec/minReadySeconds", "value": 7}]}
    unknown = reread(patch, as_json, proposed(patch, as_json))
    assert unknown.outcome == "effect unknown" and "cannot compare" in unknown.evidence  # json patches are not


def test_a_job_created_from_a_cronjob_reads_back_by_its_fixed_name(cluster, registry_for) -> None:
    _sim, kube = cluster(fleet())
    create = registry_for(kube).get("k8s.job.create_from_cronjob")
    args = {"namespace": "billing", "cronjob": "billing-report"}
    changes = sent(create, args)
    made = reread(create, args, changes)
    assert made.outcome == "applied" and "runbook.dev/run-id=run-1" in made.evidence
    assert reread(create, args, changes, run_id="run-2").outcome == "not applied"  # the name is run-1's


def test_actions_without_a_read_back_say_so(registry_for) -> None:
    registry: ActionRegistry = registry_for(None)
    assert registry.get("k8s.node.drain").read_back is None  # many requests: no single target shows it
    assert registry.get("k8s.node.cordon").read_back is not None
