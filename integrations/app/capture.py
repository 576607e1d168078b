"""`runbook scenario capture`: record a namespace of a real cluster as a scenario the simulator serves as it was.

A team can then rehearse a real incident offline. What is written: the objects (status included) of the
namespace, or of the named objects and what they own or select; the nodes their pods run on, with their
Leases; recent events about any of them; container log tails as the simulator's log annotations. What is
not: Secret values (Secrets are captured as metadata only), managedFields, resourceVersions. Everything
else passes through the same redaction as all outside data (env values, container arguments, ConfigMap data,
tokens in logs), so a captured scenario can be committed and shared.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from engine.redaction import redact, redact_data
from integrations.kubernetes.client import Kube

LOG = "kubesim.runbook.dev/log"
PREVIOUS_LOG = "kubesim.runbook.dev/previous-log"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# (kind, apiVersion, collection path under /api/v1 or /apis/{group}/{version}, short names)
NAMESPACED: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("Deployment", "apps/v1", "deployments", ("deploy", "deployment", "deployments")),
    ("ReplicaSet", "apps/v1", "replicasets", ("rs", "replicaset", "replicasets")),
    ("StatefulSet", "apps/v1", "statefulsets", ("sts", "statefulset", "statefulsets")),
    ("DaemonSet", "apps/v1", "daemonsets", ("ds", "daemonset", "daemonsets")),
    ("CronJob", "batch/v1", "cronjobs", ("cj", "cronjob", "cronjobs")),
    ("Job", "batch/v1", "jobs", ("job", "jobs")),
    ("Pod", "v1", "pods", ("po", "pod", "pods")),
    ("Service", "v1", "services", ("svc", "service", "services")),
    ("ConfigMap", "v1", "configmaps", ("cm", "configmap", "configmaps")),
    ("PersistentVolumeClaim", "v1", "persistentvolumeclaims", ("pvc", "persistentvolumeclaim")),
    ("PodDisruptionBudget", "policy/v1", "poddisruptionbudgets", ("pdb", "poddisruptionbudget")),
    ("HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers", ("hpa", "horizontalpodautoscaler")),
    ("ServiceAccount", "v1", "serviceaccounts", ("sa", "serviceaccount", "serviceaccounts")),
)
SECRET_WORDS = ("secret", "secrets")


class CaptureError(ValueError):
    """A target that names no known kind, or that does not exist."""


def _collection(api_version: str, plural: str, namespace: str | None) -> str:
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _clean(obj: dict[str, Any], kind: str, api_version: str) -> dict[str, Any]:
    """Lists leave out kind/apiVersion; managedFields and resourceVersion mean nothing offline."""
    meta = {k: v for k, v in _meta(obj).items() if k not in ("managedFields", "resourceVersion", "selfLink")}
    rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **rest}


def _matches(selector: Any, labels: dict[str, str]) -> bool:
    """matchLabels and the common matchExpressions; an empty or missing selector selects nothing here."""
    if not isinstance(selector, dict) or not selector:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values) or (
                op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))


@dataclass
class Capture:
    """One capture: what was found, keyed by (kind, namespace, name)."""

    kube: Kube
    namespace: str
    tail_lines: int = 50
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    def run(self, targets: Iterable[str] = ()) -> list[dict[str, Any]]:
        everything = self._namespace_objects()
        wanted = list(targets)
        chosen = everything if not wanted else self._related(everything, [self._target(everything, t) for t in wanted])
        secrets = self._secrets([t for t in wanted if t.split("/")[0].lower() in SECRET_WORDS] if wanted else None)
        objects = [*chosen, *secrets]
        pods = [o for o in objects if o["kind"] == "Pod"]
        nodes = self._nodes(pods)
        objects = [*nodes, *self._leases(nodes), *objects]
        objects += self._events(objects)
        return [self._with_logs(o) if o["kind"] == "Pod" else o for o in objects]

    # -- what to take ------------------------------------------------------------------------
    def _namespace_objects(self) -> list[dict[str, Any]]:
        found = []
        for kind, api_version, plural, _ in NAMESPACED:
            for item in self.kube.list(_collection(api_version, plural, self.namespace)):
                found.append(redact_data(_clean(item, kind, api_version)))
        return found

    def _target(self, everything: list[dict[str, Any]], target: str) -> dict[str, Any]:
        word, _, name = target.partition("/")
        if word.lower() in SECRET_WORDS:
            return {}
        kind = next((k for k, _, plural, names in NAMESPACED
                     if word.lower() in (*names, plural, k.lower())), None)
        if kind is None or not name:
            raise CaptureError(f"{target}: expected KIND/NAME with a kind of {', '.join(k for k, *_ in NAMESPACED)}")
        obj = next((o for o in everything if o["kind"] == kind and _meta(o).get("name") == name), None)
        if obj is None:
            raise CaptureError(f"{target}: not found in namespace {self.namespace}")
        return obj

    def _related(self, everything: list[dict[str, Any]], roots: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The targets, what they own (transitively), what owns them, what their selectors select, and the
        budgets, autoscalers and claims that concern those pods."""
        by_uid = {_meta(o).get("uid"): o for o in everything}
        chosen = {id(o): o for o in roots if o}
        changed = True
        while changed:
            uids = {_meta(o).get("uid") for o in chosen.values()}
            found = [o for o in everything if id(o) not in chosen and self._linked(o, chosen.values(), uids, by_uid)]
            chosen.update((id(o), o) for o in found)
            changed = bool(found)
        return [o for o in everything if id(o) in chosen]

    def _linked(self, obj: dict[str, Any], chosen: Iterable[dict[str, Any]], uids: set[Any],
                by_uid: dict[Any, Any]) -> bool:
        """Whether `obj` belongs with the chosen objects: owned by one, owning one, selected, or concerning."""
        chosen = list(chosen)
        owners = {r.get("uid") for r in _meta(obj).get("ownerReferences") or []}
        if owners & uids:
            return True
        uid = _meta(obj).get("uid")
        if any(r.get("uid") == uid for o in chosen for r in _meta(o).get("ownerReferences") or []):
            return True
        if obj["kind"] == "Pod" and any(_matches((o.get("spec") or {}).get("selector"), _meta(obj).get("labels") or {})
                                        for o in chosen if o["kind"] != "Service"):
            return True
        return self._concerns(obj, chosen, by_uid)

    @staticmethod
    def _concerns(obj: dict[str, Any], chosen: Iterable[dict[str, Any]], by_uid: dict[Any, Any]) -> bool:
        pods = [o for o in chosen if o["kind"] == "Pod"]
        if obj["kind"] == "PodDisruptionBudget":
            return any(_matches((obj.get("spec") or {}).get("selector"), _meta(p).get("labels") or {}) for p in pods)
        if obj["kind"] == "PersistentVolumeClaim":
            claims = {(v.get("persistentVolumeClaim") or {}).get("claimName")
                      for p in pods for v in (p.get("spec") or {}).get("volumes") or []}
            return _meta(obj).get("name") in claims
        if obj["kind"] == "HorizontalPodAutoscaler":
            ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
            return any(o["kind"] == ref.get("kind") and _meta(o).get("name") == ref.get("name") for o in chosen)
        return False

    def _secrets(self, targets: list[str] | None) -> list[dict[str, Any]]:
        """Secrets as metadata only: asked for without values, and any value sent anyway dropped."""
        path = _collection("v1", "secrets", self.namespace)
        names = self.kube.names(path) if targets is None else [t.partition("/")[2] for t in targets]
        found = []
        for name in names:
            secret = self.kube.get_metadata(f"{path}/{name}")
            if secret is not None:
                meta = {k: v for k, v in _meta(secret).items() if k not in ("managedFields", "resourceVersion")}
                (meta.get("annotations") or {}).pop(LAST_APPLIED, None)
                found.append({"apiVersion": "v1", "kind": "Secret", "metadata": redact_data(meta)})
        return found

    def _nodes(self, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = sorted({str((p.get("spec") or {}).get("nodeName") or "") for p in pods} - {""})
        found = []
        for name in names:
            node = self.kube.get_or_none(f"/api/v1/nodes/{name}")
            if node is not None:
                found.append(redact_data(_clean(node, "Node", "v1")))
        return found

    def _leases(self, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = []
        for node in nodes:
            lease = self.kube.get_or_none(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/"
                                          f"{_meta(node).get('name')}")
            if lease is not None:
                found.append(_clean(lease, "Lease", "coordination.k8s.io/v1"))
        return found

    def _events(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        uids = {_meta(o).get("uid") for o in objects}
        names = {(o["kind"], _meta(o).get("name")) for o in objects}
        found = []
        for ns in sorted({self.namespace, "default"}):
            for event in self.kube.list(_collection("v1", "events", ns)):
                involved = event.get("involvedObject") or {}
                if involved.get("uid") in uids or (involved.get("kind"), involved.get("name")) in names:
                    found.append(redact_data(_clean(event, "Event", "v1")))
        return found

    def _with_logs(self, pod: dict[str, Any]) -> dict[str, Any]:
        """Log tails as the simulator's annotations: `kubesim.runbook.dev/log.<container>` (and previous-log)."""
        meta = _meta(pod)
        annotations = dict(meta.get("annotations") or {})
        statuses = {s.get("name"): s for s in (pod.get("status") or {}).get("containerStatuses") or []}
        for container in (pod.get("spec") or {}).get("containers") or []:
            name = container.get("name", "")
            text = self.kube.log(self.namespace, meta["name"], name, tail_lines=self.tail_lines)
            if text:
                annotations[f"{LOG}.{name}"] = redact(text)
            if int((statuses.get(name) or {}).get("restartCount") or 0) > 0:
                previous = self.kube.log(self.namespace, meta["name"], name, previous=True,
                                         tail_lines=self.tail_lines)
                if previous:
                    annotations[f"{PREVIOUS_LOG}.{name}"] = redact(previous)
        return {**pod, "metadata": {**meta, "annotations": annotations}} if annotations else pod


def render(objects: list[dict[str, Any]], now: datetime, source: str) -> str:
    """The scenario text: a `# kubesim-now:` header (the server's clock at capture), then one document each."""
    header = (f"# kubesim-now: {now.strftime('%Y-%m-%dT%H:%M:%SZ')}\n"
              f"# Captured by `runbook scenario capture` from {source}; Secrets as metadata only, values redacted.\n")
    docs = [yaml.safe_dump(o, sort_keys=False, default_flow_style=False, allow_unicode=True) for o in objects]
    return header + "---\n" + "---\n".join(docs)
