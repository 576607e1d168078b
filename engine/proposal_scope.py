"""What the dry-runs that build one proposal share: each access review and each object read, asked once.

A proposal is the step's own dry-run plus the previews of the later remediations (engine/plan.py), made one
after the other within a few milliseconds and none of them changing anything. Asking the API server the same
question twice in that span only costs requests, and one answer per question also gives the approver one
consistent picture. The scope is opened per proposal and never reaches a step that executes a change: the
approver's own access review at approval time and every read a change is based on stay fresh.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass, field

from engine.actions import Identity, Permission, PermissionChecker

MAX_SHARED_READS = 256  # objects one proposal remembers; past that, reads simply go to the server


class SharedReads:
    """Objects already read by one proposal's dry-runs, by key (the integration's: e.g. identity and path).

    A value is served only to another step than the one that read it: a step that reads an object twice
    (polling, a re-read after a lost answer) always reaches the server. Values must be immutable (bytes)."""

    def __init__(self, limit: int = MAX_SHARED_READS) -> None:
        self._seen: dict[Hashable, tuple[str, object]] = {}
        self._limit = limit
        self._lock = threading.Lock()  # an abandoned (timed-out) dry-run may still write from its worker

    def get(self, key: Hashable, reader: str) -> object | None:
        with self._lock:
            entry = self._seen.get(key)
        if entry is None or entry[0] == reader:
            return None
        return entry[1]

    def put(self, key: Hashable, reader: str, value: object) -> None:
        with self._lock:
            if key in self._seen or len(self._seen) < self._limit:
                self._seen[key] = (reader, value)


class ReviewMemo:
    """A `PermissionChecker` asking `checker` once per distinct question within one proposal.

    The question is (permission, namespace, identity); a permission that is not namespaced is reviewed
    cluster-wide whatever namespace the step names (the checker's contract), so its namespace is not part
    of the question."""

    def __init__(self, checker: PermissionChecker) -> None:
        self._checker = checker
        self._answers: dict[tuple[Permission, str | None, Identity | None], bool] = {}

    def missing(
        self, permissions: tuple[Permission, ...], namespace: str | None, identity: Identity | None
    ) -> list[Permission]:
        wanted = list(dict.fromkeys(permissions))
        unknown = [p for p in wanted if _question(p, namespace, identity) not in self._answers]
        if unknown:
            lacking = set(self._checker.missing(tuple(unknown), namespace, identity))
            for permission in unknown:
                self._answers[_question(permission, namespace, identity)] = permission not in lacking
        return [p for p in wanted if not self._answers[_question(p, namespace, identity)]]


def _question(
    permission: Permission, namespace: str | None, identity: Identity | None
) -> tuple[Permission, str | None, Identity | None]:
    return permission, namespace if permission.namespaced else None, identity


@dataclass
class ProposalScope:
    """Opened for one proposal: the checker its dry-runs ask (memoised) and the reads they share."""

    checker: PermissionChecker | None
    reads: SharedReads = field(default_factory=SharedReads)

    @classmethod
    def open(cls, checker: PermissionChecker | None) -> ProposalScope:
        return cls(ReviewMemo(checker) if checker is not None else None)
