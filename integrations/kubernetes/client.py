"""`Kube`: a thin, bounded, retrying client over the official `kubernetes` package's HTTP layer.

Actions want plain dicts, predictable request counts and errors that say what to do, so this client
skips the generated model classes: requests go through `ApiClient.call_api` (which applies the
kubeconfig's TLS and token handling) and bodies are `json.loads`-ed. Every call is bounded by a per-call
timeout and by the step's deadline. Reads are retried after 429, 5xx and connection failures, with
exponential backoff honouring `Retry-After`, then surface as `TransientError`. Changes are sent at most
once: only a 429, a 401 (after fresh credentials) or a connection never opened lets one be sent again;
any other failure after sending raises `OutcomeUnknown` so the caller re-reads (see `once.py`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode

import urllib3
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from urllib3 import HTTPHeaderDict

from engine.actions import Authorized, Identity
from engine.errors import PermanentError, StepTimeout, TransientError
from engine.proposal_scope import SharedReads
from integrations.kubernetes import credentials, errors
from integrations.kubernetes.credentials import Refresh
from integrations.kubernetes.objects import path as api_path
from integrations.kubernetes.transport import Policy, RequestCounter, Response, ServerClock, is_read, reason

PATCH_TYPES = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
FIELD_MANAGER = "runbook"
# Never keep anything that can carry secret values, even from a metadata-only answer.
_SECRET_CARRIERS = ("data", "stringData", "spec", "status")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class HasDeadline(Protocol):
    step: str
    deadline: float
    identity: Identity | None
    reads: SharedReads | None
    authorized: set[Authorized] | None


class Kube:
    """A Kubernetes API client returning plain dicts. Build it with one of the `from_*` constructors.

    `as_user`, `with_deadline` and `for_context` return views sharing the connection pool and the
    request counter, so an action can act as the run's identity within its step's deadline.
    """

    def __init__(
        self,
        api: ApiClient,
        *,
        policy: Policy | None = None,
        impersonate: tuple[str, tuple[str, ...]] | None = None,
        deadline: float | None = None,
        counter: RequestCounter | None = None,
        clock: ServerClock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        refresh: Refresh | None = None,
        shared: tuple[SharedReads, str] | None = None,
        authorized: set[Authorized] | None = None,
    ) -> None:
        self.api = api
        self.policy = policy or Policy()
        self.impersonate = impersonate
        self.deadline = deadline
        self._counter = counter or RequestCounter()
        self._clock = clock or ServerClock()
        self._sleep = sleep
        self._refresh = refresh  # fresh credentials after a 401 (see credentials.py)
        self._shared = shared  # one proposal's object reads, and which step reads (see `_read`)
        self._authorized = authorized  # a dry-run's requests the server let through (see `_let_through`)

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def from_configuration(cls, cfg: Configuration, **kwargs: Any) -> Kube:
        cfg.retries = False  # urllib3 must not retry behind our back: retries are counted and bounded here
        return cls(ApiClient(cfg), **kwargs)

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None, **kwargs: Any) -> Kube:
        """From a kubeconfig; a 401 runs its exec plugin (or re-reads its token file) again."""
        cfg, refresh = credentials.from_kubeconfig(path, context)
        kwargs.setdefault("refresh", refresh)
        return cls.from_configuration(cfg, **kwargs)

    @classmethod
    def in_cluster(cls, **kwargs: Any) -> Kube:
        """From the pod's service account; a 401 re-reads the (rotated) token file."""
        cfg, refresh = credentials.in_cluster()
        kwargs.setdefault("refresh", refresh)
        return cls.from_configuration(cfg, **kwargs)

    @classmethod
    def from_url(
        cls, url: str, token: str | None = None, *, ca_file: str | None = None, verify_ssl: bool = True, **kwargs: Any
    ) -> Kube:
        cfg = Configuration(host=url.rstrip("/"))
        if token:
            cfg.api_key = {"authorization": token}
            cfg.api_key_prefix = {"authorization": "Bearer"}
        cfg.ssl_ca_cert = ca_file
        cfg.verify_ssl = verify_ssl
        return cls.from_configuration(cfg, **kwargs)

    def _view(self, **changes: Any) -> Kube:
        values: dict[str, Any] = {
            "policy": self.policy,
            "impersonate": self.impersonate,
            "deadline": self.deadline,
            "counter": self._counter,
            "clock": self._clock,
            "sleep": self._sleep,
            "refresh": self._refresh,
            "shared": self._shared,
            "authorized": self._authorized,
        }
        values.update(changes)
        return Kube(self.api, **values)

    def as_user(self, user: str, groups: tuple[str, ...] | list[str] = ()) -> Kube:
        """A view sending `Impersonate-User`/`Impersonate-Group`, so RBAC applies to the requester."""
        return self._view(impersonate=(user, tuple(groups)))

    def with_deadline(self, deadline: float | None) -> Kube:
        return self._view(deadline=deadline)

    def with_policy(self, **changes: Any) -> Kube:
        return self._view(policy=replace(self.policy, **changes))

    def for_context(self, ctx: HasDeadline) -> Kube:
        """The view an action uses: bounded by the step deadline, impersonating `ctx.identity` if set,
        sharing single-object reads with the other dry-runs of one proposal when `ctx.reads` is set, and
        noting in `ctx.authorized` (when set) what the cluster authorized."""
        view = self._view(deadline=ctx.deadline, shared=(ctx.reads, ctx.step) if ctx.reads is not None else None,
                          authorized=ctx.authorized)
        return view.as_user(ctx.identity.user, ctx.identity.groups) if ctx.identity else view

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> Kube:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def server(self) -> str:
        return str(self.api.configuration.host)

    @property
    def request_count(self) -> int:
        return self._counter.value

    def now(self) -> datetime:
        """The API server's current time (see `ServerClock`)."""
        return self._clock.now()

    # -- generic verbs ------------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return (self._read(path) if params is None else self.request("GET", path, params=params)).json()

    def get_or_none(self, path: str) -> dict[str, Any] | None:
        """GET that answers None for 404, for objects whose absence is itself a finding."""
        response = self._read(path, allow=(404,))
        return None if response.status == 404 else response.json()

    def _read(self, path: str, allow: tuple[int, ...] = ()) -> Response:
        """GET one object. Within one proposal's dry-runs, an object another step already read (as the same
        user, on this server) is not asked again; the answer's bytes are kept, so each caller parses its own."""
        if self._shared is None:
            return self.request("GET", path, allow=allow)
        reads, step = self._shared
        key = (self.server, self.impersonate, path)
        data = reads.get(key, step)
        if isinstance(data, bytes):
            self._let_through("GET", path, None)  # read as this same user, moments ago
            return Response(200, {}, data)
        response = self.request("GET", path, allow=allow)
        if response.status == 200:
            reads.put(key, step, response.data)
        return response

    def get_metadata(self, path: str) -> dict[str, Any] | None:
        """Metadata only (None when absent): for Secrets, values must never be read, logged or shown."""
        response = self.request("GET", path, accept=METADATA_ONLY, allow=(404,))
        if response.status == 404:
            return None
        obj = response.json()
        for key in _SECRET_CARRIERS:
            obj.pop(key, None)
        metadata = obj.get("metadata") or {}
        metadata.pop("managedFields", None)
        (metadata.get("annotations") or {}).pop(_LAST_APPLIED, None)
        return obj

    def names(self, path: str, limit: int = 500) -> list[str]:
        """Names in a collection, asked for as metadata only: a real server then sends no Secret values,
        and whatever a server sends anyway is dropped here at once."""
        response = self.request("GET", path, {"limit": limit}, accept=METADATA_LIST)
        return [str((item.get("metadata") or {}).get("name")) for item in response.json().get("items") or []]

    def list(
        self,
        path: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """All items of a collection (at most `limit`), paging with `limit`/`continue`."""
        return list(self.iter_list(path, label_selector, field_selector, limit))

    def iter_list(
        self,
        path: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        seen, token = 0, None
        while True:
            page = self.policy.page_size if limit is None else min(self.policy.page_size, limit - seen)
            params = {"labelSelector": label_selector, "fieldSelector": field_selector, "limit": page,
                      "continue": token}
            body = self.get(path, params)
            for item in body.get("items") or []:
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return

    def create(self, path: str, body: Mapping[str, Any], dry_run: bool = False) -> dict[str, Any]:
        params = {"dryRun": "All" if dry_run else None, "fieldManager": FIELD_MANAGER}
        return self.request("POST", path, params=params, body=dict(body)).json()

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST for virtual resources (access reviews) that have no dry-run and change nothing."""
        return self.request("POST", path, body=dict(body), idempotent=True).json()

    def patch(
        self, path: str, body: Any, patch_type: str = "strategic", dry_run: bool = False
    ) -> dict[str, Any]:
        params = {"dryRun": "All" if dry_run else None, "fieldManager": FIELD_MANAGER}
        return self.request("PATCH", path, params=params, body=body, content_type=PATCH_TYPES[patch_type]).json()

    def delete(
        self,
        path: str,
        propagation: str | None = None,
        grace_period: int | None = None,
        dry_run: bool = False,
        preconditions: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if propagation:
            options["propagationPolicy"] = propagation
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        if dry_run:
            options["dryRun"] = ["All"]
        if preconditions:
            options["preconditions"] = dict(preconditions)
        return self.request("DELETE", path, params={"dryRun": "All" if dry_run else None}, body=options).json()

    def evict(
        self, namespace: str, name: str, dry_run: bool = False, grace_period: int | None = None,
        preconditions: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Evict through policy/v1, so PodDisruptionBudgets apply; a budget refusal raises `EvictionBlocked`.

        Budget refusals are not retried here: the drain decides how long to keep trying.
        """
        options: dict[str, Any] = {"dryRun": ["All"]} if dry_run else {}
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        if preconditions:
            options["preconditions"] = dict(preconditions)
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
            "deleteOptions": options,
        }
        target = api_path("pods", name, namespace, "eviction")
        response = self.request("POST", target, params={"dryRun": "All" if dry_run else None}, body=body, allow=(429,))
        if response.status == 429:
            status = errors.status_body(response.data)
            text = json.dumps(status).lower()
            if "disruption budget" in text or "disruptionbudget" in text:
                raise errors.eviction_blocked(status, f"{namespace}/{name}")
            raise errors.from_response(429, response.data, response.headers, "POST", target, self.server)
        return response.json()

    def log(
        self,
        namespace: str,
        pod: str,
        container: str | None = None,
        previous: bool = False,
        tail_lines: int = 50,
        limit_bytes: int = 64 * 1024,
    ) -> str | None:
        """The container log tail (unredacted: callers redact), or None when there is none to show."""
        params = {
            "container": container,
            "previous": "true" if previous else None,
            "tailLines": tail_lines,
            "limitBytes": limit_bytes,
        }
        response = self.request(
            "GET", api_path("pods", pod, namespace, "log"), params=params, accept="text/plain", allow=(400, 404)
        )
        if response.status in (400, 404):
            return None  # e.g. "previous terminated container not found": no log is an answer, not an error
        return response.data.decode("utf-8", errors="replace")

    # -- transport ----------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = "application/json",
        allow: tuple[int, ...] = (),
        idempotent: bool | None = None,
    ) -> Response:
        """One API call with timeout, bounded retries and translated errors.

        Statuses in `allow` are returned instead of raised. A change (any write without `dryRun=All`,
        unless `idempotent`) is sent at most once: it is sent again only when the server refused it
        before handling it (429; 401, after fresh credentials) or no connection was opened. After a lost
        connection, a timeout or a 5xx it raises `OutcomeUnknown`: the caller re-reads the target.
        """
        query = urlencode([(k, v) for k, v in (params or {}).items() if v is not None])
        url = f"{self.server}{path}{'?' + query if query else ''}"
        once = not (idempotent if idempotent is not None else is_read(method, params))
        attempt, refreshed = 0, False
        while True:
            attempt += 1
            outcome = self._attempt(method, url, path, body, content_type, accept, once)
            if isinstance(outcome, Response):
                if outcome.status == 401 and not refreshed and self._refresh is not None:
                    refreshed = True  # refused before it was handled: safe to send again, once
                    if self._refresh(self.api.configuration):
                        attempt -= 1
                        continue
                judged = errors.judge(outcome.status, outcome.data, outcome.headers, method, path,
                                      self.server, allow=allow, once=once)
                if judged is None:
                    if 200 <= outcome.status < 300:
                        self._let_through(method, path, params)
                    return outcome
                outcome = judged
            retry_after = outcome.retry_after
            delay = retry_after if retry_after is not None else self._backoff(attempt)
            if attempt >= self.policy.attempts or not self._fits(delay):
                outcome.retry_after = delay if retry_after is not None else self._backoff(attempt)
                raise outcome
            self._sleep(delay)

    def _let_through(self, method: str, path: str, params: Mapping[str, Any] | None) -> None:
        """Notes that the authorizer let this request through, so its permission needs no access review."""
        if self._authorized is None or (params and params.get("watch")):
            return
        target = errors.parse_path(path)
        self._authorized.add(Authorized(target.group, target.resource, target.subresource,
                                        errors.verb_for(method, target), target.namespace or None))

    def _attempt(
        self, method: str, url: str, path: str, body: Any, content_type: str | None, accept: str, once: bool
    ) -> Response | TransientError:
        """Send once: the answer, or the error of a failure worth another try. Raises the rest; for a change
        whose effect a failure leaves unknown, that is `OutcomeUnknown`."""
        timeout, bounded = self._timeout(method, path)
        try:
            return self._send(method, url, path, body, content_type, accept, timeout)
        except urllib3.exceptions.ConnectTimeoutError as exc:  # incl. refused: nothing was sent
            return errors.unreachable(self.server, reason(exc))
        except urllib3.exceptions.TimeoutError as exc:
            waited = "the step deadline" if bounded else f"{timeout:.1f}s"
            if once:
                raise errors.outcome_unknown(method, path, f"no answer came within {waited}") from exc
            if bounded:
                raise StepTimeout(f"step deadline reached while waiting for {method} {path}") from exc
            return errors.timed_out(self.server, method, path, timeout)
        except urllib3.exceptions.HTTPError as exc:
            if once:
                raise errors.outcome_unknown(method, path, f"the connection failed: {reason(exc)}") from exc
            return errors.unreachable(self.server, reason(exc))

    def _send(
        self,
        method: str,
        url: str,
        path: str,
        body: Any,
        content_type: str | None,
        accept: str,
        timeout: float,
    ) -> Response:
        plain: dict[str, Any] = {"Accept": accept, **self.api.default_headers}
        if body is not None:
            plain["Content-Type"] = content_type or "application/json"
        self.api.update_params_for_auth(plain, [], ["BearerToken"], path, method, body)
        headers = HTTPHeaderDict(plain)
        if self.impersonate:
            user, groups = self.impersonate
            headers["Impersonate-User"] = user
            for group in groups:
                headers.add("Impersonate-Group", group)
        self._counter.bump()
        try:
            raw = self.api.call_api(
                method,
                url,
                header_params=headers,
                body=body,
                _request_timeout=(min(self.policy.connect_timeout, timeout), timeout),
            )
            data = raw.read()  # type: ignore[no-untyped-call]
        except ApiException as exc:  # the REST layer reports TLS failures this way (status 0)
            raise PermanentError(f"cannot talk to the API server at {self.server}: {exc.reason}") from exc
        response = Response(raw.status, dict(raw.headers or {}), data or b"")
        self._clock.observe(response.headers.get("Date") or response.headers.get("date"), time.time())
        return response

    def _timeout(self, method: str, path: str) -> tuple[float, bool]:
        """The timeout for the next attempt and whether the step deadline (not the policy) set it."""
        timeout = self.policy.call_timeout
        if self.deadline is None:
            return timeout, False
        remaining = self.deadline - time.monotonic()
        if remaining <= 0.05:
            raise StepTimeout(f"step deadline reached before {method} {path}")
        return (remaining, True) if remaining < timeout else (timeout, False)

    def _backoff(self, attempt: int) -> float:
        return float(min(self.policy.max_backoff, self.policy.backoff * 2 ** (attempt - 1)))

    def _fits(self, delay: float) -> bool:
        return self.deadline is None or time.monotonic() + delay < self.deadline - 0.05
