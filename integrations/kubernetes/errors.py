"""Translate API server answers into the engine's error tree, with messages an on-call engineer can act on.

The server's own messages are precise but written for API clients (`User "system:serviceaccount:ops:runbook"
cannot patch resource "nodes" in API group "" at the cluster scope`); at 3 a.m. what helps is
`forbidden: service account runbook cannot patch nodes; grant nodes/patch`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    OutcomeUnknown,
    PermanentError,
    StepError,
    TransientError,
)
from engine.redaction import redact
from integrations.kubernetes.objects import singular

_VERBS = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}
_KINDS = {"cronjobs": "CronJob", "statefulsets": "StatefulSet", "daemonsets": "DaemonSet",
          "replicasets": "ReplicaSet", "configmaps": "ConfigMap", "poddisruptionbudgets": "PodDisruptionBudget"}

_FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>[\w-]+) resource "(?P<resource>[^"]*)"'
    r' in API group "(?P<group>[^"]*)"(?: in the namespace "(?P<ns>[^"]*)")?'
)


class EvictionBlocked(TransientError):
    """An eviction was refused with 429 because a PodDisruptionBudget allows no disruption now."""

    def __init__(self, message: str, budget: str | None = None) -> None:
        super().__init__(message, retry_after=None)
        self.budget = budget


@dataclass(frozen=True)
class Target:
    """What a request path addresses, for messages when the server says little."""

    group: str
    resource: str
    namespace: str
    name: str
    subresource: str


def parse_path(path: str) -> Target:
    """Split `/apis/batch/v1/namespaces/ns/cronjobs/x/status` into its parts."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    group = ""
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return Target("", path, "", "", "")
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    return Target(group, resource, namespace, name, sub)


def verb_for(method: str, target: Target) -> str:
    if method == "GET":
        return "get" if target.name else "list"
    if method == "DELETE" and not target.name:
        return "deletecollection"
    return _VERBS.get(method, method.lower())


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """The `Retry-After` header in seconds (only the delta form; the API server never sends dates)."""
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def status_body(body: bytes | str | None) -> dict[str, Any]:
    """The `Status` object the server sends with errors, or {} when the body is not one."""
    if not body:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def describe_user(user: str) -> str:
    """`system:serviceaccount:ops:runbook` -> `service account runbook`, else `user "alice"`."""
    if user.startswith("system:serviceaccount:"):
        parts = user.split(":")
        if len(parts) == 4:
            return f"service account {parts[3]}"
    return f'user "{user}"'


def permission_name(resource: str, group: str, verb: str) -> str:
    """How the report names a missing permission: `nodes/patch`, `cronjobs.batch/patch`, `pods/eviction/create`."""
    base, _, sub = resource.partition("/")
    qualified = f"{base}.{group}" if group else base
    if sub:
        qualified = f"{qualified}/{sub}"
    return f"{qualified}/{verb}"


def forbidden(message: str, method: str, target: Target) -> ForbiddenError:
    match = _FORBIDDEN.search(message)
    if match:
        user, verb, resource = match["user"], match["verb"], match["resource"]
        group, namespace = match["group"], match["ns"] or ""
    else:
        user, verb, group, namespace = "", verb_for(method, target), target.group, target.namespace
        resource = f"{target.resource}/{target.subresource}" if target.subresource else target.resource
    perm = permission_name(resource, group, verb)
    who = describe_user(user) if user else "the runbook identity"
    where = f' in namespace "{namespace}"' if namespace else ""
    text = f"forbidden: {who} cannot {verb} {resource}{where}; grant {perm}{where}"
    if user.startswith("system:serviceaccount:"):
        text += f" (user {user})"
    return ForbiddenError(text, permission=perm)


def not_found(status: dict[str, Any], target: Target) -> NotFoundError:
    details = status.get("details") or {}
    kind = singular(str(details.get("kind") or target.resource or "object"))
    name = str(details.get("name") or target.name)
    if target.subresource == "log" or not name:
        return NotFoundError(redact(str(status.get("message") or f"{target.resource} not found")))
    where = f' in namespace "{target.namespace}"' if target.namespace else ""
    return NotFoundError(f'{kind} "{name}" not found{where}')


def invalid(status: dict[str, Any], target: Target) -> InvalidError:
    details = status.get("details") or {}
    causes = [c for c in details.get("causes") or [] if isinstance(c, dict)]
    kind = singular(str(details.get("kind") or target.resource))
    name = details.get("name") or target.name
    if causes:
        fields = "; ".join(f"{c.get('field') or '?'}: {c.get('message') or c.get('reason')}" for c in causes)
        return InvalidError(redact(f'{kind} "{name}" is invalid: {fields}'))
    return InvalidError(redact(str(status.get("message") or f'{kind} "{name}" is invalid')))


def from_response(
    code: int, body: bytes | str | None, headers: Mapping[str, str] | None, method: str, path: str, server: str
) -> StepError:
    """The engine error for a non-2xx answer."""
    status = status_body(body)
    message = str(status.get("message") or "")
    target = parse_path(path)
    if code == 404:
        return not_found(status, target)
    if code == 403:
        return forbidden(message, method, target)
    if code == 409:
        return ConflictError(redact(message or f"conflict on {path}"))
    if code == 422:
        return invalid(status, target)
    if code == 401:
        return PermanentError(
            f"unauthorized: the API server at {server} rejected the credentials (expired or invalid token)"
        )
    if code == 410:
        return TransientError(redact(f"{method} {path}: {message or 'resource version expired'}; re-list"))
    if code == 429 or code >= 500:
        reason = message or f"HTTP {code}"
        return TransientError(
            redact(f"the API server at {server} answered {code} to {method} {path}: {reason}"),
            retry_after=retry_after(headers),
        )
    return PermanentError(redact(f"{method} {path} failed with HTTP {code}: {message or 'no message'}"))


def failure_status(
    body: bytes, code: int, method: str, path: str, server: str
) -> StepError | None:
    """The error a 2xx answer carries in a `Status` body with `status: Failure`, else None.

    The eviction subresource answers 201 with such a body when two PodDisruptionBudgets cover the pod
    (kubernetes pkg/registry/core/pod/storage/eviction.go, `EvictionREST.Create`): nothing was evicted.
    """
    if len(body) > 65536 or b'"Failure"' not in body:  # cheap: lists and objects never get parsed twice
        return None
    status = status_body(body)
    if status.get("kind") != "Status" or status.get("status") != "Failure":
        return None
    inner = status.get("code")
    if isinstance(inner, int) and 400 <= inner < 500:
        return from_response(inner, body, None, method, path, server)
    message = str(status.get("message") or status.get("reason") or "no message")
    return PermanentError(redact(f"{method} {path} was refused: the API server at {server} answered {code} "
                                 f"with a Failure Status: {message}"))


def what_to_check(path: str) -> str:
    """`/api/v1/nodes/node-a` -> `Node node-a`; a collection -> `jobs in namespace billing`."""
    target = parse_path(path)
    if not target.name:
        where = f" in namespace {target.namespace}" if target.namespace else ""
        return f"{target.resource}{where}"
    kind = _KINDS.get(target.resource) or singular(target.resource).capitalize()
    name = f"{target.namespace}/{target.name}" if target.namespace else target.name
    return f"{kind} {name}" + (f" ({target.subresource})" if target.subresource else "")


def outcome_unknown(method: str, path: str, cause: str, check: str | None = None) -> OutcomeUnknown:
    """A change was sent and no answer says whether it took effect."""
    check = check or what_to_check(path)
    return OutcomeUnknown(redact(f"{method} {path} was sent but {cause}; effect unknown: check {check}"), check)


def judge(
    code: int, body: bytes, headers: Mapping[str, str], method: str, path: str, server: str, *,
    allow: tuple[int, ...], once: bool,
) -> TransientError | None:
    """None when the answer is to be returned, the error when the request may be sent again; raises the
    rest. `once`: the request is a change, so a 5xx (it may have been applied) is `OutcomeUnknown`."""
    if 200 <= code < 300:
        failure = failure_status(body, code, method, path, server)
        if failure is not None:  # e.g. an eviction answered 201 with a Failure Status: not done
            raise failure
        return None
    if code in allow:
        return None
    error = from_response(code, body, headers, method, path, server)
    if once and code >= 500:
        raise outcome_unknown(method, path, f"the server answered {code}: {error}")
    if not (isinstance(error, TransientError) and (code == 429 or code >= 500)):
        raise error
    return error


def unreachable(server: str, reason: str) -> TransientError:
    return TransientError(f"the API server at {server} is unreachable: {reason}")


def timed_out(server: str, method: str, path: str, seconds: float) -> TransientError:
    return TransientError(f"the API server at {server} did not answer {method} {path} within {seconds:.1f}s")


def eviction_blocked(status: dict[str, Any], pod: str) -> EvictionBlocked:
    """A 429 from the eviction subresource: name the budget when the server does."""
    causes = (status.get("details") or {}).get("causes") or []
    texts = [str(c.get("message", "")) for c in causes if isinstance(c, dict)]
    budget = None
    for text in texts:
        found = re.search(r"disruption budget (\S+)", text)
        if found:
            budget = found.group(1)
    detail = "; ".join(t for t in texts if t) or str(status.get("message") or "disruption budget")
    return EvictionBlocked(redact(f"eviction of pod {pod} refused: {detail}"), budget=budget)
