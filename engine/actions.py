"""The action registry: named, typed operations that steps call.

Integrations register actions here (the engine itself only ships a few built-ins); each declares its
kind and the Kubernetes permissions it needs, so approvals, dry-runs and RBAC follow from the runbook.
"""

from __future__ import annotations

import re
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from engine.verdict import Change, ChangeOutcome, Evidence, Finding, Severity

if TYPE_CHECKING:
    from engine.proposal_scope import SharedReads


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

    @classmethod
    def parse(cls, text: str, namespaced: bool = False) -> Permission:
        """The inverse of `str()`: `deployments.apps:patch`, `pods/log:get`, `nodes:list`."""
        match = _PERMISSION.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a permission; write resource[/subresource][.group]:verb, "
                             "e.g. deployments.apps:patch or pods/log:get")
        resource, sub, group, verb = match.group("resource", "sub", "group", "verb")
        return cls(resource, verb, group or "", sub or "", namespaced)


_PERMISSION = re.compile(r"^(?P<resource>[a-z0-9-]+)(?:/(?P<sub>[a-z0-9-]+))?(?:\.(?P<group>[a-z0-9.-]+))?"
                         r":(?P<verb>[a-z]+)$")


@dataclass(frozen=True)
class Authorized:
    """A request the cluster's authorizer let through (it was answered), as RBAC sees it. A dry-run is
    authorized exactly like the real request, so one that got through proves the permission it used and
    no access review needs to ask for it again."""

    group: str
    resource: str
    subresource: str
    verb: str
    namespace: str | None  # None: cluster-scoped, or across all namespaces

    @classmethod
    def needed(cls, permission: Permission, namespace: str | None) -> Authorized:
        """The request that proves `permission`, checked in `namespace` (ignored when not namespaced)."""
        return cls(permission.group, permission.resource, permission.subresource, permission.verb,
                   namespace if permission.namespaced else None)


class ArgumentProblem(ValueError):
    """A step argument an action cannot accept, found before the run (at load): the loader reports it
    at the argument's line."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument
        self.message = message


class NotLiteral(ArgumentProblem):
    """The permissions depend on an argument that is a template: only the step can say what it needs."""


# Computes the permissions an action needs from a step's arguments (literal values, or templates as
# written at load time; rendered values at run time). Raises ArgumentProblem for arguments it refuses.
PermitFunc = Callable[[Mapping[str, Any]], tuple[Permission, ...]]


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
    # Set only for the dry-runs that build one proposal: reads the other dry-runs of it may reuse.
    reads: SharedReads | None = None
    # Set for dry-runs: integrations add each request the cluster authorized (see `Authorized`).
    authorized: set[Authorized] | None = None

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
class ReadBack:
    """What re-reading a change's target shows when the process sending it died before it could say:
    `applied` (the target shows this run's change), `not applied` (it shows the state the dry-run
    started from), `effect unknown` (the read failed, or the evidence points both ways)."""

    outcome: ChangeOutcome
    evidence: str


# Re-reads, read-only, the target of an approved change (its dry-run `Change`s as proposed) with the
# engine's own credentials. The context is a dry-run: a read-back never changes anything.
ReadBackFunc = Callable[[ActionContext, A, tuple[Change, ...]], ReadBack]


@dataclass(frozen=True)
class ActionSpec(Generic[A]):
    """Everything an action declares about itself, kept on its function by `@action`."""

    name: str
    kind: ActionKind
    args: type[A]
    permissions: tuple[Permission, ...] = ()
    permits: PermitFunc | None = None
    permits_doc: str = ""
    description: str = ""
    read_back: ReadBackFunc[A] | None = None


SPEC_ATTRIBUTE = "__runbook_action__"


def action(
    name: str,
    *,
    kind: ActionKind,
    args: type[A],
    permissions: tuple[Permission, ...] = (),
    permits: PermitFunc | None = None,
    permits_doc: str = "",
    description: str = "",
    read_back: Callable[..., ReadBack] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare an action in one place, on its function or method.

    `permissions` are the fixed RBAC rules it uses; `permits` computes them instead from the step's
    arguments (a generic `kind`), with `permits_doc` saying how for `runbook actions`. `read_back` (a
    remediation's; a method of the same class when the action is a method) tells whether an approved
    change whose sender died took effect; without one such a change is reported `effect unknown`. The function's
    docstring is the documentation (its first line the summary). `ActionRegistry.add_declared` finds
    the declarations on an object, a module or a list of functions.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        doc = description or (func.__doc__ or "").strip().split("\n")[0]
        setattr(func, SPEC_ATTRIBUTE, ActionSpec(name, kind, args, permissions, permits, permits_doc, doc, read_back))
        return func

    return decorate


def declared(provider: object) -> Iterator[tuple[ActionSpec[Any], ActionFunc[Any]]]:
    """The declared actions of `provider`: an instance (its decorated methods, bound), a module, or an
    iterable of decorated functions."""
    if isinstance(provider, Iterable) and not isinstance(provider, str | bytes | Mapping):
        for func in provider:
            spec = getattr(func, SPEC_ATTRIBUTE, None)
            if spec is not None:
                yield spec, func
        return
    module = isinstance(provider, types.ModuleType)
    owner = provider if module else type(provider)
    for attr in [n for n in dir(owner) if not n.startswith("__")]:
        raw = getattr(owner, attr, None)
        spec = getattr(raw, SPEC_ATTRIBUTE, None)
        if isinstance(spec, ActionSpec):
            yield (spec if module else _bound(spec, provider)), getattr(provider, attr)


def _bound(spec: ActionSpec[Any], instance: object) -> ActionSpec[Any]:
    """The spec with its read-back bound to `instance` when that is a method of the instance's class."""
    read_back = spec.read_back
    name = getattr(read_back, "__name__", "")
    if read_back is None or getattr(type(instance), name, None) is not read_back:
        return spec
    return replace(spec, read_back=getattr(instance, name))


@dataclass(frozen=True)
class Action(Generic[A]):
    """A registered action: its name, kind, argument model, permissions and implementation."""

    name: str
    kind: ActionKind
    args: type[A]
    func: ActionFunc[A]
    permissions: tuple[Permission, ...] = ()
    description: str = ""
    permits: PermitFunc | None = None
    permits_doc: str = ""
    read_back: ReadBackFunc[A] | None = None

    @classmethod
    def from_spec(cls, spec: ActionSpec[A], func: ActionFunc[A]) -> Action[A]:
        return cls(spec.name, spec.kind, spec.args, func, spec.permissions, spec.description, spec.permits,
                   spec.permits_doc, spec.read_back)

    def needed(self, arguments: Mapping[str, Any]) -> tuple[Permission, ...]:
        """The RBAC rules a step with these arguments needs: the fixed ones plus those computed from its
        arguments. Raises ArgumentProblem (NotLiteral for a templated argument that decides them)."""
        computed = self.permits(arguments) if self.permits is not None else ()
        return tuple(dict.fromkeys((*self.permissions, *computed)))

    def permissions_text(self) -> str:
        """The permissions as `runbook actions` shows them."""
        fixed = [str(p) for p in self.permissions]
        return "\n".join([*fixed, *([self.permits_doc] if self.permits_doc else [])])

    def target(self, args: A) -> str:
        """A short name of what the action acts on, for proposals and chat."""
        values = args.model_dump()
        ns, name = values.get("namespace"), values.get("name") or values.get("node") or values.get("cronjob")
        if name and ns:
            return f"{ns}/{name}"
        return str(name or ns or self.name)


def step_needs(
    action: Action[Any], arguments: Mapping[str, Any], declared: tuple[str, ...] | None = None
) -> tuple[Permission, ...]:
    """What a step needs: its own `permissions:` when it declares them (namespaced when it names one
    namespace), else what the action computes from the arguments."""
    if declared is None:
        return action.needed(arguments)
    namespace = arguments.get("namespace")
    namespaced = isinstance(namespace, str) and namespace not in ("", "*")
    return tuple(Permission.parse(text, namespaced) for text in declared)


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

    def add_declared(self, *providers: object) -> None:
        """Register every action declared with `@action` on these objects, modules or function lists."""
        for provider in providers:
            for spec, func in declared(provider):
                self.add(Action.from_spec(spec, func))

    def register(
        self,
        name: str,
        *,
        kind: ActionKind,
        args: type[A],
        permissions: tuple[Permission, ...] = (),
        description: str = "",
        read_back: ReadBackFunc[A] | None = None,
    ) -> Callable[[ActionFunc[A]], ActionFunc[A]]:
        """`@action` plus registration at once, for plain functions (the built-ins, tests)."""

        def decorate(func: ActionFunc[A]) -> ActionFunc[A]:
            action(name, kind=kind, args=args, permissions=permissions, description=description,
                   read_back=read_back)(func)
            self.add_declared([func])
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
