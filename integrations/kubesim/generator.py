"""Synthetic large clusters (thousands of nodes, hundreds of thousands of pods) for benchmarks.

Pods of one workload share their immutable sub-structures (container specs, labels, owner
references, conditions) so 150k pods fit in modest memory; the store never mutates in place.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from .objects import utcnow
from .synth_nodes import Synth, node_and_lease


class _Workload:
    """A controller plus the shared pieces of its pods."""

    def __init__(self, g: Synth, kind: str, name: str, ns: str, replicas: int, image: str) -> None:
        self.kind, self.name, self.ns, self.replicas = kind, name, ns, replicas
        self.uid = g.uid()
        self.hash = g.suffix(10) if kind == "ReplicaSet" else ""
        base = name.rsplit("-", 1)[0] if kind == "ReplicaSet" else name
        self.labels = {"app.kubernetes.io/name": base}
        if self.hash:
            self.labels = {**self.labels, "pod-template-hash": self.hash}
        self.containers = [
            {
                "name": base.split("-")[0] or "app",
                "image": image,
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            }
        ]
        api = "apps/v1"
        self.owner = [
            {
                "apiVersion": api,
                "kind": kind,
                "name": name,
                "uid": self.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        started = g.ago(days=3)
        self.ready_conds = [
            {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": started}
            for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
        ]
        self.lost_conds = [
            c
            if c["type"] not in ("Ready", "ContainersReady")
            else {**c, "status": "False", "lastTransitionTime": g.ago(minutes=6)}
            for c in self.ready_conds
        ]
        self.statuses = [
            {
                "name": self.containers[0]["name"],
                "image": image,
                "imageID": f"{image}@sha256:0",
                "ready": True,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": started}},
            }
        ]
        self.started = started
        self.created = g.ago(days=3, minutes=1)
        self.count = 0
        self.names: set[str] = set()

    def pod(self, g: Synth, node: str, node_ip: str, ready: bool, pod_ip: str) -> dict:
        if self.kind == "StatefulSet":
            name = f"{self.name}-{self.count}"
        else:
            name = f"{self.name}-{g.suffix(5)}"
            while name in self.names:  # generateName collisions are retried on real servers too
                name = f"{self.name}-{g.suffix(5)}"
            self.names.add(name)
        self.count += 1
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": self.ns,
                "uid": g.uid(),
                "creationTimestamp": self.created,
                "labels": self.labels,
                "ownerReferences": self.owner,
            },
            "spec": {
                "nodeName": node,
                "containers": self.containers,
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "serviceAccountName": "default",
                "schedulerName": "default-scheduler",
            },
            "status": {
                "phase": "Running",
                "conditions": self.ready_conds if ready else self.lost_conds,
                "hostIP": node_ip,
                "podIP": pod_ip,
                "startTime": self.started,
                "qosClass": "Burstable",
                "containerStatuses": self.statuses if ready else [{**self.statuses[0], "ready": False}],
            },
        }

    def controller(self, g: Synth) -> list[dict]:
        template = {"metadata": {"labels": self.labels}, "spec": {"containers": self.containers}}
        sel = {"matchLabels": self.labels}
        meta = {
            "name": self.name,
            "namespace": self.ns,
            "uid": self.uid,
            "creationTimestamp": self.created,
            "labels": self.labels,
            "generation": 1,
        }
        n = self.count
        if self.kind == "DaemonSet":
            return [
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "metadata": meta,
                    "spec": {"selector": sel, "template": template},
                    "status": {
                        "desiredNumberScheduled": n,
                        "currentNumberScheduled": n,
                        "numberReady": n,
                        "updatedNumberScheduled": n,
                        "numberAvailable": n,
                        "numberMisscheduled": 0,
                        "observedGeneration": 1,
                    },
                }
            ]
        status = {"replicas": n, "readyReplicas": n, "availableReplicas": n, "observedGeneration": 1}
        if self.kind == "StatefulSet":
            return [
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "metadata": meta,
                    "spec": {"replicas": n, "selector": sel, "serviceName": self.name, "template": template},
                    "status": {**status, "currentReplicas": n, "updatedReplicas": n},
                }
            ]
        deploy_name = self.name.rsplit("-", 1)[0]
        deploy_uid = g.uid()
        deploy_labels = {"app.kubernetes.io/name": deploy_name}
        rs_meta = {
            **meta,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": deploy_name,
                    "uid": deploy_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "annotations": {"deployment.kubernetes.io/revision": "1"},
        }
        return [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {**meta, "name": deploy_name, "uid": deploy_uid, "labels": deploy_labels},
                "spec": {
                    "replicas": n,
                    "selector": {"matchLabels": deploy_labels},
                    "template": {**template, "metadata": {"labels": deploy_labels}},
                },
                "status": {**status, "updatedReplicas": n},
            },
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": rs_meta,
                "spec": {"replicas": n, "selector": sel, "template": template},
                "status": {**status, "fullyLabeledReplicas": n},
            },
        ]


def generate_cluster(
    nodes: int = 5000,
    pods_per_node: int = 30,
    not_ready: Iterable[str] = (),
    namespaces: int = 20,
    replicas: int = 50,
    seed: int = 0,
    now: datetime | None = None,
) -> list[dict]:
    """Build a realistic big cluster: nodes + leases, DaemonSet pods on every node, Deployments
    (ReplicaSets) and StatefulSets spread across nodes, PDBs and namespaces.

    Node names are ``node-00000`` ...; names in ``not_ready`` get Unknown conditions, stale leases,
    unreachable taints and NotReady pods.
    """
    g = Synth(seed, now or utcnow())
    down = set(not_ready)
    width = max(5, len(str(nodes - 1)))
    names = [f"node-{i:0{width}d}" for i in range(nodes)]
    ns_names = [f"team-{i:02d}" for i in range(namespaces)]
    out: list[dict] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "uid": g.uid(),
                "creationTimestamp": g.born,
                "labels": {"kubernetes.io/metadata.name": ns},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }
        for ns in ["monitoring", *ns_names]
    ]
    daemons = [
        _Workload(g, "DaemonSet", "kube-proxy", "kube-system", nodes, "registry.k8s.io/kube-proxy:v1.32.4"),
        _Workload(
            g, "DaemonSet", "node-exporter", "monitoring", nodes, "quay.io/prometheus/node-exporter:v1.8.2"
        ),
    ]
    app_slots = max(pods_per_node - len(daemons), 0)
    workloads: list[_Workload] = []
    pods: list[dict] = []
    total_apps = nodes * app_slots
    for k in range(total_apps):
        w_index = k // replicas
        if w_index >= len(workloads):
            ns = ns_names[w_index % len(ns_names)]
            if w_index % 20 == 19:
                workloads.append(_Workload(g, "StatefulSet", f"db-{w_index}", ns, replicas, "postgres:16.4"))
            else:
                workloads.append(
                    _Workload(
                        g,
                        "ReplicaSet",
                        f"svc-{w_index}-{g.suffix(10)}",
                        ns,
                        replicas,
                        f"registry.example.com/svc-{w_index}:1.{w_index % 9}.0",
                    )
                )
        node_i = k % nodes
        slot = k // nodes
        pods.append(
            workloads[w_index].pod(
                g,
                names[node_i],
                "",
                names[node_i] not in down,
                f"10.{64 + node_i // 256}.{node_i % 256}.{slot + 10}",
            )
        )
    for i, name in enumerate(names):
        node, lease = node_and_lease(g, i, name, name not in down, control_plane=i < 3 and nodes > 10)
        out += [node, lease]
        for d_i, d in enumerate(daemons):
            pods.append(d.pod(g, name, "", name not in down, f"10.{64 + i // 256}.{i % 256}.{d_i + 2}"))
    for pod in pods:
        node_i = int(pod["spec"]["nodeName"][5:])
        pod["status"]["hostIP"] = f"10.0.{node_i // 250}.{node_i % 250 + 4}"
    for w in [*daemons, *workloads]:
        out += w.controller(g)
    for w in workloads[::10]:
        out.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {
                    "name": w.labels["app.kubernetes.io/name"],
                    "namespace": w.ns,
                    "uid": g.uid(),
                    "creationTimestamp": w.created,
                    "generation": 1,
                },
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": w.labels}},
                "status": {
                    "currentHealthy": w.count,
                    "desiredHealthy": w.count - 1,
                    "disruptionsAllowed": 1,
                    "expectedPods": w.count,
                    "observedGeneration": 1,
                },
            }
        )
    return out + pods
