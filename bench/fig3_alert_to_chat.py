"""Figure 3, alert to chat: a real Alertmanager in front of `runbook serve` and of the EDA peer.

Ours: `fig3_ours` (100 alerts, distinct NotReady nodes, open loop every 0.3 s). Peer: `eda_peer`
(ansible-rulebook's webhook source -> run_playbook -> ansible.builtin.uri to the same Slack fake), fired one
alert at a time (each waits for its message: the peer's best case, since each playbook run costs ~1.5 s of CPU).
Latencies are from the alert's POST to Alertmanager to the Slack fake receiving the message.
"""

from __future__ import annotations

from bench import eda_peer, fig3_ours
from bench.common import Row, percentile, progress

TARGET_P99_MS = 250.0


def _latencies(sent: dict[str, float], got: dict[str, float]) -> list[float]:
    return [(got[node] - sent[node]) * 1000 for node in sent if node in got]


def run(alerts: int = 100, peer_alerts: int = 50, spacing: float = 0.3) -> list[Row]:
    progress(f"fig3: {alerts} alerts through Alertmanager -> runbook serve -> Slack fake")
    ours = fig3_ours.measure(alerts=alerts, spacing=spacing)
    first = _latencies(ours["sent"], ours["first"])  # type: ignore[arg-type]
    verdict = _latencies(ours["sent"], ours["verdict"])  # type: ignore[arg-type]
    lost = alerts - len(first)
    progress(f"fig3 ours: first p50 {percentile(first, 50):.1f} p99 {percentile(first, 99):.1f} ms; "
             f"verdict p50 {percentile(verdict, 50):.1f} p99 {percentile(verdict, 99):.1f} ms")
    peer_p50: float | None = None
    peer_p99: float | None = None
    peer_note = ""
    try:
        progress(f"fig3 peer: {peer_alerts} alerts through Alertmanager -> ansible-rulebook -> Slack fake")
        peer = eda_peer.measure(alerts=peer_alerts)
        peer_lat = _latencies(peer["sent"], peer["first"])  # type: ignore[arg-type]
        peer_p50, peer_p99 = percentile(peer_lat, 50), percentile(peer_lat, 99)
        peer_note = (f"EDA: {len(peer_lat)}/{peer_alerts} alerts, sequential, p50 {peer_p50:.0f} ms; "
                     f"rulebook start {float(peer['startup_s']):.1f} s")  # type: ignore[arg-type]
        progress(f"fig3 peer: p50 {peer_p50:.0f} p99 {peer_p99:.0f} ms")
    except eda_peer.PeerUnavailable as exc:
        peer_note = f"EDA peer not measured: {exc}"
        progress(peer_note)
    workers = ours["workers"]
    p99_row = Row("3. alert -> first Slack message (p99)", percentile(first, 99), "ms", baseline=peer_p99,
                  baseline_what="ansible-rulebook", target="p99 < 250 ms, >= 10x peer",
                  note=f"{len(first)}/{alerts} alerts, every {spacing}s, {workers} workers; {peer_note}")
    p99_row.met = p99_row.ours < TARGET_P99_MS and (p99_row.ratio is None or p99_row.ratio >= 10)
    p50_row = Row("3. alert -> first Slack message (p50)", percentile(first, 50), "ms", baseline=peer_p50,
                  baseline_what="ansible-rulebook", target="(>= 10x peer)", note=f"{lost} alerts without a message")
    p50_row.met = p50_row.ratio >= 10 if p50_row.ratio is not None else None
    verdict_row = Row("3. alert -> verdict in Slack (p50 / p99)", percentile(verdict, 50), "ms",
                      note=f"p99 {percentile(verdict, 99):.0f} ms; verdict = approval card or run-finished message"
                      f"{'' if ours['chat_detail'] == 'digest' else ' or a step reply (chat_detail steps)'}; "
                      f"{len(verdict)}/{alerts} verdicts", extra={"p99": percentile(verdict, 99)})
    return [p99_row, p50_row, verdict_row]
