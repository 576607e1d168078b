"""Harnesses and fakes for tests, the bench and the demo: never imported on the runtime path."""
