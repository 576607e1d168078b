"""A real Alertmanager HA pair on loopback, for the replica tests: two processes gossiping as one cluster.

Modelled on the usual production set-up: Prometheus sends every alert to every Alertmanager, and each
Alertmanager notifies the runbook Service, which hands each request to some replica. Here the Service's
choice is fixed so that a test knows who got what: member i notifies `webhook_urls[i]` (replica i), and
every replica hears from both members. Both members share the receiver's name, so their notification
logs are one (gossiped): a member skips a group the other already notified, as in production.

`peer_timeout` is how long the second member in line waits before it notifies (Alertmanager's default is 15 s;
the first member's log usually reaches it by then). The default here, 0 s, makes both notify at once,
before either's log arrives: the duplicates every replica must absorb, on every alert rather than only
when gossip lags. A member whose replica is down retries until the flush's deadline (10 s at least),
then tries again at the next flush: nothing it was given is dropped while its alert fires.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from integrations.testing.alertmanager import BINARY, Alertmanager, Gossip, free_port


def _stamp(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AlertmanagerPair:
    """`with AlertmanagerPair(dir, [url1, url2], token) as pair: pair.fire({...})`."""

    def __init__(self, workdir: Path, webhook_urls: Sequence[str], token: str | None = None, *,
                 peer_timeout: str = "0s", repeat_interval: str = "1h", binary: str = BINARY) -> None:
        ports = [free_port() for _ in webhook_urls]
        self.members = [
            Alertmanager(workdir / f"am{i + 1}", url, token, binary=binary, repeat_interval=repeat_interval,
                         gossip=Gossip(port, tuple(p for p in ports if p != port), peer_timeout=peer_timeout))
            for i, (url, port) in enumerate(zip(webhook_urls, ports, strict=True))]
        self.fired: dict[tuple[tuple[str, str], ...], dt.datetime] = {}  # labels -> startsAt, as Prometheus keeps
        self._senders = ThreadPoolExecutor(len(self.members), thread_name_prefix="prometheus")

    def start(self, timeout: float = 60.0) -> AlertmanagerPair:
        """One after the other: a member's place in line (who notifies first) is the order of the names
        the members take at start (time-ordered ULIDs), so member 1 is first and member 2 second."""
        for member in self.members:
            member.launch().wait_answering(timeout)
        for member in self.members:
            member.wait_ready(timeout)
        return self

    def stop(self) -> None:
        self._senders.shutdown(wait=True)
        for member in self.members:
            member.stop()

    def fire(self, labels: dict[str, str], annotations: dict[str, str] | None = None) -> None:
        """Post a firing alert to every member at once, as Prometheus does: the same `startsAt` each time
        it is sent, and an `endsAt` a few minutes ahead that a later send would push on."""
        key = tuple(sorted(labels.items()))
        now = dt.datetime.now(dt.UTC)
        starts = self.fired.setdefault(key, now)
        self._post({"labels": labels, "annotations": annotations or {}, "startsAt": _stamp(starts),
                    "endsAt": _stamp(now + dt.timedelta(minutes=10)),
                    "generatorURL": "http://prometheus.local/graph"})

    def resolve(self, labels: dict[str, str]) -> None:
        """Tell every member the alert stopped firing (an `endsAt` in the past)."""
        now = dt.datetime.now(dt.UTC)
        starts = self.fired.pop(tuple(sorted(labels.items())), now - dt.timedelta(minutes=5))
        self._post({"labels": labels, "annotations": {}, "startsAt": _stamp(starts),
                    "endsAt": _stamp(now - dt.timedelta(seconds=1)), "generatorURL": "http://prometheus.local/graph"})

    def _post(self, alert: dict[str, Any]) -> None:
        answers = list(self._senders.map(
            lambda member: member.http.post(f"{member.url}/api/v2/alerts", json=[alert]), self.members))
        refused = [(m.url, a.status_code, a.text) for m, a in zip(self.members, answers, strict=True)
                   if a.status_code != 200]
        if refused:
            raise RuntimeError(f"an Alertmanager refused the alert: {refused}")

    def notifications(self) -> list[dict[str, float]]:
        """Each member's webhook notification counters (see `Alertmanager.notifications`)."""
        return [member.notifications() for member in self.members]

    def __enter__(self) -> AlertmanagerPair:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
