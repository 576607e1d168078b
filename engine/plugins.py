"""What an installed plug-in package receives when the settings name it.

A package registers actions through the `runbook.actions` entry-point group: the entry point is a
function `register(registry, context)` that calls `registry.add_declared(...)` with `@action`-declared
functions, exactly as the built-in plug-ins do. Installing a package adds nothing by itself; it is loaded
only when `plugins:` in the settings has an entry under its entry-point name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.actions import ActionRegistry

ENTRY_POINT_GROUP = "runbook.actions"


@dataclass(frozen=True)
class PluginContext:
    """`settings` is the plug-in's own section of `plugins:`. `kube` is the engine's Kubernetes client
    (`integrations.kubernetes.Kube`, or None without a cluster): a plug-in calls the cluster through
    `kube.for_context(ctx)`, so its calls are bounded by the step's deadline and act as the approver."""

    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    kube: Any = None


PluginRegister = Callable[[ActionRegistry, PluginContext], None]
