"""ReplicaSet, StatefulSet, Deployment and Job controllers, reduced to what runbooks observe.

Each reconciles one owner to its end state at once (no rolling steps, no backoff delays): the
pods it should have exist, the ones it should not are deleted, its status counts them. They run only
from `Controllers.settle`, i.e. after an API write, and skip owners that are being deleted.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from .kubelet import Kubelet
from .lifecycle import DeleteOptions, Lifecycle
from .objects import format_time, meta, new_uid, pod_ready, utcnow
from .resources import ResourceTable, ResourceType
from .store import Store

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
HASH_LABEL = "pod-template-hash"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict) -> str:
    """pkg/controller/controller_utils.go ComputeHash: FNV-32a of the template, encoded with
    rand.SafeEncodeString (here over canonical JSON, so values differ from a real cluster's)."""
    h = 0x811C9DC5
    for byte in json.dumps(template, sort_keys=True, separators=(",", ":")).encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE[b % len(_SAFE)] for b in str(h).encode())


def _pruned(value: Any) -> Any:
    """Drop nulls and empty maps/lists: Go's zero values, which apimachinery's Semantic.DeepEqual treats as
    equal to absent (kubectl rollout undo sends `creationTimestamp: null` and `resources: {}`)."""
    if isinstance(value, dict):
        out = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _without_hash(template: dict) -> dict:
    """deployment/util EqualIgnoreHash: templates compared without the pod-template-hash label."""
    labels = {k: v for k, v in ((template.get("metadata") or {}).get("labels") or {}).items() if k != HASH_LABEL}
    return _pruned({**template, "metadata": {**(template.get("metadata") or {}), "labels": labels}})


def _controller_ref(obj: dict) -> dict | None:
    return next((r for r in meta(obj).get("ownerReferences") or [] if r.get("controller")), None)


def _owner_ref(owner: dict, kind: str, api_version: str) -> dict:
    return {"apiVersion": api_version, "kind": kind, "name": meta(owner)["name"], "uid": meta(owner)["uid"],
            "controller": True, "blockOwnerDeletion": True}


def _active(pod: dict) -> bool:
    """controller_utils.go IsPodActive: not finished and not being deleted."""
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed") and not meta(pod).get(
        "deletionTimestamp")


class Workloads:
    """The workload controllers. `generate_name` gives new pod names (seeded, as the API server's)."""

    OWNERS = ("replicasets.apps", "statefulsets.apps", "deployments.apps", "jobs.batch")

    def __init__(self, store: Store, table: ResourceTable, lifecycle: Lifecycle, kubelet: Kubelet,
                 generate_name: Callable[[str], str]) -> None:
        self.store = store
        self.table = table
        self.lifecycle = lifecycle
        self.kubelet = kubelet
        self.generate_name = generate_name
        self.rt = {key: table.lookup(key) for key in (*self.OWNERS, "pods")}

    # -- dispatch ----------------------------------------------------------------------------
    def owner_changed(self, rkey: str, obj: dict) -> None:
        current = self.store.get(self.rt[rkey], meta(obj).get("namespace"), meta(obj)["name"])
        if current is None or meta(current).get("deletionTimestamp"):
            return
        {"replicasets.apps": self.sync_replicaset, "statefulsets.apps": self.sync_statefulset,
         "deployments.apps": self.sync_deployment, "jobs.batch": self.sync_job}[rkey](current)

    def pod_changed(self, kind: str, pod: dict) -> None:
        ref = _controller_ref(pod)
        rkey = {"ReplicaSet": "replicasets.apps", "StatefulSet": "statefulsets.apps", "Job": "jobs.batch"}.get(
            str((ref or {}).get("kind")))
        if ref is None or rkey is None:
            return
        owner = self.store.get(self.rt[rkey], meta(pod).get("namespace"), str(ref.get("name")))
        if owner is None or meta(owner).get("uid") != ref.get("uid"):
            return
        self.owner_changed(rkey, owner)
        if rkey == "replicasets.apps":
            parent = _controller_ref(owner)
            if parent and parent.get("kind") == "Deployment":
                dep = self.store.get(self.rt["deployments.apps"], meta(owner).get("namespace"), parent["name"])
                if dep is not None and not meta(dep).get("deletionTimestamp"):
                    self._deployment_status(dep)

    # -- helpers -----------------------------------------------------------------------------
    def _owned_pods(self, owner: dict) -> list[dict]:
        uid = meta(owner).get("uid")
        return [p for p in self.store.list(self.rt["pods"], meta(owner).get("namespace"))[0]
                if (_controller_ref(p) or {}).get("uid") == uid]

    def _create_pod(self, owner: dict, kind: str, api_version: str, template: dict, name: str,
                    extra_labels: dict[str, str] | None = None, spec_extra: dict | None = None) -> dict:
        """controller_utils.go GetPodFromTemplate: labels/annotations from the template, a controller ref."""
        tmeta = template.get("metadata") or {}
        pod_meta: dict[str, Any] = {
            "name": name, "namespace": meta(owner).get("namespace"), "uid": new_uid(),
            "creationTimestamp": format_time(utcnow()),
            "labels": {**(tmeta.get("labels") or {}), **(extra_labels or {})},
            "ownerReferences": [_owner_ref(owner, kind, api_version)],
        }
        if tmeta.get("annotations"):
            pod_meta["annotations"] = dict(tmeta["annotations"])
        if kind == "Job":
            pod_meta["finalizers"] = ["batch.kubernetes.io/job-tracking"]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
               "spec": {**(template.get("spec") or {}), **(spec_extra or {})}}
        return self.store.put(self.rt["pods"], self.kubelet.place(pod))

    def _delete_pod(self, pod: dict) -> None:
        with contextlib.suppress(KeyError):
            self.lifecycle.delete(self.rt["pods"], meta(pod).get("namespace"), meta(pod)["name"], DeleteOptions())

    def _put_status(self, rkey: str, obj: dict, status: dict) -> dict:
        if status == obj.get("status"):
            return obj
        return self.store.put(self.rt[rkey], {**obj, "status": status})

    def _put_meta(self, rkey: str, obj: dict, changes: dict[str, Any]) -> dict:
        new_meta = {**meta(obj), **changes}
        return obj if new_meta == meta(obj) else self.store.put(self.rt[rkey], {**obj, "metadata": new_meta})

    # -- ReplicaSet --------------------------------------------------------------------------
    def sync_replicaset(self, rs: dict) -> None:
        """pkg/controller/replicaset/replica_set.go manageReplicas: create or delete the difference between
        active pods and spec.replicas (pods named `<rs>-<random>`), then the status."""
        spec = rs.get("spec") or {}
        want = int(spec.get("replicas", 1))
        active = [p for p in self._owned_pods(rs) if _active(p)]
        for _ in range(want - len(active)):
            name = self.generate_name(meta(rs)["name"] + "-")
            self._create_pod(rs, "ReplicaSet", "apps/v1", spec.get("template") or {}, name)
        if len(active) > want:
            # getPodsToDelete: unscheduled, then not ready, then the newest go first.
            ranked = sorted(active, key=lambda p: (bool((p.get("spec") or {}).get("nodeName")), pod_ready(p),
                                                   meta(p).get("creationTimestamp", "")), reverse=False)
            for pod in ranked[: len(active) - want]:
                self._delete_pod(pod)
        pods = [p for p in self._owned_pods(rs) if _active(p)]
        ready = sum(1 for p in pods if pod_ready(p))
        labels = (spec.get("template") or {}).get("metadata", {}).get("labels") or {}
        full = sum(1 for p in pods if all((meta(p).get("labels") or {}).get(k) == v for k, v in labels.items()))
        status = {"replicas": len(pods), "fullyLabeledReplicas": full, "readyReplicas": ready,
                  "availableReplicas": ready, "observedGeneration": int(meta(rs).get("generation") or 1)}
        self._put_status("replicasets.apps", rs, {k: v for k, v in status.items() if v or k == "replicas"})

    # -- StatefulSet -------------------------------------------------------------------------
    def sync_statefulset(self, sts: dict) -> None:
        """pkg/controller/statefulset/stateful_set_control.go updateStatefulSet: ordinals 0..replicas-1 each
        have a pod named `<set>-<ordinal>`; a deleted one is recreated with the same name once it is gone
        (a terminating one is waited for), ordinals beyond replicas are deleted."""
        spec = sts.get("spec") or {}
        want = int(spec.get("replicas", 1))
        name, ns = meta(sts)["name"], meta(sts).get("namespace")
        owned = {meta(p)["name"]: p for p in self._owned_pods(sts)}
        for ordinal in range(want):
            pod_name = f"{name}-{ordinal}"
            if pod_name in owned or self.store.get(self.rt["pods"], ns, pod_name) is not None:
                continue
            labels = {"statefulset.kubernetes.io/pod-name": pod_name, "apps.kubernetes.io/pod-index": str(ordinal)}
            extra = {"hostname": pod_name}
            if spec.get("serviceName"):
                extra["subdomain"] = spec["serviceName"]
            claims = [{"name": c["metadata"]["name"],
                       "persistentVolumeClaim": {"claimName": f"{c['metadata']['name']}-{pod_name}"}}
                      for c in spec.get("volumeClaimTemplates") or [] if (c.get("metadata") or {}).get("name")]
            if claims:
                template_spec = (spec.get("template") or {}).get("spec") or {}
                extra["volumes"] = [*(template_spec.get("volumes") or []), *claims]  # type: ignore[assignment]
            self._create_pod(sts, "StatefulSet", "apps/v1", spec.get("template") or {}, pod_name, labels, extra)
        for pod_name, pod in sorted(owned.items(), reverse=True):
            ordinal = pod_name.rsplit("-", 1)[-1]
            if ordinal.isdigit() and int(ordinal) >= want and _active(pod):
                self._delete_pod(pod)
        pods = [p for p in self._owned_pods(sts) if _active(p)]
        ready = sum(1 for p in pods if pod_ready(p))
        status = {**(sts.get("status") or {}), "replicas": len(pods), "readyReplicas": ready,
                  "currentReplicas": len(pods), "updatedReplicas": len(pods), "availableReplicas": ready,
                  "observedGeneration": int(meta(sts).get("generation") or 1)}
        self._put_status("statefulsets.apps", sts, status)

    # -- Job ---------------------------------------------------------------------------------
    def sync_job(self, job: dict) -> None:
        """pkg/controller/job/job_controller.go syncJob, reduced: run `parallelism` pods until `completions`
        succeeded (Complete) or more than `backoffLimit` failed (Failed, active pods deleted)."""
        spec, status = job.get("spec") or {}, dict(job.get("status") or {})
        if spec.get("suspend") or any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                                      for c in status.get("conditions") or []):
            return
        pods = self._owned_pods(job)
        succeeded = max(int(status.get("succeeded") or 0),
                        sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"))
        failed = max(int(status.get("failed") or 0),
                     sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed"))
        completions = int(spec.get("completions") or 1)
        active = [p for p in pods if _active(p)]
        now = format_time(utcnow())
        status.setdefault("startTime", now)
        if succeeded >= completions:
            status["completionTime"] = now
            status["conditions"] = [_job_condition("SuccessCriteriaMet", now, "CompletionsReached"),
                                    _job_condition("Complete", now, "CompletionsReached")]
        elif failed > int(spec.get("backoffLimit", 6)):
            for pod in active:
                self._delete_pod(pod)
            status["conditions"] = [_job_condition("FailureTarget", now, "BackoffLimitExceeded"),
                                    _job_condition("Failed", now, "BackoffLimitExceeded")]
        else:
            want = min(int(spec.get("parallelism", 1)), completions - succeeded) - len(active)
            labels = {"batch.kubernetes.io/controller-uid": meta(job)["uid"],
                      "batch.kubernetes.io/job-name": meta(job)["name"],
                      "controller-uid": meta(job)["uid"], "job-name": meta(job)["name"]}
            for _ in range(max(want, 0)):
                name = self.generate_name(meta(job)["name"] + "-")
                self._create_pod(job, "Job", "batch/v1", spec.get("template") or {}, name, labels)
        active = [p for p in self._owned_pods(job) if _active(p)]
        status.update(succeeded=succeeded, failed=failed, active=len(active),
                      ready=sum(1 for p in active if pod_ready(p)), terminating=0)
        self._put_status("jobs.batch", job, {k: v for k, v in status.items() if v or k == "ready"})

    # -- Deployment --------------------------------------------------------------------------
    def sync_deployment(self, dep: dict) -> None:
        """pkg/controller/deployment/sync.go getNewReplicaSet + rolling.go, to the end state at once: the
        ReplicaSet whose template equals the Deployment's (created as `<name>-<hash>` if none) gets revision
        max+1 (an old one reused for a rollback records its former number in revision-history) and all
        replicas; the others are scaled to 0. Only a spec the controller has not observed yet
        (generation > status.observedGeneration) is rolled out; otherwise the status is refreshed."""
        spec = dep.get("spec") or {}
        observed = int((dep.get("status") or {}).get("observedGeneration") or 0)
        if spec.get("paused") or observed >= int(meta(dep).get("generation") or 1):
            self._deployment_status(dep)
            return
        template = spec.get("template") or {}
        owned = [rs for rs in self.store.list(self.rt["replicasets.apps"], meta(dep).get("namespace"))[0]
                 if (_controller_ref(rs) or {}).get("uid") == meta(dep).get("uid")]
        new = next((rs for rs in owned if _without_hash((rs.get("spec") or {}).get("template") or {})
                    == _without_hash(template)), None)
        old = [rs for rs in owned if rs is not new]
        revision = max((int((meta(rs).get("annotations") or {}).get(REVISION, 0) or 0) for rs in old), default=0) + 1
        replicas = int(spec.get("replicas", 1))
        if new is None:
            new = self._new_replicaset(dep, template, revision)
        else:
            annotations = dict(meta(new).get("annotations") or {})
            current = int(annotations.get(REVISION, 0) or 0)
            if current < revision:
                if current:
                    history = [h for h in (annotations.get(REVISION_HISTORY) or "").split(",") if h]
                    annotations[REVISION_HISTORY] = ",".join([*history, str(current)])
                annotations[REVISION] = str(revision)
                new = self._put_meta("replicasets.apps", new, {"annotations": annotations})
        self._scale(new, replicas)
        for rs in old:
            self._scale(rs, 0)
        annotations = {**(meta(dep).get("annotations") or {}),
                       REVISION: (meta(new).get("annotations") or {}).get(REVISION, str(revision))}
        dep = self._put_meta("deployments.apps", dep, {"annotations": annotations})
        self._deployment_status(dep)

    def _new_replicaset(self, dep: dict, template: dict, revision: int) -> dict:
        digest = template_hash(template)
        labels = {**((template.get("metadata") or {}).get("labels") or {}), HASH_LABEL: digest}
        selector = dict((dep.get("spec") or {}).get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: digest}
        replicas = int((dep.get("spec") or {}).get("replicas", 1))
        annotations = {REVISION: str(revision), "deployment.kubernetes.io/desired-replicas": str(replicas),
                       "deployment.kubernetes.io/max-replicas": str(replicas + 1)}
        change_cause = (meta(dep).get("annotations") or {}).get("kubernetes.io/change-cause")
        if change_cause:
            annotations["kubernetes.io/change-cause"] = change_cause
        rs: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
            "name": f"{meta(dep)['name']}-{digest}", "namespace": meta(dep).get("namespace"), "uid": new_uid(),
            "creationTimestamp": format_time(utcnow()), "generation": 1,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [_owner_ref(dep, "Deployment", "apps/v1")]},
            "spec": {"replicas": 0, "selector": selector,
                     "template": {**template, "metadata": {**(template.get("metadata") or {}), "labels": labels}}}}
        return self.store.put(self.rt["replicasets.apps"], rs)

    def _scale(self, rs: dict, replicas: int) -> None:
        if int((rs.get("spec") or {}).get("replicas", 1)) == replicas:
            return
        m = meta(rs)
        self.store.put(self.rt["replicasets.apps"], {
            **rs, "spec": {**(rs.get("spec") or {}), "replicas": replicas},
            "metadata": {**m, "generation": int(m.get("generation") or 1) + 1}})

    def _deployment_status(self, dep: dict) -> None:
        owned = [rs for rs in self.store.list(self.rt["replicasets.apps"], meta(dep).get("namespace"))[0]
                 if (_controller_ref(rs) or {}).get("uid") == meta(dep).get("uid")]
        revision = (meta(dep).get("annotations") or {}).get(REVISION)
        new = next((rs for rs in owned if (meta(rs).get("annotations") or {}).get(REVISION) == revision), None)
        total = sum(int((rs.get("status") or {}).get("replicas") or 0) for rs in owned)
        ready = sum(int((rs.get("status") or {}).get("readyReplicas") or 0) for rs in owned)
        updated = int(((new or {}).get("status") or {}).get("replicas") or 0)
        want = int((dep.get("spec") or {}).get("replicas", 1))
        now = format_time(utcnow())
        available = ready >= want
        progressing = "NewReplicaSetAvailable" if updated == want and ready >= want else "ReplicaSetUpdated"
        conditions = [_condition("Available", now, "MinimumReplicasAvailable" if available
                                 else "MinimumReplicasUnavailable", "True" if available else "False"),
                      _condition("Progressing", now, progressing)]
        status: dict[str, Any] = {"observedGeneration": int(meta(dep).get("generation") or 1), "replicas": total,
                  "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": ready,
                  "unavailableReplicas": max(want - ready, 0), "conditions": conditions}
        old = {c.get("type"): c for c in (dep.get("status") or {}).get("conditions") or []}
        for cond in conditions:  # keep transition times when nothing changed
            prev = old.get(cond["type"])
            if prev and prev.get("status") == cond["status"] and prev.get("reason") == cond["reason"]:
                cond.update(lastTransitionTime=prev.get("lastTransitionTime"),
                            lastUpdateTime=prev.get("lastUpdateTime"))
        self._put_status("deployments.apps", dep, {k: v for k, v in status.items() if v or k == "replicas"})


def _condition(ctype: str, now: str, reason: str, status: str = "True") -> dict:
    """A Deployment condition (lastUpdateTime); Job conditions use lastProbeTime instead."""
    return {"type": ctype, "status": status, "reason": reason, "message": "", "lastTransitionTime": now,
            "lastUpdateTime": now}


def _job_condition(ctype: str, now: str, reason: str) -> dict:
    return {"type": ctype, "status": "True", "reason": reason, "message": "", "lastTransitionTime": now,
            "lastProbeTime": now}


__all__ = ["ResourceType", "Workloads", "template_hash"]
