"""lbprov.httpheaders: the same HTTPMessage as http.client's own parser, on plain and odd blocks."""

from __future__ import annotations

import http.client
import http.server
import io
import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from lbprov import httpheaders
from lbprov.httpheaders import parse_headers, stdlib_parse_headers

#: What an API server, moto, the GCE and ARM emulators answer: the common case the fast path takes.
PLAIN = (
    b"Content-Type: application/json\r\n"
    b"Audit-Id: 7d9c2f0e-1b2a-4c3d-8e9f-0a1b2c3d4e5f\r\n"
    b"Cache-Control: no-cache, private\r\n"
    b"X-Kubernetes-Pf-Flowschema-Uid: 0b7c\r\n"
    b"Date: Mon, 30 Nov 2026 18:00:00 GMT\r\n"
    b"Content-Length: 812\r\n"
    b"\r\n"
)

ODD = {
    "empty block": b"\r\n",
    "bare LF line ends": b"A: 1\nB: 2\n\n",
    "duplicate headers": b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nset-cookie: c=3\r\n\r\n",
    "no blank after colon": b"A:1\r\nB:\t 2\r\n\r\n",
    "empty value": b"A:\r\nB: \t \r\n\r\n",
    "trailing blanks kept": b"A: 1  \t\r\n\r\n",
    "colon in value": b"Location: http://h:1/p?q=a:b\r\n\r\n",
    "continuation line": b"A: 1\r\n  more\r\n\tand more\r\nB: 2\r\n\r\n",
    "first line is a continuation": b" A: 1\r\nB: 2\r\n\r\n",
    "line without a colon": b"A: 1\r\nnot a header\r\nB: 2\r\n\r\n",
    "empty name": b": 1\r\nB: 2\r\n\r\n",
    "space before the colon": b"A : 1\r\n\r\n",
    "bare CR in a value": b"A: 1\r2\r\nB: 3\r\n\r\n",
    "CR CR LF": b"A: 1\r\r\n\r\n",
    "From line first": b"From someone\r\nA: 1\r\n\r\n",
    "From line later": b"A: 1\r\nFrom someone\r\n\r\n",
    "unterminated block (EOF)": b"A: 1\r\nB: 2",
    "nothing at all (EOF)": b"",
    "body-like line after headers": b"A: 1\r\n\r\nbody\r\n",
    "latin-1 value": b"X-Name: caf\xe9 \xff\x85\x0b\x0c\x1c\r\n\r\n",
    "control characters": b"X-A: a\x00b\x7f\r\n\r\n",
    "multipart content type": b"Content-Type: multipart/mixed; boundary=xyz\r\n\r\n",
    "multipart without boundary": b"Content-Type: multipart/mixed\r\n\r\n",
    "message content type": b"Content-Type: message/rfc822\r\n\r\n",
    "delivery status": b"Content-Type: message/delivery-status\r\n\r\n",
    "odd spacing in the type": b"Content-Type:  Multipart /x\r\n\r\n",
    "two content types": b"Content-Type: text/plain\r\nContent-Type: multipart/mixed\r\n\r\n",
    "non-ascii in the name": b"X-\xe9: 1\r\n\r\n",
    "tab inside the name": b"X\tA: 1\r\n\r\n",
    "header named From": b"From: a@b\r\n\r\n",
}


def _attrs(message: Any) -> dict[str, Any]:
    """Everything the message holds (payload, defects by type, headers, policy, class)."""
    state = dict(vars(message))
    state["defects"] = [type(d) for d in state.get("defects", [])]
    payload = state.get("_payload")
    if isinstance(payload, list):  # a nested message: compare its parts' state too
        state["_payload"] = [_attrs(p) for p in payload]
    state["class"] = type(message)
    return state


def _both(block: bytes) -> tuple[Any, Any]:
    return parse_headers(io.BytesIO(block)), stdlib_parse_headers(io.BytesIO(block))


def _same(block: bytes) -> None:
    fast, slow = _both(block)
    assert _attrs(fast) == _attrs(slow), block
    assert fast.items() == slow.items()
    assert str(fast) == str(slow)
    for name in {n.lower() for n, _ in slow.items()} | {"content-type", "missing"}:
        assert fast.get_all(name) == slow.get_all(name)
        assert fast.get(name) == slow.get(name)
    assert fast.get_content_type() == slow.get_content_type()


def test_a_plain_block_takes_the_fast_path_and_equals_the_stdlib_message() -> None:
    assert httpheaders._plain_message(http.client._read_headers(io.BytesIO(PLAIN)), http.client.HTTPMessage)
    _same(PLAIN)


@pytest.mark.parametrize("block", list(ODD.values()), ids=list(ODD))
def test_odd_blocks_give_the_stdlib_message(block: bytes) -> None:
    _same(block)


@pytest.mark.parametrize(
    "block",
    [
        ODD["continuation line"],
        ODD["line without a colon"],
        ODD["bare CR in a value"],
        ODD["multipart content type"],
    ],
)
def test_odd_blocks_are_left_to_the_stdlib_parser(block: bytes) -> None:
    lines = http.client._read_headers(io.BytesIO(block))
    assert httpheaders._plain_message(lines, http.client.HTTPMessage) is None


def test_the_rest_of_the_stream_is_left_unread_for_the_body() -> None:
    fp = io.BytesIO(PLAIN + b'{"kind":"Status"}')
    parse_headers(fp)
    assert fp.read() == b'{"kind":"Status"}'


def test_random_blocks_give_the_stdlib_message() -> None:
    """Header lines made of the characters that matter to either parser, in random mixes."""
    rng = random.Random(14)
    pieces = [
        b"A",
        b"b-c",
        b":",
        b": ",
        b" ",
        b"\t",
        b"\r",
        b"\n",
        b"\r\n",
        b"From ",
        b"x",
        b"\xe9",
        b";",
        b"=",
    ]
    types = [b"Content-Type: multipart/a\r\n", b"Content-Type: text/x\r\n", b"content-type: Message/y\r\n"]
    for _ in range(3000):
        lines = [
            b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 6))) for _ in range(rng.randint(0, 5))
        ]
        if rng.random() < 0.2:
            lines.insert(rng.randint(0, len(lines)), rng.choice(types))
        block = b"".join(line if line.endswith(b"\n") else line + b"\r\n" for line in lines)
        _same(block + rng.choice([b"\r\n", b"\n", b""]))


def test_a_custom_message_class_gets_the_stdlib_parse() -> None:
    class Mine(http.client.HTTPMessage):
        pass

    message = parse_headers(io.BytesIO(PLAIN), _class=Mine)
    assert type(message) is Mine
    assert _attrs(message) == _attrs(stdlib_parse_headers(io.BytesIO(PLAIN), _class=Mine))


def test_the_line_length_limit_raises_as_the_stdlib() -> None:
    block = b"A: " + b"x" * 70000 + b"\r\n\r\n"
    with pytest.raises(http.client.LineTooLong, match="header line"):
        stdlib_parse_headers(io.BytesIO(block))
    with pytest.raises(http.client.LineTooLong, match="header line"):
        parse_headers(io.BytesIO(block))


def test_the_header_count_limit_raises_as_the_stdlib() -> None:
    block = b"".join(b"H%d: v\r\n" % i for i in range(101)) + b"\r\n"
    with pytest.raises(http.client.HTTPException, match="got more than 100 headers"):
        stdlib_parse_headers(io.BytesIO(block))
    with pytest.raises(http.client.HTTPException, match="got more than 100 headers"):
        parse_headers(io.BytesIO(block))
    exactly = b"".join(b"H%d: v\r\n" % i for i in range(99)) + b"\r\n"  # 99 + the blank line
    _same(exactly)


@pytest.fixture
def installed() -> Iterator[None]:
    """Installed for the test; afterwards the stdlib's parser is back, then the state before it
    (building a Controller in an earlier test installs it for the rest of the process)."""
    was_installed = http.client.parse_headers is parse_headers
    httpheaders.uninstall()
    httpheaders.install()
    try:
        yield
    finally:
        httpheaders.uninstall()
        assert http.client.parse_headers is stdlib_parse_headers
        if was_installed:
            httpheaders.install()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_installed_it_parses_urllib3_responses_over_a_kept_alive_connection(installed: None) -> None:
    assert http.client.parse_headers is parse_headers
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        pool = urllib3.HTTPConnectionPool("127.0.0.1", server.server_address[1], maxsize=1)
        for _ in range(3):  # the same connection: the body was read as the headers said
            resp = pool.request("GET", "/")
            assert resp.status == 200
            assert resp.data == b"{}"
            assert resp.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
            assert type(resp.headers) is urllib3.HTTPHeaderDict
            assert isinstance(resp._original_response.msg, http.client.HTTPMessage)
        assert pool.num_connections == 1
    finally:
        server.shutdown()
        server.server_close()


def test_install_is_idempotent_and_uninstall_restores(installed: None) -> None:
    httpheaders.install()
    assert http.client.parse_headers is parse_headers


def test_building_the_controller_installs_it() -> None:
    from tests.test_reconciler import FakeKube, FakeProvider, controller_over

    was_installed = http.client.parse_headers is parse_headers
    httpheaders.uninstall()
    try:
        controller_over(FakeKube([]), FakeProvider("a", []), workers=1)
        assert http.client.parse_headers is parse_headers
    finally:
        httpheaders.uninstall()
        if was_installed:
            httpheaders.install()
