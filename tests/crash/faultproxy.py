"""An HTTP(S) proxy in front of a cloud emulator that injects the faults of a real cloud.

* **throttling**: a request is answered, without reaching the emulator, with the cloud's own
  throttling error (AWS ``Throttling``/``RequestLimitExceeded``, GCP 429 ``rateLimitExceeded``,
  Azure 429 ``TooManyRequests`` with ``Retry-After``);
* **write done, response lost**: a mutating request reaches the emulator and takes effect, then the
  client's connection is closed without an answer -- what a timeout or a dropped connection after
  a successful write looks like to the SDK.

One proxy serves any of the three emulators, so the crash harness exercises every provider alike
(the emulators' own fault hooks differ and live in other processes' memory). Faults are drawn from
a seeded generator, so a run can be replayed.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


def _is_write(provider: str, method: str, body: bytes) -> bool:
    if provider == "aws":  # query protocol: every call is a POST; the Action says what it does
        action = urllib.parse.parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
        return not action.startswith(("Describe", "Get", "List"))
    return method in WRITE_METHODS


def _throttle(provider: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
    if provider == "aws":
        auth = str(headers.get("Authorization") or "")
        if "/ec2/" in auth:
            xml = (
                "<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
                "<Message>Request limit exceeded.</Message></Error></Errors><RequestID>x</RequestID></Response>"
            )
            return 503, {"Content-Type": "text/xml"}, xml.encode()
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
            "</Error><RequestId>x</RequestId></ErrorResponse>"
        )
        return 400, {"Content-Type": "text/xml"}, xml.encode()
    if provider == "gcp":
        doc = {
            "error": {
                "code": 429,
                "message": "Rate Limit Exceeded",
                "errors": [{"reason": "rateLimitExceeded", "message": "Rate Limit Exceeded"}],
            }
        }
        return 429, {"Content-Type": "application/json"}, json.dumps(doc).encode()
    doc = {"error": {"code": "TooManyRequests", "message": "injected throttling"}}
    return 429, {"Content-Type": "application/json", "Retry-After": "1"}, json.dumps(doc).encode()


class FaultProxy:
    """Forwards to ``target`` (``http(s)://host:port``); serves HTTPS itself when given a cert."""

    def __init__(
        self,
        provider: str,
        target: str,
        *,
        seed: int = 0,
        throttle: float = 0.0,
        lost: float = 0.0,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> None:
        self.provider = provider
        self.target = urllib.parse.urlsplit(target)
        self.throttle = throttle
        self.lost = lost
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self.counts = {"requests": 0, "throttled": 0, "lost": 0}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                proxy.handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # A controller killed with SIGKILL leaves broken connections behind: expected, not news.
        self.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        scheme = "http"
        if cert_file:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert_file, key_file)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _draw(self) -> float:
        with self._rng_lock:
            return self._rng.random()

    def _connection(self) -> http.client.HTTPConnection:
        host, port = self.target.hostname or "127.0.0.1", self.target.port
        if self.target.scheme == "https":
            ctx = ssl._create_unverified_context()  # the emulator's throwaway certificate
            return http.client.HTTPSConnection(host, port, context=ctx, timeout=120)
        return http.client.HTTPConnection(host, port, timeout=120)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        self.counts["requests"] += 1
        write = _is_write(self.provider, h.command, body)
        if self.throttle and self._draw() < self.throttle:
            self.counts["throttled"] += 1
            status, headers, payload = _throttle(self.provider, h.headers, body)
            self._reply(h, status, headers, payload)
            return
        lose = write and self.lost and self._draw() < self.lost
        conn = self._connection()
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_HEADERS}
            headers["Host"] = self.target.netloc
            conn.request(h.command, h.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            out = {k: v for k, v in resp.getheaders() if k.lower() not in HOP_HEADERS}
            status = resp.status
        except OSError as exc:
            self._reply(h, 502, {"Content-Type": "text/plain"}, f"proxy: {exc}".encode())
            return
        finally:
            conn.close()
        if lose:
            # The write took effect; the answer never arrives.
            self.counts["lost"] += 1
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._reply(h, status, out, payload)

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: bytes) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(payload)
