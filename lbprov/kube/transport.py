"""HTTP to the Kubernetes API server over one urllib3 pool: TLS, proxy, auth header, timeouts.

Why urllib3 directly: it is what the official client runs on underneath, and lbprov used the
official client as nothing more than a transport (every call asked for the raw body and parsed the
JSON itself). Going direct saves the 46 MB its generated API classes and models cost a process,
and the per-call work of its validating wrappers. This module knows HTTP, not Kubernetes: it
answers :class:`Response` for any HTTP status and raises urllib3's / the OS's exceptions for a
request that got no answer; :mod:`lbprov.kube.client` maps both to its typed errors.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3

from lbprov.kube.config import ClusterConfig

#: Sent as ``User-Agent``: the API server names an object's field manager after its product.
USER_AGENT = "lbprov"

#: urllib3 retries a failed request 3 times by default, so a silent server cost 4 read timeouts.
#: A failed connect is retried once; a read (no answer) is not: the caller's own backoff
#: (informer, work queue) retries, and plan/gc stop. Statuses and redirects are answers.
DEFAULT_RETRIES = urllib3.Retry(total=1, connect=1, read=0, status=0, redirect=0, raise_on_status=False)

#: Connections kept per pool: workers, informers and leader election share one client.
POOL_MAXSIZE = 64

#: One encoder for every request body: ``json.dumps`` with arguments builds a new one per call.
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode

Query = Mapping[str, str | int | bool | None]


@dataclass(frozen=True)
class Response:
    """An HTTP answer (any status) with its whole body."""

    status: int
    reason: str
    data: bytes

    def json(self) -> Any:
        return json.loads(self.data) if self.data else {}


def _pool_manager(config: ClusterConfig, maxsize: int) -> urllib3.PoolManager:
    pool_args: dict[str, Any] = {
        "cert_reqs": ssl.CERT_REQUIRED if config.verify_ssl else ssl.CERT_NONE,
        "ca_certs": config.ca_file,
        "cert_file": config.cert_file,
        "key_file": config.key_file,
        "maxsize": maxsize,
    }
    if not config.verify_ssl:
        pool_args["assert_hostname"] = False
    elif config.assert_hostname is not None:
        pool_args["assert_hostname"] = config.assert_hostname
    if config.tls_server_name:
        pool_args["server_hostname"] = config.tls_server_name
    if config.proxy:
        if config.proxy.split("://", 1)[0].lower() in ("socks4", "socks4a", "socks5", "socks5h"):
            from urllib3.contrib.socks import SOCKSProxyManager  # needs PySocks, as the official client

            return SOCKSProxyManager(config.proxy, headers=dict(config.proxy_headers or {}), **pool_args)
        return urllib3.ProxyManager(config.proxy, proxy_headers=dict(config.proxy_headers or {}), **pool_args)
    return urllib3.PoolManager(**pool_args)


class Transport:
    """Requests to one API server. Thread-safe (urllib3's pools are); one per :class:`KubeClient`."""

    def __init__(
        self,
        config: ClusterConfig,
        *,
        maxsize: int = POOL_MAXSIZE,
        retries: urllib3.Retry | int = DEFAULT_RETRIES,
    ) -> None:
        self.config = config
        #: urllib3 retries of every request (``0``: none; tests of failing connections set it).
        self.retries: urllib3.Retry | int = retries
        self.pool = _pool_manager(config, maxsize)
        self._base_headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        #: Without a proxy every request goes to one connection pool: asking it directly, with the
        #: path alone, skips the manager's per-request URL parsing and pool lookup.
        self._direct: urllib3.HTTPConnectionPool | None = None
        self._prefix = urlsplit(config.host).path
        self._timeouts: dict[tuple[float, float], urllib3.Timeout] = {}

    def url(self, path: str, query: Query | None = None) -> str:
        return self.config.host + _target(path, query)

    def _open(
        self,
        method: str,
        path: str,
        query: Query | None,
        body: bytes | None,
        headers: dict[str, str],
        **kw: Any,
    ) -> urllib3.BaseHTTPResponse:
        if self.config.proxy:  # the proxy manager makes absolute-form requests
            return self.pool.urlopen(method, self.url(path, query), body=body, headers=headers, **kw)
        pool = self._direct
        if pool is None or pool.pool is None:  # first use, or after close()
            pool = self._direct = self.pool.connection_from_url(self.config.host)
        return pool.urlopen(method, self._prefix + _target(path, query), body=body, headers=headers, **kw)

    def _timeout(self, timeout: tuple[float, float]) -> urllib3.Timeout:
        """The urllib3 Timeout of ``(connect, read)``, made once per pair (urllib3 clones it per
        request anyway, so sharing one is safe): a request no longer builds and validates one."""
        made = self._timeouts.get(timeout)
        if made is None:
            made = self._timeouts[timeout] = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        return made

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = dict(self._base_headers)
        if content_type:
            headers["Content-Type"] = content_type
        if self.config.authorization is not None:
            value = self.config.authorization()
            if value:
                headers["Authorization"] = value
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: tuple[float, float],
    ) -> Response:
        """Send one request and read the whole answer. ``body`` is JSON-encoded (``None``: no
        body). Raises ``urllib3.exceptions.HTTPError`` or ``OSError`` when no answer came."""
        data = None if body is None else _ENCODE(body).encode()
        resp = self._open(
            method,
            path,
            query,
            data,
            self._headers(content_type if data is not None else None),
            timeout=self._timeout(timeout),
            retries=self.retries,
            redirect=False,
            preload_content=True,
        )
        return Response(resp.status, resp.reason or "", resp.data)

    def stream(
        self, path: str, *, query: Query | None = None, timeout: tuple[float, float]
    ) -> urllib3.BaseHTTPResponse:
        """A GET whose body is read as it arrives (watches); the caller checks the status and
        closes or drains the response."""
        return self._open(
            "GET",
            path,
            query,
            None,
            self._headers(None),
            timeout=self._timeout(timeout),
            retries=self.retries,
            redirect=False,
            preload_content=False,
        )

    def close(self) -> None:
        self.pool.clear()


def _target(path: str, query: Query | None) -> str:
    if not query:
        return path
    pairs = [(k, _query_value(v)) for k, v in query.items() if v is not None]
    return f"{path}?{urlencode(pairs)}" if pairs else path


def _query_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
