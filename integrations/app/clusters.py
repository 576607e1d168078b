"""Chooses the cluster a CLI command talks to: a simulated scenario, a kubeconfig, or in-cluster."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.settings import Settings
from integrations.app.incluster import ServiceAccountFiles, configuration, detected

SIM_TOKEN = "runbook-sim-admin"


@contextmanager
def open_cluster(
    settings: Settings, scenario: Path | None = None, kubeconfig: str | None = None, context: str | None = None,
    *, environ: Mapping[str, str] | None = None, files: ServiceAccountFiles | None = None,
) -> Iterator[Any]:
    """Yield a Kube client. With `scenario`, a simulated cluster runs in-process for the duration.

    Without a kubeconfig (option, setting or `KUBECONFIG`), a pod's service account is used when one is
    mounted (`in_cluster` forces it), so a Deployment needs no kubeconfig at all.
    """
    from integrations.kubernetes.client import Kube
    from integrations.kubernetes.credentials import service_account_refresh

    if scenario is not None:
        from integrations.kubesim import SimulatedCluster

        with SimulatedCluster.from_files([scenario]) as sim, Kube.from_url(sim.url, SIM_TOKEN) as kube:
            yield kube
        return
    path = kubeconfig or settings.kubeconfig
    env = os.environ if environ is None else environ
    if not path and (settings.in_cluster or (not env.get("KUBECONFIG") and detected(env, files))):
        files = files or ServiceAccountFiles()
        refresh = service_account_refresh(str(files.token), str(files.ca_cert), env)  # re-read after a 401
        with Kube.from_configuration(configuration(files, env), refresh=refresh) as kube:
            yield kube
        return
    with Kube.from_kubeconfig(path, context or settings.context) as kube:
        yield kube
