"""`http.check`: is an HTTP endpoint answering as expected? Only for hosts the settings allow.

```yaml
plugins:
  http:
    allow_hosts: [shop.internal, "*.svc.cluster.local"]
```
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.actions import ActionRegistry
from integrations.http.check import HttpActions, HttpSettings

__all__ = ["HttpSettings", "register"]


def register(registry: ActionRegistry, section: Mapping[str, Any] | None = None) -> None:
    registry.add_declared(HttpActions(HttpSettings.parse(section)))
