"""lbprov.testing.wait_for: the one polling helper of every test module (core and providers); and
HeldPort, the port nothing listens on that no other process can take."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lbprov.testing import HeldPort, wait_for


def test_returns_the_first_truthy_value_and_stops_polling() -> None:
    answers = iter([None, [], {"ip": "192.0.2.1"}, "never asked"])
    calls = []

    def check() -> object:
        calls.append(1)
        return next(answers)

    assert wait_for(check, 5, "an address", interval=0.001) == {"ip": "192.0.2.1"}
    assert len(calls) == 3


def test_at_the_deadline_it_fails_naming_what_was_awaited_and_the_last_value() -> None:
    start = time.monotonic()
    with pytest.raises(AssertionError, match=r"timed out after 0\.2s waiting for the ingress \(last: \[\]\)"):
        wait_for(lambda: [], 0.2, "the ingress", interval=0.01)
    assert 0.2 <= time.monotonic() - start < 5


class _NotYet:
    """Falsy, with a long repr (a listing that is not complete yet, say)."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NotYet(" + "x" * 1000 + ")"


def test_a_long_last_value_is_cut_in_the_message() -> None:
    with pytest.raises(AssertionError) as info:
        wait_for(_NotYet, 0.01, "a listing", interval=0.005)
    message = str(info.value)
    assert message.startswith("timed out after 0.01s waiting for a listing (last: NotYet(xxx")
    assert message.endswith("...)") and len(message) < 300


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: object) -> None:
        pass


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_held_port_refuses_connections_serves_a_server_started_on_it_and_refuses_again() -> None:
    with HeldPort() as held:
        assert held.url == f"http://127.0.0.1:{held.port}"
        assert _refused(held.port)
        # no other socket can take it (a server of another process binds without SO_REUSEADDR, or
        # asks for port 0, which never gives a bound port)
        with socket.socket() as other, pytest.raises(OSError, match="in use"):
            other.bind(("127.0.0.1", held.port))
        server = ThreadingHTTPServer(("127.0.0.1", held.port), _Hello)  # binds beside it: "up"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with urllib.request.urlopen(held.url, timeout=60) as resp:
                assert resp.read() == b"hello"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(60)
        assert _refused(held.port)  # "down" again, and still held
        with socket.socket() as other, pytest.raises(OSError, match="in use"):
            other.bind(("127.0.0.1", held.port))
