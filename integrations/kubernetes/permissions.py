"""The RBAC rules the built-in Kubernetes actions use, named once so declarations can share them.

`namespaced=True` means the action only touches that resource inside its `namespace` argument (a Role
there suffices); `False` means it reads or writes across namespaces or cluster-scoped objects (a
ClusterRole is needed).
"""

from __future__ import annotations

from engine.actions import Permission


def perm(resource: str, verb: str, group: str = "", sub: str = "", ns: bool = False) -> Permission:
    return Permission(resource, verb, group, sub, ns)


NODE_GET, NODE_LIST, NODE_PATCH = perm("nodes", "get"), perm("nodes", "list"), perm("nodes", "patch")
NS_EVENTS = perm("events", "list", ns=True)
NS_PODS = (perm("pods", "get", ns=True), perm("pods", "list", ns=True), perm("pods", "get", sub="log", ns=True))
# Secrets and ConfigMaps a pod refers to: read as metadata only (get to confirm one is missing, list to
# name look-alikes when it was renamed); their values are never read.
NS_REFS = (perm("secrets", "get", ns=True), perm("configmaps", "get", ns=True),
           perm("secrets", "list", ns=True), perm("configmaps", "list", ns=True))
CRON_GET = perm("cronjobs", "get", "batch", ns=True)
CRON_PATCH = (CRON_GET, perm("cronjobs", "patch", "batch", ns=True))
