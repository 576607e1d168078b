"""An example plug-in: `example.configmap.keys`, which ConfigMap keys exist (values are never returned).

Loaded only when the settings name it:

```yaml
plugins:
  example:
    required_keys: [gateway_url]     # this plug-in's own settings
```
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from engine.actions import ActionArgs, ActionContext, ActionKind, ActionRegistry, Permission, action
from engine.errors import SettingsError
from engine.plugins import PluginContext


class KeysArgs(ActionArgs):
    namespace: str
    name: str


class ExampleActions:
    """The group holds what the plug-in was given: its settings and the engine's Kubernetes client."""

    def __init__(self, context: PluginContext) -> None:
        self.kube = context.kube
        self.required = tuple(context.settings.get("required_keys") or ())

    @action("example.configmap.keys", kind=ActionKind.DIAGNOSE, args=KeysArgs,
            permissions=(Permission("configmaps", "get", namespaced=True),))
    def keys(self, ctx: ActionContext, args: KeysArgs) -> dict[str, Any]:
        """List a ConfigMap's keys and report the required ones (plugins.example.required_keys) it lacks.

        Output: `keys` (sorted), `missing` (required keys not present).
        """
        if self.kube is None:
            raise SettingsError("no Kubernetes cluster is configured")
        kube = self.kube.for_context(ctx)  # bounded by the step deadline, acting as the run's identity
        path = f"/api/v1/namespaces/{quote(args.namespace, safe='')}/configmaps/{quote(args.name, safe='')}"
        config_map = kube.get(path)
        keys = sorted({*(config_map.get("data") or {}), *(config_map.get("binaryData") or {})})
        missing = [key for key in self.required if key not in keys]
        if missing:
            ctx.finding("example.configmap.missing_keys", "warning",
                        f"ConfigMap {args.namespace}/{args.name} lacks {', '.join(missing)}")
        return {"keys": keys, "missing": missing}


def register(registry: ActionRegistry, context: PluginContext) -> None:
    """The `runbook.actions` entry point."""
    registry.add_declared(ExampleActions(context))
