"""Fault injection: latency, error statuses, dropped connections, matched by path regex."""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field


@dataclass
class FaultRule:
    """One rule. ``times`` limits how many matching requests it hits; ``rate`` is a probability.

    ``after``: the request is handled first and the fault hits its answer (delayed, dropped or replaced),
    as when a change is applied but the response is lost on the way back.
    """

    path: re.Pattern[str]
    method: str | None = None
    latency: float = 0.0
    status: int | None = None
    retry_after: int | None = None
    drop: bool = False
    times: int | None = None
    rate: float = 1.0
    after: bool = False
    hits: int = field(default=0, init=False)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times


class Faults:
    """Thread-safe rule set; the first live matching rule wins (seeded, so runs repeat)."""

    def __init__(self, seed: int = 0) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def add(
        self,
        path: str = ".*",
        method: str | None = None,
        latency: float = 0.0,
        status: int | None = None,
        retry_after: int | None = None,
        drop: bool = False,
        times: int | None = None,
        rate: float = 1.0,
        after: bool = False,
    ) -> FaultRule:
        """Add a rule matching ``path`` (a regex searched in the URL path, without the query)."""
        rule = FaultRule(
            re.compile(path),
            method.upper() if method else None,
            latency,
            status,
            retry_after,
            drop,
            times,
            rate,
            after,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule: FaultRule) -> None:
        with self._lock:
            if rule in self._rules:
                self._rules.remove(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def match(self, method: str, path: str) -> FaultRule | None:
        """The rule to apply to this request, counting the hit; None when no fault applies."""
        with self._lock:
            for rule in self._rules:
                if rule.exhausted or (rule.method and rule.method != method.upper()):
                    continue
                if not rule.path.search(path):
                    continue
                if rule.rate < 1.0 and self._random.random() >= rule.rate:
                    continue
                rule.hits += 1
                return rule
        return None
