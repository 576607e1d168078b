"""Loads the `runbook.actions` entry points the settings name (and only those)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from engine.actions import ActionRegistry
from engine.errors import SettingsError
from engine.plugins import ENTRY_POINT_GROUP, PluginContext

# Plug-ins shipped with the engine: configured by `plugins:` too, but always registered.
BUILT_IN = frozenset({"prometheus", "http", "alertmanager"})


def load_named(registry: ActionRegistry, plugins: Mapping[str, Any], kube: Any = None) -> list[str]:
    """Register the actions of every installed plug-in named in `plugins` (beyond the built-in ones).

    A name without an installed entry point is a settings error, not a silent no-op: a runbook that needs
    its actions would otherwise fail later, at load, with a less helpful message."""
    wanted = [name for name in plugins if name not in BUILT_IN]
    if not wanted:
        return []
    installed = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    loaded = []
    for name in wanted:
        if name not in installed:
            known = ", ".join(sorted(installed)) or "none installed"
            raise SettingsError(f"plugins.{name}: no installed package provides the {ENTRY_POINT_GROUP} entry "
                                f"point {name!r} ({known})")
        try:
            register = installed[name].load()
            register(registry, PluginContext(name, dict(plugins[name] or {}), kube))
        except SettingsError:
            raise
        except Exception as exc:  # a broken plug-in must say which one, not crash the engine obscurely
            raise SettingsError(f"plugins.{name}: loading {installed[name].value} failed: "
                                f"{type(exc).__name__}: {exc}") from exc
        loaded.append(name)
    return loaded
