"""A runbook's `links:` rendered for one run (chat and the run page): templates from the runbook file over
the run's params, alert and identity, in the same sandbox as steps; only http(s) results are kept."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from engine.errors import RunbookError
from engine.model import Runbook
from engine.records import RunRecord
from engine.templating import Templating

RENDER_SECONDS = 1.0


def run_links(runbook: Runbook, run: RunRecord, templating: Templating) -> list[tuple[str, str]]:
    """(title, url) of each link that renders to an http(s) URL; a link that fails to render is left out
    (it must never cost the run its chat or page)."""
    context = {"params": run.params, "alert": (run.trigger or {}).get("alert", {}), "steps": {}, "findings": [],
               "run": {"id": run.id, "requester": run.requester, "dry_run": run.dry_run, "runbook": runbook.name},
               "now": templating.now()}
    links = []
    for link in runbook.links:
        try:
            url = str(templating.render_value(link.url, context, deadline=time.monotonic() + RENDER_SECONDS))
        except RunbookError:
            continue
        parts = urlsplit(url.strip())
        if parts.scheme in ("http", "https") and parts.netloc and len(url) <= 2000:
            links.append((link.title, url.strip()))
    return links
