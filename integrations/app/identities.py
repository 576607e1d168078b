"""Maps the people who approve in Slack (or on the CLI) to the Kubernetes identities they act as.

Configured in settings (`identities:`), keyed by Slack user id, Slack user group id or CLI name. An
approval by a mapped person executes with Kubernetes impersonation of that identity, so the cluster's
own RBAC decides what they may change, not the engine's role.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.actions import Identity
from engine.settings import IdentityMapping, Settings


class MappedIdentities:
    """`IdentityResolver` over the settings' mapping.

    The person's own entry names the user; entries of their Slack user groups add groups (and a shared
    user for members without an entry). Without any user the person is unmapped (None): Kubernetes
    cannot impersonate groups without a user.
    """

    def __init__(self, mapping: Mapping[str, IdentityMapping]) -> None:
        self.mapping = dict(mapping)

    def __bool__(self) -> bool:
        return bool(self.mapping)

    def resolve(self, actor: str, groups: frozenset[str]) -> Identity | None:
        own = self.mapping.get(actor)
        via = [self.mapping[g] for g in sorted(groups) if g in self.mapping]
        user = own.user if own is not None and own.user else next((m.user for m in via if m.user), None)
        if user is None:
            return None
        entries = ([own] if own is not None else []) + via
        return Identity(user, tuple(dict.fromkeys(g for m in entries for g in m.groups)))

    def known(self) -> list[str]:
        return list(self.mapping)


def impersonation_targets(settings: Settings) -> tuple[list[str], list[str]]:
    """Every Kubernetes user and group the engine may have to impersonate: what its RBAC must allow."""
    users = sorted({m.user for m in settings.identities.values() if m.user})
    groups = sorted({g for m in settings.identities.values() for g in m.groups})
    return users, groups
