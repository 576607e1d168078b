"""Fixtures: a fresh SimulatedCluster per test, loaded from the basic scenario, plus clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from integrations.kubesim import SimulatedCluster, load_scenario

ROOT = Path(__file__).resolve().parents[3]
BASIC = ROOT / "runbooks" / "scenarios" / "kubesim-basic.yaml"


@pytest.fixture
def sim() -> Iterator[SimulatedCluster]:
    with SimulatedCluster(objects=load_scenario(BASIC)) as cluster:
        yield cluster


@pytest.fixture
def api(sim: SimulatedCluster) -> Iterator[client.ApiClient]:
    api_client = sim.api_client()
    yield api_client
    api_client.close()


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def kubeconfig(sim: SimulatedCluster, tmp_path: Path) -> Path:
    return sim.write_kubeconfig(tmp_path / "kubeconfig")
