"""`runbook serve`: Alertmanager webhooks, chat commands and buttons, run API, health and metrics."""

from integrations.app.server.app import create_app
from integrations.app.server.services import Services

__all__ = ["Services", "create_app"]
