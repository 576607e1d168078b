"""Prometheus as a source of facts for runbooks: `prometheus.query` against named, authenticated sources."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.actions import ActionRegistry
from integrations.prometheus.query import PrometheusActions
from integrations.prometheus.settings import PrometheusSettings

__all__ = ["PrometheusSettings", "register"]


def register(registry: ActionRegistry, section: Mapping[str, Any] | None = None) -> None:
    """Register `prometheus.query`, configured by the `plugins.prometheus` settings section (none: the
    action validates but fails clearly when run)."""
    registry.add_declared(PrometheusActions(PrometheusSettings.parse(section)))
