"""`k8s.pod.inspect`, `k8s.secret.exists`, `k8s.configmap.exists`: why pods do not run, in specifics.

The kubelet already knows ("secret \"billing-db\" not found", OOMKilled, exit 137); the inspection
decodes it, confirms a missing object is still missing (metadata only: Secret values are never
read) and attaches the redacted tail of the current and previous container logs.
"""

from __future__ import annotations

import difflib
from typing import Any

from engine.actions import ActionArgs, ActionContext, ActionKind, action
from engine.errors import NotFoundError, PermanentError
from engine.redaction import redact
from engine.verdict import Evidence
from integrations.kubernetes.base import KubeActions
from integrations.kubernetes.client import Kube
from integrations.kubernetes.objects import meta, path
from integrations.kubernetes.permissions import NS_PODS, NS_REFS, perm
from integrations.kubernetes.podstatus import CAUSE_ORDER, ContainerState, PodState, decode_pod
from integrations.kubernetes.report import Report, ev

D = ActionKind.DIAGNOSE

SEVERITY = {"unschedulable": "warning", "pending": "warning"}
LOGGED = ("oom_killed", "crash_loop", "exit_code")
MAX_LOGGED_PODS = 2


class PodInspectArgs(ActionArgs):
    namespace: str
    name: str | None = None
    selector: str | None = None
    tail_lines: int = 50
    max_pods: int = 5


class ObjectExistsArgs(ActionArgs):
    namespace: str
    name: str
    key: str | None = None


def analyze_pods(
    pods: list[dict[str, Any]],
    exists: dict[tuple[str, str, str], bool] | None = None,
    logs: dict[str, dict[str, str]] | None = None,
    max_pods: int = 5,
) -> Report:
    """Pure: decode pods, pick the worst, and write one finding per distinct problem (not per pod)."""
    states = sorted((decode_pod(p) for p in pods), key=lambda s: (CAUSE_ORDER.index(s.cause), s.name))
    exists, logs = exists or {}, logs or {}
    report = Report(_output(states, exists, logs, max_pods))
    groups: dict[str, list[PodState]] = {}
    for state in states:
        if state.cause != "healthy":
            groups.setdefault(state.summary, []).append(state)
    for same in groups.values():
        first = same[0]
        report.add(f"pod.{first.cause}", SEVERITY.get(first.cause, "critical"),  # type: ignore[arg-type]
                   _sentence(same, exists), _evidence(first, exists, logs.get(first.name, {})))
    if not report.findings:
        report.add("pod.healthy", "info",
                   f"{len(states)} pod(s) healthy: " + ", ".join(f"{s.name} {s.phase}" for s in states[:5])
                   if states else "no pod matched",
                   [ev(f"Pod {s.namespace}/{s.name}", "status.phase", s.phase) for s in states[:3]])
    return report


def _output(states: list[PodState], exists: dict[tuple[str, str, str], bool], logs: dict[str, dict[str, str]],
            max_pods: int) -> dict[str, Any]:
    if not states:
        return {"cause": "no_pods", "summary": "no pod matched", "pods_total": 0, "pods": [], "pod": None,
                "node": None, "container": None, **_container_output(None, exists), "logs": {}}
    worst = states[0]
    return {"cause": worst.cause, "summary": worst.summary, "pods_total": len(states),
            "pods": [s.as_dict() for s in states[:max_pods]], "pod": worst.name, "node": worst.node,
            "container": worst.worst.name if worst.worst else None, **_container_output(worst.worst, exists),
            "logs": logs.get(worst.name, {})}


def _container_output(c: ContainerState | None, exists: dict[tuple[str, str, str], bool]) -> dict[str, Any]:
    if c is None:
        return {"exit_code": None, "exit_meaning": None, "memory_limit": None, "image": None, "restarts": 0,
                "missing_object": None}
    m = c.missing
    missing = None if m is None else {"kind": m.kind, "namespace": m.namespace, "name": m.name, "key": m.key,
                                      "exists": exists.get((m.kind, m.namespace, m.name))}
    return {"exit_code": c.exit_code if c.exit_code is not None else c.last_exit_code,
            "exit_meaning": c.meaning or None, "memory_limit": c.memory_limit, "image": c.image,
            "restarts": c.restarts, "missing_object": missing}


def _sentence(same: list[PodState], exists: dict[tuple[str, str, str], bool]) -> str:
    state = same[0]
    names = ", ".join(s.name for s in same[:5]) + (f" and {len(same) - 5} more" if len(same) > 5 else "")
    who = f"pod {state.namespace}/{state.name}" if len(same) == 1 else \
        f"{len(same)} pods in {state.namespace} ({names})"
    text = f"{who}: {state.summary}"
    c = state.worst
    if c is not None and c.missing is not None:
        found = exists.get((c.missing.kind, c.missing.namespace, c.missing.name))
        if found is True and c.missing.key:
            text += f" ({c.missing.kind} exists but lacks key {c.missing.key})"
        elif found is True:
            text += " (it exists now: the pod will start on its next retry)"
        elif found is False:
            text += " (confirmed: still missing)"
    return text


def _evidence(state: PodState, exists: dict[tuple[str, str, str], bool], logs: dict[str, str]) -> list[Any]:
    obj = f"Pod {state.namespace}/{state.name}"
    c = state.worst
    if c is None:
        return [ev(obj, "status.conditions[PodScheduled]", state.scheduling_message or state.phase)]
    where = f"status.{'initContainerStatuses' if c.init else 'containerStatuses'}[{c.name}]"
    out = []
    if c.state == "waiting":
        out.append(ev(obj, f"{where}.state.waiting", f"{c.reason}: {c.message}" if c.message else c.reason))
    if c.state == "terminated" or c.last_reason:
        field = "state.terminated" if c.state == "terminated" else "lastState.terminated"
        reason = c.reason if c.state == "terminated" else c.last_reason
        out.append(ev(obj, f"{where}.{field}", f"{reason} ({c.meaning})"))
    if c.cause == "oom_killed":
        out.append(ev(obj, f"spec.containers[{c.name}].resources.limits.memory", c.memory_limit or "not set"))
    if c.missing is not None:
        found = exists.get((c.missing.kind, c.missing.namespace, c.missing.name))
        out.append(ev(f"{c.missing.kind} {c.missing.namespace}/{c.missing.name}", "metadata",
                      {True: "exists", False: "not found", None: "not checked"}[found]))
    for which, text in logs.items():
        out.append(ev(obj, f"log {c.name} ({which}, last lines)", "\n".join(text.strip().splitlines()[-5:])))
    return out


def object_exists(kube: Kube, kind: str, namespace: str, name: str) -> bool:
    resource = "secrets" if kind == "Secret" else "configmaps"
    return kube.get_metadata(path(resource, name, namespace)) is not None


def suggest_renamed(ctx: ActionContext, kube: Kube, missing: dict[str, Any] | None, finding: str) -> None:
    """A "missing" Secret or ConfigMap is often one that was renamed (billing-db-credentials ->
    billing-db-creds): name the look-alikes in its namespace, as `missing["similar"]` and a finding.
    Names only; values are never read."""
    if not missing or missing.get("exists") is not False:
        return
    kind, namespace, name = missing["kind"], missing["namespace"], missing["name"]
    resource = "secrets" if kind == "Secret" else "configmaps"
    similar = difflib.get_close_matches(name, kube.names(path(resource, namespace=namespace)), n=3, cutoff=0.6)
    missing["similar"] = similar
    if similar:
        ctx.finding(finding, "warning",
                    f"{kind} {namespace}/{', '.join(similar)} exists with a name like {name}; if it was renamed, "
                    f"point the workload at the new name (or recreate {name}) before re-running",
                    [Evidence(object=f"{kind} {namespace}/{other}", field="metadata.name", value=other)
                     for other in similar])


class PodActions(KubeActions):
    @action("k8s.pod.inspect", kind=D, args=PodInspectArgs, permissions=(*NS_PODS, *NS_REFS))
    def inspect(self, ctx: ActionContext, args: PodInspectArgs) -> dict[str, Any]:
        """Decode why pods do not run: waiting reasons, exit codes, OOM at which limit, missing objects, logs.

        Output: `cause` (healthy | missing_secret | missing_configmap | missing_key | config_error | image_pull |
        oom_killed | crash_loop | exit_code | unschedulable | pending | no_pods), `summary`, `pods_total`, `pods`
        (decoded, worst first), `pod`, `node`, `container`, `exit_code`, `exit_meaning`, `memory_limit`, `image`,
        `restarts`, `missing_object` {kind, namespace, name, key, exists, similar}, `logs` {current, previous}
        (redacted).
        Findings: `pod.<cause>` (critical; warning for unschedulable/pending), one per distinct problem (pods
        with the same problem share one finding);
        `pod.similar_object` (warning) naming look-alikes of a missing Secret/ConfigMap (renamed?);
        `pod.healthy` (info) when nothing is wrong.
        """
        if bool(args.name) == bool(args.selector):
            raise PermanentError("give exactly one of name or selector")
        kube = self.kube_for(ctx)
        if args.name:
            pods = [kube.get(path("pods", args.name, args.namespace))]
        else:
            pods = kube.list(path("pods", namespace=args.namespace), label_selector=args.selector)
        first = analyze_pods(pods, max_pods=args.max_pods)
        exists: dict[tuple[str, str, str], bool] = {}
        logs: dict[str, dict[str, str]] = {}
        logged = 0
        for row in first.output["pods"]:
            state = decode_pod(next(p for p in pods if meta(p).get("name") == row["name"]))
            c = state.worst
            if c is None:
                continue
            if c.missing is not None:
                key = (c.missing.kind, c.missing.namespace, c.missing.name)
                if key not in exists:
                    exists[key] = object_exists(kube, *key)
            elif c.cause in LOGGED and logged < MAX_LOGGED_PODS:
                logged += 1
                for which, previous in (("current", False), ("previous", True)):
                    text = kube.log(args.namespace, state.name, c.name, previous, args.tail_lines)
                    if text:
                        logs.setdefault(state.name, {})[which] = redact(text)
        output = analyze_pods(pods, exists, logs, args.max_pods).emit(ctx)
        suggest_renamed(ctx, kube, output.get("missing_object"), "pod.similar_object")
        return output

    @action("k8s.secret.exists", kind=D, args=ObjectExistsArgs, permissions=(perm("secrets", "get", ns=True),))
    def secret_exists(self, ctx: ActionContext, args: ObjectExistsArgs) -> dict[str, Any]:
        """Whether a Secret exists (metadata only; with `key`, whether the key is present, values never read).

        Output: `exists`, `key_present` (None unless `key` given), `created`. Findings: none.
        """
        return self._exists(ctx, "Secret", args)

    @action("k8s.configmap.exists", kind=D, args=ObjectExistsArgs,
            permissions=(perm("configmaps", "get", ns=True),))
    def configmap_exists(self, ctx: ActionContext, args: ObjectExistsArgs) -> dict[str, Any]:
        """Whether a ConfigMap exists (and has `key`). Output: `exists`, `key_present`, `created`."""
        return self._exists(ctx, "ConfigMap", args)

    def _exists(self, ctx: ActionContext, kind: str, args: ObjectExistsArgs) -> dict[str, Any]:
        kube = self.kube_for(ctx)
        resource = "secrets" if kind == "Secret" else "configmaps"
        key_present = None
        if args.key is None:
            obj = kube.get_metadata(path(resource, args.name, args.namespace))
        else:
            try:
                full = kube.get(path(resource, args.name, args.namespace))
            except NotFoundError:
                full = None
            # Only key names survive this line; the values are dropped before anything else sees them.
            keys = set((full or {}).get("data") or {}) | set((full or {}).get("binaryData") or {})
            obj = {"metadata": (full or {}).get("metadata", {})} if full is not None else None
            del full
            key_present = args.key in keys if obj is not None else None
        return {"exists": obj is not None, "key_present": key_present,
                "created": meta(obj).get("creationTimestamp") if obj else None}
