"""Who dry-runs a remediation when approvers act with their own Kubernetes identities.

The cluster authorizes a dry-run exactly like the real request, so the engine dry-runs as someone who could
approve the change and may make it: that is what spares the engine's own account any remediation role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.actions import Action, Identity, IdentityResolver, Permission, PermissionChecker
from engine.errors import ForbiddenError
from engine.step_runner import missing_permissions


@dataclass
class ApproverDryRun:
    """Picks who dry-runs a remediation: the first identity that could approve it and may run it. The cluster
    authorizes a dry-run like the real request, so this is what spares the engine any remediation role.
    Remembers its pick for the proposal."""

    identities: IdentityResolver
    checker: PermissionChecker | None
    action: Action[Any]
    candidates: tuple[str, ...]
    chosen: Identity | None = None

    def __call__(self, inputs: dict[str, Any]) -> Identity:
        # a group key counts as its own member, as when the thread says who can approve
        resolved = (self.identities.resolve(key, frozenset({key})) for key in self.candidates)
        mapped = list(dict.fromkeys(i for i in resolved if i is not None))
        if not mapped:
            raise ForbiddenError(f"forbidden: nobody who may approve {self.action.name} has a Kubernetes identity "
                                 f"mapped (candidates: {', '.join(self.candidates) or 'none'}), and the runbook does "
                                 "not let the engine's own role dry-run it (policy.fallback_to_engine)")
        lacking: list[Permission] = []
        for identity in mapped:
            missing = missing_permissions(self.checker, self.action, inputs, identity) if self.checker else []
            if not missing:  # without a checker the API server decides on the dry-run itself
                self.chosen = identity
                return identity
            lacking += [p for p in missing if p not in lacking]
        grants = ", ".join(str(p) for p in lacking)
        raise ForbiddenError(f"forbidden: nobody who may approve {self.action.name} may run it "
                             f"({', '.join(i.user for i in mapped)} lack {grants}); grant {grants} to one of them",
                             permission=grants)
