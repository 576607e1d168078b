"""Which Slack user groups a user belongs to, for approver and runner lists such as `S0ONCALL` or `@oncall`.

A configured mapping (group -> user ids) wins; otherwise `usergroups.users.list` is asked, with
`@handle` entries first resolved through `usergroups.list`. Answers are cached for `ttl` seconds so a
click is answered within Slack's 3 s; lookups that fail count as "not a member" (fail closed).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from integrations.slack.sender import NETWORK_ERRORS

log = logging.getLogger("runbook.slack")
LOOKUP_ERRORS: tuple[type[BaseException], ...] = (SlackApiError, *NETWORK_ERRORS)
_GROUP_ID = re.compile(r"^S[A-Z0-9]+$")


def is_group(entry: str) -> bool:
    return bool(_GROUP_ID.match(entry)) or entry.startswith("@")


class Directory:
    def __init__(self, client: WebClient | None, groups: Mapping[str, Iterable[str]] | None = None,
                 ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.static = {name: frozenset(members) for name, members in (groups or {}).items()}
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._handles: tuple[float, dict[str, str]] | None = None
        self._lock = threading.Lock()

    def groups_of(self, user: str, candidates: Iterable[str]) -> frozenset[str]:
        """The entries of `candidates` that are groups containing `user`."""
        return frozenset(g for g in candidates if is_group(g) and user in self.members(g))

    def members(self, group: str) -> frozenset[str]:
        if group in self.static:
            return self.static[group]
        if self.client is None:
            return frozenset()
        group_id = self._resolve(group) if group.startswith("@") else group
        if not group_id:
            return frozenset()
        now = self.clock()
        with self._lock:
            cached = self._cache.get(group_id)
        if cached and now - cached[0] < self.ttl:
            return cached[1]
        try:
            members = frozenset(self.client.usergroups_users_list(usergroup=group_id).get("users") or ())
        except LOOKUP_ERRORS as exc:
            log.warning("cannot list members of Slack user group %s: %s", group, exc)
            return cached[1] if cached else frozenset()
        with self._lock:
            self._cache[group_id] = (now, members)
        return members

    def _resolve(self, handle: str) -> str | None:
        now = self.clock()
        if self._handles is None or now - self._handles[0] >= self.ttl:
            if self.client is None:
                return None
            try:
                groups = self.client.usergroups_list().get("usergroups") or []
            except LOOKUP_ERRORS as exc:
                log.warning("cannot list Slack user groups to resolve %s: %s", handle, exc)
                return None
            self._handles = (now, {f"@{g.get('handle')}": str(g.get("id")) for g in groups})
        return self._handles[1].get(handle)
