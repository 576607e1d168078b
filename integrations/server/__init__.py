"""`runbook serve`: Alertmanager webhooks, Slack commands and buttons, run API, health and metrics."""

from integrations.server.app import Services, create_app
from integrations.server.serve import serve

__all__ = ["Services", "create_app", "serve"]
