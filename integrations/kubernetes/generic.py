"""Read any object: `k8s.get`, `k8s.list`, `k8s.pod.logs`, `k8s.wait`.

These let a runbook look at whatever its incident involves (an HPA, a PVC, a custom resource) without
new Python. Secrets are only ever read as metadata (their values never leave the API server), and log
text is redacted before it is stored or posted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from engine.actions import ActionArgs, ActionContext, ActionKind, ArgumentProblem, Permission, action
from engine.errors import PermanentError
from engine.model import Duration
from engine.redaction import redact
from engine.verdict import Severity
from integrations.kubernetes.base import KubeActions
from integrations.kubernetes.change import clean
from integrations.kubernetes.client import METADATA_LIST, Kube
from integrations.kubernetes.kinds import KindRef, KindResolver, kind_permits, one_namespace
from integrations.kubernetes.objects import condition, meta, path
from integrations.kubernetes.report import ev

D = ActionKind.DIAGNOSE
_STRIP = ("data", "stringData")


class GetArgs(ActionArgs):
    kind: str = Field(description="A built-in kind (Deployment) or plural.group (widgets.example.com).")
    name: str
    namespace: str | None = Field(default=None, description="Omit for cluster-scoped kinds.")
    api_version: str | None = None
    finding_when_absent: Severity | None = Field(
        default=None, description="Report a finding of this severity when the object does not exist.")


class ListArgs(ActionArgs):
    kind: str
    namespace: str | None = Field(default=None, description="Omit or '*' for all namespaces.")
    label_selector: str | None = None
    field_selector: str | None = None
    limit: int = Field(default=500, ge=1, le=5000)
    api_version: str | None = None


class LogsArgs(ActionArgs):
    namespace: str
    pod: str
    container: str | None = None
    previous: bool = False
    tail_lines: int = Field(default=50, ge=1, le=5000)
    since: Duration | None = None
    limit_bytes: int = Field(default=64 * 1024, ge=1, le=1024 * 1024)


class WaitArgs(ActionArgs):
    kind: str
    name: str
    namespace: str | None = None
    condition: str = Field(description="rollout_complete, a status condition type (Ready, Available) or absent.")
    timeout: Duration = 60.0
    api_version: str | None = None


def _secret_listing_permits(arguments: Mapping[str, Any]) -> tuple[Permission, ...]:
    permissions = kind_permits("list")(arguments)
    if permissions and permissions[0].resource == "secrets" and not one_namespace(arguments):
        raise ArgumentProblem("namespace", "Secrets are listed only within one namespace (as metadata)")
    return permissions


def _is_secret(ref: KindRef) -> bool:
    return ref.plural == "secrets" and not ref.group


def shown(ref: KindRef, obj: dict[str, Any]) -> dict[str, Any]:
    """The object as outputs carry it: without managedFields, and a Secret without any value."""
    return {k: v for k, v in clean(obj).items() if not (_is_secret(ref) and k in _STRIP)}


def rollout_complete(obj: Mapping[str, Any]) -> bool:
    """As `kubectl rollout status`: the controller saw the latest spec and every replica is updated and
    available (Deployment), current (StatefulSet) or scheduled and available (DaemonSet)."""
    spec, status, metadata = obj.get("spec") or {}, obj.get("status") or {}, meta(obj)
    if int(status.get("observedGeneration") or 0) < int(metadata.get("generation") or 0):
        return False
    kind = obj.get("kind")
    if kind == "DaemonSet":
        desired = int(status.get("desiredNumberScheduled") or 0)
        return int(status.get("updatedNumberScheduled") or 0) >= desired and \
            int(status.get("numberAvailable") or 0) >= desired
    wanted = int(spec.get("replicas", 1))
    if kind == "StatefulSet":
        return status.get("updateRevision") == status.get("currentRevision") and \
            int(status.get("readyReplicas") or 0) >= wanted
    updated = int(status.get("updatedReplicas") or 0)
    return updated >= wanted and int(status.get("replicas") or 0) <= updated and \
        int(status.get("availableReplicas") or 0) >= updated


def condition_met(obj: Mapping[str, Any] | None, wanted: str) -> bool:
    if wanted == "absent":
        return obj is None
    if obj is None:
        return False
    if wanted == "rollout_complete":
        return rollout_complete(obj)
    return (condition(dict(obj), wanted) or {}).get("status") == "True"


class GenericReads(KubeActions):
    def _ref(self, kube: Kube, kind: str, api_version: str | None) -> KindRef:
        return KindResolver(kube).resolve(kind, api_version)

    @action("k8s.get", kind=D, args=GetArgs, permits=kind_permits("get"), permits_doc="<kind>:get")
    def get(self, ctx: ActionContext, args: GetArgs) -> dict[str, Any]:
        """Read one object of any kind (Secrets as metadata only). Output: `object`, `found`.

        Absent is an answer (`found: false`), not an error; `finding_when_absent` turns it into a finding.
        """
        kube = self.kube_for(ctx)
        ref = self._ref(kube, args.kind, args.api_version)
        api_path = ref.path(args.name, args.namespace)
        obj = kube.get_metadata(api_path) if _is_secret(ref) else kube.get_or_none(api_path)
        target = ref.describe(args.name, args.namespace)
        if obj is None and args.finding_when_absent:
            ctx.finding(f"{ref.plural}.absent", args.finding_when_absent, f"{target} does not exist",
                        [ev(target, "metadata.name", None)])
        return {"found": obj is not None, "object": shown(ref, obj) if obj is not None else None}

    @action("k8s.list", kind=D, args=ListArgs, permits=_secret_listing_permits, permits_doc="<kind>:list")
    def list(self, ctx: ActionContext, args: ListArgs) -> dict[str, Any]:
        """List objects of any kind in one namespace or all (Secrets: one namespace, metadata only).

        Output: `items`, `count`, `truncated` (more than `limit` matched).
        """
        kube = self.kube_for(ctx)
        ref = self._ref(kube, args.kind, args.api_version)
        namespace = args.namespace if args.namespace not in (None, "", "*") else None
        api_path = ref.path(None, namespace)
        if _is_secret(ref):
            if namespace is None:
                raise PermanentError("Secrets are listed only within one namespace (as metadata)")
            params = {"limit": args.limit + 1, "labelSelector": args.label_selector,
                      "fieldSelector": args.field_selector}
            items = kube.request("GET", api_path, params, accept=METADATA_LIST).json().get("items") or []
        else:
            items = kube.list(api_path, args.label_selector, args.field_selector, args.limit + 1)
        truncated = len(items) > args.limit
        items = [shown(ref, i) for i in items[:args.limit]]
        return {"items": items, "count": len(items), "truncated": truncated}

    @action("k8s.pod.logs", kind=D, args=LogsArgs,
            permissions=(Permission("pods", "get", "", "log", True),))
    def logs(self, ctx: ActionContext, args: LogsArgs) -> dict[str, Any]:
        """A container's log tail, redacted before it is stored or posted. Output: `text`, `lines`.

        `previous` reads the last terminated instance (the crash itself); none is an empty answer.
        """
        kube = self.kube_for(ctx)
        params = {"container": args.container, "previous": "true" if args.previous else None,
                  "tailLines": args.tail_lines, "limitBytes": args.limit_bytes,
                  "sinceSeconds": int(args.since) if args.since else None}
        response = kube.request("GET", path("pods", args.pod, args.namespace, "log"), params,
                                accept="text/plain", allow=(400,))
        text = "" if response.status == 400 else redact(response.data.decode("utf-8", errors="replace"))
        return {"text": text, "lines": text.splitlines()}

    @action("k8s.wait", kind=D, args=WaitArgs, permits=kind_permits("get"), permits_doc="<kind>:get")
    def wait(self, ctx: ActionContext, args: WaitArgs) -> dict[str, Any]:
        """Wait until an object meets a condition: `rollout_complete`, a status condition type that must be
        True (`Ready`, `Available`), or `absent`. For verification after a change.

        Output: `met`, `waited_seconds`, `object`. The wait ends at `timeout` or the step's own timeout.
        """
        kube = self.kube_for(ctx)
        ref = self._ref(kube, args.kind, args.api_version)
        api_path = ref.path(args.name, args.namespace)
        started = time.monotonic()
        give_up = started + min(args.timeout, max(0.0, ctx.remaining() - 1.0))
        while True:
            obj = kube.get_or_none(api_path)
            met = condition_met(obj, args.condition)
            if met or time.monotonic() + 1.0 > give_up:
                break
            time.sleep(min(1.0, max(0.0, give_up - time.monotonic())))
        waited = round(time.monotonic() - started, 3)
        target = ref.describe(args.name, args.namespace)
        if not met:
            ctx.finding("wait.not_met", "warning", f"{target}: {args.condition} not met after {waited:g}s",
                        [ev(target, args.condition, False)])
        return {"met": met, "waited_seconds": waited, "object": shown(ref, obj) if obj else None}

