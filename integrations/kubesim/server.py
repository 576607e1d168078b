"""HTTP/1.1 transport: a threaded stdlib server that feeds ApiHandler and applies faults.

Every failure becomes a ``Status`` JSON answer; a handler bug costs one 500, never the server.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections import Counter
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .api import ApiHandler
from .errors import ApiError, bad_request, fault_error, internal_error
from .faults import FaultRule, Faults
from .objects import Clock, use_clock
from .request import ApiRequest, ApiResponse

_ERRORS_AS_500 = (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError)


class RequestLog:
    """Counts served API requests by (method, path) for tests and benchmarks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counter: Counter[tuple[str, str]] = Counter()
        self.total = 0

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self.counter[(method, path)] += 1
            self.total += 1

    def reset(self) -> None:
        with self._lock:
            self.counter.clear()
            self.total = 0


class KubeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], api: ApiHandler, faults: Faults, log: RequestLog,
                 clock: Clock) -> None:
        super().__init__(address, _Handler)
        self.clock = clock
        self.api = api
        self.faults = faults
        self.log = log
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connection-level failures (TLS handshakes, resets) only affect that client; stay quiet."""

    def forget(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.discard(conn)

    def close_all(self) -> None:
        """Close keep-alive and watch connections so stop() leaves no client hanging."""
        with self._conns_lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would hold the second 40 ms
    server_version = "kubesim"
    timeout = 300
    server: KubeHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging; the RequestLog keeps count instead."""

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.forget(self.connection)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        err = ApiError(code, "BadRequest" if code < 500 else "InternalError", message or "bad request", {})
        self._send(ApiResponse.error(err))
        self.close_connection = True

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header in simulated time: clients measure ages against the server's clock."""
        return formatdate(self.server.clock.now().timestamp() if timestamp is None else timestamp, usegmt=True)

    def _serve(self) -> None:
        use_clock(self.server.clock)
        split = urlsplit(self.path)
        path = unquote(split.path)
        method = self.command
        try:
            body = self._read_body()
        except ValueError:
            self._send(ApiResponse.error(bad_request("malformed request body")))
            return
        self.server.log.record(method, path)
        rule = self.server.faults.match(method, path)
        if rule is not None and not rule.after and self._fault(rule):
            return
        response = self._handle(method, path, split.query, body)
        if rule is not None and rule.after and self._fault(rule):
            return
        self._send(response)

    def _fault(self, rule: FaultRule) -> bool:
        """Apply an injected fault; True when it answered (or dropped) the request."""
        if rule.latency:
            time.sleep(rule.latency)
        if rule.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if rule.status:
            self._send(ApiResponse.error(fault_error(rule.status, rule.retry_after)))
            return True
        return False

    def _handle(self, method: str, path: str, query: str, body: bytes) -> ApiResponse:
        try:
            api = self.server.api
            user = api.authorizer.authenticate(
                self.headers.get("Authorization") or "",
                self.headers.get("Impersonate-User") or "",
                self.headers.get_all("Impersonate-Group") or [],
            )
            req = ApiRequest(
                method, path, parse_qs(query, keep_blank_values=True), self.headers, body, user
            )
            return api.handle(req)
        except ApiError as err:
            return ApiResponse.error(err)
        except _ERRORS_AS_500 as exc:
            return ApiResponse.error(internal_error(f"{type(exc).__name__}: {exc}"))

    def _send(self, resp: ApiResponse) -> None:
        try:
            self.send_response(resp.code)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Cache-Control", "no-cache, private")
            for key, value in resp.headers.items():
                self.send_header(key, value)
            if resp.stream is None:
                self.send_header("Content-Length", str(len(resp.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(resp.body)
                return
            self.end_headers()
            self.wfile.flush()
            for chunk in resp.stream:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:  # client went away (broken pipe, reset, timeout)
            self.close_connection = True


class HTTPServerThread:
    """Owns the server socket and its accept loop thread."""

    def __init__(
        self,
        host: str,
        port: int,
        api: ApiHandler,
        faults: Faults,
        log: RequestLog,
        clock: Clock,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.httpd = KubeHTTPServer((host, port), api, faults, log, clock)
        if ssl_context is not None:
            # Handshake lazily in the connection's own thread, not in the accept loop.
            self.httpd.socket = ssl_context.wrap_socket(
                self.httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="kubesim-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.close_all()
        self.httpd.server_close()
        self.thread.join(timeout=5)
