"""The runbook engine: model, templating, executor and run store. Knows nothing of Kubernetes or Slack."""
