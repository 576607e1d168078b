"""`python -m bench [--only 1,5]`: measure the figures, print one table, write bench/RESULTS.md.

A figure that fails is reported as a row saying why (the others still run); nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Callable

import httpx

from bench.common import WORK, Row, progress
from bench.report import table_text, write_results

FIGURES: dict[int, tuple[str, str]] = {
    1: ("bench.fig1_engine", "Engine overhead: 1,000 no-op steps with `when` and a template each (file-backed "
        "run store); per-step time = gap between consecutive stored step `finished_at` stamps; cold = first run "
        "(templates compiled), warm = second run through the same Executor."),
    2: ("bench.fig2_diagnosis", "Diagnosis: node-not-ready run in-process by a freshly built engine against "
        "kubelet-stopped.yaml until it pauses at the cordon proposal, vs. a bash script of 7 kubectl commands "
        "(/usr/bin/kubectl) with an empty discovery cache (fresh $HOME); requests counted by the simulator."),
    3: ("bench.fig3_alert_to_chat", "Alert to chat: POST /api/v2/alerts to a real Alertmanager (group_wait 0s, "
        "group_by alertname,node) -> webhook -> runbook serve (create_app on uvicorn via integrations.app.server."
        "testing.Harness, default 4 workers, Slack sender poll 0.05 s as the Harness sets it, start-up heap frozen "
        "as serve does) -> FakeSlack; "
        "1,000-node generated cluster, 100 distinct NotReady nodes fired open loop every 0.3 s. Peer: "
        "ansible-rulebook with eda.builtin.webhook -> run_playbook (ansible.builtin.uri) -> the same FakeSlack, "
        "fired sequentially (its best case). RUNBOOK_BENCH_FIG3_CHAT_DETAIL=steps: a reply per step, the chat "
        "of trees before the digest, to compare their verdict row with the same messages."),
    4: ("bench.fig4_ingest", "Webhook ingestion: an alert storm from bench.loadgen in its own process (raw "
        "keep-alive HTTP/1.1, 4 senders in flight, 5 alerts per payload as Alertmanager groups them) over 60 "
        "flapping nodes, half the alerts with a new fingerprint (a new `instance` label) for the same node, to "
        "runbook serve (a noop runbook matching every alert) after a 100-alert warm-up; 503 responses are retried "
        "after min(Retry-After, 1 s); runs counted in the run store. With 1 alert per payload and 48 senders the "
        "server is CPU-bound at roughly 650-850 payloads/s on these 2 cores."),
    5: ("bench.fig5_large", "Large cluster: generate_cluster(5000, 30, one NotReady node) served by a simulator "
        "process; the engine in another process; peak RSS = that process's VmHWM."),
    6: ("bench.fig6_concurrency", "Concurrency: 200 node-not-ready runs submitted at once to the server's "
        "RunQueue (integrations.app.server.workers) with settings.workers threads, then a 32-thread pool; 20 ms "
        "latency on every simulator request; run time = each executor.resume."),
    7: ("bench.fig7_replicas", "Several replicas: the figure-4 storm (10,000 alerts, 5 per payload, 4 senders) "
        "against a server on PostgreSQL (a throwaway local cluster with fsync on, like SQLite's synced commits; "
        "connected directly, so with database_prepared_statements: true) vs SQLite; then "
        "2 `runbook serve` processes on one PostgreSQL, kill -9 of the replica owning a run mid-step, 10 times; "
        "failover = kill to the other replica's run.taken_over audit entry; each run is then approved and its "
        "cordons counted at the simulator. RUNBOOK_BENCH_FIG7_SKIP_FAILOVER=1 measures the ingestion part only."),
    8: ("bench.fig8_loading", "Loading and hostile input: `Loader.load_file` of generated runbooks of 50-200 steps "
        "(each step's template refers to the one before), best of 3; then the time and peak-RSS growth to refuse a "
        "342-byte YAML alias bomb (9**9 values), a file past the 1 MiB cap and `{{ 7 ** (10 ** 9) }}`."),
    9: ("bench.fig9_storm", "Storm in chat: 60 of 150 generated nodes NotReady in one zone (41% of workers: the "
        "runbook's many-nodes cause, no proposal), fired at once into a real Alertmanager -> runbook serve "
        "(Harness, node-not-ready) -> FakeSlack enforcing Slack's rate limits at real speed (chat.postMessage "
        "1/s per channel, burst 5; chat.update 50/min); times from the first alert to the storm message and to "
        "the last run's verdict visible in Slack; the digest with storm_window 120 s vs the chat before the "
        "digest (chat_detail steps: one reply per finished step; storm_window 0: a thread per run), cut off "
        "after 300 s (RUNBOOK_BENCH_FIG9_CUTOFF)."),
    10: ("bench.fig10_in_flight", "A change in flight: 2 named `runbook serve` replicas on one PostgreSQL, kill -9 "
         "of the replica executing an approved cordon, 6 times: alternately after the PATCH reached the simulator "
         "(held 2 s, then applied) and before it was sent (the read before it held 6 s); time from the kill to "
         "the other replica's verdict (`run.taken_over` audit entry); verdicts checked against the simulator."),
}


FINDINGS = [
    "Profiled with py-spy (pip-installed into .venv, not a project dependency). Fixed in kubesim: list and GET "
    "responses reuse each stored object's cached JSON (EncodedCache), 0.19 -> 0.12 s per node-not-ready run on "
    "1,000 nodes. Fixed in integrations/kubernetes: k8s.node.pods lists a namespace's ReplicaSets/StatefulSets "
    "when 4+ of them own pods on the node instead of one GET each (5,000 nodes: 40 -> 13 requests).",
    "Missed, engine: cold per-step time is Jinja2 compilation (two templates per step). Compiling every "
    "template when the catalog loads (prototype outside the tree) gives a first run of 0.74 ms p50 per step.",
    "Missed, server: ingestion is bound by contention, not SQLite: all request threads (anyio's 40) and run "
    "workers serialize on RunStore's one connection and RLock (py-spy: ~36% of samples waiting in "
    "RunStore.transaction / find_by_dedup_key). The same store calls single-threaded do ~4,800 alerts/s, "
    "and ~47,000 alerts/s with 50 alerts per transaction (prototype outside the tree).",
    "Fixed, figure 7 (py-spy and pg_stat_statements): a webhook on PostgreSQL was 4 round trips (lookup; "
    "begin; insert; commit) made one after another on the event loop, which waited on the database ~45% of "
    "the time. Now one statement (lookup + unsynced attach, arrays sent in binary: as text, escaping the "
    "alerts' JSON cost more than the round trip), up to 4 webhooks at once in threads, and list_runs loads "
    "runs with their steps in 2 queries instead of a transaction per run (each run's start lists its "
    "runbook's open runs). Ratio to SQLite on the same storm: ~0.31 -> ~0.96 (median of 6 runs each).",
]

# What a figure can fail with: processes, sockets, HTTP, and the checks figures make on their own results.
FIGURE_ERRORS = (RuntimeError, OSError, subprocess.SubprocessError, httpx.HTTPError, ValueError, KeyError,
                 AssertionError, TimeoutError, json.JSONDecodeError)


def run_figure(number: int) -> list[Row]:
    module, _ = FIGURES[number]
    began = time.perf_counter()
    try:
        runner: Callable[[], list[Row]] = importlib.import_module(module).run
        rows = runner()
    except FIGURE_ERRORS as exc:  # one broken figure must not hide the others' numbers
        progress(f"figure {number} failed: {traceback.format_exc()}")
        rows = [Row(f"{number}. (failed)", None, "", note=f"{type(exc).__name__}: {exc}")]
    progress(f"figure {number} took {time.perf_counter() - began:.1f} s")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default="", help="comma-separated figure numbers, e.g. 1,5")
    args = parser.parse_args(argv)
    wanted = [int(n) for n in args.only.split(",") if n.strip()] or sorted(FIGURES)
    began = time.perf_counter()
    progress(f"bench start: figures {wanted}")
    by_figure: dict[int, list[Row]] = {}
    # The Event-Driven Ansible peer (figure 3) runs last: its JVM winding down must not load the others.
    for number in sorted(wanted, key=lambda n: (n == 3, n)):
        by_figure[number] = run_figure(number)
    rows = [row for number in sorted(by_figure) for row in by_figure[number]]
    eda = "not measured"
    if 3 in wanted:
        from bench.eda_peer import version

        eda = version()
    elapsed = time.perf_counter() - began
    print(table_text(rows))
    # A subset never overwrites the full results; it goes next to the EDA venv instead.
    partial = None if wanted == sorted(FIGURES) else WORK / "RESULTS-partial.md"
    path = write_results(rows, [FIGURES[n][1] for n in wanted] + FINDINGS, eda, elapsed, partial)
    print(f"\n{len(rows)} rows in {elapsed:.0f} s; written to {path}")
    progress(f"bench done in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
