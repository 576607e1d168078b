"""Storms as one thread: many runs of one runbook in quick succession (60 nodes NotReady in one zone)
become one channel message listing the targets, updated as they finish, instead of 60 threads.

A storm is a chain of runs of one runbook, each started within `window` seconds of the one before; its
first run (started after a quiet spell) anchors it. The grouping is read from the run store each time
(runbook and start times, which never change), so every replica draws the same storms; the storm message
is an outbox conversation of its own (`storm:<anchor run id>`), delivered in order like a run's thread.
The anchor keeps its own thread (nobody knew a storm was coming); any member keeps one only while it
needs a decision, so its approval card has somewhere to live.

A storm is one incident only while its diagnoses agree. Causes are compared by the leading finding's id
(its summary may name the target); once two finished members share one, it is the storm's cause, and a
member that finishes with a different problem (not an all-clear) stands apart: it gets a thread of its
own and heads the storm message under "Different cause", so a second incident is not buried in the list.
The storm message itself is posted before any diagnosis ends, as soon as a second run joins.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Any

from engine.model import Runbook
from engine.records import RunRecord
from engine.run_store import RunStore
from engine.verdict import Finding
from integrations.slack import digest
from integrations.slack.render import status_label, text

MAX_MEMBERS = 500  # runs of one runbook read per storm: a bigger storm is listed up to here
SHOWN = 100  # targets listed on the storm message (about 15,000 characters at most); the rest are counted


class Storms:
    """Which storm a run belongs to, from the store; remembers the answer per run (it cannot change)."""

    def __init__(self, store: RunStore, window: float) -> None:
        self.store = store
        self.window = window
        self._anchor: OrderedDict[str, str | None] = OrderedDict()  # run id -> storm anchor id, None: alone

    def members(self, run: RunRecord) -> list[RunRecord]:
        """The runs of `run`'s storm, oldest first (just `run` when it is alone or storms are off)."""
        if self.window <= 0:
            return [run]
        newest = self.store.list_runs(runbook=run.runbook, limit=2)  # the usual case, cheaply: no storm
        if newest and newest[0].id == run.id and all(run.created_at - r.created_at > self.window
                                                     for r in newest[1:]):
            return [run]
        runs = sorted(self.store.list_runs(runbook=run.runbook, limit=MAX_MEMBERS), key=lambda r: r.created_at)
        if not any(r.id == run.id for r in runs):
            return [run]
        chain: list[RunRecord] = []
        for r in runs:
            if chain and r.created_at - chain[-1].created_at > self.window:
                if any(c.id == run.id for c in chain):
                    break
                chain = []
            chain.append(r)
        return chain

    def anchor(self, run: RunRecord) -> str | None:
        """The id of the storm's first run when `run` joined a storm (an earlier run of its chain exists);
        None for a run on its own or a storm's first run, which keep their own threads."""
        if run.id not in self._anchor:
            chain = self.members(run)
            self._anchor[run.id] = chain[0].id if chain[0].id != run.id else None
            while len(self._anchor) > 4096:
                self._anchor.popitem(last=False)
        return self._anchor[run.id]

    def forget(self, run_id: str) -> None:
        self._anchor.pop(run_id, None)


def storm_id(anchor: str) -> str:
    return f"storm:{anchor}"


def varying(members: list[RunRecord]) -> list[str]:
    """The params that tell the members apart (`node`), not those they share (thresholds, defaults)."""
    keys = list(dict.fromkeys(k for r in members for k in r.params))
    differ = [k for k in keys if len({repr(r.params.get(k)) for r in members}) > 1]
    return differ or keys[:1]


def target_of(run: RunRecord, keys: list[str]) -> str:
    shown = [str(run.params[k]) for k in keys if run.params.get(k) not in (None, "", [], {})]
    return ", ".join(shown) or run.id


def cause(run: RunRecord) -> Finding | None:
    """A finished run's leading finding: what its diagnosis concluded first."""
    return run.findings[0] if run.status.finished and run.findings else None


def member_line(run: RunRecord, keys: list[str], own_thread: bool, shared: str | None) -> str:
    """One target: its status and, when finished, its leading finding unless it is the shared cause."""
    top = cause(run)
    verdict = f" — {text(top.summary, 150)}" if top and top.id != shared else ""
    thread = " · :raising_hand: _needs a decision: see its own thread_" if own_thread else ""
    return f"• `{text(target_of(run, keys), 120)}` {status_label(str(run.status))}{verdict}{thread}"


def _common(members: list[RunRecord]) -> tuple[Finding, int] | None:
    """The leading finding most members share (the earliest member's wording) and how many share it."""
    found = [top for top in map(cause, members) if top is not None]
    ids = Counter(top.id for top in found).most_common(1)
    return (next(top for top in found if top.id == ids[0][0]), ids[0][1]) if ids else None


def storm_cause(members: list[RunRecord]) -> str | None:
    """The id of the storm's cause: the most common leading finding, once at least two members share it."""
    common = _common(members)
    return common[0].id if common and common[1] >= 2 else None


def stands_apart(run: RunRecord, members: list[RunRecord]) -> bool:
    """A finished member whose problem differs from the cause the other members established: a different
    incident, which gets a thread of its own (an all-clear or a storm without a cause yet does not)."""
    return _apart(run, storm_cause([m for m in members if m.id != run.id]))


def shared_cause(members: list[RunRecord]) -> str | None:
    """The most common leading finding across the finished members, when more than one share it."""
    common = _common(members)
    if common is None or common[1] < 2:
        return None
    return f"*Shared cause* ({common[1]} of {len(members)}): {text(common[0].summary, 300)}"


def _apart(run: RunRecord, shared: str | None) -> bool:
    top = cause(run)
    return shared is not None and top is not None and top.severity != "info" and top.id != shared


def message(runbook: Runbook, members: list[RunRecord], *, page: str | None = None) -> dict[str, Any]:
    """The storm's one message, re-rendered from its members on every change."""
    done = sum(r.status.finished for r in members)
    head = (f":thunder_cloud_and_rain: *Storm: {text(runbook.metadata.title, 200)}* · `{text(runbook.name, 63)}`"
            f" — {len(members)} targets, {done} finished")
    blocks = [digest.section(head)]
    common = shared_cause(members)
    if common:
        blocks.append(digest.section(common))
    keys = varying(members)
    shared = storm_cause(members)
    apart = [r for r in members if _apart(r, shared)]
    if apart:  # first: another incident hiding in the storm
        blocks += _sections([f":warning: *Different cause* ({len(apart)}): not the storm's incident",
                             *(member_line(r, keys, _decides(r), shared) for r in apart[:SHOWN])])
    rest = [r for r in members if not _apart(r, shared)]
    room = max(0, SHOWN - len(apart))
    lines = [member_line(r, keys, _decides(r), shared) for r in rest[:room]]
    if len(members) > SHOWN:
        lines.append(f"… and {len(members) - SHOWN} more")
    blocks += _sections(lines)
    if page:
        made = digest.link(f"{page}?runbook={runbook.name}", "All runs")
        if made:
            blocks.append(digest.context(made))
    summary = f"Storm: {runbook.metadata.title} ({runbook.name}) — {len(members)} targets, {done} finished"
    return {"text": text(summary, 300), "blocks": digest.fit(blocks)}


def _decides(run: RunRecord) -> bool:
    return any(s.proposal is not None for s in run.steps)


def _sections(lines: list[str]) -> list[dict[str, Any]]:
    """Sections of whole lines, each under Slack's 3,000 characters."""
    blocks: list[dict[str, Any]] = []
    chunk: list[str] = []
    for line in lines:
        if chunk and len("\n".join([*chunk, line])) > digest.SECTION - 100:
            blocks.append(digest.section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(digest.section("\n".join(chunk)))
    return blocks
