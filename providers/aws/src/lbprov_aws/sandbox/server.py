"""moto's ThreadedMotoServer with its WSGI app wrapped by :class:`RequestRecorder`.

The recorder notes ``<service>:<Action>`` of every request moto receives, so that
``mutating_requests()`` is what the emulator saw, not what our client counted (the read-only proof
of ``lbprov plan`` relies on that).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from io import BytesIO
from typing import Any
from urllib.parse import parse_qs

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

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
    """WSGI middleware noting ``<service>:<Action>`` of each request (query and JSON protocols)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.requests: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/moto-api"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = BytesIO(body)
            params = parse_qs(environ.get("QUERY_STRING", ""))
            if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
                params.update(parse_qs(body.decode("utf-8", "replace")))
            action = params.get("Action", [""])[0]
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            if not action and target:
                action = target.rsplit(".", 1)[-1]
            with self.lock:
                self.requests.append(
                    f"{_service_of(environ, params)}:{action or environ.get('REQUEST_METHOD')}"
                )
        return self.app(environ, start_response)

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()

    def mutating(self) -> list[str]:
        with self.lock:
            return [r for r in self.requests if not r.partition(":")[2].startswith(_READ_PREFIXES)]


class _RecordingMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer whose app is wrapped by a :class:`RequestRecorder`."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.recorder = RequestRecorder(DomainDispatcherApplication(create_backend_app))

    def _server_entry(self) -> None:
        self._server = make_server(
            self._ip_address, self._port, self.recorder, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()
