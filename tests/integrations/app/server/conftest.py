"""Fixtures: a real server on loopback (uvicorn in a thread) with a Slack fake and the widget runbooks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from widgets import BOB, CAROL, ECHO, ONCALL, WIDGET, registry_with_restart

from integrations.testing.server import Harness, make_engine, server_settings
from integrations.testing.slack_fake import FakeSlack


@pytest.fixture
def restarted() -> list[str]:
    return []


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack(usergroups={ONCALL: [BOB, CAROL]}, handles={"oncall": ONCALL}) as fake:
        yield fake


@pytest.fixture
def make_harness(tmp_path: Path, fake_slack: FakeSlack, restarted: list[str]) -> Iterator[Callable[..., Harness]]:
    """`make_harness(**settings)` starts a server with the widget and echo runbooks."""
    made: list[Harness] = []

    def make(*, slack: bool = True, runbooks: tuple[str, ...] = (WIDGET, ECHO), **overrides: Any) -> Harness:
        settings = server_settings(str(tmp_path / "runs.db"), fake_slack.url if slack else None, **overrides)
        engine = make_engine(settings, registry_with_restart(restarted), runbooks)
        harness = Harness(engine, fake_slack if slack else None).start()
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()

