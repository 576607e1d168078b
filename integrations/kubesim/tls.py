"""Optional TLS for the simulated server.

kubectl (client-go) does not send bearer tokens over plain HTTP, so RBAC scenarios driven
through kubectl need HTTPS. A throw-away self-signed certificate for 127.0.0.1 is minted with
the ``openssl`` CLI into a private temporary directory per cluster.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class TLSUnavailable(RuntimeError):
    """No way to mint a certificate on this machine (openssl CLI missing or failing)."""


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    @property
    def pem(self) -> bytes:
        return self.cert.read_bytes()

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx


def self_signed(host: str = "127.0.0.1", directory: Path | None = None) -> Certificate:
    """Mint a 10-year self-signed ECDSA certificate whose SAN covers ``host`` and localhost."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TLSUnavailable("the openssl command is required for SimulatedCluster(tls=True)")
    out = directory or Path(tempfile.mkdtemp(prefix="kubesim-tls-"))
    cert, key = out / "tls.crt", out / "tls.key"
    san = f"IP:{host},DNS:localhost" if host.replace(".", "").isdigit() else f"DNS:{host},DNS:localhost"
    cmd = [
        openssl,
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(cert),
        "-days",
        "3650",
        "-subj",
        "/CN=kubesim",
        "-addext",
        f"subjectAltName={san}",
    ]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        raise TLSUnavailable(f"openssl failed to create a certificate: {exc}") from exc
    key.chmod(0o600)
    return Certificate(cert, key)
