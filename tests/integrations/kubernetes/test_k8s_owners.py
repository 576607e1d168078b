"""Owner lookups for alert triggers over HTTP against the simulator: pod -> ReplicaSet -> Deployment, Job -> CronJob."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.errors import TransientError
from engine.triggers import MappingError
from integrations.kubernetes.owners import OwnerResolver
from integrations.kubesim import SimulatedCluster
from tests.integrations.kubernetes.k8s_objects import cronjob, job, job_pod, owner, pod, replicaset, terminated, uid

Cluster = Callable[..., tuple[SimulatedCluster, Any]]


def _objects() -> list[dict[str, Any]]:
    rs = replicaset("web-7d9f8b6c5d", "shop", "web", 2, 1, uid())
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "web", "namespace": "shop", "uid": rs["metadata"]["ownerReferences"][0]["uid"]},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}}}
    cron = cronjob("nightly-report")
    run = job("nightly-report-29001", cron=cron, state="failed")
    # A pod whose name says "web" but which no controller owns: the name alone must not decide.
    lookalike = pod("web-7d9f8b6c5d-zzzzz", "shop")
    return [deployment, rs, pod("web-7d9f8b6c5d-x2x9q", "shop",
                                owners=[owner("ReplicaSet", "web-7d9f8b6c5d", rs["metadata"]["uid"])]),
            lookalike, cron, run, job_pod(run, "nightly-report-29001-abcde", [terminated(1)], "Failed")]


def test_pod_to_replicaset_to_deployment(cluster: Cluster) -> None:
    _, kube = cluster(_objects())
    owners = OwnerResolver(kube)
    assert owners.owner_of("shop", "web-7d9f8b6c5d-x2x9q", "Deployment") == "web"
    assert owners.owner_of("shop", "web-7d9f8b6c5d-x2x9q", "ReplicaSet") == "web-7d9f8b6c5d"
    assert owners.owner_of("shop", "web-7d9f8b6c5d-x2x9q", "StatefulSet") is None
    assert owners.owner_of("shop", "web-7d9f8b6c5d-zzzzz", "Deployment") is None  # looks alike, owned by nobody


def test_job_pod_to_cronjob(cluster: Cluster) -> None:
    _, kube = cluster(_objects())
    owners = OwnerResolver(kube)
    assert owners.owner_of("billing", "nightly-report-29001-abcde", "CronJob") == "nightly-report"
    assert owners.owner_of("billing", "nightly-report-29001", "CronJob", of="Job") == "nightly-report"  # job_name


def test_missing_pod_is_a_mapping_error_and_an_unreachable_server_is_transient(cluster: Cluster) -> None:
    sim, kube = cluster(_objects())
    with pytest.raises(MappingError, match="does not exist"):
        OwnerResolver(kube).owner_of("shop", "gone", "Deployment")
    sim.stop()
    with pytest.raises(TransientError):
        OwnerResolver(kube, timeout=1.0).owner_of("shop", "web-7d9f8b6c5d-x2x9q", "Deployment")
