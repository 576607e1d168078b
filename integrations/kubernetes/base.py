"""The common base of action groups: holds the client and narrows it to one step."""

from __future__ import annotations

from engine.actions import ActionContext
from engine.errors import SettingsError
from integrations.kubernetes.client import Kube


class KubeActions:
    """Actions are methods of these groups; the client comes in through the constructor (no global state).

    `kube` may be None so runbooks validate without a cluster; calling an action then fails clearly.
    """

    def __init__(self, kube: Kube | None) -> None:
        self._kube = kube

    def kube_for(self, ctx: ActionContext) -> Kube:
        """The client bounded by the step deadline and impersonating the run's identity, if any."""
        if self._kube is None:
            raise SettingsError("no Kubernetes cluster is configured (kubeconfig, in-cluster or --scenario)")
        return self._kube.for_context(ctx)
