"""`AccessChecker`: the engine's `PermissionChecker`, answered by the API server's own authorizer.

Asking the server (SelfSubjectAccessReview, or SubjectAccessReview for an identity the engine acts
for) instead of reading Roles ourselves means aggregated ClusterRoles, webhooks and group bindings
are all accounted for, and a missing grant is found before a remediation is half-applied.
"""

from __future__ import annotations

from typing import Any

from engine.actions import Identity, Permission
from integrations.kubernetes.client import Kube

SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SAR = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
AUTHENTICATED = "system:authenticated"


def resource_attributes(permission: Permission, namespace: str | None) -> dict[str, Any]:
    """A namespaced permission is checked in `namespace` (all namespaces when None), others cluster-wide."""
    attrs: dict[str, Any] = {"verb": permission.verb, "group": permission.group, "resource": permission.resource}
    if permission.subresource:
        attrs["subresource"] = permission.subresource
    if permission.namespaced and namespace:
        attrs["namespace"] = namespace
    return attrs


class AccessChecker:
    """Which of an action's permissions the acting identity lacks. One review request per permission."""

    def __init__(self, kube: Kube, groups: tuple[str, ...] = ()) -> None:
        self.kube = kube
        self.groups = groups

    def allowed(self, permission: Permission, namespace: str | None, identity: Identity | None) -> bool:
        attrs = resource_attributes(permission, namespace)
        if identity:
            spec: dict[str, Any] = {"user": identity.user, "resourceAttributes": attrs}
            # A SubjectAccessReview checks exactly the groups given; requests made as the approver (impersonated)
            # also carry system:authenticated, so the review must name it too.
            spec["groups"] = list(dict.fromkeys([*identity.groups, *self.groups, AUTHENTICATED]))
            body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
            answer = self.kube.post(SAR, body)
        else:
            body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                    "spec": {"resourceAttributes": attrs}}
            answer = self.kube.post(SSAR, body)
        status = answer.get("status") or {}
        return bool(status.get("allowed")) and not status.get("denied")

    def missing(
        self, permissions: tuple[Permission, ...], namespace: str | None, identity: Identity | None
    ) -> list[Permission]:
        return [p for p in dict.fromkeys(permissions) if not self.allowed(p, namespace, identity)]
