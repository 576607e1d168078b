"""Minimal controllers: they react to API writes made after the scenario was loaded, never to the loaded state.

A loaded scenario is served exactly as written (a crash-looping pod stays so, a budget's status stays as it
was photographed), so "nothing changed before an approval" keeps its meaning. Once something is written
through the API, the controllers a real cluster runs answer the way they would:

- garbage collector: an owner deleted in the foreground goes once its blocking dependents are gone;
- disruption controller: a budget's status follows its spec and its pods;
- Job controller: a new Job gets its pods; a deleting Job pod loses its tracking finalizer;
- ReplicaSet, StatefulSet and Deployment controllers: see `workloads.py`.

The work is done synchronously, right after each API request, by replaying the store's watch log since the
last request: by the time a DELETE answers, the StatefulSet pod is back. Bounded by `MAX_ROUNDS`.
"""

from __future__ import annotations

from .crds import established_status, register_crd
from .disruption import Disruption
from .lifecycle import Lifecycle
from .objects import meta
from .resources import ResourceTable
from .scenario import ScenarioError
from .store import Store, WatchEvent
from .workloads import Workloads

MAX_ROUNDS = 50
CRDS = "customresourcedefinitions.apiextensions.k8s.io"
JOB_TRACKING = "batch.kubernetes.io/job-tracking"


class Controllers:
    """Replays store changes since the last call and runs the controllers they concern."""

    def __init__(self, store: Store, table: ResourceTable, lifecycle: Lifecycle, workloads: Workloads) -> None:
        self.store = store
        self.table = table
        self.lifecycle = lifecycle
        self.disruption = Disruption(store, table)
        self.workloads = workloads
        self._seen = store.resource_version

    def skip_loaded(self) -> None:
        """Loaded objects are not changes: start after them."""
        with self.store.lock:
            self._seen = self.store.resource_version

    def settle(self) -> None:
        with self.store.lock:
            for _ in range(MAX_ROUNDS):
                events = self.store.changes_after(self._seen)
                if not events:
                    return
                self._seen = events[-1].rv
                namespaces: set[str] = set()
                for ev in events:
                    self._react(ev)
                    if ev.rkey in ("pods", "poddisruptionbudgets.policy") and ev.namespace:
                        namespaces.add(ev.namespace)
                for ns in sorted(namespaces):
                    self.disruption.sync_namespace(ns)

    def _react(self, ev: WatchEvent) -> None:
        if ev.type == "DELETED":
            self._release_owners(ev.obj)
        if ev.rkey == "pods":
            if ev.type != "DELETED" and meta(ev.obj).get("deletionTimestamp"):
                self._drop_job_tracking(ev.obj)
            self.workloads.pod_changed(ev.type, ev.obj)
        elif ev.rkey in self.workloads.OWNERS and ev.type != "DELETED":
            self.workloads.owner_changed(ev.rkey, ev.obj)
        elif ev.rkey == CRDS and ev.type != "DELETED":
            self._establish(ev.obj)

    def _establish(self, crd: dict) -> None:
        """A CRD written through the API is served from then on, and says so in its conditions."""
        try:
            register_crd(self.table, crd)
        except ScenarioError:
            return
        conditions = (crd.get("status") or {}).get("conditions") or []
        if not any(c.get("type") == "Established" for c in conditions):
            rt = self.table.lookup(CRDS)
            self.store.put(rt, {**crd, "status": established_status(crd)})

    def _release_owners(self, obj: dict) -> None:
        """garbagecollector.go attemptToDeleteItem: a gone dependent may release an owner deleted in the
        foreground."""
        for ref in meta(obj).get("ownerReferences") or []:
            found = self.store.by_uid(str(ref.get("uid", "")))
            if found is None:
                continue
            rt = self.table.lookup(found[0])
            self.lifecycle.release_foreground(rt, self.store.get(rt, found[1], found[2]))

    def _drop_job_tracking(self, pod: dict) -> None:
        """pkg/controller/job/job_controller.go trackJobStatusAndRemoveFinalizers: the Job controller removes
        its tracking finalizer from a terminating pod once it has counted it, so the pod can go."""
        m = meta(pod)
        if JOB_TRACKING not in (m.get("finalizers") or []):
            return
        pods = self.table.lookup("pods")
        rest = [f for f in m["finalizers"] if f != JOB_TRACKING]
        new_meta = {**m, "finalizers": rest}
        if not rest:
            del new_meta["finalizers"]
        stored = self.store.put(pods, {**pod, "metadata": new_meta})
        self.lifecycle.complete_if_released(pods, stored)
