"""Builders for the Kubernetes objects the tests load into the simulator (plain dicts, times relative to now)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


def ts(seconds_ago: float = 0.0) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro(seconds_ago: float = 0.0) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def uid() -> str:
    return str(uuid.uuid4())


def node(
    name: str,
    ready: str = "True",
    reason: str = "KubeletReady",
    message: str = "kubelet is posting ready status",
    zone: str = "eu-1a",
    unschedulable: bool = False,
    taints: list[dict[str, Any]] | None = None,
    pressure: str | None = None,
    since: float = 3600,
    control_plane: bool = False,
) -> dict[str, Any]:
    conditions = [
        {"type": t, "status": "False", "reason": f"KubeletHasSufficient{t.replace('Pressure', '')}",
         "lastHeartbeatTime": ts(10), "lastTransitionTime": ts(86400)}
        for t in ("MemoryPressure", "DiskPressure", "PIDPressure")
    ]
    if pressure:
        conditions = [c for c in conditions if c["type"] != pressure]
        conditions.append({"type": pressure, "status": "True", "reason": f"KubeletHas{pressure}",
                           "message": f"kubelet has {pressure.lower()}", "lastHeartbeatTime": ts(10),
                           "lastTransitionTime": ts(since)})
    conditions.append({"type": "Ready", "status": ready, "reason": reason, "message": message,
                       "lastHeartbeatTime": ts(10 if ready == "True" else since), "lastTransitionTime": ts(since)})
    labels = {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone}
    if control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
    spec: dict[str, Any] = {}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = taints
    return {
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}, "spec": spec,
        "status": {"conditions": conditions, "nodeInfo": {"kubeletVersion": "v1.30.2",
                                                          "containerRuntimeVersion": "containerd://1.7.13",
                                                          "kernelVersion": "6.1.0", "osImage": "Debian 12"}},
    }


def lease(node_name: str, age: float) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": node_name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": node_name, "leaseDurationSeconds": 40, "renewTime": micro(age)}}


def owner(kind: str, name: str, owner_uid: str, api_version: str = "apps/v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": owner_uid, "controller": True,
            "blockOwnerDeletion": True}


def pod(
    name: str,
    namespace: str = "default",
    node_name: str | None = "node-a",
    owners: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
    ready: bool = True,
    phase: str = "Running",
    statuses: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
    containers: list[dict[str, Any]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {}, "uid": uid()}
    if owners:
        meta["ownerReferences"] = owners
    if annotations:
        meta["annotations"] = annotations
    containers = containers or [{"name": "app", "image": "registry.example/app:1.0"}]
    statuses = statuses if statuses is not None else [
        {"name": c["name"], "image": c["image"], "ready": ready, "restartCount": 0,
         "state": {"running": {"startedAt": ts(600)}}} for c in containers]
    spec: dict[str, Any] = {"containers": containers}
    if node_name:
        spec["nodeName"] = node_name
    if volumes:
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": statuses}}


def replicaset(name: str, namespace: str, deployment: str, replicas: int, ready: int, rs_uid: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": namespace, "uid": rs_uid,
                         "ownerReferences": [owner("Deployment", deployment, uid())]},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": deployment}},
                     "template": {"metadata": {"labels": {"app": deployment}}, "spec": {"containers": []}}},
            "status": {"replicas": replicas, "readyReplicas": ready}}


def statefulset(name: str, namespace: str, replicas: int, ready: int, sts_uid: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": namespace,
                                                                         "uid": sts_uid},
            "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": []}}},
            "status": {"replicas": replicas, "readyReplicas": ready}}


def pdb(name: str, namespace: str, app: str, allowed: int, min_available: int = 1) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": app}}},
            "status": {"disruptionsAllowed": allowed, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}}


def cronjob(
    name: str = "billing-report",
    namespace: str = "billing",
    schedule: str = "0 * * * *",
    time_zone: str | None = None,
    suspend: bool = False,
    policy: str = "Forbid",
    last_schedule: str | None = None,
    last_success: str | None = None,
    created: str | None = None,
    cron_uid: str | None = None,
    starting_deadline: int | None = None,
    env_secret: str | None = "billing-db",
    memory: str = "256Mi",
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "report", "image": "registry.example/billing:2.3",
                                 "resources": {"limits": {"memory": memory}}}
    if env_secret:
        container["env"] = [{"name": "DB_PASSWORD",
                             "valueFrom": {"secretKeyRef": {"name": env_secret, "key": "password"}}}]
    spec: dict[str, Any] = {
        "schedule": schedule, "suspend": suspend, "concurrencyPolicy": policy,
        "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
        "jobTemplate": {"metadata": {"labels": {"app": name}, "annotations": {"team": "billing"}},
                        "spec": {"backoffLimit": 2, "template": {
                            "metadata": {"labels": {"app": name}},
                            "spec": {"restartPolicy": "Never", "containers": [container]}}}},
    }
    if time_zone:
        spec["timeZone"] = time_zone
    if starting_deadline is not None:
        spec["startingDeadlineSeconds"] = starting_deadline
    status: dict[str, Any] = {}
    if last_schedule:
        status["lastScheduleTime"] = last_schedule
    if last_success:
        status["lastSuccessfulTime"] = last_success
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": cron_uid or uid()}
    if created:
        meta["creationTimestamp"] = created
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta, "spec": spec, "status": status}


def job(
    name: str,
    namespace: str = "billing",
    cron: dict[str, Any] | None = None,
    state: str = "complete",
    started: float = 3600,
    finished: float | None = 3500,
    failed_reason: str = "BackoffLimitExceeded",
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    job_uid: str | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": job_uid or uid(),
                            "creationTimestamp": ts(started + 1), "labels": labels or {}}
    if cron is not None:
        meta["ownerReferences"] = [owner("CronJob", cron["metadata"]["name"], cron["metadata"]["uid"], "batch/v1")]
    if annotations:
        meta["annotations"] = annotations
    status: dict[str, Any] = {"startTime": ts(started)}
    if state == "complete":
        status.update(succeeded=1, completionTime=ts(finished or 0),
                      conditions=[{"type": "Complete", "status": "True", "lastTransitionTime": ts(finished or 0)}])
    elif state == "failed":
        message = "Job has reached the specified backoff limit" if failed_reason == "BackoffLimitExceeded" \
            else "Job was active longer than specified deadline"
        status.update(failed=3, conditions=[{"type": "Failed", "status": "True", "reason": failed_reason,
                                             "message": message, "lastTransitionTime": ts(finished or 0)}])
    else:
        status["active"] = 1
    spec = {"backoffLimit": 2, "activeDeadlineSeconds": 600,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "report", "image": "x"}]}}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec, "status": status}


def job_pod(job_obj: dict[str, Any], name: str, statuses: list[dict[str, Any]], phase: str,
            annotations: dict[str, str] | None = None, memory: str = "256Mi") -> dict[str, Any]:
    m = job_obj["metadata"]
    return pod(name, m["namespace"], "node-a", owners=[owner("Job", m["name"], m["uid"], "batch/v1")],
               labels={"job-name": m["name"]}, ready=False, phase=phase, statuses=statuses, annotations=annotations,
               containers=[{"name": "report", "image": "registry.example/billing:2.3",
                            "resources": {"limits": {"memory": memory}}}])


def waiting(reason: str, message: str, name: str = "report") -> dict[str, Any]:
    return {"name": name, "image": "registry.example/billing:2.3", "ready": False, "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": message}}}


def terminated(code: int, reason: str = "Error", name: str = "report", restarts: int = 0) -> dict[str, Any]:
    return {"name": name, "image": "registry.example/billing:2.3", "ready": False, "restartCount": restarts,
            "state": {"terminated": {"exitCode": code, "reason": reason, "finishedAt": ts(60)}}}


def secret(name: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque", "data": data}


def event(kind: str, name: str, reason: str, message: str, namespace: str = "default", type_: str = "Warning",
          count: int = 1, ago: float = 60, involved_ns: str | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{name}.{uuid.uuid4().hex[:8]}", "namespace": namespace},
            "involvedObject": {"kind": kind, "name": name, "namespace": involved_ns if involved_ns is not None
                               else (namespace if kind != "Node" else "")},
            "reason": reason, "message": message, "type": type_, "count": count,
            "firstTimestamp": ts(ago + 600), "lastTimestamp": ts(ago), "source": {"component": "kubelet"}}
