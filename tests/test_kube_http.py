"""The sandbox API server's request head (lbprov/sandbox/kube_http.py), over raw sockets: what
http.server answered before (request line checks, 431, Connection, 100-continue) still holds."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator

import pytest

from lbprov.sandbox.kube_api import KubeAPIServer
from lbprov.sandbox.kube_http import MAX_HEADERS, read_headers


@pytest.fixture
def api() -> Iterator[KubeAPIServer]:
    with KubeAPIServer() as server:
        yield server


def exchange(api: KubeAPIServer, data: bytes, *, wait_for: bytes = b"\r\n\r\n") -> bytes:
    with socket.create_connection((api.host, api.port), timeout=5) as sock:
        sock.sendall(data)
        out = b""
        while wait_for not in out:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def test_headers_are_case_insensitive_first_wins_and_folded_lines_continue() -> None:
    raw = (
        b"Content-Type: application/json\r\n"
        b"X-Long: first part\r\n"
        b"\tsecond part\r\n"
        b"content-type: text/plain\r\n"
        b"Accept:application/json;as=Table  \r\n"
        b"\r\n"
        b"BODY"
    )
    rfile = io.BytesIO(raw)
    headers = read_headers(rfile)
    assert headers.get("CONTENT-TYPE") == "application/json"
    assert headers.get_all("Content-Type") == ["application/json", "text/plain"]
    assert headers.get("x-long") == "first part second part"
    assert headers.get("accept") == "application/json;as=Table"
    assert headers.get("Missing", "d") == "d" and "accept" in headers
    assert rfile.read() == b"BODY", "the body is left unread"


def test_a_request_with_headers_gets_its_answer_and_the_connection_stays_open(api: KubeAPIServer) -> None:
    with socket.create_connection((api.host, api.port), timeout=5) as sock:
        for _ in range(2):  # keep-alive: two requests on one connection
            sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\nACCEPT: application/json\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 200"), head


def test_connection_close_closes(api: KubeAPIServer) -> None:
    out = exchange(api, b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", wait_for=b"\x00")
    assert out.startswith(b"HTTP/1.1 200") and b"gitVersion" in out


def test_bad_request_lines_get_the_standard_answers(api: KubeAPIServer) -> None:
    # Before a version is accepted the answer is HTTP/0.9 style (no status line), as http.server's.
    assert b"Error code: 400" in exchange(api, b"GET /version HTTP/x.y\r\n\r\n", wait_for=b"</html>")
    assert b"Error code: 505" in exchange(api, b"GET /version HTTP/2.0\r\n\r\n", wait_for=b"</html>")
    assert exchange(api, b"GET a b c HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400")


def test_too_many_or_too_long_headers_get_431(api: KubeAPIServer) -> None:
    many = b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS + 1))
    assert exchange(api, b"GET /version HTTP/1.1\r\n" + many + b"\r\n").startswith(b"HTTP/1.1 431")
    long = b"X-Big: " + b"v" * 70000 + b"\r\n"
    assert exchange(api, b"GET /version HTTP/1.1\r\n" + long + b"\r\n").startswith(b"HTTP/1.1 431")


@pytest.mark.parametrize(
    "line",
    [
        b"Content-Length : 5\r\n",  # whitespace between the name and the colon (RFC 9112 5.1)
        b"no colon here\r\n",  # not a field at all
        b": no name\r\n",  # an empty name
        b"\tfolded before any field\r\n",  # a continuation of nothing
    ],
)
def test_a_malformed_header_line_gets_400(api: KubeAPIServer, line: bytes) -> None:
    """RFC 9112 section 5.1: a server MUST reject a field name followed by whitespace with 400 (a
    lenient parser reads it as another field than the sender's intermediaries did: smuggling)."""
    out = exchange(api, b"GET /version HTTP/1.1\r\n" + line + b"Host: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out[:80]


def test_expect_100_continue_is_answered_before_the_body(api: KubeAPIServer) -> None:
    body = b'{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"cont"}}'
    with socket.create_connection((api.host, api.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100"), interim
        sock.sendall(body)
        final = b""
        while b"\r\n\r\n" not in final:
            final += sock.recv(65536)
        assert final.startswith(b"HTTP/1.1 201"), final
