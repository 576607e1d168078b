"""Fresh credentials after a 401: re-run the kubeconfig's exec plugin, or re-read the service-account token.

A token minted by an exec plugin or mounted by the kubelet can expire or be rotated before the
client's own schedule notices. client-go reacts to a 401 by dropping what it holds: the exec
authenticator refreshes its credentials (`maybeRefreshCreds`, client-go
plugin/pkg/client/auth/exec/exec.go, `roundTripper.RoundTrip`) and the token-file source forgets
its cached token (`ResetTokenOlderThan`, client-go transport/token_source.go, `tokenSourceTransport.RoundTrip`).
`Kube.request` does the same once per request and then sends it again, which is safe even for a
change: the server refuses a 401 before handling the request.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

from kubernetes import config as kube_config
from kubernetes.client import Configuration
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import SERVICE_CERT_FILENAME, SERVICE_TOKEN_FILENAME, InClusterConfigLoader

from engine.errors import SettingsError

log = logging.getLogger("runbook.kubernetes")

# Loads fresh credentials into the configuration in use; False when none could be had.
Refresh = Callable[[Configuration], bool]


def adopt(target: Configuration, fresh: Configuration) -> bool:
    """Take the token (and the loader's own expiry hook) from a freshly loaded configuration."""
    if not fresh.api_key:
        return False
    target.api_key = dict(fresh.api_key)
    target.api_key_prefix = dict(fresh.api_key_prefix)
    target.refresh_api_key_hook = fresh.refresh_api_key_hook
    return True


def kubeconfig_refresh(path: str | None, context: str | None) -> Refresh:
    """Re-load the kubeconfig: a new loader runs the user's exec plugin again (token files are re-read too)."""

    def refresh(cfg: Configuration) -> bool:
        fresh = Configuration()
        try:
            kube_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path, context=context, client_configuration=fresh, persist_config=False
            )
        except (ConfigException, OSError) as exc:
            log.warning("could not refresh kubeconfig credentials after a 401: %s", exc)
            return False
        return adopt(cfg, fresh)

    return refresh


def service_account_refresh(
    token_file: str, cert_file: str, environ: Mapping[str, str] | None = None
) -> Refresh:
    """Re-read the mounted service-account token, which the kubelet rotates."""

    def refresh(cfg: Configuration) -> bool:
        fresh = Configuration()
        loader = InClusterConfigLoader(token_filename=token_file, cert_filename=cert_file,
                                       environ=os.environ if environ is None else environ)
        try:
            loader.load_and_set(client_configuration=fresh)  # type: ignore[no-untyped-call]
        except (ConfigException, OSError) as exc:
            log.warning("could not re-read the service-account token after a 401: %s", exc)
            return False
        return adopt(cfg, fresh)

    return refresh


def from_kubeconfig(path: str | None, context: str | None) -> tuple[Configuration, Refresh]:
    cfg = Configuration()
    try:
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, client_configuration=cfg, persist_config=False
        )
    except (ConfigException, OSError) as exc:
        raise SettingsError(f"kubeconfig {path or '~/.kube/config'} (context {context}): {exc}") from exc
    return cfg, kubeconfig_refresh(path, context)


def in_cluster() -> tuple[Configuration, Refresh]:
    cfg = Configuration()
    try:
        kube_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        raise SettingsError(f"in-cluster service account: {exc}") from exc
    return cfg, service_account_refresh(SERVICE_TOKEN_FILENAME, SERVICE_CERT_FILENAME)
