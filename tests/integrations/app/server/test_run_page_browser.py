"""The run page in a real browser: Debian's chromium, headless, against a real server over a simulated cluster.

Checks the DOM of a live run (awaiting approval) and of a finished one for the plan and the dry-run diff, saves
screenshots in the test's tmp dir (and, with RUNBOOK_SCREENSHOT_DIR set, there too: that is how
docs/run-page.png is made), and checks that markup planted in an alert label and a pod log stays text.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from widgets import ALICE

from engine.records import RunRecord
from integrations.app.clusters import SIM_TOKEN
from integrations.app.wiring import build_registry
from integrations.kubernetes.client import Kube
from integrations.kubesim import SimulatedCluster, load_scenario
from integrations.testing.browser import Chromium, find_chromium
from integrations.testing.server import READ_TOKEN, Harness, alert, make_engine, server_settings, wait_for
from integrations.testing.slack_fake import FakeSlack
from tests.conftest import missing_tool

ROOT = Path(__file__).resolve().parents[4]
SCENARIOS = ROOT / "runbooks" / "scenarios"
PLANTED = ("<script>document.title='pwned'</script>"
           "<img src=x onerror=document.body.setAttribute('data-pwned',1)>{{ 7*7 }}")


@pytest.fixture
def chromium() -> Chromium:
    path = find_chromium()
    if path is None:
        missing_tool("chromium not found on PATH: apt-get install chromium (or `make tools`)")
    return Chromium(path)


@contextmanager
def served(tmp_path: Path, runbook: str, objects: list[dict[str, Any]]) -> Iterator[Harness]:
    """`runbook` served for real (uvicorn on loopback) over a simulated cluster holding `objects`."""
    with SimulatedCluster(objects=objects) as sim, Kube.from_url(sim.url, SIM_TOKEN) as kube, FakeSlack() as fake:
        settings = server_settings(str(tmp_path / "runs.db"), fake.url,
                                   runbook_path=[str(ROOT / "runbooks" / f"{runbook}.yaml")],
                                   approvers=(ALICE,))  # with no approvers configured nobody may approve
        engine = make_engine(settings, build_registry(kube))
        assert list(engine.catalog.runbooks) == [runbook], engine.catalog.problems
        harness = Harness(engine, fake).start()
        try:
            yield harness
        finally:
            harness.close()


def page_url(harness: Harness, path: str) -> str:
    """With the read token as the Basic password in the URL: how a browser sends it without a prompt."""
    return harness.url.replace("http://", f"http://viewer:{READ_TOKEN}@") + path


def section(dom: str, name: str) -> str:
    start = dom.index(f'id="{name}"')
    return dom[start:dom.find("</section>", start)]


def keep(shot: Path) -> None:
    target = os.environ.get("RUNBOOK_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / shot.name)


def test_live_and_finished_run_pages(tmp_path: Path, chromium: Chromium) -> None:
    objects = load_scenario(SCENARIOS / "node-not-ready" / "kubelet-stopped.yaml")
    with served(tmp_path, "node-not-ready", objects) as harness:
        labels = {"node": "node-b", "severity": "critical", "namespace": "default"}
        run_id = harness.post_alerts([alert("KubeNodeNotReady", labels)]).json()["started"][0]["run_id"]
        run = harness.wait_status(run_id, "awaiting_approval")

        live = chromium.dump_dom(page_url(harness, f"/runs/{run_id}"))
        assert f'data-events="/runs/{run_id}/events"' in live and "still active" in live
        plan = section(live, "plan")
        assert "Cordon" in plan or "cordon" in plan
        assert "not reached" in plan and "remediation, needs approval" in plan
        remediations = section(live, "remediation-plan")
        assert "awaiting approval</span> Cordon node-b" in remediations and "planned</span>" in remediations
        diff = section(live, "proposals")
        assert '<span class="change">spec.unschedulable: false -&gt; true</span>' in diff
        assert "awaiting_approval" in section(live, "summary")
        shot = chromium.screenshot(page_url(harness, f"/runs/{run_id}"), tmp_path / "run-page-live.png", (1280, 1800))
        assert shot.stat().st_size > 10_000

        while run.status == "awaiting_approval":
            step = run.awaiting_step
            assert step is not None and harness.click(ALICE, run_id, step).status_code == 200
            run = wait_for(partial(_moved_past, harness, run_id, step), timeout=60, what=f"{step} to be carried out")
        assert run.status == "succeeded", run.error

        done = chromium.dump_dom(page_url(harness, f"/runs/{run_id}"))
        assert "data-events" not in done and "still active" not in done
        assert "succeeded" in section(done, "summary")
        assert '<span class="change">spec.unschedulable: false -&gt; true</span>' in section(done, "changes")
        assert "executed</span> Cordon node-b" in section(done, "remediation-plan")
        assert ALICE in section(done, "decisions") and "remediation.executed" in section(done, "audit")
        listing = chromium.dump_dom(page_url(harness, "/runs"))
        assert f'href="/runs/{run_id}"' in listing
        keep(chromium.screenshot(page_url(harness, f"/runs/{run_id}"), tmp_path / "run-page.png", (1280, 2200)))
        chromium.screenshot(page_url(harness, "/runs"), tmp_path / "run-list.png", (1280, 500))


def _moved_past(harness: Harness, run_id: str, step: str) -> RunRecord | None:
    run = harness.run(run_id)
    waits_again = run.status == "awaiting_approval" and run.awaiting_step != step
    return run if run.status.finished or waits_again else None


def _plant(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The failed Job's pods print the planted markup as their last log line."""
    planted = 0
    for obj in objects:
        annotations = obj.get("metadata", {}).get("annotations") or {}
        if obj.get("kind") == "Pod" and "kubesim.runbook.dev/log" in annotations:
            annotations["kubesim.runbook.dev/log"] += f"ERROR {PLANTED}\n"
            planted += 1
    assert planted
    return objects


def test_planted_markup_is_text_in_the_browser(tmp_path: Path, chromium: Chromium) -> None:
    objects = _plant(load_scenario(SCENARIOS / "billing-cronjob-failed" / "exit-code.yaml"))
    with served(tmp_path, "billing-cronjob-failed", objects) as harness:
        labels = {"cronjob": "billing-monthly", "namespace": "billing", "team": PLANTED}
        started = harness.post_alerts([alert("KubeCronJobFailed", labels)]).json()
        run_id = started["started"][0]["run_id"]
        harness.wait_status(run_id, "succeeded", "awaiting_approval", "failed", timeout=60)
        dom = chromium.dump_dom(page_url(harness, f"/runs/{run_id}"))
    assert "data-pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]  # the onerror never ran
    assert "<title>billing-cronjob-failed" in dom and "pwned</title>" not in dom
    escaped = "&lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;img src=x onerror="
    assert escaped in section(dom, "trigger")  # the alert label, shown as text
    assert escaped in section(dom, "steps")  # the pod log in the step's output, shown as text
    assert "{{ 7*7 }}" in section(dom, "trigger") and "{{ 7*7 }}" in section(dom, "steps")
    assert "<img src=\"x\"" not in dom and "<script>document" not in dom


def test_a_live_page_follows_the_run_in_the_browser(harness: Harness, chromium: Chromium) -> None:
    """The page's script applies the server-sent updates: loaded while the run awaits approval, approved
    while the browser holds the page open, dumped after the stream ended: the DOM shows the new state."""
    labels = {"widget": "w1", "severity": "critical"}
    run_id = harness.post_alerts([alert("WidgetDown", labels)]).json()["started"][0]["run_id"]
    harness.wait_status(run_id, "awaiting_approval")
    browser = Chromium(chromium.binary, budget_ms=4000)
    with ThreadPoolExecutor(1) as pool:
        dumped = pool.submit(browser.dump_dom, page_url(harness, f"/runs/{run_id}"))
        wait_for(lambda: "runbook_page_streams_open 1" in harness.http.get(f"{harness.url}/metrics").text,
                 timeout=30, what="the page's script to open the event stream")
        assert harness.click(ALICE, run_id, "restart").status_code == 200
        dom = dumped.result(timeout=90)
    assert 'id="run-status">succeeded' in dom and "data-events" not in dom  # swapped in, stream closed
    assert "step.approved" in section(dom, "audit") and ALICE in section(dom, "decisions")
