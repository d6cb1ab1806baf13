"""HTTP for the Compute client: one urllib3 pool, signed by google-auth, guarded by CloudCalls.

Why not ``requests`` (google-auth's ``AuthorizedSession``, the transport until issue 14): per
request, a ``requests`` session merges its settings, cookies and hooks into a prepared request and
runs the answer through a cookie jar, all above the urllib3 call that does the work. Measured on one
thread against the emulator, that was 0.52 ms of CPU per request against 0.30 ms for the same
request on urllib3 itself, and the scale bench's controller is CPU-bound on its cloud requests.
urllib3 is what ``requests`` sends with anyway; google-auth signs each request
(``Credentials.before_request``) as ``AuthorizedSession`` did, and refreshes the token once on a 401.

What a ``requests`` session read from the environment is read once here, for the one endpoint every
request goes to: the proxy for it (``NO_PROXY`` honoured; a proxy URL's credentials sent as
``Proxy-Authorization`` and a missing scheme read as ``http://``, as ``requests`` does) and the CA
bundle (``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``, else certifi's, as ``requests`` verifies).

Token refreshes are not Compute requests: they go to the credentials' token endpoint, a few times an
hour, so their CPU does not matter. They keep google-auth's ``requests``-based transport, which
reads the environment's proxy and CA bundle for the token URL on each refresh as
``AuthorizedSession`` did, and they carry the call's (connect, read) timeout: google-auth gives its
token request none, and without one a silent token endpoint held the worker forever.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import certifi
import requests
import requests.utils
import urllib3
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.exceptions import TransportError
from google.auth.transport.requests import Request as TokenTransport

from lbprov.cloudcalls import CloudCalls
from lbprov.httpenv import proxy_manager, read_http_environment
from lbprov_gcp.operations import operation_for

#: Connections kept per host: the default 10 workers, up to two writes each that a reconcile runs
#: beside its others (``apply.SIDE_THREADS``), and the read round's listings. More concurrent
#: requests open extra connections that are not kept: at 10 a burst of creates opened and closed
#: a new connection for most requests beyond the tenth.
POOL_SIZE = 32


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, with what google-api-core's ``format_http_response_error`` and the client's
    ``retry_after`` read of it (``status_code``, ``headers``)."""

    status_code: int
    headers: Any
    data: bytes = field(repr=False)

    def json(self) -> Any:
        return json.loads(self.data) if self.data else {}

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


@dataclass(frozen=True)
class RequestSent:
    """What a connection failure names of its request (the core's ``failed_endpoint`` reads
    ``.request.url``, as it does of ``requests``' errors)."""

    method: str
    url: str


class NoAnswer(ConnectionError):
    """No HTTP answer came (refused, reset, timed out, TLS, proxy): the urllib3 error is its cause.
    A ``ConnectionError`` carrying its request, as ``requests.ConnectionError`` did, so that the
    core names the endpoint that did not answer."""

    def __init__(self, method: str, url: str, cause: BaseException) -> None:
        super().__init__(f"{method} {url}: {cause}")
        self.request = RequestSent(method, url)


#: urllib3's failures with no answer (no urllib3 retries: CloudCalls retries).
NO_ANSWER = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.ProxyError,
    urllib3.exceptions.SSLError,
)


@dataclass(frozen=True)
class HttpEnvironment:
    """The environment's HTTP settings for one endpoint, read once."""

    proxy: str | None
    ca_bundle: str


def http_environment(endpoint: str) -> HttpEnvironment:
    """The proxy for ``endpoint`` (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``, ``NO_PROXY``
    honoured) and the CA bundle (``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``), read by the core's
    :func:`lbprov.httpenv.read_http_environment` as ``requests`` reads them; without a bundle,
    certifi's, which ``requests`` verified with (urllib3 alone would take the system's store)."""
    env = read_http_environment(endpoint)
    scheme = endpoint.split("://", 1)[0]
    proxy = env.proxies.get(scheme) or env.proxies.get("all")
    return HttpEnvironment(proxy=proxy, ca_bundle=env.ca_bundle or certifi.where())


class TokenRequests:
    """google-auth's token requests for one call: with the call's (connect, read) timeout, since
    google-auth passes none and ``requests`` would then wait forever on a silent token endpoint;
    remembers the last URL asked so that a failure names the token endpoint, not Compute's."""

    __slots__ = ("method", "timeout", "transport", "url")

    def __init__(self, transport: TokenTransport, timeout: tuple[float, float]) -> None:
        self.transport, self.timeout = transport, timeout
        self.method, self.url = "POST", "the token endpoint"

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> Any:
        self.method, self.url = method, url
        return self.transport(url, method=method, body=body, headers=headers, timeout=self.timeout, **kwargs)

    def no_answer(self, exc: TransportError) -> NoAnswer:
        """The token request's failure as a :class:`NoAnswer` naming the token URL."""
        return NoAnswer(self.method, self.url, exc)


class Transport:
    """Signed, guarded HTTP requests to the Compute API over one urllib3 pool."""

    def __init__(self, credentials: Credentials, calls: CloudCalls, endpoint: str) -> None:
        self.credentials = credentials
        self.calls = calls
        self.environment = http_environment(endpoint)
        self.pool: urllib3.PoolManager = (
            proxy_manager(self.environment.proxy, maxsize=POOL_SIZE, ca_certs=self.environment.ca_bundle)
            if self.environment.proxy
            else urllib3.PoolManager(maxsize=POOL_SIZE, ca_certs=self.environment.ca_bundle)
        )
        # token refreshes go over a session of their own that trusts the environment, as
        # AuthorizedSession's did: they are not Compute calls (CloudCalls counts, rate-limits and
        # guards Compute requests only) and may go to another host with its own proxy rules
        self._tokens = TokenTransport(requests.Session())
        self._refreshable = not isinstance(credentials, AnonymousCredentials)

    def send(
        self,
        method: str,
        url: str,
        params: dict[str, str] | None,
        body: Any,
        timeout: tuple[float, float],
    ) -> Answer:
        """One request: ``CloudCalls.before_send`` first (counted, rate-limited, refused in read-only
        mode before it leaves the process), then signed and sent; a 401 refreshes the token once."""
        full = f"{url}?{urlencode(params)}" if params else url
        data = json.dumps(body).encode() if body is not None else None
        deadline = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        tokens = TokenRequests(self._tokens, timeout)
        for attempt in (0, 1):
            headers = {"Accept": "application/json", "Accept-Encoding": "gzip"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            try:
                self.credentials.before_request(tokens, method, full, headers)  # type: ignore[no-untyped-call]
            except TransportError as exc:
                raise tokens.no_answer(exc) from exc
            self.calls.before_send(operation_for(method, full))
            try:
                response = self.pool.request(
                    method, full, body=data, headers=headers, timeout=deadline, retries=False, redirect=False
                )
            except NO_ANSWER as exc:
                raise NoAnswer(method, full, exc) from exc
            if response.status == 401 and attempt == 0 and self._refreshable:
                try:
                    self.credentials.refresh(tokens)  # type: ignore[no-untyped-call]
                except TransportError as exc:
                    raise tokens.no_answer(exc) from exc
                continue
            return Answer(response.status, response.headers, response.data)
        raise AssertionError("unreachable")  # pragma: no cover
