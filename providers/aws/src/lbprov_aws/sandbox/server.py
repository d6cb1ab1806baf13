"""moto's ThreadedMotoServer with its WSGI app wrapped by :class:`RequestRecorder`.

The recorder notes ``<service>:<Action>`` of every request moto receives, so that
``mutating_requests()`` is what the emulator saw, not what our client counted (the read-only proof
of ``lbprov plan`` relies on that).

The HTTP server is cheroot's thread-pool WSGI server, not werkzeug's development server that
``ThreadedMotoServer`` uses. Why: werkzeug's server answers every request with ``Connection:
close`` ("This disables HTTP/1.1 keep-alive connections", werkzeug/serving.py), so each request cost
a TCP connect and accept, a new server thread, and a new connection in the client's pool; AWS keeps
connections alive. With keep-alive, at 100 creates in one process (``bench/aws_moto_calls.py``'s
setting), the server threads' CPU per Service went from 15.5 to 13.5 ms and the client's from 12.0
to 11.0 ms. The app is the same WSGI callable either way. ``LBPROV_SANDBOX_STOCK_MOTO=1`` keeps
werkzeug's server (with at_scale.py's response path: moto as shipped). Under the same switch, the
EC2 and ELB requests reach moto's callbacks without its Flask app (direct.py).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from io import BytesIO
from typing import Any
from urllib.parse import parse_qs, urlencode

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from lbprov_aws.sandbox.direct import DirectApp
from lbprov_aws.sandbox.strict import Refusal, Replay, StrictRules, error_body

_READ_PREFIXES = ("Describe", "Get", "List")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _service_of(environ: dict[str, Any], params: dict[str, list[str]]) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = ""
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        service = scope[3] if len(scope) > 3 else ""
    if service == "elasticloadbalancing":
        return "elbv2" if params.get("Version", [""])[0] == "2015-12-01" else "elb"
    return service or "unknown"


class RequestRecorder:
    """WSGI middleware noting ``<service>:<Action>`` of each request (query and JSON protocols),
    and, with ``strict``, refusing what AWS would refuse before moto sees it (strict.py)."""

    def __init__(self, app: WSGIApp, strict: StrictRules | None = None) -> None:
        self.app = app
        self.strict = strict
        self.lock = threading.Lock()
        #: Creates run one at a time through the strict check and moto, so that two identical
        #: concurrent creates complete once (AWS's idempotence), not twice (moto's).
        self.create_lock = threading.Lock()
        self.requests: list[str] = []
        #: ``<service>:<Action> <code>`` of every request the strict layer refused.
        self.refused: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api"):
            if path.startswith("/moto-api/reset") and self.strict is not None:
                self.strict.reset()
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = BytesIO(body)
        params = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            params.update(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))
        action = params.get("Action", [""])[0]
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not action and target:
            action = target.rsplit(".", 1)[-1]
        service = _service_of(environ, params)
        with self.lock:
            self.requests.append(f"{service}:{action or environ.get('REQUEST_METHOD')}")
        if self.strict is None:
            return self.app(environ, start_response)
        flat = {k: v[0] for k, v in params.items()}
        if action.startswith("Create"):
            with self.create_lock:
                return list(self._strict_call(service, action, flat, environ, start_response))
        return self._strict_call(service, action, flat, environ, start_response)

    def _strict_call(
        self,
        service: str,
        action: str,
        flat: dict[str, str],
        environ: dict[str, Any],
        start_response: Callable[..., Any],
    ) -> Iterable[bytes]:
        assert self.strict is not None
        verdict = self.strict.check(service, action, flat)
        if isinstance(verdict, Refusal):
            with self.lock:
                self.refused.append(f"{service}:{action} {verdict.code}")
            payload = error_body(service, verdict)
            start_response(
                f"{verdict.status} Bad Request",
                [("Content-Type", "text/xml"), ("Content-Length", str(len(payload)))],
            )
            return [payload]
        if isinstance(verdict, Replay):
            return self._replay(verdict, flat, environ, start_response)
        seen: dict[str, str] = {}

        def recording_start(status: str, headers: Any, *rest: Any) -> Any:
            seen["status"] = status
            return start_response(status, headers, *rest)

        out = list(self.app(environ, recording_start))
        if seen.get("status", "").startswith("200"):
            self.strict.note_success(service, action, flat)
        return out

    def _replay(
        self,
        replay: Replay,
        flat: dict[str, str],
        environ: dict[str, Any],
        start_response: Callable[..., Any],
    ) -> Iterable[bytes]:
        """Answer an idempotent create with the resource that exists (AWS: "completes at most once")."""
        body = urlencode(
            {"Action": replay.action, "Version": flat.get("Version", ""), **replay.params}
        ).encode()
        inner = dict(environ)
        inner["wsgi.input"] = BytesIO(body)
        inner["CONTENT_LENGTH"] = str(len(body))
        inner["QUERY_STRING"] = ""
        seen: dict[str, Any] = {}

        def capture(status: str, headers: Any, *_: Any) -> None:
            seen["status"], seen["headers"] = status, headers

        text = b"".join(self.app(inner, capture)).decode()
        text = text.replace(f"{replay.action}Response", f"{replay.as_action}Response")
        text = text.replace(f"{replay.action}Result", f"{replay.as_action}Result")
        payload = text.encode()
        headers = [(k, v) for k, v in seen.get("headers", []) if k.lower() != "content-length"]
        start_response(seen.get("status", "200 OK"), [*headers, ("Content-Length", str(len(payload)))])
        return [payload]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.refused.clear()

    def mutating(self) -> list[str]:
        with self.lock:
            return [r for r in self.requests if not r.partition(":")[2].startswith(_READ_PREFIXES)]


#: Worker threads of the keep-alive server. moto holds the GIL for nearly all of a request, so more
#: threads add no throughput; this is well above the concurrent requests of the tests and the scale
#: bench (10 workers, plus reads). Idle keep-alive connections wait in cheroot's selector, not in a
#: worker.
THREADS = 32
#: Seconds an idle keep-alive connection stays open (urllib3 reconnects when it finds one closed).
IDLE_SECONDS = 60
#: Idle keep-alive connections kept open at once. cheroot's default is 10: past it, each answer
#: says ``Connection: close``. lbprov holds a pool per client (ec2, elbv2, elb), each with up to
#: one connection per worker, so at 10 workers about 30 connections are idle between requests, and
#: the scale bench saw 1,265 of 1,813 answers close their connection (a TCP connect, an accept and
#: a new pool connection per request, on both sides). AWS keeps them open.
KEEP_ALIVE_CONNECTIONS = 256
#: The listen backlog. cheroot's default is 5: a burst of new connections past it (a loaded machine,
#: a new NLB's creates overlapped by 10 workers) is reset by the kernel, which botocore reports as
#: "Connection was closed before we received a valid response" (150 connections at once: 15 of 750
#: reset at 5, none at 128). The GCE emulator's backlog is 128 for the same reason.
LISTEN_BACKLOG = 128


class _RecordingMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer whose app is wrapped by a :class:`RequestRecorder`, served by cheroot
    with keep-alive (the module docstring), or by werkzeug with ``LBPROV_SANDBOX_STOCK_MOTO=1``."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.keep_alive = os.environ.get("LBPROV_SANDBOX_STOCK_MOTO", "") not in ("1", "true")
        moto_app = DomainDispatcherApplication(create_backend_app)
        # direct.py: moto's EC2/ELB callbacks without the Flask app around them (same answers)
        app = DirectApp(moto_app) if self.keep_alive else moto_app
        self.recorder = RequestRecorder(app, StrictRules())
        self._cheroot: Any = None

    #: Seconds :meth:`start` waits for the server to bind before it gives up.
    START_SECONDS = 30.0

    def start(self) -> None:
        """moto's start waits for the ready event without a deadline, so a server thread that dies
        before binding (a missing dependency, a port refused) hung the caller for ever; here its
        error is raised in the caller, and a server that does not bind in time is an error too."""
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(target=self._guarded_entry, daemon=True)
        self._thread.start()
        if not self._server_ready_event.wait(self.START_SECONDS):
            raise RuntimeError(f"the moto sandbox server did not start within {self.START_SECONDS:g}s")
        if self._start_error is not None:
            raise RuntimeError(f"the moto sandbox server failed to start: {self._start_error!r}") from (
                self._start_error
            )

    def _guarded_entry(self) -> None:
        try:
            self._server_entry()
        except BaseException as exc:
            if self._server_ready_event.is_set():
                raise  # failed while serving: not a start-up error
            self._start_error = exc
            self._server_ready_event.set()

    def _server_entry(self) -> None:
        if self.keep_alive:
            from cheroot import wsgi

            self._cheroot = wsgi.Server(
                (self._ip_address, self._port),
                self.recorder,
                numthreads=THREADS,
                timeout=IDLE_SECONDS,
                request_queue_size=LISTEN_BACKLOG,
            )
            self._cheroot.keep_alive_conn_limit = KEEP_ALIVE_CONNECTIONS
            self._cheroot.prepare()  # binds the port: bind_addr is the real one
            self._server_ready_event.set()
            self._cheroot.serve()
            return
        self._server = make_server(
            self._ip_address, self._port, self.recorder, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    def get_host_and_port(self) -> tuple[str, int]:
        if self._cheroot is None:
            return super().get_host_and_port()
        host, port = self._cheroot.bind_addr[:2]
        return (str(host), int(port))

    def stop(self) -> None:
        if self._cheroot is None:
            super().stop()
            return
        self._server_ready_event.clear()
        self._cheroot.stop()
        if self._thread is not None:
            self._thread.join()
