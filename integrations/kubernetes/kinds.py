"""Resolves the `kind` argument of the generic actions (`Deployment`, `deployments`, `deployments.apps`,
`widgets.example.com`) to the API group, version and plural the REST paths need.

Built-in kinds resolve from a table without a cluster, so permissions are computed when a runbook loads.
Custom resources are named `plural.group`; their version and scope come from discovery when the step
runs (as kubectl's RESTMapper does from `/apis/<group>/<version>`), so a kind the cluster does not
serve is a clear error instead of a 404 on a guessed path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from engine.actions import ArgumentProblem, NotLiteral, Permission, PermitFunc
from engine.errors import PermanentError
from engine.templating import is_template


@dataclass(frozen=True)
class KindRef:
    """One API resource: enough to build its paths and its RBAC rules."""

    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool
    custom: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """`plural.group` as kubectl and RBAC name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, name: str | None = None, namespace: str | None = None, sub: str | None = None) -> str:
        """The REST path; without a namespace a namespaced collection is listed across all namespaces."""
        parts = [f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{quote(namespace, safe='')}")
        parts.append(self.plural)
        if name:
            parts.append(quote(name, safe=""))
        if sub:
            parts.append(sub)
        return "/".join(parts)

    def describe(self, name: str, namespace: str | None) -> str:
        return f"{self.kind} {namespace}/{name}" if self.namespaced and namespace else f"{self.kind} {name}"


def _k(kind: str, group: str, version: str, plural: str, namespaced: bool = True) -> KindRef:
    return KindRef(kind, group, version, plural, namespaced)


BUILTIN: tuple[KindRef, ...] = (
    _k("Pod", "", "v1", "pods"), _k("Service", "", "v1", "services"), _k("Endpoints", "", "v1", "endpoints"),
    _k("ConfigMap", "", "v1", "configmaps"), _k("Secret", "", "v1", "secrets"),
    _k("ServiceAccount", "", "v1", "serviceaccounts"), _k("Event", "", "v1", "events"),
    _k("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims"), _k("ResourceQuota", "", "v1", "resourcequotas"),
    _k("LimitRange", "", "v1", "limitranges"), _k("ReplicationController", "", "v1", "replicationcontrollers"),
    _k("Namespace", "", "v1", "namespaces", False), _k("Node", "", "v1", "nodes", False),
    _k("PersistentVolume", "", "v1", "persistentvolumes", False),
    _k("Deployment", "apps", "v1", "deployments"), _k("ReplicaSet", "apps", "v1", "replicasets"),
    _k("StatefulSet", "apps", "v1", "statefulsets"), _k("DaemonSet", "apps", "v1", "daemonsets"),
    _k("ControllerRevision", "apps", "v1", "controllerrevisions"),
    _k("Job", "batch", "v1", "jobs"), _k("CronJob", "batch", "v1", "cronjobs"),
    _k("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers"),
    _k("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets"),
    _k("Ingress", "networking.k8s.io", "v1", "ingresses"),
    _k("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies"),
    _k("IngressClass", "networking.k8s.io", "v1", "ingressclasses", False),
    _k("StorageClass", "storage.k8s.io", "v1", "storageclasses", False),
    _k("VolumeAttachment", "storage.k8s.io", "v1", "volumeattachments", False),
    _k("CSIDriver", "storage.k8s.io", "v1", "csidrivers", False),
    _k("Lease", "coordination.k8s.io", "v1", "leases"),
    _k("PriorityClass", "scheduling.k8s.io", "v1", "priorityclasses", False),
    _k("EndpointSlice", "discovery.k8s.io", "v1", "endpointslices"),
    _k("Role", "rbac.authorization.k8s.io", "v1", "roles"),
    _k("RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings"),
    _k("ClusterRole", "rbac.authorization.k8s.io", "v1", "clusterroles", False),
    _k("ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", "clusterrolebindings", False),
    _k("CustomResourceDefinition", "apiextensions.k8s.io", "v1", "customresourcedefinitions", False),
)
_BY_NAME: dict[str, KindRef] = {}
for _ref in BUILTIN:
    for _name in (_ref.kind, _ref.kind.lower(), _ref.plural, _ref.resource):
        _BY_NAME.setdefault(_name, _ref)
BUILTIN_GROUPS = frozenset(r.group for r in BUILTIN)
_CUSTOM = re.compile(r"^(?P<plural>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(?P<group>[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$")
# Kinds whose deletion takes down far more than one object: never done from a runbook.
NEVER_DELETED = frozenset({"Namespace", "CustomResourceDefinition", "PersistentVolume", "Node"})


def builtin(kind: str, api_version: str | None = None) -> KindRef | None:
    """The built-in kind `kind` names (Kind, plural or plural.group), at `api_version` if given."""
    ref = _BY_NAME.get(kind)
    if ref is None or not api_version:
        return ref
    group, _, version = api_version.rpartition("/")
    if group != ref.group:
        return None
    return KindRef(ref.kind, ref.group, version, ref.plural, ref.namespaced)


def literal(kind: str, api_version: str | None = None) -> KindRef:
    """Resolve without a cluster: a built-in kind, or a custom `plural.group` (version and scope unknown
    until discovery). Raises ArgumentProblem for anything else, at load time."""
    ref = builtin(kind, api_version)
    if ref is not None:
        return ref
    match = _CUSTOM.match(kind)
    if match is None or match.group("group") in BUILTIN_GROUPS:
        raise ArgumentProblem("kind", f"unknown kind {kind!r}: use a built-in kind such as Deployment or "
                              "HorizontalPodAutoscaler, or plural.group (e.g. widgets.example.com) for a custom "
                              "resource")
    version = api_version.rpartition("/")[2] if api_version else ""
    return KindRef("", match.group("group"), version, match.group("plural"), True, custom=True)


class KindResolver:
    """Resolves kinds for a step against the cluster's discovery documents (custom resources)."""

    def __init__(self, kube: Any) -> None:
        self.kube = kube

    def resolve(self, kind: str, api_version: str | None = None) -> KindRef:
        try:
            ref = literal(kind, api_version)
        except ArgumentProblem as exc:
            raise PermanentError(exc.message) from None
        if not ref.custom:
            return ref
        version = ref.version or self._preferred_version(ref.group)
        listing = self.kube.get_or_none(f"/apis/{ref.group}/{version}")
        for entry in (listing or {}).get("resources") or []:
            if entry.get("name") == ref.plural:
                return KindRef(str(entry.get("kind")), ref.group, version, ref.plural, bool(entry.get("namespaced")),
                               custom=True)
        raise PermanentError(f"the cluster does not serve {ref.plural} in {ref.group}/{version}: "
                             "is its CustomResourceDefinition installed?")

    def _preferred_version(self, group: str) -> str:
        document = self.kube.get_or_none(f"/apis/{group}")
        preferred = (document or {}).get("preferredVersion") or {}
        if not preferred.get("version"):
            raise PermanentError(f"the cluster serves no API group {group!r}: is its CustomResourceDefinition "
                                 "installed?")
        return str(preferred["version"])


def literal_kind(arguments: Mapping[str, Any], api_version_key: str = "api_version") -> KindRef:
    """The kind argument as written in the step, resolved without a cluster; NotLiteral for a template."""
    kind = arguments.get("kind")
    if not isinstance(kind, str) or is_template(kind):
        raise NotLiteral("kind", "kind is a template")
    api_version = arguments.get(api_version_key)
    if isinstance(api_version, str) and is_template(api_version):
        raise NotLiteral(api_version_key, "api_version is a template")
    return literal(kind, api_version if isinstance(api_version, str) else None)


def one_namespace(arguments: Mapping[str, Any]) -> bool:
    """Whether the step acts within one namespace (a Role there suffices) rather than across all."""
    namespace = arguments.get("namespace")
    return isinstance(namespace, str) and namespace not in ("", "*")


def kind_permits(*verbs: str, extra: tuple[Permission, ...] = ()) -> PermitFunc:
    """Computes, from the step's literal kind and namespace, `verbs` on that kind (`get`, `patch`, or
    `scale:patch` for a subresource), plus `extra` rules scoped the same way."""

    def permits(arguments: Mapping[str, Any]) -> tuple[Permission, ...]:
        if arguments.get("kind") is None:
            return ()  # the loader reports the missing argument itself
        ref = literal_kind(arguments)
        namespaced = ref.namespaced and one_namespace(arguments)
        own = []
        for text in verbs:
            sub, _, verb = text.rpartition(":")
            own.append(Permission(ref.plural, verb, ref.group, sub, namespaced))
        return (*own, *(Permission(p.resource, p.verb, p.group, p.subresource, namespaced) for p in extra))

    return permits
