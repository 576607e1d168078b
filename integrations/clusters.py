"""Chooses the cluster a CLI command talks to: a simulated scenario, a kubeconfig, or in-cluster."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.settings import Settings

SIM_TOKEN = "runbook-sim-admin"


@contextmanager
def open_cluster(
    settings: Settings, scenario: Path | None = None, kubeconfig: str | None = None, context: str | None = None
) -> Iterator[Any]:
    """Yield a Kube client. With `scenario`, a simulated cluster runs in-process for the duration."""
    from integrations.kubernetes.client import Kube

    if scenario is not None:
        from integrations.kubesim import SimulatedCluster

        with SimulatedCluster.from_files([scenario]) as sim, Kube.from_url(sim.url, SIM_TOKEN) as kube:
            yield kube
        return
    path = kubeconfig or settings.kubeconfig
    if settings.in_cluster and not path:
        with Kube.in_cluster() as kube:
            yield kube
        return
    with Kube.from_kubeconfig(path, context or settings.context) as kube:
        yield kube
