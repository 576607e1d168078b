"""Assembles the engine from settings: registry, runbook catalog, run store and executor.

The one place that knows which integrations exist; the CLI and the server both start here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.actions import ActionRegistry, PermissionChecker
from engine.builtins import register_builtins
from engine.catalog import Catalog
from engine.events import EventSink
from engine.executor import Executor
from engine.loader import Loader
from engine.policy import Limits, Policy
from engine.run_store import RunStore
from engine.settings import Settings
from engine.templating import Templating
from integrations.app.plugins import load_named
from integrations.app.stores import adopt_redaction_key, open_store


@dataclass
class Assembly:
    """The engine's parts built from one settings object, shared by the CLI, the server and the demo."""

    settings: Settings
    registry: ActionRegistry
    loader: Loader
    catalog: Catalog
    store: RunStore
    executor: Executor
    kube: Any = None

    def close(self) -> None:
        self.store.close()


def build_registry(kube: Any = None, plugins: Mapping[str, Any] | None = None) -> ActionRegistry:
    """Built-in actions plus the Kubernetes, Prometheus and HTTP ones, configured by the `plugins` settings.
    Without a client the Kubernetes actions are still registered (so runbooks validate) and fail with a
    clear error if called; likewise Prometheus without sources and HTTP without allowed hosts."""
    from integrations.alertmanager import register as register_alertmanager
    from integrations.http import register as register_http
    from integrations.kubernetes import register as register_kubernetes
    from integrations.prometheus import register as register_prometheus

    plugins = plugins or {}
    registry = register_builtins(ActionRegistry())
    register_kubernetes(registry, kube)
    register_prometheus(registry, plugins.get("prometheus"))
    register_http(registry, plugins.get("http"))
    register_alertmanager(registry, plugins.get("alertmanager"))
    load_named(registry, plugins, kube)
    return registry


def load_catalog(settings: Settings, check_tests: bool = False) -> Catalog:
    """The runbooks alone, checked against every action; no store, no cluster (validate, list, params)."""
    return Catalog.load(settings.runbook_path, Loader(build_registry(plugins=settings.plugins),
                                                      check_tests=check_tests))


def build(settings: Settings, *, kube: Any = None, sink: EventSink | None = None,
          checker: PermissionChecker | None = None) -> Assembly:
    registry = build_registry(kube, settings.plugins)
    # `now` and `| age` in templates read the API server's clock when there is a cluster, as actions do
    templating = Templating(clock=kube.now) if kube is not None and hasattr(kube, "now") else Templating()
    loader = Loader(registry, templating, check_tests=False)
    catalog = Catalog.load(settings.runbook_path, loader)
    store = open_store(settings)
    adopt_redaction_key(settings, store)
    store.recover_interrupted()  # runs a dead process left mid-step say so instead of showing `running`
    if checker is None and kube is not None:
        from integrations.kubernetes.access import AccessChecker

        checker = AccessChecker(kube)
    executor = Executor(registry, store, sink=sink, checker=checker, templating=loader.templating,
                        policy=policy_from(settings))
    executor.landing_grace = settings.change_landing_grace
    for run_id in executor.settle_in_flight():  # a dead process's change in flight: re-read, never re-sent
        store.release(run_id)  # applied: a server's sweeper carries it on at once (a CLI marks it interrupted)
    return Assembly(settings, registry, loader, catalog, store, executor, kube)


def policy_from(settings: Settings) -> Policy:
    """The policy gate the settings describe (the chat backend adds its group directory when serving)."""
    identities = None
    if settings.identities:
        from integrations.app.identities import MappedIdentities

        identities = MappedIdentities(settings.identities)
    return Policy(runners=settings.runners, approvers=settings.approvers, identities=identities,
                  limits=Limits(settings.max_concurrent_changes, settings.max_changes_per_target_per_hour))
