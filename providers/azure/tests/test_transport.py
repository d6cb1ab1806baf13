"""lbprov_azure.transport: azure-core's last hop over urllib3 keeps what the requests transport did.

Timeouts that end a silent endpoint's wait, connection failures as azure-core's errors (which
CloudCalls retries and names by endpoint), TLS verified against the CA bundle, and proxies as
requests used them; a response's encoding as azure-core works it out, once per Content-Type value.
The SDK's own requests through it are exercised by every emulator test.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import urllib3
from azure.core.exceptions import ServiceRequestError, ServiceResponseTimeoutError
from azure.core.rest import HttpRequest
from azure.core.rest._helpers import get_charset_encoding
from lbprov_azure import AzureProvider, transport
from lbprov_azure.transport import Response, Urllib3Transport

from lbprov.cloudcalls import failed_endpoint
from lbprov.httpenv import proxy_manager
from lbprov.provider import SandboxCloud
from lbprov.testing import HeldPort


@pytest.fixture
def silent() -> Iterator[str]:
    """An endpoint that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    t.join(5)
    for c in held:
        c.close()
    sock.close()


def _transport(endpoint: str, **kw: object) -> Urllib3Transport:
    # A generous read timeout: the tests that send to the sandbox need its answers within it, and
    # 0.5 s (the silent endpoint's test's own) was a bound a loaded machine could pass.
    args: dict = {"proxies": {}, "verify": True, "connection_timeout": 2.0, "read_timeout": 30.0, **kw}
    return Urllib3Transport(endpoint=endpoint, **args)


def test_a_silent_endpoint_ends_at_the_read_timeout(silent: str) -> None:
    started = time.monotonic()
    with pytest.raises(ServiceResponseTimeoutError):
        _transport(silent, read_timeout=0.5).send(HttpRequest("GET", f"{silent}/x"))
    assert time.monotonic() - started < 20, "the 0.5 s read timeout, not a silence held for ever"


def test_a_refused_connection_is_a_service_request_error_naming_the_endpoint() -> None:
    with HeldPort() as down, pytest.raises(ServiceRequestError) as err:  # nobody listens there
        _transport(down.url).send(HttpRequest("GET", f"{down.url}/x"))
    assert failed_endpoint(err.value) == down.url


def test_tls_is_verified_against_the_ca_bundle(sandbox: SandboxCloud) -> None:
    url = f"{sandbox.settings['base_url']}/subscriptions"
    with pytest.raises(ServiceRequestError, match=r"(?i)certificate"):
        _transport(url, verify=True).send(HttpRequest("GET", url))  # the default trust store
    answer = _transport(url, verify=sandbox.settings["ca_bundle"]).send(HttpRequest("GET", url))
    assert answer.status_code < 500 and answer.headers.get("content-type")


def test_the_endpoints_requests_go_to_its_pool_directly_others_through_the_pool_manager(
    sandbox: SandboxCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ARM URL is on the endpoint's origin: those skip PoolManager's per-request lookup of the
    same pool; a URL elsewhere (another host name, a proxy) still goes through PoolManager."""
    base = sandbox.settings["base_url"]
    t = _transport(base, verify=sandbox.settings["ca_bundle"])
    looked_up: list[str] = []
    real = t.pool.urlopen

    def counting(method: str, url: str, **kw: object):  # type: ignore[no-untyped-def]
        looked_up.append(url)
        return real(method, url, **kw)

    monkeypatch.setattr(t.pool, "urlopen", counting)
    for _ in range(3):
        assert t.send(HttpRequest("GET", f"{base}/subscriptions")).status_code < 500
    assert looked_up == []
    assert len(t.pool.pools) == 1  # one connection pool, kept by the PoolManager as before
    other = base.replace("127.0.0.1", "localhost")  # the same server under another name
    assert t.send(HttpRequest("GET", f"{other}/subscriptions")).status_code < 500
    assert looked_up == [f"{other}/subscriptions"]
    t.close()  # its pools are closed: a later request still goes, through the PoolManager
    assert t.send(HttpRequest("GET", f"{base}/subscriptions")).status_code < 500
    assert looked_up[-1] == f"{base}/subscriptions"
    proxied = _transport(base, proxies={"https": "http://127.0.0.1:9"})
    assert proxied._endpoint_pool is None  # through the proxy, as requests sent it


def test_a_proxy_without_scheme_is_http_and_its_credentials_are_sent() -> None:
    pool = proxy_manager("proxy.corp:3128")
    assert pool.proxy is not None and (pool.proxy.scheme, pool.proxy.host) == ("http", "proxy.corp")
    assert "proxy-authorization" not in pool.proxy_headers
    pool = proxy_manager("http://user:s3cret@proxy.corp:3128")
    assert pool.proxy_headers["proxy-authorization"] == "Basic " + base64.b64encode(b"user:s3cret").decode()


def test_the_provider_sends_every_request_through_it(sandbox: SandboxCloud) -> None:
    provider = AzureProvider.from_settings({**sandbox.settings, "cluster_name": "transport-test"})
    transport = provider.client._client._pipeline._transport
    assert isinstance(transport, Urllib3Transport)
    sent: list[str] = []
    real = transport.send

    def counting(request: HttpRequest, **kw: object):  # type: ignore[no-untyped-def]
        sent.append(request.method)
        return real(request, **kw)

    transport.send = counting  # type: ignore[method-assign]
    provider.calls.reset()
    assert provider.list_owned() == []
    assert len(sent) == provider.calls.stats.reads > 0


def test_the_pipeline_counts_after_authentication_and_retries_only_in_cloudcalls(
    sandbox: SandboxCloud,
) -> None:
    from azure.core.pipeline.policies import RetryPolicy
    from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy
    from lbprov_azure.client import CloudCallsPolicy

    provider = AzureProvider.from_settings({**sandbox.settings, "cluster_name": "transport-test"})
    kinds = [
        type(p._policy if hasattr(p, "_policy") else p)
        for p in provider.client._client._pipeline._impl_policies
    ]
    assert not any(issubclass(k, RetryPolicy) for k in kinds)  # one attempt per CloudCalls attempt
    assert kinds.index(CloudCallsPolicy) == kinds.index(ARMChallengeAuthenticationPolicy) + 1


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "application/json",
        'text/plain; charset="ISO-8859-1"',
        "text/plain; CHARSET=latin-1; format=flowed",
        "text/plain; charset=no-such-codec",
    ],
)
def test_a_responses_encoding_is_azure_cores_own(content_type: str) -> None:
    """The encoding :func:`charset_of` gives a response is what azure-core works out itself, and the
    text decodes with it."""
    body = "é".encode("latin-1") if "latin" in content_type.lower() or "8859" in content_type else b"{}"
    raw = urllib3.HTTPResponse(
        body=body, headers={"Content-Type": content_type}, status=200, preload_content=True
    )
    ours = Response(HttpRequest("GET", "https://example.invalid/x"), raw)
    assert ours.encoding == get_charset_encoding(SimpleNamespace(headers={"Content-Type": content_type}))
    if ours.encoding:
        assert ours.text() == body.decode(ours.encoding)


def test_a_content_type_is_parsed_once_not_per_response(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []

    def counting(response: object) -> str | None:
        parsed.append(response.headers["Content-Type"])  # type: ignore[attr-defined]
        return get_charset_encoding(response)

    monkeypatch.setattr(transport, "get_charset_encoding", counting)
    transport.charset_of.cache_clear()
    for _ in range(5):
        raw = urllib3.HTTPResponse(
            body=b"{}",
            headers={"Content-Type": "application/json; charset=utf-8"},
            status=200,
            preload_content=True,
        )
        assert Response(HttpRequest("GET", "https://example.invalid/x"), raw).json() == {}
    assert parsed == ["application/json; charset=utf-8"]
    transport.charset_of.cache_clear()
