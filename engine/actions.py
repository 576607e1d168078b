"""The action registry: named, typed operations that steps call.

Integrations register actions here (the engine itself only ships a few built-ins); each declares its
kind and the Kubernetes permissions it needs, so approvals, dry-runs and RBAC follow from the runbook.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from engine.verdict import Change, Evidence, Finding, Severity


class ActionKind(StrEnum):
    DIAGNOSE = "diagnose"
    REMEDIATE = "remediate"
    NOTIFY = "notify"


@dataclass(frozen=True, order=True)
class Permission:
    """One RBAC rule an action needs, e.g. Permission("nodes", "patch")."""

    resource: str
    verb: str
    group: str = ""
    subresource: str = ""
    namespaced: bool = False

    def __str__(self) -> str:
        res = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        res = f"{res}.{self.group}" if self.group else res
        return f"{res}:{self.verb}"


@dataclass(frozen=True)
class Identity:
    """The Kubernetes user (and groups) a remediation executes as, when not as the engine itself."""

    user: str
    groups: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.user} (groups {', '.join(self.groups)})" if self.groups else self.user


class IdentityResolver(Protocol):
    """Maps a chat or CLI person (and their groups) to the Kubernetes identity they act as, or None."""

    def resolve(self, actor: str, groups: frozenset[str]) -> Identity | None: ...

    def known(self) -> list[str]:
        """Every person or group key with a mapping: who could approve when nobody is listed as approver."""
        ...


class ActionArgs(BaseModel):
    """Base for action parameter models: frozen, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


A = TypeVar("A", bound=ActionArgs)


@dataclass
class ActionContext:
    """What an action may know and do besides its arguments.

    Findings and changes are collected here rather than returned, so an action can report evidence
    even when it later fails.
    """

    run_id: str
    step: str
    dry_run: bool
    deadline: float
    identity: Identity | None = None
    findings: list[Finding] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def remaining(self) -> float:
        """Seconds left before the step's timeout; integrations bound their calls by it."""
        return max(0.0, self.deadline - time.monotonic())

    def finding(
        self,
        id: str,
        severity: Severity,
        summary: str,
        evidence: list[Evidence] | None = None,
    ) -> Finding:
        found = Finding(id=id, severity=severity, summary=summary, evidence=tuple(evidence or ()), step=self.step)
        self.findings.append(found)
        return found

    def change(self, change: Change) -> None:
        self.changes.append(change)


ActionFunc = Callable[[ActionContext, A], dict[str, Any] | None]


@dataclass(frozen=True)
class Action(Generic[A]):
    """A registered action: its name, kind, argument model, permissions and implementation."""

    name: str
    kind: ActionKind
    args: type[A]
    func: ActionFunc[A]
    permissions: tuple[Permission, ...] = ()
    description: str = ""

    def target(self, args: A) -> str:
        """A short name of what the action acts on, for proposals and chat."""
        values = args.model_dump()
        ns, name = values.get("namespace"), values.get("name") or values.get("node") or values.get("cronjob")
        if name and ns:
            return f"{ns}/{name}"
        return str(name or ns or self.name)


class PermissionChecker(Protocol):
    """Tells which of an action's permissions the acting identity lacks (e.g. via SelfSubjectAccessReview)."""

    def missing(
        self, permissions: tuple[Permission, ...], namespace: str | None, identity: Identity | None
    ) -> list[Permission]: ...


class ActionRegistry:
    """Maps action names to actions. An instance is passed around; there is no global registry."""

    def __init__(self) -> None:
        self._actions: dict[str, Action[Any]] = {}

    def add(self, action: Action[Any]) -> None:
        if action.name in self._actions:
            raise ValueError(f"action {action.name!r} is registered twice")
        self._actions[action.name] = action

    def register(
        self,
        name: str,
        *,
        kind: ActionKind,
        args: type[A],
        permissions: tuple[Permission, ...] = (),
        description: str = "",
    ) -> Callable[[ActionFunc[A]], ActionFunc[A]]:
        """Decorator form of `add`; the docstring of the function is the default description."""

        def decorate(func: ActionFunc[A]) -> ActionFunc[A]:
            doc = description or (func.__doc__ or "").strip().split("\n")[0]
            self.add(Action(name, kind, args, func, permissions, doc))
            return func

        return decorate

    def get(self, name: str) -> Action[Any]:
        return self._actions[name]

    def __contains__(self, name: object) -> bool:
        return name in self._actions

    def __iter__(self) -> Iterator[Action[Any]]:
        return iter(sorted(self._actions.values(), key=lambda a: a.name))

    def names(self) -> list[str]:
        return sorted(self._actions)
