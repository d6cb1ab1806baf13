"""KubeClient's HTTP on the wire (lbprov/kube/transport.py): requests, error mapping, timeouts,
watches, proxies.

Most tests talk to :class:`ScriptedServer`, an HTTP/1.1 server whose answers each test writes
byte for byte (a Status body, a chunked watch cut mid-line, silence), because those are the cases
the sandbox API server does not produce on demand; the sandbox server is used where it does
(``fail_next``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import lbprov.kube.client as kube_client
from lbprov.kube.client import (
    AlreadyExists,
    Conflict,
    Gone,
    Invalid,
    KubeClient,
    KubeError,
    KubeUnreachable,
    NotFound,
    WatchDropped,
)
from lbprov.kube.config import bypasses_proxy, env_proxy
from lbprov.sandbox.kube_api import KubeAPIServer
from lbprov.testing import HeldPort, wait_for

# ---- a server whose answers the test scripts ----------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        seen = Seen(
            self.command, self.path if url.scheme else url.path, parse_qs(url.query), dict(self.headers), body
        )
        self.server.owner.seen.append(seen)
        self.server.owner.respond(self, seen)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    def log_message(self, *_: Any) -> None:
        pass

    # -- answers --

    def send_json(self, status: int, obj: Any, reason: str | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status, reason)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_text(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_chunks(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def cut(self) -> None:
        """Drop the connection with no terminating chunk, as a network cut would."""
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: ScriptedServer


@dataclass
class ScriptedServer:
    respond: Callable[[Handler, Seen], None]
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.owner = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[Handler, Seen], None]], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def make(respond: Callable[[Handler, Seen], None]) -> ScriptedServer:
        servers.append(ScriptedServer(respond))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "message": message,
        "code": code,
    }


EMPTY_LIST = {"kind": "ServiceList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"}, "items": []}


# ---- requests on the wire -----------------------------------------------------------------------


def test_requests_on_the_wire(scripted: Any) -> None:
    def respond(h: Handler, seen: Seen) -> None:
        h.send_json(
            200, EMPTY_LIST if seen.method == "GET" else {"kind": "Service", "metadata": {"name": "n"}}
        )

    srv = scripted(respond)
    client = KubeClient.for_url(srv.url + "/", token="tok-1")
    assert client.host == srv.url
    assert client.list_services("ns-1", label_selector="app=web") == ([], "7")
    client.create_service("ns-1", {"metadata": {"name": "n"}})
    client.patch_service("ns-1", "n", {"metadata": {"finalizers": ["f"]}})
    client.patch_service("ns-1", "n", {"metadata": {"finalizers": ["f"]}}, merge="strategic")
    client.patch_service("ns-1", "n", [{"op": "remove", "path": "/metadata/finalizers/0"}])
    client.patch_service_status("ns-1", "n", {"status": {"loadBalancer": {}}})
    client.delete_service("ns-1", "n")
    client.replace_lease("kube-system", "lbprov", {"metadata": {"name": "lbprov"}})

    got = [(s.method, s.path, s.headers.get("Content-Type")) for s in srv.seen]
    assert got == [
        ("GET", "/api/v1/namespaces/ns-1/services", None),
        ("POST", "/api/v1/namespaces/ns-1/services", "application/json"),
        ("PATCH", "/api/v1/namespaces/ns-1/services/n", "application/merge-patch+json"),
        ("PATCH", "/api/v1/namespaces/ns-1/services/n", "application/strategic-merge-patch+json"),
        ("PATCH", "/api/v1/namespaces/ns-1/services/n", "application/json-patch+json"),
        ("PATCH", "/api/v1/namespaces/ns-1/services/n/status", "application/merge-patch+json"),
        ("DELETE", "/api/v1/namespaces/ns-1/services/n", None),
        ("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/lbprov", "application/json"),
    ]
    assert srv.seen[0].query == {"labelSelector": ["app=web"], "limit": ["500"]}
    assert json.loads(srv.seen[4].body) == [{"op": "remove", "path": "/metadata/finalizers/0"}]
    assert srv.seen[6].body == b""
    for s in srv.seen:
        assert s.headers["Authorization"] == "Bearer tok-1"
        assert s.headers["Accept"] == "application/json"
        assert s.headers["User-Agent"].startswith("lbprov")


def test_names_are_escaped_into_one_path_segment(scripted: Any) -> None:
    srv = scripted(lambda h, seen: h.send_json(404, status_body(404, "NotFound", "no")))
    client = KubeClient.for_url(srv.url)
    assert client.get_service("default", "a/../b") is None
    assert srv.seen[0].path == "/api/v1/namespaces/default/services/a%2F..%2Fb"


def test_a_segment_is_escaped_as_quote_escapes_it_plain_names_included() -> None:
    import random
    import string
    from urllib.parse import quote

    rng = random.Random(14)
    alphabet = string.ascii_letters + string.digits + "_.~-/%?#:@+ \u00e9"
    names = [
        "web",
        "svc-00042",
        "a.b_c~d",
        "",
        *("".join(rng.choices(alphabet, k=rng.randint(0, 8))) for _ in range(5000)),
    ]
    for name in names:
        assert kube_client._seg(name) == quote(name, safe="")


def test_a_path_prefix_in_the_server_url_is_kept(scripted: Any) -> None:
    # A proxying front end (e.g. a management plane's /k8s/clusters/<id>) serves the API under a path.
    srv = scripted(lambda h, seen: h.send_json(200, EMPTY_LIST))
    client = KubeClient.for_url(srv.url + "/k8s/clusters/c-1/")
    client.list_nodes()
    assert srv.seen[0].path == "/k8s/clusters/c-1/api/v1/nodes"


def test_a_closed_client_reconnects_on_its_next_request(scripted: Any) -> None:
    srv = scripted(lambda h, seen: h.send_json(200, EMPTY_LIST))
    client = KubeClient.for_url(srv.url)
    client.list_nodes()
    client.close()
    assert client.list_nodes() == ([], "7")
    assert len(srv.seen) == 2


# ---- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason", "cls"),
    [
        (400, "BadRequest", KubeError),
        (401, "Unauthorized", KubeError),
        (403, "Forbidden", KubeError),
        (404, "NotFound", NotFound),
        (409, "Conflict", Conflict),
        (409, "AlreadyExists", AlreadyExists),
        (410, "Expired", Gone),
        (422, "Invalid", Invalid),
        (429, "TooManyRequests", KubeError),
        (500, "InternalError", KubeError),
        (503, "ServiceUnavailable", KubeError),
    ],
)
def test_each_status_maps_to_its_error(scripted: Any, status: int, reason: str, cls: type[KubeError]) -> None:
    srv = scripted(lambda h, seen: h.send_json(status, status_body(status, reason, f"said {status}")))
    client = KubeClient.for_url(srv.url)
    with pytest.raises(KubeError) as info:
        client.patch_service("default", "web", {"metadata": {}})
    assert type(info.value) is cls
    assert (info.value.status, info.value.reason, info.value.message) == (status, reason, f"said {status}")
    assert len(srv.seen) == 1  # an HTTP answer is never retried by the transport


def test_a_non_status_error_body_keeps_the_http_reason_and_text(scripted: Any) -> None:
    srv = scripted(lambda h, seen: h.send_text(502, "<html>upstream connect error</html>"))
    with pytest.raises(KubeError) as info:
        KubeClient.for_url(srv.url).list_nodes()
    assert (info.value.status, info.value.reason) == (502, "Bad Gateway")
    assert "upstream connect error" in info.value.message


def test_a_redirect_is_an_error_not_followed(scripted: Any) -> None:
    def respond(h: Handler, seen: Seen) -> None:
        h.send_response(302)
        h.send_header("Location", "http://127.0.0.1:1/elsewhere")
        h.send_header("Content-Length", "0")
        h.end_headers()

    srv = scripted(respond)
    with pytest.raises(KubeError) as info:
        KubeClient.for_url(srv.url).get_node("n")
    assert info.value.status == 302 and len(srv.seen) == 1


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [(409, "Conflict", Conflict), (429, "TooManyRequests", KubeError), (500, "InternalError", KubeError)],
)
def test_the_sandbox_servers_injected_errors_map_too(code: int, reason: str, cls: type[KubeError]) -> None:
    with KubeAPIServer() as api:
        client = KubeClient.for_url(api.url)
        client.create_service(
            "default",
            {"metadata": {"name": "web"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}},
        )
        api.fail_next("patch", "services", subresource="status", code=code, reason=reason)
        with pytest.raises(KubeError) as info:
            client.patch_service_status("default", "web", {"status": {"loadBalancer": {}}})
        assert type(info.value) is cls and (info.value.status, info.value.reason) == (code, reason)
        # the next one goes through
        client.patch_service_status(
            "default", "web", {"status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}}
        )


# ---- no answer ----------------------------------------------------------------------------------


def _silent(h: Handler, seen: Seen) -> None:
    h.server.owner.release.wait(30)


def test_a_read_timeout_is_kube_unreachable_naming_the_endpoint_and_not_retried(scripted: Any) -> None:
    srv = scripted(_silent)
    client = KubeClient.for_url(srv.url)
    client.read_timeout = 0.3
    started = time.monotonic()
    with pytest.raises(KubeUnreachable) as info:
        client.patch_service_status("default", "web", {"status": {}})
    assert time.monotonic() - started < 15, "the 0.3 s read timeout, not the server's 30 s silence"
    assert info.value.endpoint == srv.url
    assert str(info.value) == (
        f"cannot reach the Kubernetes API at {srv.url}: the server accepted the connection but did not answer "
        "within 0.3s"
    )
    # The server notes a request in its own thread, which a loaded machine may run after the
    # client's 0.3 s have passed: wait for the note, then check there was no second request (a
    # retry is sent before the client raises; the server notes it once that thread runs too).
    wait_for(lambda: srv.seen, 60, "the server to note the request")
    assert len(srv.seen) == 1


def test_a_refused_connection_is_kube_unreachable_naming_the_endpoint() -> None:
    with HeldPort() as down, pytest.raises(KubeUnreachable) as info:
        KubeClient.for_url(down.url).get_service("default", "web")
    assert str(info.value) == f"cannot reach the Kubernetes API at {down.url}: connection refused"


# ---- watches ------------------------------------------------------------------------------------


def _event(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def test_watch_request_and_events_split_across_chunks(scripted: Any) -> None:
    added = _event("ADDED", {"metadata": {"name": "a", "resourceVersion": "8"}})
    both = _event("MODIFIED", {"metadata": {"name": "a"}}) + _event(
        "BOOKMARK", {"metadata": {"resourceVersion": "9"}}
    )

    def respond(h: Handler, seen: Seen) -> None:
        h.start_chunks()
        h.chunk(added[:10])  # one event over two chunks
        h.chunk(added[10:])
        h.chunk(both)  # two events in one chunk
        h.end_chunks()  # the server's clean end of the watch

    srv = scripted(respond)
    stream = KubeClient.for_url(srv.url).watch_services("5", timeout_seconds=7)
    events = list(stream)
    assert events == [
        ("ADDED", {"metadata": {"name": "a", "resourceVersion": "8"}, "kind": "Service", "apiVersion": "v1"}),
        ("MODIFIED", {"metadata": {"name": "a"}, "kind": "Service", "apiVersion": "v1"}),
        ("BOOKMARK", {"metadata": {"resourceVersion": "9"}}),
    ]
    assert srv.seen[0].path == "/api/v1/services"
    assert srv.seen[0].query == {
        "watch": ["true"],
        "resourceVersion": ["5"],
        "allowWatchBookmarks": ["true"],
        "timeoutSeconds": ["7"],
    }


@pytest.mark.parametrize(("code", "cls"), [(410, Gone), (500, KubeError)])
def test_watch_error_events(scripted: Any, code: int, cls: type[KubeError]) -> None:
    def respond(h: Handler, seen: Seen) -> None:
        h.start_chunks()
        h.chunk(_event("ADDED", {"metadata": {"name": "n"}}))
        h.chunk(_event("ERROR", status_body(code, "Expired" if code == 410 else "InternalError", "too old")))
        h.end_chunks()

    srv = scripted(respond)
    stream = KubeClient.for_url(srv.url).watch_nodes("1")
    assert next(stream)[0] == "ADDED"
    with pytest.raises(KubeError) as info:
        next(stream)
    assert type(info.value) is cls and info.value.status == code and info.value.message == "too old"


@pytest.mark.parametrize(("code", "cls"), [(410, Gone), (403, KubeError)])
def test_watch_refused_with_an_http_status(scripted: Any, code: int, cls: type[KubeError]) -> None:
    srv = scripted(
        lambda h, seen: h.send_json(code, status_body(code, "Gone" if code == 410 else "Forbidden", "no"))
    )
    with pytest.raises(KubeError) as info:
        KubeClient.for_url(srv.url).watch_services("1")
    assert type(info.value) is cls and info.value.status == code


def test_watch_cut_mid_event_is_dropped(scripted: Any) -> None:
    def respond(h: Handler, seen: Seen) -> None:
        h.start_chunks()
        h.chunk(_event("ADDED", {"metadata": {"name": "n"}}) + b'{"type": "MODI')
        h.cut()

    srv = scripted(respond)
    stream = KubeClient.for_url(srv.url).watch_services("1")
    assert next(stream)[0] == "ADDED"
    with pytest.raises(WatchDropped):
        next(stream)


def test_watch_ending_inside_an_event_is_dropped_not_a_clean_end(scripted: Any) -> None:
    def respond(h: Handler, seen: Seen) -> None:
        h.start_chunks()
        h.chunk(b'{"type": "ADDED", "obj')
        h.end_chunks()

    srv = scripted(respond)
    with pytest.raises(WatchDropped, match="undecodable"):
        list(KubeClient.for_url(srv.url).watch_services("1"))


def test_a_silent_watch_is_dropped_after_its_timeout_plus_the_margin(
    scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def respond(h: Handler, seen: Seen) -> None:
        h.start_chunks()
        h.server.owner.release.wait(30)

    monkeypatch.setattr(kube_client, "WATCH_READ_MARGIN", 0.3)
    srv = scripted(respond)
    started = time.monotonic()
    with pytest.raises(WatchDropped):
        list(KubeClient.for_url(srv.url).watch_nodes("1", timeout_seconds=0))
    assert time.monotonic() - started < 20, "dropped after the 0.3 s margin, not the server's 30 s hold"


def test_a_watch_that_gets_no_answer_is_dropped_naming_the_endpoint(
    scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube_client, "WATCH_READ_MARGIN", 0.3)
    srv = scripted(_silent)
    with pytest.raises(WatchDropped) as info:
        KubeClient.for_url(srv.url).watch_nodes("1", timeout_seconds=0)
    assert f"cannot reach the Kubernetes API at {srv.url}" in str(info.value)


def test_close_from_another_thread_ends_a_blocked_watch(scripted: Any) -> None:
    def respond(h: Handler, seen: Seen) -> None:
        h.start_chunks()
        h.server.owner.release.wait(30)

    srv = scripted(respond)
    stream = KubeClient.for_url(srv.url).watch_services("1", timeout_seconds=60)
    timer = threading.Timer(0.3, stream.close)
    timer.start()
    started = time.monotonic()
    assert list(stream) == []  # a clean end, not WatchDropped
    assert time.monotonic() - started < 20, "ended by the close at 0.3 s, not the server's 30 s hold"
    timer.join()


# ---- proxies ------------------------------------------------------------------------------------


def test_the_environments_proxy_carries_the_requests(scripted: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = scripted(lambda h, seen: h.send_json(200, EMPTY_LIST))
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = KubeClient.for_url("http://kube-api.invalid:6443")
    assert client.list_nodes() == ([], "7")
    # An absolute-form request: the proxy was asked to fetch the API server's URL.
    assert proxy.seen[0].path == "http://kube-api.invalid:6443/api/v1/nodes?limit=500"
    monkeypatch.setenv("NO_PROXY", "10.0.0.0/8,.invalid")
    with pytest.raises(KubeUnreachable):
        KubeClient.for_url("http://kube-api.invalid:6443").list_nodes()  # direct: does not resolve
    assert len(proxy.seen) == 1


@pytest.mark.parametrize(
    ("url", "no_proxy", "bypass"),
    [
        ("https://10.96.0.1:443", "10.0.0.0/8", True),
        ("https://10.96.0.1:443", "192.168.0.0/16", False),
        ("https://api.corp.example:6443", ".corp.example", True),
        ("https://api.corp.example:6443", "corp.example", True),
        ("https://api.corp.example:6443", "api.corp.example:6443", True),
        ("https://api.corp.example:6443", "other.example", False),
        ("https://[fd00::1]:443", "fd00::/8", True),
        ("https://anything:1", "*", True),
        ("https://anything:1", "", False),
    ],
)
def test_no_proxy_rules(url: str, no_proxy: str, bypass: bool) -> None:
    assert bypasses_proxy(url, no_proxy) is bypass


def test_env_proxy_by_scheme() -> None:
    env = {"https_proxy": "http://p:3128", "HTTP_PROXY": "http://q:3128", "no_proxy": "10.0.0.0/8"}
    assert env_proxy("https://api:6443", env) == "http://p:3128"
    assert env_proxy("http://api:8080", env) == "http://q:3128"
    assert env_proxy("https://10.96.0.1:443", env) is None
    assert env_proxy("https://api:6443", {}) is None
    assert env_proxy("https://api:6443", {"ALL_PROXY": "socks5://s:1080"}) == "socks5://s:1080"


def test_an_event_post_does_not_decode_the_stored_event_but_errors_are_decoded(
    scripted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lbprov.kube import transport

    decoded: list[bytes] = []
    original = transport.Response.json

    def counting(self: transport.Response) -> Any:
        decoded.append(self.data)
        return original(self)

    def respond(h: Handler, seen: Seen) -> None:
        if seen.path.endswith("/fail"):
            h.send_json(409, status_body(409, "Conflict", "stale"))
        else:
            h.send_json(201, {"kind": "Event", "metadata": {"name": "e"}})

    srv = scripted(respond)
    client = KubeClient.for_url(srv.url)
    monkeypatch.setattr(transport.Response, "json", counting)
    svc = {"metadata": {"name": "web", "namespace": "default", "uid": "u-1"}}
    assert client.create_event(svc, type="Normal", reason="EnsuringLoadBalancer", message="m") is True
    assert decoded == []  # the stored Event is not read back
    assert client._call("POST", "/api/v1/namespaces/default/events", body={}, decode=False) == {}
    with pytest.raises(Conflict):
        client._call("POST", "/api/v1/fail", body={}, decode=False)
    assert client._call("POST", "/api/v1/namespaces/default/events", body={})["kind"] == "Event"
    assert len(decoded) == 1
