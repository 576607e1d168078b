"""Authentication (bearer tokens, impersonation) and RBAC authorization over stored roles.

Evaluation follows the real RBAC authorizer: ClusterRoleBindings first, then RoleBindings in
the request namespace; the first matching rule allows; there are no deny rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import ApiError, forbidden, unauthorized
from .request import Target, UserInfo
from .resources import ResourceTable
from .store import Store

ADMIN = "admin"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
SA_PREFIX = "system:serviceaccount:"

# What the default ClusterRoleBindings of a real cluster grant every authenticated user.
BOOTSTRAP_RULES: tuple[tuple[str, dict[str, list[str]]], ...] = (
    (
        "system:basic-user",
        {
            "apiGroups": ["authorization.k8s.io"],
            "verbs": ["create"],
            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
        },
    ),
    (
        "system:basic-user",
        {"apiGroups": ["authentication.k8s.io"], "verbs": ["create"], "resources": ["selfsubjectreviews"]},
    ),
    (
        "system:discovery",
        {
            "verbs": ["get"],
            "nonResourceURLs": [
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
            ],
        },
    ),
)


@dataclass(frozen=True)
class Attributes:
    """What a request wants to do, as SubjectAccessReview resourceAttributes spell it."""

    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # non-resource URL

    @classmethod
    def from_target(cls, verb: str, target: Target) -> Attributes:
        rt = target.rt
        return cls(
            verb,
            target.group,
            rt.plural if rt else "",
            target.subresource or "",
            target.namespace or "",
            target.name or "",
        )

    @classmethod
    def from_review(cls, spec: Mapping[str, object]) -> Attributes:
        ra = spec.get("resourceAttributes")
        if isinstance(ra, Mapping):
            return cls(
                str(ra.get("verb") or ""),
                str(ra.get("group") or ""),
                str(ra.get("resource") or ""),
                str(ra.get("subresource") or ""),
                str(ra.get("namespace") or ""),
                str(ra.get("name") or ""),
            )
        nra = spec.get("nonResourceAttributes")
        if isinstance(nra, Mapping):
            return cls(str(nra.get("verb") or ""), path=str(nra.get("path") or ""))
        return cls("")


def user_for(name: str, groups: Iterable[str] = ()) -> UserInfo:
    """A UserInfo with the groups the real authenticators would add."""
    all_groups = list(groups)
    if name.startswith(SA_PREFIX):
        ns = name[len(SA_PREFIX) :].split(":")[0]
        all_groups += ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]
    if name == ADMIN and MASTERS not in all_groups:
        all_groups.append(MASTERS)
    if AUTHENTICATED not in all_groups:
        all_groups.append(AUTHENTICATED)
    return UserInfo(name, tuple(dict.fromkeys(all_groups)))


class Authorizer:
    """RBAC evaluator; with ``enabled=False`` everything is allowed."""

    def __init__(
        self,
        store: Store,
        table: ResourceTable,
        enabled: bool = False,
        tokens: Mapping[str, str | UserInfo] | None = None,
    ) -> None:
        self.store = store
        self.table = table
        self.enabled = enabled
        self.tokens: dict[str, UserInfo] = {
            tok: (u if isinstance(u, UserInfo) else user_for(u)) for tok, u in (tokens or {}).items()
        }

    # -- authentication ----------------------------------------------------------------------
    def authenticate(
        self, authorization: str, imp_user: str = "", imp_groups: Iterable[str] = ()
    ) -> UserInfo:
        token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
        user = self.tokens.get(token)
        if user is None:
            if self.enabled:
                raise unauthorized()
            user = user_for(ADMIN)
        if not imp_user:
            return user
        groups = list(imp_groups)
        if imp_user.startswith(SA_PREFIX):
            ns, _, sa = imp_user[len(SA_PREFIX) :].partition(":")
            self._require(user, Attributes("impersonate", "", "serviceaccounts", "", ns, sa))
        else:
            self._require(user, Attributes("impersonate", "", "users", "", "", imp_user))
        for group in groups:
            self._require(user, Attributes("impersonate", "", "groups", "", "", group))
        return user_for(imp_user, groups)

    # -- authorization -----------------------------------------------------------------------
    def require(self, user: UserInfo, verb: str, target: Target) -> None:
        self._require(user, Attributes.from_target(verb, target))

    def _require(self, user: UserInfo, attrs: Attributes) -> None:
        allowed, _ = self.allowed(user, attrs)
        if not allowed:
            raise self.denial(user, attrs)

    @staticmethod
    def denial(user: UserInfo, attrs: Attributes) -> ApiError:
        return forbidden(
            user.name, attrs.verb, attrs.resource, attrs.group, attrs.namespace, attrs.name, attrs.subresource
        )

    def allowed(self, user: UserInfo, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason) like the RBAC authorizer's decision for SubjectAccessReviews."""
        if not self.enabled or user.name == ADMIN or MASTERS in user.groups:
            return True, ""
        if AUTHENTICATED in user.groups:
            for role, rule in BOOTSTRAP_RULES:
                if rule_matches(rule, attrs):
                    return True, (
                        f'RBAC: allowed by ClusterRoleBinding "{role}" of ClusterRole "{role}" to Group '
                        f'"{AUTHENTICATED}"'
                    )
        crb_rt = self.table.lookup("clusterrolebindings.rbac.authorization.k8s.io")
        rb_rt = self.table.lookup("rolebindings.rbac.authorization.k8s.io")
        for binding in self.store.list(crb_rt)[0]:
            subject = self._matching_subject(binding, user, "")
            if subject and self._role_allows(binding, "", attrs):
                return True, self._reason("ClusterRoleBinding", binding, "", subject)
        if attrs.namespace:
            for binding in self.store.list(rb_rt, attrs.namespace)[0]:
                subject = self._matching_subject(binding, user, attrs.namespace)
                if subject and self._role_allows(binding, attrs.namespace, attrs):
                    return True, self._reason("RoleBinding", binding, attrs.namespace, subject)
        return False, ""

    @staticmethod
    def _reason(kind: str, binding: dict, ns: str, subject: dict) -> str:
        name = binding["metadata"]["name"]
        ref = binding.get("roleRef") or {}
        bname = f"{name}/{ns}" if ns else name
        sname = subject.get("name", "")
        if subject.get("kind") == "ServiceAccount":
            sname = f"{sname}/{subject.get('namespace') or ns}"
        return (
            f'RBAC: allowed by {kind} "{bname}" of {ref.get("kind")} "{ref.get("name")}" to '
            f'{subject.get("kind")} "{sname}"'
        )

    @staticmethod
    def _matching_subject(binding: dict, user: UserInfo, ns: str) -> dict | None:
        for subject in binding.get("subjects") or []:
            kind, name = subject.get("kind"), subject.get("name")
            if (kind == "User" and name == user.name) or (kind == "Group" and name in user.groups):
                return dict(subject)
            if kind == "ServiceAccount":
                sa_ns = subject.get("namespace") or ns
                if user.name == f"{SA_PREFIX}{sa_ns}:{name}":
                    return dict(subject)
        return None

    def _role_allows(self, binding: dict, ns: str, attrs: Attributes) -> bool:
        ref = binding.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole":
            role = self.store.get(
                self.table.lookup("clusterroles.rbac.authorization.k8s.io"), None, str(ref.get("name"))
            )
        else:
            role = self.store.get(
                self.table.lookup("roles.rbac.authorization.k8s.io"), ns, str(ref.get("name"))
            )
        if role is None:
            return False
        return any(rule_matches(rule, attrs) for rule in role.get("rules") or [])


def rule_matches(rule: Mapping[str, object], attrs: Attributes) -> bool:
    verbs = rule.get("verbs") or []
    if not isinstance(verbs, list) or not ("*" in verbs or attrs.verb in verbs):
        return False
    if attrs.path and not attrs.resource:
        urls = rule.get("nonResourceURLs") or []
        return isinstance(urls, list) and any(
            u == "*" or u == attrs.path or (u.endswith("*") and attrs.path.startswith(u[:-1])) for u in urls
        )
    groups = rule.get("apiGroups") or []
    if not isinstance(groups, list) or not ("*" in groups or attrs.group in groups):
        return False
    resources = rule.get("resources") or []
    if not isinstance(resources, list):
        return False
    if attrs.subresource:
        wanted = f"{attrs.resource}/{attrs.subresource}"
        ok = any(r in ("*", wanted, f"*/{attrs.subresource}", f"{attrs.resource}/*") for r in resources)
    else:
        ok = "*" in resources or attrs.resource in resources
    if not ok:
        return False
    names = rule.get("resourceNames") or []
    return not names or (bool(attrs.name) and isinstance(names, list) and attrs.name in names)
