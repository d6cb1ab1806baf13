"""The Compute transport's token refreshes and proxies (lbprov_gcp.transport), against local servers.

Moving Compute requests from ``requests`` to urllib3 must not lose what the ``requests`` session
did for them: a token refresh that gives up after the call's timeout and goes through the
environment's proxy, and a proxy URL's credentials and missing scheme read as ``requests`` reads
them. A recording server stands in for the proxy and the token endpoint: a request sent through a
proxy names its target in absolute form (``http://host:port/path``), one sent directly by path only.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.oauth2.credentials import Credentials as OAuthCredentials
from lbprov_gcp.transport import NoAnswer, Transport

from lbprov.cloudcalls import CloudCalls, failed_endpoint
from lbprov.testing import clean_http_environment

COMPUTE_PATH = "/compute/v1/projects/p/global/firewalls"
ANONYMOUS = AnonymousCredentials()  # type: ignore[no-untyped-call]


@dataclass
class Seen:
    """One request the recording server received."""

    method: str
    target: str
    #: header names in lower case
    headers: dict[str, str] = field(default_factory=dict)


class Recorder(ThreadingHTTPServer):
    """Answers every request (a token for ``.../token``, ``{}`` otherwise) and records it."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.seen: list[Seen] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def targets(self) -> list[str]:
        return [s.target for s in self.seen]


class _RecordingHandler(BaseHTTPRequestHandler):
    server: Recorder

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.seen.append(
            Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
        )
        token = self.path.endswith("/token")
        body = json.dumps({"access_token": "fresh", "expires_in": 3600} if token else {}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    clean_http_environment(monkeypatch)
    yield monkeypatch


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose connections are accepted (by the kernel's backlog) and never answered."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


def _oauth(token_uri: str) -> OAuthCredentials:
    """User credentials without a token: the first request refreshes it at ``token_uri``."""
    return OAuthCredentials(  # type: ignore[no-untyped-call]
        token=None, refresh_token="refresh", client_id="id", client_secret="secret", token_uri=token_uri
    )


def _transport(credentials: Any, endpoint: str) -> Transport:
    return Transport(credentials, CloudCalls("gcp", is_write=lambda op: False), endpoint)


def test_a_token_refresh_gives_up_after_the_calls_timeout_naming_the_token_endpoint(
    env: pytest.MonkeyPatch, recorder: Recorder, silent_port: int
) -> None:
    token_uri = f"http://127.0.0.1:{silent_port}/token"
    transport = _transport(_oauth(token_uri), recorder.url)
    outcome: list[BaseException] = []

    def send() -> None:
        try:
            transport.send("GET", recorder.url + COMPUTE_PATH, None, None, (1.0, 1.0))
        except BaseException as exc:  # the test reads it
            outcome.append(exc)

    worker = threading.Thread(target=send, daemon=True)
    worker.start()
    worker.join(timeout=20)  # a 1 s read timeout, with room for a loaded machine
    assert not worker.is_alive(), "the token refresh is still waiting for its answer"
    [error] = outcome
    assert isinstance(error, NoAnswer), repr(error)
    assert token_uri in str(error)
    assert failed_endpoint(error) == f"http://127.0.0.1:{silent_port}"
    assert recorder.seen == []  # the Compute request was never sent


def test_a_token_refresh_goes_through_the_environments_proxy_unless_no_proxy_covers_it(
    env: pytest.MonkeyPatch, recorder: Recorder
) -> None:
    env.setenv("HTTP_PROXY", recorder.url)
    transport = _transport(_oauth(recorder.url + "/token"), recorder.url)
    assert transport.send("GET", recorder.url + COMPUTE_PATH, None, None, (5.0, 5.0)).status_code == 200
    # both in absolute form: through the proxy
    assert recorder.targets() == [recorder.url + "/token", recorder.url + COMPUTE_PATH]
    assert recorder.seen[1].headers["authorization"] == "Bearer fresh"

    recorder.seen.clear()
    env.setenv("NO_PROXY", "127.0.0.1")
    transport = _transport(_oauth(recorder.url + "/token"), recorder.url)
    assert transport.send("GET", recorder.url + COMPUTE_PATH, None, None, (5.0, 5.0)).status_code == 200
    assert recorder.targets() == ["/token", COMPUTE_PATH]  # directly


def test_a_token_refresh_sends_the_proxy_urls_credentials(
    env: pytest.MonkeyPatch, recorder: Recorder
) -> None:
    port = recorder.server_address[1]
    env.setenv("HTTP_PROXY", f"http://ops:s3cret@127.0.0.1:{port}")
    transport = _transport(_oauth(recorder.url + "/token"), recorder.url)
    transport.send("GET", recorder.url + COMPUTE_PATH, None, None, (5.0, 5.0))
    expected = "Basic " + base64.b64encode(b"ops:s3cret").decode()
    assert [(s.target, s.headers.get("proxy-authorization")) for s in recorder.seen] == [
        (recorder.url + "/token", expected),
        (recorder.url + COMPUTE_PATH, expected),
    ]


def test_compute_requests_send_the_proxy_urls_credentials_as_requests_did(
    env: pytest.MonkeyPatch, recorder: Recorder
) -> None:
    port = recorder.server_address[1]
    # percent-encoded, as in a URL: requests unquotes them (requests.utils.get_auth_from_url)
    env.setenv("HTTP_PROXY", f"http://ops%40corp:pa%3Ass@127.0.0.1:{port}")
    transport = _transport(ANONYMOUS, recorder.url)
    transport.send("GET", recorder.url + COMPUTE_PATH, None, None, (5.0, 5.0))
    [seen] = recorder.seen
    assert seen.target == recorder.url + COMPUTE_PATH  # through the proxy
    assert seen.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"ops@corp:pa:ss").decode()


def test_a_proxy_without_credentials_sends_no_proxy_authorization(
    env: pytest.MonkeyPatch, recorder: Recorder
) -> None:
    env.setenv("HTTP_PROXY", recorder.url)
    _transport(ANONYMOUS, recorder.url).send("GET", recorder.url + COMPUTE_PATH, None, None, (5.0, 5.0))
    [seen] = recorder.seen
    assert seen.target == recorder.url + COMPUTE_PATH
    assert "proxy-authorization" not in seen.headers


def test_a_proxy_without_a_scheme_is_http_as_requests_reads_it(
    env: pytest.MonkeyPatch, recorder: Recorder
) -> None:
    env.setenv("HTTP_PROXY", f"127.0.0.1:{recorder.server_address[1]}")  # requests: prepend_scheme_if_needed
    transport = _transport(ANONYMOUS, recorder.url)
    assert transport.send("GET", recorder.url + COMPUTE_PATH, None, None, (5.0, 5.0)).status_code == 200
    assert recorder.targets() == [recorder.url + COMPUTE_PATH]  # through the proxy
