"""`runbook demo`: a node goes NotReady in a simulated cluster, the runbook diagnoses it, an on-call
engineer approves the proposals, and the chat thread it produced is printed at the end.

Everything is real except the two peers: the Kubernetes API server is the simulator and Slack is the
local fake, both spoken to over HTTP by the official clients.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from slack_sdk import WebClient

from engine.events import Fanout
from engine.records import RunRecord, RunStatus
from engine.settings import Settings
from integrations.app.cli.console import ConsoleSink, terminal
from integrations.app.clusters import SIM_TOKEN

if TYPE_CHECKING:
    from integrations.slack.outbox import Outbox

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = ROOT / "runbooks" / "scenarios" / "node-not-ready" / "kubelet-stopped.yaml"
ALERT = {"alertname": "KubeNodeNotReady", "namespace": "default", "node": "node-b", "severity": "critical"}
APPROVER = "U0BOB (bob, on call)"

out = terminal()


def _say(text: str) -> None:
    out.print(f"\n[bold magenta]» {text}[/]")


def demo(
    scenario: Annotated[Path, typer.Option(help="The simulated incident.", exists=True)] = SCENARIO,
    node: Annotated[str, typer.Option(help="The node the alert names.")] = "node-b",
    pause: Annotated[float, typer.Option(help="Seconds to pause between acts (0 for none).")] = 0.0,
) -> None:
    """Watch node-not-ready handle a simulated incident end to end, then read the Slack thread."""
    from integrations.app.wiring import build
    from integrations.kubernetes.client import Kube
    from integrations.kubesim import SimulatedCluster
    from integrations.slack.outbox import Outbox
    from integrations.slack.sender import OutboxSender
    from integrations.slack.sink import Router, SlackSink
    from integrations.testing.slack_fake import FakeSlack

    settings = Settings.load()
    if not settings.approvers:  # the engineer in the story is an approver (with none, nobody may approve)
        settings = settings.model_copy(update={"approvers": (APPROVER,)})
    slack = FakeSlack().start()
    sink = Fanout([ConsoleSink()])
    with SimulatedCluster.from_files([scenario]) as sim, Kube.from_url(sim.url, SIM_TOKEN) as kube:
        engine = build(settings, kube=kube, sink=sink)
        outbox = Outbox(engine.store)
        sender = OutboxSender(outbox, WebClient(token=slack.token, base_url=slack.url), poll=0.05)
        sender.start()
        sink.sinks.append(SlackSink(engine.store, outbox, Router(default="incidents"), wake=sender.wake))
        try:
            runbook = engine.catalog.get("node-not-ready")
            labels = {**ALERT, "node": node}
            _say(f"Alertmanager fires KubeNodeNotReady for {node}; the engine starts node-not-ready "
                 f"(simulated cluster at {sim.url})")
            run = engine.executor.run(runbook, {"node": node}, requester="alertmanager",
                                      trigger={"source": "alertmanager", "alert": {"labels": labels}})
            while run.status == RunStatus.AWAITING_APPROVAL:
                time.sleep(pause)
                proposal = next(p for p in run.proposals if p.status == "pending")
                _say(f"{APPROVER} reads the proposal in Slack and clicks Approve on '{proposal.summary}'")
                reason = ("confirmed in the cloud console that the node is powered off" if proposal.risk == "high"
                          else "matches what I see")
                run = engine.executor.decide(run.id, True, APPROVER, step=run.awaiting_step, reason=reason)
            _verdict(run)
            _drain(outbox)
            _say("The Slack channel, as the on-call engineers saw it:")
            out.print(slack.transcript(), markup=False)
            out.print(f"Run {run.id} is in the run store ({settings.db}). Next, in this checkout: "
                      f"`.venv/bin/runbook show {run.id}`, `.venv/bin/runbook history`, and `.venv/bin/runbook test` "
                      "to rehearse every runbook against its scenarios.")
        finally:
            sender.stop()
            slack.stop()
            engine.close()


def _verdict(run: RunRecord) -> None:
    _say(f"Verdict: {run.status}")
    summary = {"findings": [f"{f.severity}: {f.summary}" for f in run.findings],
               "proposals": [f"{p.status}: {p.summary}" for p in run.proposals],
               "mutations": [f"{m.verb} {m.target}: {', '.join(m.diff)}" for m in run.mutations]}
    out.print(json.dumps(summary, indent=2), markup=False)


def _drain(outbox: Outbox, timeout: float = 10.0) -> None:
    """Wait until every chat message has been delivered (the sender works in the background)."""
    deadline = time.monotonic() + timeout
    while outbox.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
