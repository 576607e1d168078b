"""Kubernetes actions for runbooks: diagnose nodes, pods, CronJobs and Jobs; cordon, drain, suspend, re-run;
and the general library (get, list, logs, wait, patch, scale, rollout history/restart/undo, resources, delete).

Each action declares itself on its method with `@action` (kind, argument model, the exact RBAC rules it
uses, docs); `register(registry, kube)` only hands the action groups their client.
"""

from __future__ import annotations

from engine.actions import ActionRegistry
from integrations.kubernetes.client import Kube
from integrations.kubernetes.cronjobs import CronJobActions
from integrations.kubernetes.drain import DrainActions
from integrations.kubernetes.edits import GenericEdits
from integrations.kubernetes.events import EventActions
from integrations.kubernetes.generic import GenericReads
from integrations.kubernetes.jobrun import JobRunActions
from integrations.kubernetes.jobs import JobActions
from integrations.kubernetes.nodepods import NodePodsActions
from integrations.kubernetes.nodes import NodeActions
from integrations.kubernetes.pods import PodActions
from integrations.kubernetes.remediations import RemediationActions
from integrations.kubernetes.rollout import RolloutActions

__all__ = ["Kube", "register"]

GROUPS = (NodeActions, NodePodsActions, PodActions, CronJobActions, JobActions, EventActions, JobRunActions,
          RemediationActions, DrainActions, GenericReads, GenericEdits, RolloutActions)


def register(registry: ActionRegistry, kube: Kube | None) -> None:
    """Register every Kubernetes action. With `kube=None` they validate but fail clearly when run."""
    registry.add_declared(*(group(kube) for group in GROUPS))
