"""A runbook's `links:`: checked at load like any template, rendered per run in the sandbox, http(s) only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine.errors import DefinitionError
from engine.links import run_links
from engine.loader import Loader
from engine.records import RunRecord, RunStatus

RUNBOOK = """
apiVersion: runbook/v1
kind: Runbook
metadata: {name: toy-links, title: Links}
params:
  key: {type: string, required: true}
links:
  - {title: Dashboard, url: "https://grafana.example/d/toy?var-key={{ params.key | urlencode }}&run={{ run.id }}"}
  - {title: From the alert, url: "{{ alert.annotations.dashboard }}"}
  - {title: Not a web link, url: "javascript:alert('{{ params.key }}')"}
  - {title: Docs, url: https://docs.example/toy}
steps:
  - {id: look, title: Look, action: toy.get, with: {key: "{{ params.key }}"}}
"""


def _run(params: dict[str, str], alert: dict[str, object]) -> RunRecord:
    return RunRecord("r1", "toy-links", RunStatus.SUCCEEDED, params, "alertmanager", {"alert": alert}, "{}")


def test_links_render_per_run_and_only_web_links_stay(loader: Loader, write: Callable[[str], Path]) -> None:
    runbook = loader.load_file(write(RUNBOOK))
    alert = {"annotations": {"dashboard": "http://grafana.example/d/alerted"}}
    links = run_links(runbook, _run({"key": "a b&c"}, alert), loader.templating)
    assert links == [("Dashboard", "https://grafana.example/d/toy?var-key=a%20b%26c&run=r1"),
                     ("From the alert", "http://grafana.example/d/alerted"), ("Docs", "https://docs.example/toy")]
    # an alert without the annotation: that link is left out, the others stay
    assert [t for t, _ in run_links(runbook, _run({"key": "k"}, {}), loader.templating)] == ["Dashboard", "Docs"]


def test_links_are_checked_at_load(loader: Loader, write: Callable[[str], Path]) -> None:
    bad = RUNBOOK.replace("{{ run.id }}", "{{ steps.look.output.value }}").replace(
        "{{ alert.annotations.dashboard }}", "{{ nope }}")
    with pytest.raises(DefinitionError) as caught:
        loader.load_file(write(bad))
    messages = [str(problem) for problem in caught.value.problems]
    assert any(":7:" in m and "links[0].url: template refers to step 'look', which runs later" in m for m in messages)
    assert any(":8:" in m and "links[1].url: template uses unknown name 'nope'" in m for m in messages), messages
