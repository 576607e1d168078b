"""PodDisruptionBudgets: the eviction check as the API server does it, and the controller that keeps
their status.

The eviction endpoint never counts pods itself: it trusts the budget's `status`, which the disruption
controller writes. So a budget whose status was not yet recomputed after a spec change refuses with
429 + `Retry-After: 10`, and a scenario's written status is what decides an eviction.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import ApiError, too_many_requests
from .objects import format_time, meta, pod_ready, utcnow
from .resources import ResourceTable
from .selectors import LabelSelector, SelectorError
from .store import Store

TWO_BUDGETS = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
EVICTION_REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."
_SCALABLE = {"ReplicaSet": "replicasets.apps", "StatefulSet": "statefulsets.apps",
             "ReplicationController": "replicationcontrollers"}


def _selector(pdb: dict) -> LabelSelector | None:
    """The budget's selector; None when it is missing, empty or invalid (such a budget covers nothing:
    eviction.go getPodDisruptionBudgets skips `selector.Empty()` and unparsable selectors)."""
    spec = pdb.get("spec") or {}
    if not spec.get("selector"):
        return None
    try:
        sel = LabelSelector.from_spec(spec["selector"])
    except SelectorError:
        return None
    return None if sel.empty else sel


class Disruption:
    """Eviction checks against budgets, and their status as pkg/controller/disruption computes it."""

    def __init__(self, store: Store, table: ResourceTable) -> None:
        self.store = store
        self.table = table
        self.pdbs = table.lookup("poddisruptionbudgets.policy")
        self.pods = table.lookup("pods")

    def budgets_for(self, pod: dict) -> list[dict]:
        labels = meta(pod).get("labels") or {}
        found = []
        for pdb in self.store.list(self.pdbs, meta(pod).get("namespace", ""))[0]:
            sel = _selector(pdb)
            if sel is not None and sel.matches(labels):
                found.append(pdb)
        return found

    # -- eviction ----------------------------------------------------------------------------
    def check_eviction(self, pod: dict, dry_run: bool) -> dict[str, Any] | None:
        """Raise the eviction API's error if `pod` may not go now. Returns a Failure `Status` to send
        with 201 when two budgets cover the pod (the real server answers so, and deletes nothing).

        Mirrors pkg/registry/core/pod/storage/eviction.go `EvictionREST.Create`, `canIgnorePDB` and
        `checkAndDecrement`: terminal, Pending or already-deleting pods skip budgets; an unready pod may go
        when the budget is healthy (or its policy is AlwaysAllow); otherwise the status decides."""
        phase = (pod.get("status") or {}).get("phase")
        if meta(pod).get("deletionTimestamp") or phase in ("Succeeded", "Failed", "Pending"):
            return None
        budgets = self.budgets_for(pod)
        if len(budgets) > 1:
            return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": TWO_BUDGETS, "code": 500}
        if not budgets:
            return None
        pdb = budgets[0]
        status = pdb.get("status") or {}
        current, desired = int(status.get("currentHealthy") or 0), int(status.get("desiredHealthy") or 0)
        if not pod_ready(pod):
            policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
            if policy == "AlwaysAllow" or (current >= desired and desired > 0):
                return None
        self._check_and_decrement(pdb, meta(pod)["name"], dry_run)
        return None

    def _check_and_decrement(self, pdb: dict, pod_name: str, dry_run: bool) -> None:
        m, status = meta(pdb), dict(pdb.get("status") or {})
        name = m.get("name", "")
        if int(status.get("observedGeneration") or 0) < int(m.get("generation") or 0):
            raise _refusal(f"The disruption budget {name} is still being processed by the server.", 10)
        allowed = int(status.get("disruptionsAllowed") or 0)
        if allowed < 0:
            raise ApiError(403, "Forbidden", f'poddisruptionbudget.policy "{name}" is forbidden: '
                           "pdb disruptions allowed is negative",
                           {"name": name, "group": "policy", "kind": "poddisruptionbudget"})
        if allowed == 0:
            raise _refusal(f"The disruption budget {name} needs {status.get('desiredHealthy', 0)} healthy pods "
                           f"and has {status.get('currentHealthy', 0)} currently", None)
        if dry_run:
            return
        status["disruptionsAllowed"] = allowed - 1
        status["disruptedPods"] = {**(status.get("disruptedPods") or {}), pod_name: format_time(utcnow())}
        self.store.put(self.pdbs, {**pdb, "status": status})

    # -- the disruption controller -----------------------------------------------------------
    def sync_namespace(self, namespace: str) -> None:
        """Recompute every budget's status in `namespace` (after a write to a budget or a pod there)."""
        for pdb in self.store.list(self.pdbs, namespace)[0]:
            status = self.status_for(pdb)
            if status != pdb.get("status"):
                self.store.put(self.pdbs, {**pdb, "status": status})

    def status_for(self, pdb: dict) -> dict[str, Any]:
        """pkg/controller/disruption/disruption.go `trySync`: getExpectedPodCount, countHealthyPods,
        then disruptionsAllowed = currentHealthy - desiredHealthy (never below 0)."""
        old = dict(pdb.get("status") or {})
        sel = _selector(pdb)
        pods = self.store.list(self.pods, meta(pdb).get("namespace", ""), labels=sel)[0] if sel else []
        live = {meta(p)["name"] for p in pods if not meta(p).get("deletionTimestamp")}
        disrupted = {k: v for k, v in (old.get("disruptedPods") or {}).items() if k in live}
        healthy = sum(1 for p in pods if pod_ready(p) and meta(p)["name"] not in disrupted)
        expected, desired = self._expected(pdb, pods)
        allowed = max(healthy - desired, 0) if expected > 0 else 0
        status: dict[str, Any] = {
            "observedGeneration": int(meta(pdb).get("generation") or 0),
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
        }
        if disrupted:
            status["disruptedPods"] = disrupted
        reason = "SufficientPods" if allowed > 0 else "InsufficientPods"
        conds = [c for c in old.get("conditions") or [] if c.get("type") != "DisruptionAllowed"]
        prev = next((c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
        cond = {"type": "DisruptionAllowed", "status": "True" if allowed > 0 else "False", "reason": reason,
                "message": "", "observedGeneration": status["observedGeneration"],
                "lastTransitionTime": format_time(utcnow())}
        if prev and prev.get("status") == cond["status"]:
            cond["lastTransitionTime"] = prev.get("lastTransitionTime", cond["lastTransitionTime"])
        status["conditions"] = [*conds, cond]
        return status

    def _expected(self, pdb: dict, pods: list[dict]) -> tuple[int, int]:
        """(expectedPods, desiredHealthy) as disruption.go `getExpectedPodCount`: an integer minAvailable
        counts pods; percentages and maxUnavailable count the owning controllers' replicas."""
        spec = pdb.get("spec") or {}
        if spec.get("maxUnavailable") is not None:
            expected = self._scale(pods)
            return expected, max(expected - _scaled(spec["maxUnavailable"], expected), 0)
        min_available = spec.get("minAvailable")
        if isinstance(min_available, int):
            return len(pods), min_available
        if min_available is not None:
            expected = self._scale(pods)
            return expected, _scaled(min_available, expected)
        return len(pods), 0

    def _scale(self, pods: list[dict]) -> int:
        """Sum of `spec.replicas` of the distinct controllers owning `pods` (disruption.go getExpectedScale);
        a pod without a scalable controller counts as one."""
        owners: dict[str, int] = {}
        loose = 0
        for pod in pods:
            ref = next((r for r in meta(pod).get("ownerReferences") or [] if r.get("controller")), None)
            rkey = _SCALABLE.get(str((ref or {}).get("kind")))
            if ref is None or rkey is None:
                loose += 1
                continue
            if ref.get("uid") in owners:
                continue
            owner = self.store.get(self.table.lookup(rkey), meta(pod).get("namespace"), str(ref.get("name")))
            owners[str(ref.get("uid"))] = int(((owner or {}).get("spec") or {}).get("replicas", 1) or 0)
        return sum(owners.values()) + loose


def _refusal(cause: str, retry_after: int | None) -> ApiError:
    err = too_many_requests(EVICTION_REFUSED, retry_after)
    details = dict(err.details or {})
    details["causes"] = [{"reason": "DisruptionBudget", "message": cause}]
    err.details = details
    return err


def _scaled(value: Any, total: int) -> int:
    """intstr.GetScaledValueFromIntOrPercent with roundUp=true."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)
