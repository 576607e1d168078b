"""Who may read runs (the run pages and the run API): closed until a read credential is configured.

Two credentials, either or both: `read_token` (sent as `Authorization: Bearer <token>`, or as the password
of Basic credentials so a browser's own login prompt works without JavaScript), and an authenticating proxy
(oauth2-proxy) whose `X-Forwarded-User` header is believed only when the TCP peer is inside
`trusted_proxy_cidrs`. The Alertmanager webhook token is a write credential and is never accepted here.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
from dataclasses import dataclass

PROXY_HEADER = "x-forwarded-user"
MAX_USER = 256
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Viewer:
    """Someone allowed to read: the proxy's user name, or `read-token`."""

    name: str
    via: str  # "proxy" or "token"


@dataclass(frozen=True)
class Refusal:
    """Why a request may not read; the text of the 401."""

    reason: str
    challenge: str | None = None  # the WWW-Authenticate value, when a token would help


@dataclass(frozen=True)
class ReadAccess:
    token: str | None
    proxies: tuple[Network, ...]

    @classmethod
    def of(cls, token: str | None, cidrs: tuple[str, ...]) -> ReadAccess:
        """From the settings' `read_token` and `trusted_proxy_cidrs` (validated when the settings loaded)."""
        return cls(token, tuple(ipaddress.ip_network(c, strict=False) for c in cidrs))

    @property
    def closed(self) -> bool:
        return self.token is None and not self.proxies

    def check(self, peer: str | None, authorization: str | None, forwarded_user: str | None) -> Viewer | Refusal:
        """`peer` is the TCP peer's address (not a forwarded one): only it can vouch for a proxy header."""
        if self.closed:
            return Refusal("run pages are closed: no read credential is configured. Set read_token (then send "
                           "Authorization: Bearer <read_token>) or trusted_proxy_cidrs (behind an authenticating "
                           "proxy that sends X-Forwarded-User). The Alertmanager webhook token is not accepted.")
        if forwarded_user is not None and self.proxies:
            if self._trusted(peer):
                return self._proxy_user(forwarded_user)
            if self.token is None:
                return Refusal(f"X-Forwarded-User is trusted only from trusted_proxy_cidrs; this request came "
                               f"from {peer or 'an unknown address'}")
        if self.token is None:
            return Refusal("missing X-Forwarded-User: come through the authenticating proxy (trusted_proxy_cidrs); "
                           "no read_token is configured")
        return self._token(authorization)

    def _trusted(self, peer: str | None) -> bool:
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return False
        return any(address in network for network in self.proxies)

    @staticmethod
    def _proxy_user(value: str) -> Viewer | Refusal:
        name = value.strip()
        if not name or len(name) > MAX_USER or not name.isprintable():
            return Refusal("the proxy sent an empty, oversized or unprintable X-Forwarded-User")
        return Viewer(name, "proxy")

    def _token(self, header: str | None) -> Viewer | Refusal:
        assert self.token is not None
        challenge = 'Basic realm="runbook runs", charset="UTF-8"'
        also = " (or come through the authenticating proxy)" if self.proxies else ""
        if not header:
            return Refusal("missing read token: send Authorization: Bearer <read_token>, or the token as the "
                           f"Basic password{also}", challenge)
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                value = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[2]
            except ValueError:
                return Refusal("malformed Basic credentials", challenge)
        elif scheme.lower() != "bearer":
            return Refusal(f"unsupported Authorization scheme {scheme[:20]!r}; use Bearer or Basic", challenge)
        if hmac.compare_digest(value.encode(), self.token.encode()):
            return Viewer("read-token", "token")
        return Refusal("invalid read token (the Alertmanager webhook token is not a read token)", challenge)
