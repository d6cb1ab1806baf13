"""lbprov.leanhttp: the same requests on the wire as urllib3's pool, keep-alive, and urllib3's errors."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import urllib3

from lbprov.kube.client import KubeClient
from lbprov.leanhttp import LeanPool, connect_attempts

#: An answer that starts with it is written (without it), and then the server hangs up.
HANG_UP = b"<hang up>"
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
Answer = Callable[[int, bytes], bytes | None]  # (request number, raw request) -> raw answer, None: hang up


class RawServer:
    """Records each raw request (head and body) and writes the scripted answer byte for byte."""

    def __init__(self, answer: Answer = lambda n, raw: OK) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self.release = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        with conn:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                raw = head + reader.read(length)
                self.requests.append(raw)
                answer = self.answer(len(self.requests), raw)
                if answer is None:
                    return
                if answer == b"":  # silence until released
                    self.release.wait(30)
                    return
                conn.sendall(answer.removeprefix(HANG_UP))
                if answer.startswith(HANG_UP):
                    return

    def close(self) -> None:
        self.release.set()
        self._sock.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    made: list[RawServer] = []

    def make(answer: Answer = lambda n, raw: OK) -> RawServer:
        made.append(RawServer(answer))
        return made[-1]

    yield make
    for server in made:
        server.close()


def _calls(client: KubeClient) -> None:
    client.list_services("ns-1", label_selector="app=web")
    client.create_service("ns-1", {"metadata": {"name": "n"}})
    client.patch_service("ns-1", "n", {"metadata": {"finalizers": ["f"]}})
    client.patch_service_status("ns-1", "n", {"status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}})
    client.delete_service("ns-1", "n")


def test_the_kube_client_sends_the_same_bytes_as_through_urllib3s_pool(raw_server: Any) -> None:
    def answer(n: int, raw: bytes) -> bytes:
        if raw.startswith(b"GET"):
            body = b'{"metadata":{"resourceVersion":"7"},"items":[]}'
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        return OK

    lean, pooled = raw_server(answer), raw_server(answer)
    client = KubeClient.for_url(lean.url, token="tok")
    assert client.transport.lean is not None
    _calls(client)
    old = KubeClient.for_url(pooled.url, token="tok")
    old.transport.lean = None  # urllib3's pool, as before leanhttp
    _calls(old)
    port = str(lean.port).encode()
    assert [r.replace(port, b"PORT") for r in lean.requests] == [
        r.replace(str(pooled.port).encode(), b"PORT") for r in pooled.requests
    ]
    assert len(lean.requests) == 5 and lean.connections == 1  # one kept-alive connection


def test_a_chunked_answer_is_read_whole_and_the_connection_kept(raw_server: Any) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    server = raw_server(lambda n, raw: chunked)
    pool = LeanPool("http", "127.0.0.1", server.port, maxsize=2)
    for _ in range(3):
        assert pool.request("GET", "/x", None, {}, connect_timeout=5, read_timeout=5) == (200, "OK", b"abcde")
    assert pool.connections_made == 1 == server.connections


def test_a_connection_the_server_closed_while_idle_is_replaced_before_use(raw_server: Any) -> None:
    closing = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    server = raw_server(lambda n, raw: closing)
    pool = LeanPool("http", "127.0.0.1", server.port, maxsize=2)
    pool.request("GET", "/a", None, {}, connect_timeout=5, read_timeout=5)
    idle = pool._idle[0]
    assert idle.sock is not None
    idle.sock.shutdown(socket.SHUT_RD)  # reads as closed, as a server's FIN does
    assert pool.request("GET", "/b", None, {}, connect_timeout=5, read_timeout=5)[0] == 200
    assert pool.connections_made == 2 and idle.sock is None


def test_connection_close_in_the_answer_closes_it(raw_server: Any) -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    server = raw_server(lambda n, raw: closing)
    pool = LeanPool("http", "127.0.0.1", server.port, maxsize=2)
    for _ in range(2):
        assert pool.request("GET", "/", None, {}, connect_timeout=5, read_timeout=5)[2] == b"{}"
    assert pool.connections_made == 2 and pool._idle == []


def test_no_answer_in_the_read_timeout_is_urllib3s_read_timeout_sent_once(raw_server: Any) -> None:
    server = raw_server(lambda n, raw: b"")
    pool = LeanPool("http", "127.0.0.1", server.port, maxsize=2)
    with pytest.raises(
        urllib3.exceptions.ReadTimeoutError, match=r"127\.0\.0\.1:\d+: Read timed out\. \(read timeout=0\.2\)"
    ):
        pool.request("PATCH", "/p", b"{}", {}, connect_timeout=5, read_timeout=0.2)
    assert len(server.requests) == 1 and pool._idle == []


@pytest.mark.parametrize(
    "answer",
    [b"not http at all\r\n\r\n", HANG_UP + b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", None],
    ids=["garbage", "cut short", "hung up"],
)
def test_a_broken_answer_is_urllib3s_protocol_error(raw_server: Any, answer: bytes | None) -> None:
    server = raw_server(lambda n, raw: answer)
    pool = LeanPool("http", "127.0.0.1", server.port, maxsize=2)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        pool.request("GET", "/", None, {}, connect_timeout=5, read_timeout=5)
    assert pool._idle == []


def test_a_refused_connect_is_tried_again_then_max_retry_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    pool = LeanPool("http", "127.0.0.1", port, maxsize=2)
    tries: list[int] = []
    real = pool._connection_class

    def counted(*args: Any, **kwargs: Any) -> Any:
        tries.append(1)
        return real(*args, **kwargs)

    pool._connection_class = counted  # type: ignore[assignment]
    with pytest.raises(urllib3.exceptions.MaxRetryError) as info:
        pool.request("GET", "/", None, {}, connect_timeout=5, read_timeout=5, connect_attempts=2)
    assert isinstance(info.value.reason, urllib3.exceptions.NewConnectionError)
    assert len(tries) == 2


def test_connect_attempts_follow_urllib3s_retries() -> None:
    assert connect_attempts(urllib3.Retry(total=1, connect=1, read=0, status=0, redirect=0)) == 2
    assert connect_attempts(urllib3.Retry(total=3, connect=None)) == 4
    assert connect_attempts(urllib3.Retry(total=0, connect=5)) == 1
    assert connect_attempts(0) == 1
    assert connect_attempts(2) == 3


def test_a_closed_pool_connects_afresh(raw_server: Any) -> None:
    server = raw_server()
    pool = LeanPool("http", "127.0.0.1", server.port, maxsize=2)
    pool.request("GET", "/", None, {}, connect_timeout=5, read_timeout=5)
    pool.clear()
    pool.request("GET", "/", None, {}, connect_timeout=5, read_timeout=5)
    assert pool.connections_made == 2 == server.connections


def test_the_idle_connections_are_bounded(raw_server: Any) -> None:
    server = raw_server()
    pool = LeanPool("http", "127.0.0.1", server.port, maxsize=1)
    taken = [pool._connect("/", 5, 1) for _ in range(3)]
    for conn in taken:
        pool._give(conn)
    assert len(pool._idle) == 1
    assert [c.sock is None for c in taken] == [False, True, True]
