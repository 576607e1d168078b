"""Subresources that are more than a view of the object: log, eviction, binding, scale,
and the authorization.k8s.io access reviews."""

from __future__ import annotations

from typing import Any

from .disruption import Disruption
from .errors import ApiError, bad_request, method_not_allowed, not_found, success_status
from .lifecycle import DeleteOptions, Lifecycle
from .objects import meta
from .patch import PatchError, apply_patch
from .protobuf import ProtobufError, decode_access_review
from .rbac import Attributes, Authorizer
from .request import ApiRequest, ApiResponse, Target, UserInfo
from .resources import ResourceTable, ResourceType
from .store import Store
from .writes import Writer

LOG_ANNOTATION = "kubesim.runbook.dev/log"
PREVIOUS_LOG_ANNOTATION = "kubesim.runbook.dev/previous-log"


class Subresources:
    def __init__(
        self,
        store: Store,
        table: ResourceTable,
        lifecycle: Lifecycle,
        writer: Writer,
        authorizer: Authorizer,
        disruption: Disruption,
    ) -> None:
        self.disruption = disruption
        self.store = store
        self.table = table
        self.lifecycle = lifecycle
        self.writer = writer
        self.authorizer = authorizer

    def handle(self, req: ApiRequest, target: Target, rt: ResourceType, verb: str) -> ApiResponse:
        sub, name, ns = target.subresource, target.name or "", target.namespace
        obj = self.store.get(rt, ns, name)
        if obj is None:
            raise not_found(rt, name)
        if sub == "log" and verb == "get":
            return self.log(req, obj)
        if sub == "eviction" and verb == "create":
            return self.evict(req, rt, obj)
        if sub == "binding" and verb == "create":
            return self.bind(req, rt, obj)
        if sub == "scale" and verb == "get":
            return ApiResponse.json(200, self._scale(rt, obj))
        if sub == "scale" and verb in ("update", "patch"):
            return self.rescale(req, rt, obj, verb)
        raise method_not_allowed()

    # -- pods/log ----------------------------------------------------------------------------
    def log(self, req: ApiRequest, pod: dict) -> ApiResponse:
        m = meta(pod)
        containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
        container = req.param("container") or ""
        if not container:
            if len(containers) > 1:
                raise bad_request(
                    f"a container name must be specified for pod {m['name']}, choose one of: "
                    f"[{' '.join(containers)}]"
                )
            container = containers[0] if containers else ""
        init = [c.get("name", "") for c in (pod.get("spec") or {}).get("initContainers") or []]
        if container not in containers and container not in init:
            raise bad_request(f"container {container} is not valid for pod {m['name']}")
        previous = (req.param("previous") or "").lower() in ("true", "1")
        base = PREVIOUS_LOG_ANNOTATION if previous else LOG_ANNOTATION
        annotations = m.get("annotations") or {}
        text = annotations.get(f"{base}.{container}")
        if text is None:
            text = annotations.get(base)
        if text is None:
            if previous:
                raise bad_request(
                    f'previous terminated container "{container}" in pod "{m["name"]}" not found'
                )
            text = ""
        tail = req.int_param("tailLines", -1)
        if tail >= 0:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-tail:]) if tail > 0 else ""
        data = text.encode()
        limit = req.int_param("limitBytes")
        if limit > 0:
            data = data[:limit]
        return ApiResponse(200, data, "text/plain")

    # -- pods/eviction -----------------------------------------------------------------------
    def evict(self, req: ApiRequest, rt: ResourceType, pod: dict) -> ApiResponse:
        body = req.json_body()
        if not isinstance(body, dict) or body.get("kind") not in (None, "Eviction"):
            raise bad_request("expected an Eviction object")
        m = meta(pod)
        name = (body.get("metadata") or {}).get("name")
        if name and name != m["name"]:
            raise bad_request("name in URL does not match name in Eviction object")
        opts = DeleteOptions.from_request(body.get("deleteOptions") or {}, {})
        opts.dry_run = opts.dry_run or req.dry_run
        with self.store.lock:
            failure = self.disruption.check_eviction(pod, opts.dry_run)
            if failure is not None:  # two budgets: 201 with a Failure Status, nothing deleted (eviction.go)
                return ApiResponse.json(201, failure)
            try:
                self.lifecycle.delete(rt, m.get("namespace"), m["name"], opts)
            except KeyError as exc:
                raise not_found(rt, m["name"]) from exc
        return ApiResponse.json(201, success_status(201))

    # -- pods/binding ------------------------------------------------------------------------
    def bind(self, req: ApiRequest, rt: ResourceType, pod: dict) -> ApiResponse:
        body = req.json_body()
        node = ((body or {}).get("target") or {}).get("name")
        if not node:
            raise bad_request("a Binding must name a target node")
        if (pod.get("spec") or {}).get("nodeName"):
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on pods/binding "{meta(pod)["name"]}":'
                f" pod {meta(pod)['name']} is already assigned to node "
                f'"{pod["spec"]["nodeName"]}"',
                {"name": meta(pod)["name"], "kind": "pods/binding"},
            )
        if not req.dry_run:
            self.store.put(rt, {**pod, "spec": {**(pod.get("spec") or {}), "nodeName": node}})
        return ApiResponse.json(201, success_status(201))

    # -- scale -------------------------------------------------------------------------------
    @staticmethod
    def _scale(rt: ResourceType, obj: dict) -> dict[str, Any]:
        m = meta(obj)
        selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: m[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in m
            },
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
            "status": {
                "replicas": (obj.get("status") or {}).get("replicas", 0),
                "selector": ",".join(f"{k}={v}" for k, v in selector.items()),
            },
        }

    def rescale(self, req: ApiRequest, rt: ResourceType, obj: dict, verb: str) -> ApiResponse:
        body = req.json_body()
        if verb == "update":
            replicas = ((body or {}).get("spec") or {}).get("replicas")
        else:
            try:
                replicas = apply_patch(req.header("Content-Type"), self._scale(rt, obj), body)["spec"][
                    "replicas"
                ]
            except (KeyError, PatchError) as exc:
                raise bad_request(f"invalid scale patch: {exc}") from exc
        if not isinstance(replicas, int):
            raise bad_request("spec.replicas must be an integer")
        m = meta(obj)
        patched = self.writer.patch(
            rt,
            m.get("namespace"),
            m["name"],
            "application/merge-patch+json",
            {"spec": {"replicas": replicas}},
            req.dry_run,
            None,
        )
        return ApiResponse.json(200, self._scale(rt, patched))

    # -- access reviews ----------------------------------------------------------------------
    def access_review(self, req: ApiRequest, rt: ResourceType, ns: str | None) -> dict[str, Any]:
        if req.header("Content-Type").startswith("application/vnd.kubernetes.protobuf"):
            try:
                body: Any = decode_access_review(req.body)
            except ProtobufError as exc:
                raise bad_request(f"error decoding protobuf body: {exc}") from exc
        else:
            body = req.json_body()
        if not isinstance(body, dict):
            raise bad_request("expected an access review object")
        spec = body.get("spec") or {}
        if rt.kind == "SelfSubjectAccessReview":
            user = req.user
        else:
            # Exactly the user and groups given, nothing added (pkg/registry/authorization/util/helpers.go
            # AuthorizationAttributesFrom builds user.DefaultInfo from spec.user/groups/extra as they are).
            user = UserInfo(str(spec.get("user") or ""), tuple(str(g) for g in spec.get("groups") or []))
        attrs = Attributes.from_review(spec)
        if rt.kind == "LocalSubjectAccessReview":
            attrs = Attributes(
                attrs.verb, attrs.group, attrs.resource, attrs.subresource, ns or "", attrs.name
            )
        allowed, reason = self.authorizer.allowed(user, attrs)
        status: dict[str, Any] = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        out = {
            **body,
            "apiVersion": rt.api_version,
            "kind": rt.kind,
            "metadata": {**(body.get("metadata") or {}), "creationTimestamp": None},
            "status": status,
        }
        return out
