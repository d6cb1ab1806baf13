"""The emulator behind HTTP, with a request log and fault injection.

A stdlib ``ThreadingHTTPServer`` (HTTP/1.1 keep-alive, so the SDK's ``requests`` session reuses its
connection) on 127.0.0.1 and an ephemeral port. Every request is logged on the server side
(method, path, operation, status): tests read :meth:`SandboxServer.mutating_requests` to prove that a
dry run sent no write at all, independently of the client's own counters. Faults (429 / 503 /
latency) are injected per operation, every n-th request or the next n requests, before the
request touches any state, as a throttled real API would answer.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from lbprov_gcp.sandbox.emulator import ComputeEmulator, parse_route
from lbprov_gcp.sandbox.errors import ApiError

_FAULT_BODIES = {
    429: ("rateLimitExceeded", "Rate Limit Exceeded"),
    403: ("rateLimitExceeded", "Rate Limit Exceeded"),
    500: ("backendError", "Internal error. Please try again or contact Google Support."),
    503: ("backendError", "The service is currently unavailable."),
}


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    operation: str
    mutating: bool
    status: int

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Fault:
    """Answer matching requests with ``status`` (or only delay them by ``latency`` seconds).

    ``every_n``: every n-th matching request; ``count``: the next ``count`` matching requests (both
    may be combined: every n-th, at most ``count`` times). ``operations`` limits it to operation
    names (``"forwardingRules.insert"``) or ``"write"`` / ``"read"``.
    """

    status: int | None = None
    every_n: int | None = None
    count: int | None = None
    operations: frozenset[str] | None = None
    latency: float = 0.0
    retry_after: float | None = None
    seen: int = 0
    fired: int = 0

    def matches(self, operation: str, mutating: bool) -> bool:
        if self.operations is None:
            return True
        kind = "write" if mutating else "read"
        return operation in self.operations or kind in self.operations

    def should_fire(self) -> bool:
        """Called once per matching request."""
        self.seen += 1
        if self.count is not None and self.fired >= self.count:
            return False
        if self.every_n is not None and self.seen % self.every_n != 0:
            return False
        self.fired += 1
        return True


@dataclass
class _State:
    emulator: ComputeEmulator
    log: list[RequestRecord] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: int = 0  # accepted so far (each keep-alive connection serves many requests)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: avoid the 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # the request log is kept in memory
        pass

    def _serve(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        if self.command == "POST" and url.path == "/batch/compute/v1":
            self._serve_batch(state, raw)
            return
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            route = parse_route(self.command, url.path)
            operation, mutating = route.operation, route.mutating
        except ApiError:
            operation, mutating = "unknown", self.command not in ("GET", "HEAD")
        status, body, headers = self._answer(state, url.path, query, raw, operation, mutating)
        with state.lock:
            state.log.append(RequestRecord(self.command, url.path, operation, mutating, status))
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _serve_batch(self, state: _State, raw: bytes) -> None:
        """Google's batch endpoint (``POST /batch/compute/v1``, multipart/mixed of HTTP requests), which
        gcloud uses for some lists (``instance-groups list``): each part is answered as if sent alone."""
        ctype = self.headers.get("Content-Type", "")
        boundary = ctype.partition("boundary=")[2].strip('"')
        if not ctype.startswith("multipart/mixed") or not boundary:
            payload = json.dumps(
                ApiError(400, "badRequest", "a batch request is multipart/mixed").body()
            ).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        out_boundary = "batch_lbprov_sandbox"
        chunks: list[bytes] = []
        for part in raw.split(b"--" + boundary.encode())[1:]:
            if part.startswith(b"--"):
                break
            outer, _, inner = part.strip(b"\r\n").partition(b"\r\n\r\n")
            if not inner:
                outer, _, inner = part.strip(b"\n").partition(b"\n\n")
            content_id = ""
            for line in outer.decode().splitlines():
                if line.lower().startswith("content-id:"):
                    content_id = line.split(":", 1)[1].strip().strip("<>")
            head, _, body = inner.replace(b"\r\n", b"\n").partition(b"\n\n")
            method, target, *_ = head.decode().splitlines()[0].split(" ")
            url = urlsplit(target)
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            try:
                route = parse_route(method, url.path)
                operation, mutating = route.operation, route.mutating
            except ApiError:
                operation, mutating = "unknown", method not in ("GET", "HEAD")
            self.command = method  # the inner request's method, for _answer
            status, answer, _ = self._answer(state, url.path, query, body.strip(), operation, mutating)
            with state.lock:
                state.log.append(RequestRecord(method, url.path, operation, mutating, status))
            text = json.dumps(answer)
            chunks.append(
                (
                    f"--{out_boundary}\r\nContent-Type: application/http\r\n"
                    f"Content-ID: <response-{content_id}>\r\n\r\n"
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                    f"Content-Type: application/json; charset=UTF-8\r\nContent-Length: {len(text.encode())}\r\n\r\n"
                    f"{text}\r\n"
                ).encode()
            )
        self.command = "POST"
        with state.lock:
            state.log.append(RequestRecord("POST", "/batch/compute/v1", "batch", False, 200))
        payload = b"".join(chunks) + f"--{out_boundary}--\r\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/mixed; boundary={out_boundary}")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _answer(
        self, state: _State, path: str, query: dict[str, str], raw: bytes, operation: str, mutating: bool
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        delay = 0.0
        fired: Fault | None = None
        with state.lock:
            for fault in state.faults:
                if not fault.matches(operation, mutating):
                    continue
                if fault.status is not None and fired is not None:
                    continue  # one error per request: later faults do not count this one
                if fault.should_fire():
                    delay += fault.latency
                    if fault.status is not None:
                        fired = fault
        if delay:
            time.sleep(delay)
        if fired is not None and fired.status is not None:
            reason, message = _FAULT_BODIES.get(fired.status, ("backendError", "Injected fault"))
            err = ApiError(fired.status, reason, message)
            headers = {"Retry-After": f"{fired.retry_after:g}"} if fired.retry_after is not None else {}
            return fired.status, err.body(), headers
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            err = ApiError(400, "parseError", "Invalid JSON payload received.")
            return 400, err.body(), {}
        try:
            status, answer = state.emulator.handle(self.command, path, query, body)
        except Exception as exc:  # an emulator bug must still answer, in Google's shape
            err = ApiError(500, "backendError", f"emulator error: {type(exc).__name__}: {exc}")
            return 500, err.body(), {}
        return status, answer, {}

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_PATCH = _serve
    do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    #: The listen backlog (socketserver's default is 5): a burst of new connections beyond it was
    #: refused or reset on a loaded machine, which the provider rightly takes for an unreachable
    #: endpoint; Google's front ends do not refuse connections under such a burst.
    request_queue_size = 128

    def __init__(self, state: _State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.state.lock:
            self.state.connections += 1
        super().process_request(request, client_address)


class SandboxServer:
    """A running emulator: ``url`` is the ``api_endpoint`` to give google-cloud-compute."""

    def __init__(self, project: str, region: str) -> None:
        self.emulator = ComputeEmulator(project, region)
        self._state = _State(self.emulator)
        self._server = _Server(self._state)
        host, port = str(self._server.server_address[0]), int(self._server.server_address[1])
        self.url = f"http://{host}:{port}"
        self.emulator.base_url = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="gce-emulator",
            daemon=True,
        )

    def start(self) -> SandboxServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- request log ------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        with self._state.lock:
            return list(self._state.log)

    def mutating_requests(self) -> list[str]:
        """Every mutating request received (even ones answered with an error), as ``METHOD path``."""
        return [str(r) for r in self.requests if r.mutating]

    @property
    def connections(self) -> int:
        """Connections accepted so far: a client that reuses its connections keeps this small."""
        with self._state.lock:
            return self._state.connections

    def clear_log(self) -> None:
        with self._state.lock:
            self._state.log.clear()

    # -- faults -----------------------------------------------------------------------------------

    def inject(
        self,
        status: int | None = 503,
        *,
        every_n: int | None = None,
        count: int | None = None,
        operations: Iterable[str] | None = None,
        latency: float = 0.0,
        retry_after: float | None = None,
    ) -> Fault:
        """Add a fault; returns it (``fault.fired`` tells how often it hit)."""
        fault = Fault(
            status=status,
            every_n=every_n,
            count=count,
            operations=frozenset(operations) if operations is not None else None,
            latency=latency,
            retry_after=retry_after,
        )
        with self._state.lock:
            self._state.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.faults.clear()
