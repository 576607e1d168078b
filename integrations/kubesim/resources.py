"""The resource table: which kinds the simulated API server knows and how they are addressed.

Everything path-, discovery-, RBAC- and table-related derives from this one table, so adding a
resource type is a one-line change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property

CRUD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CREATE_ONLY = ("create",)


@dataclass(frozen=True)
class ResourceType:
    """One REST resource (e.g. ``pods`` in core/v1)."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = CRUD_VERBS
    categories: tuple[str, ...] = ()
    singular: str = ""
    store_key: str = ""  # shares another resource's data (events.k8s.io Events live with core Events)

    @cached_property
    def api_version(self) -> str:
        """``apiVersion`` as written in objects: ``v1`` or ``group/version``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @cached_property
    def group_resource(self) -> str:
        """``plural[.group]``, the qualified name the real server uses in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @cached_property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @cached_property
    def key(self) -> str:
        """Store key: group and plural identify the data, whatever version served it."""
        if self.store_key:
            return self.store_key
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @cached_property
    def has_status(self) -> bool:
        return "status" in self.subresources


def _r(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: Iterable[str] = (),
    sub: Iterable[str] = (),
    verbs: tuple[str, ...] = CRUD_VERBS,
    categories: Iterable[str] = (),
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        namespaced=namespaced,
        short_names=tuple(short),
        subresources=tuple(sub),
        verbs=verbs,
        categories=tuple(categories),
        singular=kind.lower(),
    )


ALL = ("all",)

DEFAULT_RESOURCES: tuple[ResourceType, ...] = (
    _r(
        "",
        "v1",
        "Namespace",
        "namespaces",
        False,
        ["ns"],
        ["status", "finalize"],
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _r("", "v1", "Node", "nodes", False, ["no"], ["status", "proxy"]),
    _r(
        "",
        "v1",
        "Pod",
        "pods",
        True,
        ["po"],
        ["status", "log", "eviction", "binding", "exec", "ephemeralcontainers"],
        categories=ALL,
    ),
    _r("", "v1", "Event", "events", True, ["ev"]),
    _r("", "v1", "Secret", "secrets", True),
    _r("", "v1", "ConfigMap", "configmaps", True, ["cm"]),
    _r("", "v1", "ServiceAccount", "serviceaccounts", True, ["sa"], ["token"]),
    _r("", "v1", "Service", "services", True, ["svc"], ["status", "proxy"], categories=ALL),
    _r("", "v1", "Endpoints", "endpoints", True, ["ep"]),
    _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ["pvc"], ["status"]),
    _r("", "v1", "PersistentVolume", "persistentvolumes", False, ["pv"], ["status"]),
    _r("", "v1", "ReplicationController", "replicationcontrollers", True, ["rc"], ["status", "scale"],
       categories=ALL),
    _r("", "v1", "ResourceQuota", "resourcequotas", True, ["quota"], ["status"]),
    _r("", "v1", "LimitRange", "limitranges", True, ["limits"]),
    _r("", "v1", "PodTemplate", "podtemplates", True),
    _r("coordination.k8s.io", "v1", "Lease", "leases", True),
    _r("batch", "v1", "Job", "jobs", True, [], ["status"], categories=ALL),
    _r("batch", "v1", "CronJob", "cronjobs", True, ["cj"], ["status"], categories=ALL),
    _r("apps", "v1", "Deployment", "deployments", True, ["deploy"], ["status", "scale"], categories=ALL),
    _r("apps", "v1", "ReplicaSet", "replicasets", True, ["rs"], ["status", "scale"], categories=ALL),
    _r("apps", "v1", "StatefulSet", "statefulsets", True, ["sts"], ["status", "scale"], categories=ALL),
    _r("apps", "v1", "DaemonSet", "daemonsets", True, ["ds"], ["status"], categories=ALL),
    _r("apps", "v1", "ControllerRevision", "controllerrevisions", True),
    _r("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ["pdb"], ["status"]),
    _r("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ["hpa"], ["status"],
       categories=ALL),
    _r("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ["sc"]),
    _r("storage.k8s.io", "v1", "CSIDriver", "csidrivers", False),
    _r("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", False, sub=["status"]),
    _r("networking.k8s.io", "v1", "Ingress", "ingresses", True, ["ing"], ["status"]),
    _r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ["netpol"]),
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    _r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ["pc"]),
    _r("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", False),
    _r("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests", False, ["csr"],
       ["status", "approval"]),
    _r("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration",
       "validatingwebhookconfigurations", False),
    _r("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations",
       False),
    _r("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False, ["crd", "crds"],
       ["status"]),
    replace(_r("events.k8s.io", "v1", "Event", "events", True, ["ev"]), store_key="events"),
    _r("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _r(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        False,
        verbs=CREATE_ONLY,
    ),
    _r("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", False, verbs=CREATE_ONLY),
    _r(
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        True,
        verbs=CREATE_ONLY,
    ),
)

# Kinds served by a subresource rather than stored: (parent plural, subresource) -> (group, version, kind).
SUBRESOURCE_KINDS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("pods", "eviction"): ("policy", "v1", "Eviction"),
    ("pods", "binding"): ("", "v1", "Binding"),
    ("pods", "log"): ("", "v1", "Pod"),
    ("serviceaccounts", "token"): ("authentication.k8s.io", "v1", "TokenRequest"),
    ("deployments", "scale"): ("autoscaling", "v1", "Scale"),
    ("replicasets", "scale"): ("autoscaling", "v1", "Scale"),
    ("statefulsets", "scale"): ("autoscaling", "v1", "Scale"),
    ("replicationcontrollers", "scale"): ("autoscaling", "v1", "Scale"),
}

SUBRESOURCE_VERBS: dict[str, tuple[str, ...]] = {
    "status": ("get", "patch", "update"),
    "log": ("get",),
    "eviction": ("create",),
    "binding": ("create",),
    "exec": ("create", "get"),
    "proxy": ("create", "delete", "get", "patch", "update"),
    "token": ("create",),
    "scale": ("get", "patch", "update"),
    "finalize": ("update",),
    "ephemeralcontainers": ("get", "patch", "update"),
    "approval": ("get", "patch", "update"),
}


@dataclass
class ResourceTable:
    """Lookup of resource types by path segments, kind or any user-facing name."""

    resources: tuple[ResourceType, ...] = DEFAULT_RESOURCES
    _by_path: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict, init=False)
    _by_kind: dict[tuple[str, str], ResourceType] = field(default_factory=dict, init=False)
    _by_name: dict[str, ResourceType] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for rt in self.resources:
            self._index(rt)

    def _index(self, rt: ResourceType) -> None:
        self._by_path[(rt.group, rt.version, rt.plural)] = rt
        self._by_kind.setdefault((rt.api_version, rt.kind), rt)
        # Core group wins for ambiguous user-facing names (events), as kubectl does.
        for name in (rt.plural, rt.kind.lower(), rt.singular, *rt.short_names, rt.kind):
            self._by_name.setdefault(name, rt)
        self._by_name.setdefault(rt.group_resource, rt)

    def register(self, rt: ResourceType) -> bool:
        """Serve one more resource (a CustomResourceDefinition's version); False if its path is taken."""
        if (rt.group, rt.version, rt.plural) in self._by_path:
            return False
        self.resources = (*self.resources, rt)
        self._index(rt)
        return True

    def builtin_group(self, group: str) -> bool:
        return any(rt.group == group for rt in DEFAULT_RESOURCES)

    def by_path(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def lookup(self, name: str) -> ResourceType:
        """Resolve ``Pod``, ``pods``, ``po`` or ``deployments.apps``; raise KeyError otherwise."""
        rt = self._by_name.get(name) or self._by_name.get(name.lower())
        if rt is None:
            raise KeyError(f"unknown resource {name!r}")
        return rt

    def for_object(self, obj: dict) -> ResourceType | None:
        return self.by_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))

    def groups(self) -> dict[str, list[str]]:
        """Group name -> served versions, in table order (core group under "")."""
        out: dict[str, list[str]] = {}
        for rt in self.resources:
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self.resources if rt.group == group and rt.version == version]
