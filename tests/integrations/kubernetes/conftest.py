"""Fixtures: a simulated API server over real HTTP and a `Kube` client pointed at it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from engine.actions import ActionContext, ActionRegistry, Identity
from integrations.kubernetes import register
from integrations.kubernetes.client import Kube, Policy
from integrations.kubesim import SimulatedCluster

# Short timeouts and backoff keep error-path tests fast; behaviour is the same as production's.
TEST_POLICY = Policy(call_timeout=3.0, connect_timeout=1.0, attempts=3, backoff=0.05, max_backoff=0.2)


def make_ctx(dry_run: bool = False, identity: Identity | None = None, timeout: float = 30.0) -> ActionContext:
    return ActionContext(run_id="t", step="s", dry_run=dry_run, deadline=time.monotonic() + timeout,
                         identity=identity)


@pytest.fixture
def ctx() -> Callable[..., ActionContext]:
    return make_ctx


@pytest.fixture
def cluster() -> Iterator[Callable[..., tuple[SimulatedCluster, Kube]]]:
    """`cluster(objects, token=..., **sim_kwargs)` -> (sim, kube); everything is stopped afterwards."""
    opened: list[tuple[SimulatedCluster, Kube]] = []

    def make(objects: list[dict[str, Any]], token: str = "admin-token", **kwargs: Any) -> tuple[SimulatedCluster, Kube]:
        sim = SimulatedCluster(objects, **kwargs).start()
        kube = Kube.from_url(sim.url, token, policy=TEST_POLICY)
        opened.append((sim, kube))
        return sim, kube

    yield make
    for sim, kube in opened:
        kube.close()
        sim.stop()


@pytest.fixture
def registry_for() -> Callable[[Kube | None], ActionRegistry]:
    def make(kube: Kube | None) -> ActionRegistry:
        registry = ActionRegistry()
        register(registry, kube)
        return registry

    return make
