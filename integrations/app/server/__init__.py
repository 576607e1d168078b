"""`runbook serve`: Alertmanager webhooks, Slack commands and buttons, run API, health and metrics."""

from integrations.app.server.app import Services, create_app
from integrations.app.server.serve import serve

__all__ = ["Services", "create_app", "serve"]
