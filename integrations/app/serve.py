"""`serve`: build the engine and the chat backend from settings and run the server under uvicorn (what
`runbook serve` calls). The one place that knows which chat backends exist."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import uvicorn

from engine.run_store import RunStore
from engine.settings import Settings
from integrations.app.logs import configure_logging
from integrations.app.server.app import create_app
from integrations.app.server.chat import ChatBackend
from integrations.app.server.metrics import Metrics
from integrations.app.wiring import build

log = logging.getLogger("runbook.server")


def serve(settings: Settings, host: str = "0.0.0.0", port: int = 8080, *, kube: Any = None,
          groups: Mapping[str, Iterable[str]] | None = None, log_level: str | None = None) -> None:
    """Serve until SIGINT/SIGTERM (graceful: in-flight requests finish, workers stop between steps).

    `kube`: a Kubernetes client; by default one is opened from the settings (`in_cluster`, `kubeconfig`,
    `context`), and a bad kubeconfig stops the start with a SettingsError rather than failing every run later.
    `groups` maps Slack user groups (`S123` or `@handle`) to member ids, for bots without `usergroups:read`.
    Logging follows RUNBOOK_LOG_FORMAT and RUNBOOK_LOG_LEVEL (`log_level` overrides the level of uvicorn's own).
    """
    configure_logging()
    if kube is None:
        from integrations.app.clusters import open_cluster

        with open_cluster(settings) as opened:
            _serve(settings, host, port, opened, groups, log_level)
    else:
        _serve(settings, host, port, kube, groups, log_level)


def _serve(settings: Settings, host: str, port: int, kube: Any, groups: Mapping[str, Iterable[str]] | None,
           log_level: str | None) -> None:
    engine = build(settings, kube=kube)
    for problem in engine.catalog.problems:
        log.error("runbook not loaded: %s", problem)
    log.info("loaded %d runbook(s): %s", len(engine.catalog.runbooks), ", ".join(sorted(engine.catalog.runbooks)))
    metrics = Metrics()
    chat = chat_backend(settings, engine.store, metrics, groups)
    if chat is None:
        log.warning("Slack is not configured (slack_bot_token and slack_signing_secret): runs are logged only")
    app = create_app(engine, chat=chat, metrics=metrics)
    settle_heap()
    try:
        # The TCP peer stays the client address: only it can vouch for a proxy's X-Forwarded-User
        # (trusted_proxy_cidrs), and uvicorn's proxy_headers would replace it with a forwarded one.
        uvicorn.run(app, host=host, port=port, log_config=None, log_level=log_level, proxy_headers=False,
                    timeout_graceful_shutdown=15)
    finally:
        engine.close()


def settle_heap() -> None:
    """Collect, then move everything start-up built (modules, the Kubernetes client's classes, runbooks,
    compiled templates) out of the cyclic collector's sight: it lives as long as the process. A diagnosis
    that lists 1,000 nodes parses some 100,000 objects, enough to set off a full collection every few runs,
    and a full collection otherwise walks all of that: 75-130 ms pauses of every thread (bench figure 3)."""
    gc.collect()  # garbage made so far is freed now, not frozen for good
    gc.freeze()


def chat_backend(settings: Settings, store: RunStore, metrics: Metrics,
                 groups: Mapping[str, Iterable[str]] | None = None, **options: Any) -> ChatBackend | None:
    """The chat backend the settings configure (today: Slack), or None. `options` tune its sender (tests)."""
    from integrations.slack import Slack

    return Slack.from_settings(settings, store, groups=groups,
                               on_error=lambda reason: metrics.chat_errors.inc(reason=reason), **options)
