"""Running inside the cluster it heals: the pod's service account instead of a kubeconfig.

Kubernetes mounts the service-account token, the cluster CA and the pod's namespace under
`/var/run/secrets/kubernetes.io/serviceaccount/` and sets `KUBERNETES_SERVICE_HOST`/`_PORT`. When no
kubeconfig is configured and those are present, that is the cluster to use; nothing else needs setting.
Paths and environment are parameters so tests can point at a simulated cluster's files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kubernetes.client import Configuration
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import InClusterConfigLoader

from engine.errors import SettingsError

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class ServiceAccountFiles:
    """Where the pod's credentials are mounted."""

    root: Path = SERVICE_ACCOUNT_DIR

    @property
    def token(self) -> Path:
        return self.root / "token"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def namespace(self) -> Path:
        return self.root / "namespace"


def detected(environ: Mapping[str, str] | None = None, files: ServiceAccountFiles | None = None) -> bool:
    """True inside a pod with a mounted service-account token."""
    environ = os.environ if environ is None else environ
    files = files or ServiceAccountFiles()
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and files.token.is_file()


def pod_namespace(files: ServiceAccountFiles | None = None) -> str | None:
    """The namespace the pod runs in (None outside a pod): the default for anything namespaced we create."""
    try:
        return (files or ServiceAccountFiles()).namespace.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def configuration(files: ServiceAccountFiles | None = None, environ: Mapping[str, str] | None = None) -> Configuration:
    """Client configuration from the mounted service account. The loader's refresh hook re-reads the token
    file as the kubelet rotates it, so a long-running server keeps working past the token's expiry."""
    files = files or ServiceAccountFiles()
    cfg = Configuration()
    loader = InClusterConfigLoader(token_filename=str(files.token), cert_filename=str(files.ca_cert),
                                   environ=os.environ if environ is None else environ)
    try:
        loader.load_and_set(client_configuration=cfg)  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        raise SettingsError(f"in-cluster service account ({files.root}): {exc}") from exc
    return cfg
