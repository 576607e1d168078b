"""`runbook rbac`: least-privilege Kubernetes RBAC derived from what runbooks' actions declare.

Every action declares the exact `Permission`s it uses on itself (`@action`; generic actions compute them
from their literal `kind` and `namespace`, or the step declares `permissions:`), so the grants follow
from the runbooks instead of being guessed: nothing is granted that no step's action needs.
The output is split in two tiers bound to one service account:

* `<sa>-diagnose`: what diagnose actions read. Read-only by construction (diagnose actions never write).
* `<sa>-remediate`: what remediations need beyond that: their writes (also for the server-side dry-runs
  that proposals are built from) and the few reads only a remediation does.

A namespaced permission becomes a Role in the namespaces a step can touch when those are known before the
run (a literal `namespace:` argument, an enum param, or `--target-namespace`); otherwise the namespace
comes from an alert or an earlier step's output and a ClusterRole is the only grant that works.
Secrets are only ever granted the `get`/`list` that actions declare to check that a referenced Secret
exists (and name look-alikes), never `watch` or writes; the client asks for PartialObjectMetadata(List),
so secret values never leave the API server.
With an identity mapping, an impersonation ClusterRole limited by `resourceNames` to the mapped users and
groups is added, plus `create subjectaccessreviews` to ask whether an approver may run a remediation.
Remediations (and their dry-runs) then run as an approver, so `<sa>-remediate` is no longer bound to the
engine: it is still generated, as the list of what approvers need, unless a runbook lets approvals fall
back to the engine's own role (`policy.fallback_to_engine`), which keeps it bound.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from engine.actions import ActionKind, ActionRegistry, Permission, step_needs
from engine.model import Runbook

DIAGNOSE, REMEDIATE = "diagnose", "remediate"
RBAC_API = "rbac.authorization.k8s.io/v1"
_PARAM_REF = re.compile(r"^\s*\{\{\s*params\.(\w+)\s*\}\}\s*$")
_LITERAL_NS = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# (group, resource, subresource, verb): what RBAC actually distinguishes.
Key = tuple[str, str, str, str]


def key(p: Permission) -> Key:
    return (p.group, p.resource, p.subresource, p.verb)


@dataclass
class Grants:
    """Permissions per tier and scope (None: cluster-wide), with the runbooks that need each."""

    scopes: dict[tuple[str, str | None], dict[Key, set[str]]] = field(default_factory=dict)

    def add(self, tier: str, scope: str | None, perm: Permission, runbook: str) -> None:
        self.scopes.setdefault((tier, scope), {}).setdefault(key(perm), set()).add(runbook)

    def minimized(self) -> Grants:
        """Drops every grant another one already covers: cluster-wide beats a namespace, diagnose beats
        remediate. Removing any single remaining rule then takes away something some runbook needs."""
        out = Grants()
        cluster_diag = self.scopes.get((DIAGNOSE, None), {})
        for (tier, scope), perms in sorted(self.scopes.items(), key=lambda i: (i[0][0], i[0][1] or "")):
            covering: list[Mapping[Key, set[str]]] = []
            if scope is not None:
                covering += [self.scopes.get((tier, None), {}), cluster_diag if tier == REMEDIATE else {}]
            if tier == REMEDIATE:
                covering.append(self.scopes.get((DIAGNOSE, scope), {}) if scope is not None else cluster_diag)
            kept = {k: v for k, v in perms.items() if not any(k in c for c in covering)}
            if kept:
                out.scopes[(tier, scope)] = kept
        return out


def step_namespaces(runbook: Runbook, arg: Any, targets: tuple[str, ...]) -> tuple[str, ...] | None:
    """The namespaces a step's `namespace` argument can take, known before the run; None when any."""
    if isinstance(arg, str) and _LITERAL_NS.match(arg):
        return (arg,)
    match = _PARAM_REF.match(arg) if isinstance(arg, str) else None
    if match:
        param = runbook.params.get(match.group(1))
        if param is not None and param.type == "enum":
            return tuple(param.values)
    return targets or None


def collect(runbooks: Iterable[Runbook], registry: ActionRegistry, targets: tuple[str, ...] = ()) -> Grants:
    """The permissions the runbooks' steps need, per tier and scope, before minimization."""
    grants = Grants()
    for runbook in runbooks:
        for step in runbook.steps:
            action = registry.get(step.action)
            tier = REMEDIATE if action.kind == ActionKind.REMEDIATE else DIAGNOSE
            namespaces = step_namespaces(runbook, step.with_.get("namespace"), targets)
            for perm in step_needs(action, step.with_, step.permissions):
                for scope in (namespaces or (None,)) if perm.namespaced else (None,):
                    grants.add(tier, scope, perm, runbook.metadata.name)
    return grants


def rules(perms: Mapping[Key, set[str]]) -> list[dict[str, Any]]:
    """RBAC rules granting exactly `perms`: resources sharing a group and the same verbs share a rule, so
    each rule's resources x verbs product is needed in full."""
    by_resource: dict[tuple[str, str], set[str]] = {}
    for group, resource, sub, verb in perms:
        by_resource.setdefault((group, f"{resource}/{sub}" if sub else resource), set()).add(verb)
    merged: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (group, resource), verbs in sorted(by_resource.items()):
        merged.setdefault((group, tuple(sorted(verbs))), []).append(resource)
    return [{"apiGroups": [group], "resources": resources, "verbs": list(verbs)}
            for (group, verbs), resources in sorted(merged.items(), key=lambda i: (i[0][0], i[1]))]


def _meta(name: str, namespace: str | None = None, tier: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    meta["labels"] = {"app.kubernetes.io/name": "runbook", **({"runbook.dev/tier": tier} if tier else {})}
    return meta


def _binding(kind: str, name: str, ns: str | None, role_kind: str, sa: str, sa_ns: str, tier: str) -> dict[str, Any]:
    return {"apiVersion": RBAC_API, "kind": kind, "metadata": _meta(name, ns, tier),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": sa_ns}]}


def impersonation_rules(users: Iterable[str], groups: Iterable[str]) -> list[dict[str, Any]]:
    """`impersonate` on exactly the mapped users and groups, and SubjectAccessReviews to ask about them."""
    users, groups = sorted(set(users)), sorted(set(groups))
    out: list[dict[str, Any]] = [{"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"],
                                  "verbs": ["create"]}]
    if users:
        out.append({"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": users})
    if groups:
        out.append({"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"], "resourceNames": groups})
    return out


def generate(runbooks: Iterable[Runbook], registry: ActionRegistry, *, namespace: str = "runbook",
             service_account: str = "runbook", targets: tuple[str, ...] = (),
             impersonate: tuple[Iterable[str], Iterable[str]] = ((), ())) -> list[dict[str, Any]]:
    """ServiceAccount, Roles/ClusterRoles and their bindings for `runbooks`, in a stable order."""
    sa, runbooks = service_account, list(runbooks)
    users, groups = (list(x) for x in impersonate)
    as_approvers = bool(users or groups) and not any(r.policy.fallback_to_engine for r in runbooks)
    objects: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(sa, namespace)}]
    grants = collect(runbooks, registry, targets).minimized()
    for tier in (DIAGNOSE, REMEDIATE):
        name = f"{sa}-{tier}"
        for (t, scope), perms in sorted(grants.scopes.items(), key=lambda i: i[0][1] or ""):
            if t != tier:
                continue
            kind = "Role" if scope else "ClusterRole"
            objects.append({"apiVersion": RBAC_API, "kind": kind, "metadata": _meta(name, scope, tier),
                            "rules": rules(perms)})
            if not (tier == REMEDIATE and as_approvers):
                objects.append(_binding(f"{kind}Binding", name, scope, kind, sa, namespace, tier))
    if users or groups:
        name = f"{sa}-impersonate"
        objects.append({"apiVersion": RBAC_API, "kind": "ClusterRole", "metadata": _meta(name, None, "impersonate"),
                        "rules": impersonation_rules(users, groups)})
        objects.append(_binding("ClusterRoleBinding", name, None, "ClusterRole", sa, namespace, "impersonate"))
    return objects


def to_yaml(objects: Iterable[Mapping[str, Any]], header: str = "") -> str:
    """Multi-document YAML; `header` becomes leading comment lines."""
    lines = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return lines + "---\n".join(yaml.safe_dump(dict(o), sort_keys=False) for o in objects)


def remove_rule(objects: list[dict[str, Any]], index: int, rule: int) -> list[dict[str, Any]]:
    """A copy of `objects` without rule `rule` of role `objects[index]` (for proving each rule is needed)."""
    role = dict(objects[index])
    role["rules"] = [r for i, r in enumerate(role["rules"]) if i != rule]
    return [*objects[:index], role, *objects[index + 1:]]


def rule_keys(rule: Mapping[str, Any]) -> set[Key]:
    """The (group, resource, subresource, verb) combinations a generated rule grants."""
    out: set[Key] = set()
    for group in rule.get("apiGroups") or []:
        for resource in rule.get("resources") or []:
            res, _, sub = str(resource).partition("/")
            out.update((group, res, sub, verb) for verb in rule.get("verbs") or [])
    return out


def needs(runbook: Runbook, registry: ActionRegistry) -> set[Key]:
    """Every permission key `runbook`'s steps declare."""
    return {key(p) for step in runbook.steps
            for p in step_needs(registry.get(step.action), step.with_, step.permissions)}
