"""A Deployment with ReplicaSet revisions, as the Deployment controller leaves them, for rollout tests."""

from __future__ import annotations

from typing import Any

from k8s_objects import owner, ts, uid


def template(image: str, app: str = "web", hash_: str | None = None) -> dict[str, Any]:
    labels = {"app": app, **({"pod-template-hash": hash_} if hash_ else {})}
    return {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": app, "image": image,
                                     "resources": {"limits": {"memory": "256Mi"}}}]}}


def deployment(name: str = "web", namespace: str = "shop", image: str = "registry.example/web:2.0",
               revision: int = 2, replicas: int = 3, available: int = 0, dep_uid: str | None = None,
               labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
               progressing: dict[str, Any] | None = None) -> dict[str, Any]:
    conditions = [{"type": "Available", "status": "True" if available >= replicas else "False",
                   "reason": "MinimumReplicasAvailable", "lastUpdateTime": ts(600), "lastTransitionTime": ts(600)}]
    if progressing:
        conditions.append({"type": "Progressing", "status": "True", **progressing})
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "uid": dep_uid or uid(), "generation": 2,
                         "labels": labels or {"app": name},
                         "annotations": {"deployment.kubernetes.io/revision": str(revision), **(annotations or {})}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": template(image, name)},
            "status": {"observedGeneration": 2, "replicas": replicas, "updatedReplicas": replicas,
                       "availableReplicas": available, "readyReplicas": available, "conditions": conditions}}


def revision_set(dep: dict[str, Any], revision: int, image: str, hash_: str, age: float, replicas: int = 0,
                 history: str | None = None, cause: str | None = None) -> dict[str, Any]:
    meta = dep["metadata"]
    annotations = {"deployment.kubernetes.io/revision": str(revision)}
    if history:
        annotations["deployment.kubernetes.io/revision-history"] = history
    if cause:
        annotations["kubernetes.io/change-cause"] = cause
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{meta['name']}-{hash_}", "namespace": meta["namespace"], "uid": uid(),
                         "creationTimestamp": ts(age), "labels": {"app": meta["name"], "pod-template-hash": hash_},
                         "annotations": annotations,
                         "ownerReferences": [owner("Deployment", meta["name"], meta["uid"])]},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": meta["name"],
                                                                        "pod-template-hash": hash_}},
                     "template": template(image, meta["name"], hash_)},
            "status": {"replicas": replicas}}


def rolled_out(age_new: float = 300, age_old: float = 86400) -> list[dict[str, Any]]:
    """web at revision 2 (image 2.0, crash-looping) rolled out `age_new` seconds ago; revision 1 ran 1.0."""
    dep = deployment()
    return [dep, revision_set(dep, 1, "registry.example/web:1.0", "5d8f9c7b6", age_old, cause="release 1.0"),
            revision_set(dep, 2, "registry.example/web:2.0", "7c9d6b5f4", age_new, replicas=3,
                         cause="release 2.0")]
