"""The `runbook` command line: run, approve, inspect, rehearse, simulate and serve."""
