"""Owner lookup for alert triggers: pod -> ReplicaSet -> Deployment, pod -> Job -> CronJob (read-only).

Alerts name what their metric names (`KubePodCrashLooping` carries `pod`), runbooks act on workloads.
Follows the controller ownerReference only, as `kubectl` and the garbage collector do: a pod adopted by
a ReplicaSet belongs to that ReplicaSet's controller, whatever its name says. Bounded by a short deadline:
the webhook must answer Alertmanager quickly, and a slow cluster means "retry", not a lost alert.
"""

from __future__ import annotations

import time
from typing import Any

from engine.errors import PermanentError
from engine.triggers import MappingError
from integrations.kubernetes.client import Kube

# ownerReference kind -> API path prefix of a namespaced object of that kind
_PATHS = {
    "Pod": "/api/v1/namespaces/{ns}/pods/{name}",
    "ReplicaSet": "/apis/apps/v1/namespaces/{ns}/replicasets/{name}",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
    "StatefulSet": "/apis/apps/v1/namespaces/{ns}/statefulsets/{name}",
    "DaemonSet": "/apis/apps/v1/namespaces/{ns}/daemonsets/{name}",
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs/{name}",
    "CronJob": "/apis/batch/v1/namespaces/{ns}/cronjobs/{name}",
}
_MAX_HOPS = 3  # pod -> ReplicaSet -> Deployment is the longest chain the built-in controllers make


def _controller(obj: dict[str, Any]) -> tuple[str, str] | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("kind", "")), str(ref.get("name", ""))
    return None


class OwnerResolver:
    """`engine.triggers.OwnerLookup` over the Kubernetes API."""

    def __init__(self, kube: Kube, timeout: float = 3.0) -> None:
        self.kube = kube
        self.timeout = timeout

    def owner_of(self, namespace: str, name: str, kind: str, of: str = "Pod") -> str | None:
        """Follow controller references from the `of` object until one of `kind` (None: the chain ends first).

        Transient API errors propagate (the webhook answers 503); a missing start object is a MappingError.
        """
        view = self.kube.with_deadline(time.monotonic() + self.timeout)
        current = (of, name)
        for hop in range(_MAX_HOPS + 1):
            if current[0] == kind:
                return current[1]
            path = _PATHS.get(current[0])
            if path is None:
                return None
            try:
                obj = view.get_or_none(path.format(ns=namespace, name=current[1]))
            except PermanentError as exc:
                raise MappingError(f"cannot read {current[0]} {namespace}/{current[1]}: {exc}") from exc
            if obj is None:
                if hop == 0:
                    raise MappingError(f"{of} {namespace}/{name} does not exist (any more)")
                return None
            owner = _controller(obj)
            if owner is None:
                return None
            current = owner
        return None
