"""The policy gate: who may start a runbook, who may approve or reject a step, and when no change may go out.

One place decides, so chat, the CLI, auto-approve and the thread's "who can approve" note cannot disagree.
`Executor` is its only caller for decisions and audits every refusal; front ends only translate a refusal
into their own words.

Defaults are safe ones: with no approvers configured anywhere (the runbook's `policy.approvers`, the
server's `approvers`, or people mapped to Kubernetes identities in `identities`) nobody may approve;
runners default to anyone, because a run without an approval only reads.
Approvals are also refused while changes are frozen and beyond the blast-radius limits
(changes executing at once, changes per target per hour), whose counts come from the shared run store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from engine.actions import Action, Identity, IdentityResolver, PermissionChecker
from engine.errors import ApprovalError
from engine.model import Runbook
from engine.records import Freeze, RunRecord
from engine.step_runner import missing_permissions

HOUR = 3600.0
NO_APPROVERS = ("nobody may approve {runbook}: no approvers are configured; list them in the runbook's "
                "`policy.approvers` or the server's `approvers` setting (or map approvers in `identities`)")


class NotAllowed(ApprovalError):
    """A person may not do this; `ask` lists who may (for the front end to show in its own words)."""

    def __init__(self, message: str, ask: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.ask = ask


class Blocked(ApprovalError):
    """No change may go out now (freeze or blast-radius limit), whoever approves."""


class GroupDirectory(Protocol):
    """Which of `candidates` are groups that `user` belongs to (a chat backend's user-group lookup)."""

    def groups_of(self, user: str, candidates: Iterable[str]) -> frozenset[str]: ...


class NoGroups:
    """The directory of front ends without groups (the CLI): nobody is in any group."""

    def groups_of(self, user: str, candidates: Iterable[str]) -> frozenset[str]:
        return frozenset()


class ChangeLedger(Protocol):
    """What the limits count, read from the run store so that every replica sees the same numbers."""

    def freeze_state(self) -> Freeze | None: ...

    def changes_in_flight(self) -> int: ...

    def changes_to_target_since(self, target: str, since: float) -> int: ...


@dataclass(frozen=True)
class Limits:
    """Blast radius: approved changes executing at once, and changes to one target within an hour."""

    concurrent: int = 3
    per_target_per_hour: int = 3


@dataclass(frozen=True)
class Outlook:
    """Whether one approver candidate could approve the awaited remediation, and as whom."""

    approver: str
    identity: Identity | None = None
    refusal: str | None = None

    @property
    def can(self) -> bool:
        return self.refusal is None


@dataclass(frozen=True)
class Policy:
    """The gate. `runners`/`approvers` apply when a runbook names none; `identities` maps approvers to the
    Kubernetes identities they act as; `ledger` (the run store) answers the freeze and the limits."""

    runners: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    identities: IdentityResolver | None = None
    directory: GroupDirectory = field(default_factory=NoGroups)
    limits: Limits = field(default_factory=Limits)
    ledger: ChangeLedger | None = None
    clock: Callable[[], float] = time.time

    def with_parts(self, **parts: Any) -> Policy:
        """The same policy with other parts (e.g. a chat backend's directory, the store as ledger)."""
        return replace(self, **parts)

    def approvers_of(self, runbook: Runbook) -> tuple[str, ...]:
        """The runbook's approvers, else the server's, else everyone with a mapped Kubernetes identity (the
        cluster's RBAC then decides, per approval); empty: nobody may approve."""
        return runbook.policy.approvers or self.approvers or tuple(self.identities.known() if self.identities else ())

    def runners_of(self, runbook: Runbook) -> tuple[str, ...]:
        return runbook.policy.runners or self.runners

    # starting -------------------------------------------------------------------------------------

    def check_run(self, runbook: Runbook, actor: str, groups: frozenset[str] = frozenset()) -> None:
        """Raises NotAllowed unless `actor` may start `runbook` (no runners configured: anyone may)."""
        allowed = self.runners_of(runbook)
        if allowed and actor not in allowed and not (groups | self.directory.groups_of(actor, allowed)) & set(allowed):
            raise NotAllowed(f"{actor} may not run {runbook.name}; ask one of: {', '.join(allowed)}", allowed)

    def check_auto_approve(self, runbook: Runbook, requester: str) -> None:
        """Auto-approve is the requester approving their own run: allowed only when they could."""
        if not runbook.policy.allow_self_approval:
            raise NotAllowed(f"{runbook.name} forbids approving your own request, so it cannot be auto-approved; "
                             "run it and let another approver decide")
        self._check_approver(runbook, requester, frozenset())

    # deciding -------------------------------------------------------------------------------------

    def check_decision(self, run: RunRecord, runbook: Runbook, actor: str, approve: bool,
                       groups: frozenset[str] = frozenset()) -> frozenset[str]:
        """Raises NotAllowed/Blocked unless `actor` may approve (or reject) the awaited step; returns the
        groups `actor` was found in (for the identity mapping)."""
        groups = self._check_approver(runbook, actor, groups)
        if approve and actor == run.requester and not runbook.policy.allow_self_approval:
            raise NotAllowed(f"{actor} requested run {run.id} and {runbook.name} forbids approving your own "
                             "request; ask another approver", self.approvers_of(runbook))
        if approve:
            proposal = next((s.proposal for s in run.steps if s.id == run.awaiting_step and s.proposal), None)
            self.check_blast_radius(proposal.target if proposal else "")
        return groups

    def _check_approver(self, runbook: Runbook, actor: str, groups: frozenset[str]) -> frozenset[str]:
        approvers = self.approvers_of(runbook)
        if not approvers:
            raise NotAllowed(NO_APPROVERS.format(runbook=runbook.name))
        if actor not in approvers:
            groups = groups | self.directory.groups_of(actor, approvers)
            if not groups & set(approvers):
                raise NotAllowed(f"{actor} is not an approver of {runbook.name}; ask one of: "
                                 + ", ".join(approvers), approvers)
        mapped = [key for key in (self.identities.known() if self.identities else ()) if key not in groups]
        return groups | (self.directory.groups_of(actor, mapped) if mapped else frozenset())

    def check_blast_radius(self, target: str) -> None:
        """Raises Blocked while changes are frozen or a limit is reached; says which and what to do."""
        reason = self.blast_radius(target)
        if reason is not None:
            raise Blocked(reason)

    def blast_radius(self, target: str) -> str | None:
        """Why a change to `target` may not go out now, or None."""
        if self.ledger is None:
            return None
        frozen = self.ledger.freeze_state()
        if frozen is not None:
            return (f"changes are frozen by {frozen.actor}: {frozen.reason or 'no reason given'}; "
                    "approvals are refused until `runbook freeze off`")
        if self.ledger.changes_in_flight() >= self.limits.concurrent:
            return (f"{self.limits.concurrent} approved changes are executing (setting max_concurrent_changes); "
                    "approve again once one has finished")
        per_hour = self.limits.per_target_per_hour
        if target and self.ledger.changes_to_target_since(target, self.clock() - HOUR) >= per_hour:
            return (f"{target} was changed {per_hour} times in the last hour (setting "
                    "max_changes_per_target_per_hour); look at why the fixes do not hold before changing it again")
        return None

    def check_freeze_control(self, actor: str, groups: frozenset[str] = frozenset()) -> None:
        """Freezing or unfreezing from chat: only the server's approvers (the CLI is run by operators)."""
        if not self.approvers:
            raise NotAllowed("nobody may freeze or unfreeze changes from chat: the server's `approvers` setting is "
                             "empty; use `runbook freeze` on the CLI")
        if actor not in self.approvers and not (groups | self.directory.groups_of(actor, self.approvers)):
            raise NotAllowed(f"{actor} may not freeze or unfreeze changes; ask one of: {', '.join(self.approvers)}",
                             self.approvers)

    # identities -----------------------------------------------------------------------------------

    def approver_identity(self, run: RunRecord, runbook: Runbook, actor: str, groups: frozenset[str],
                          action: Action[Any] | None, checker: PermissionChecker | None) -> Identity | None:
        """The identity `actor` would execute the awaited remediation as (None: the engine's own), after
        checking with the cluster that it may. Raises NotAllowed saying plainly why not."""
        if self.identities is None:
            return None
        identity = self.identities.resolve(actor, groups)
        if identity is None and not runbook.policy.fallback_to_engine:
            raise NotAllowed(f"{actor} has no Kubernetes identity mapped, and {runbook.name} does not let "
                             "approvals fall back to the engine's own role; ask a mapped approver")
        record = next((s for s in run.steps if s.id == run.awaiting_step), None)
        if identity is not None and checker is not None and record is not None and action is not None:
            missing = missing_permissions(checker, action, record.inputs, identity)
            if missing:
                raise NotAllowed(f"{actor} acts in Kubernetes as {identity.user}, who may not run {action.name}: "
                                 f"missing {', '.join(str(p) for p in missing)}")
        return identity

    def outlook(self, run: RunRecord, runbook: Runbook, action: Action[Any] | None,
                checker: PermissionChecker | None) -> list[Outlook]:
        """Asks the cluster, per candidate, before anyone clicks, so the thread can say who can approve and why
        others cannot. A group counts as its own member: its entry is what members without one act as."""
        out: list[Outlook] = []
        for candidate in dict.fromkeys(self.approvers_of(runbook)):
            try:
                identity = self.approver_identity(run, runbook, candidate, frozenset({candidate}), action, checker)
            except ApprovalError as exc:
                out.append(Outlook(candidate, refusal=str(exc)))
            else:
                out.append(Outlook(candidate, identity))
        return out
