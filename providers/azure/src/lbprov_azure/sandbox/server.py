"""The HTTPS front of the ARM emulator, and the seeded sandbox that ``AzureProvider.sandbox`` uses.

The TLS handshake happens in the connection's own thread (not in ``accept``), so one slow client
cannot stall the others; connections are kept alive (HTTP/1.1) as ARM's are, which is what makes
the SDK's connection pool effective.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from lbprov_azure.sandbox.base import encode, etag_headers
from lbprov_azure.sandbox.cert import make_self_signed
from lbprov_azure.sandbox.state import ArmState

log = logging.getLogger(__name__)


def _loads(raw: bytes) -> Any:
    """A request body: orjson, or the standard library's parser for what orjson refuses and it
    takes (``NaN``, ``Infinity``). One difference is left: orjson reads an integer past 64 bits as a
    float where the standard library kept it exact; no ARM integer field (ports, priorities,
    lengths: int32 or int64) can hold such a value, and lbprov never sends one.

    Why orjson: a shared load balancer's body is about 600 KB at 143 Services of 2 ports; the
    standard library parsed it in 3.8 ms and wrote it in 4.5 ms (orjson: 2.6 and 0.5), and each
    batch of the LB's writer costs one parse (its PUT) and two writes (the PUT's answer and the
    final GET's) in the emulator, on the chain that bounds the scale bench's Azure create."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle + delayed ACK add
    # 40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("arm-emulator: " + format, *args)

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: dict[str, Any] | None = None
        if raw:
            try:
                parsed = _loads(raw)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                self._send(
                    400,
                    {
                        "error": {
                            "code": "InvalidRequestContent",
                            "message": "The request content is not valid JSON.",
                            "details": [],
                        }
                    },
                    {},
                )
                return
            body = parsed
        resp = self.server.state.handle(self.command, parts.path, query, headers, body)
        if resp.raw is not None:  # written under the state's lock (ETag in its headers)
            self._write(resp.status, resp.raw, resp.headers)
        else:
            self._send(resp.status, resp.body, resp.headers)

    def _send(self, status: int, body: dict[str, Any] | None, headers: dict[str, str]) -> None:
        if body is None:
            self._write(status, b"", headers)
        else:
            self._write(status, encode(body), etag_headers(body, headers))

    def _write(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", "emulator")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_GET = do_PUT = do_DELETE = do_POST = do_PATCH = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, state: ArmState, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@dataclass
class ArmEmulator:
    """A running emulator: ``base_url`` and ``ca_bundle`` are what the SDK client needs."""

    state: ArmState
    base_url: str
    ca_bundle: str
    _server: _Server
    _thread: threading.Thread
    _tmp: tempfile.TemporaryDirectory[str] = field(repr=False)

    @classmethod
    def start(cls, subscription: str, location: str, **state_args: Any) -> ArmEmulator:
        tmp = tempfile.TemporaryDirectory(prefix="lbprov-azure-")
        cert, key = make_self_signed(Path(tmp.name))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        state = ArmState(subscription, location, **state_args)
        server = _Server(state, ctx)
        _host, port = server.server_address[:2]
        state.base_url = f"https://127.0.0.1:{port}"
        thread = threading.Thread(target=server.serve_forever, name="arm-emulator", daemon=True)
        thread.start()
        return cls(state, state.base_url, str(cert), server, thread, tmp)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._tmp.cleanup()
