"""Kubernetes actions for runbooks: diagnose nodes, pods, CronJobs and Jobs; cordon, drain, suspend, re-run.

`register(registry, kube)` adds every action with its argument model, kind and the exact RBAC rules it
uses. `Permission.namespaced=True` means the action only touches that resource inside `args.namespace`
(a Role there suffices); `False` means it reads or writes across namespaces or cluster-scoped objects
(a ClusterRole is needed).
"""

from __future__ import annotations

from typing import Any

from engine.actions import Action, ActionKind, ActionRegistry, Permission
from integrations.kubernetes.client import Kube
from integrations.kubernetes.cronjobs import CronJobActions, CronJobInspectArgs
from integrations.kubernetes.drain import DrainActions, DrainArgs
from integrations.kubernetes.events import EventActions, EventsArgs
from integrations.kubernetes.jobrun import CreateJobArgs, JobRunActions
from integrations.kubernetes.jobs import JobActions, OverlapArgs
from integrations.kubernetes.nodepods import NodePodsActions, NodePodsArgs
from integrations.kubernetes.nodes import NodeActions, NodeInspectArgs
from integrations.kubernetes.pods import ObjectExistsArgs, PodActions, PodInspectArgs
from integrations.kubernetes.remediations import (
    ConcurrencyArgs,
    CronJobArgs,
    JobDeleteArgs,
    NodeArgs,
    PodDeleteArgs,
    Remediations,
)

__all__ = ["PERMISSIONS", "Kube", "register"]

D, R = ActionKind.DIAGNOSE, ActionKind.REMEDIATE


def _p(resource: str, verb: str, group: str = "", sub: str = "", ns: bool = False) -> Permission:
    return Permission(resource, verb, group, sub, ns)


NODE_GET, NODE_LIST, NODE_PATCH = _p("nodes", "get"), _p("nodes", "list"), _p("nodes", "patch")
NS_EVENTS = _p("events", "list", ns=True)
NS_PODS = (_p("pods", "get", ns=True), _p("pods", "list", ns=True), _p("pods", "get", sub="log", ns=True))
# Secrets and ConfigMaps a pod refers to: read as metadata only (get to confirm one is missing, list to
# name look-alikes when it was renamed); their values are never read.
NS_REFS = (_p("secrets", "get", ns=True), _p("configmaps", "get", ns=True),
           _p("secrets", "list", ns=True), _p("configmaps", "list", ns=True))
CRON_GET = _p("cronjobs", "get", "batch", ns=True)

PERMISSIONS: dict[str, tuple[Permission, ...]] = {
    "k8s.node.inspect": (NODE_LIST, NODE_GET, _p("leases", "get", "coordination.k8s.io"), _p("events", "list")),
    "k8s.node.pods": (NODE_GET, _p("pods", "list"), _p("replicasets", "get", "apps"),
                      _p("statefulsets", "get", "apps"), _p("poddisruptionbudgets", "list", "policy")),
    "k8s.pod.inspect": (*NS_PODS, *NS_REFS),
    "k8s.cronjob.inspect": (CRON_GET, _p("jobs", "list", "batch", ns=True), _p("pods", "list", ns=True),
                            _p("pods", "get", sub="log", ns=True), *NS_REFS, NS_EVENTS),
    "k8s.jobs.overlap": (CRON_GET, _p("jobs", "list", "batch", ns=True)),
    "k8s.events": (NS_EVENTS,),
    "k8s.secret.exists": (_p("secrets", "get", ns=True),),
    "k8s.configmap.exists": (_p("configmaps", "get", ns=True),),
    "k8s.node.cordon": (NODE_GET, NODE_PATCH),
    "k8s.node.uncordon": (NODE_GET, NODE_PATCH),
    "k8s.node.drain": (NODE_LIST, NODE_GET, NODE_PATCH, _p("pods", "list"), _p("pods", "create", sub="eviction"),
                       _p("poddisruptionbudgets", "list", "policy")),
    "k8s.pod.delete": (_p("pods", "get", ns=True), _p("pods", "delete", ns=True), NODE_GET),
    "k8s.cronjob.suspend": (CRON_GET, _p("cronjobs", "patch", "batch", ns=True)),
    "k8s.cronjob.resume": (CRON_GET, _p("cronjobs", "patch", "batch", ns=True)),
    "k8s.cronjob.set_concurrency_policy": (CRON_GET, _p("cronjobs", "patch", "batch", ns=True)),
    "k8s.job.create_from_cronjob": (CRON_GET, _p("jobs", "list", "batch", ns=True),
                                    _p("jobs", "create", "batch", ns=True)),
    "k8s.job.delete": (_p("jobs", "get", "batch", ns=True), _p("jobs", "delete", "batch", ns=True)),
}


def register(registry: ActionRegistry, kube: Kube | None) -> None:
    """Register every Kubernetes action. With `kube=None` they validate but fail clearly when run."""
    nodes, node_pods, pods = NodeActions(kube), NodePodsActions(kube), PodActions(kube)
    cron, jobs, runs, events = CronJobActions(kube), JobActions(kube), JobRunActions(kube), EventActions(kube)
    fix, drain = Remediations(kube), DrainActions(kube)
    table: list[tuple[str, ActionKind, type[Any], Any]] = [
        ("k8s.node.inspect", D, NodeInspectArgs, nodes.inspect),
        ("k8s.node.pods", D, NodePodsArgs, node_pods.pods),
        ("k8s.pod.inspect", D, PodInspectArgs, pods.inspect),
        ("k8s.cronjob.inspect", D, CronJobInspectArgs, cron.inspect),
        ("k8s.jobs.overlap", D, OverlapArgs, jobs.overlap),
        ("k8s.events", D, EventsArgs, events.events),
        ("k8s.secret.exists", D, ObjectExistsArgs, pods.secret_exists),
        ("k8s.configmap.exists", D, ObjectExistsArgs, pods.configmap_exists),
        ("k8s.node.cordon", R, NodeArgs, fix.cordon),
        ("k8s.node.uncordon", R, NodeArgs, fix.uncordon),
        ("k8s.node.drain", R, DrainArgs, drain.drain),
        ("k8s.pod.delete", R, PodDeleteArgs, fix.delete_pod),
        ("k8s.cronjob.suspend", R, CronJobArgs, fix.suspend_cronjob),
        ("k8s.cronjob.resume", R, CronJobArgs, fix.resume_cronjob),
        ("k8s.cronjob.set_concurrency_policy", R, ConcurrencyArgs, fix.set_concurrency_policy),
        ("k8s.job.create_from_cronjob", R, CreateJobArgs, runs.create_from_cronjob),
        ("k8s.job.delete", R, JobDeleteArgs, fix.delete_job),
    ]
    for name, kind, args, func in table:
        doc = (func.__doc__ or "").strip().split("\n")[0]
        registry.add(Action(name, kind, args, func, PERMISSIONS[name], doc))
