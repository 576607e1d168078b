"""Building blocks for synthetic clusters: a seeded id/time source and realistic Nodes + Leases."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from .objects import format_micro_time, format_time

_CHARS = "bcdfghjklmnpqrstvwxz2456789"
KUBELET_VERSION = "v1.32.4"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


class Synth:
    def __init__(self, seed: int, now: datetime) -> None:
        self.rand = random.Random(seed)
        self.now = now
        self.born = format_time(now - timedelta(days=12))

    def uid(self) -> str:
        h = f"{self.rand.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def suffix(self, n: int) -> str:
        return "".join(self.rand.choices(_CHARS, k=n))

    def ago(self, **kw: float) -> str:
        return format_time(self.now - timedelta(**kw))


def node_and_lease(g: Synth, i: int, name: str, ready: bool, control_plane: bool) -> tuple[dict, dict]:
    hb = g.ago(seconds=g.rand.randint(5, 40)) if ready else g.ago(minutes=7)
    transition = g.born if ready else g.ago(minutes=6)
    status = "True" if ready else "Unknown"
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/zone": ZONES[i % len(ZONES)],
        "node.kubernetes.io/instance-type": "m6i.2xlarge",
    }
    spec: dict[str, Any] = {"podCIDR": f"10.{64 + i // 256}.{i % 256}.0/24", "providerID": f"aws:///{name}"}
    taints = []
    if control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
        taints.append({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"})
    if not ready:
        taints += [
            {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": transition},
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": transition},
        ]
    if taints:
        spec["taints"] = taints
    pressure = [
        (t, f"KubeletHas{s}", f"kubelet has {m}")
        for t, s, m in (
            ("MemoryPressure", "SufficientMemory", "sufficient memory available"),
            ("DiskPressure", "NoDiskPressure", "no disk pressure"),
            ("PIDPressure", "SufficientPID", "sufficient PID available"),
        )
    ]
    conditions = [
        {
            "type": t,
            "status": "False" if ready else "Unknown",
            "lastHeartbeatTime": hb,
            "lastTransitionTime": transition,
            "reason": r if ready else "NodeStatusUnknown",
            "message": msg if ready else "Kubelet stopped posting node status.",
        }
        for t, r, msg in pressure
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": status,
            "lastHeartbeatTime": hb,
            "lastTransitionTime": transition,
            "reason": "KubeletReady" if ready else "NodeStatusUnknown",
            "message": "kubelet is posting ready status" if ready else "Kubelet stopped posting node status.",
        }
    )
    ip = f"10.0.{i // 250}.{i % 250 + 4}"
    node: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": g.uid(),
            "creationTimestamp": g.born,
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
        "status": {
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "capacity": {
                "cpu": "8",
                "memory": "32386524Ki",
                "pods": "110",
                "ephemeral-storage": "104845292Ki",
            },
            "allocatable": {
                "cpu": "7910m",
                "memory": "31369692Ki",
                "pods": "110",
                "ephemeral-storage": "95551679124",
            },
            "nodeInfo": {
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "containerRuntimeVersion": "containerd://1.7.27",
                "osImage": "Ubuntu 22.04.5 LTS",
                "kernelVersion": "6.8.0-1021-aws",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "bootID": g.uid(),
                "machineID": g.uid().replace("-", ""),
                "systemUUID": g.uid().replace("-", ""),
            },
        },
    }
    renew = g.now - timedelta(seconds=g.rand.randint(1, 9)) if ready else g.now - timedelta(minutes=6)
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": "kube-node-lease",
            "uid": g.uid(),
            "creationTimestamp": g.born,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node["metadata"]["uid"]}
            ],
        },
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": format_micro_time(renew)},
    }
    return node, lease
