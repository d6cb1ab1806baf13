"""azure-core's HTTP transport over one urllib3 pool, instead of its ``requests`` transport.

Why: on the scale bench the ``requests`` layer under azure-core's pipeline (``Session.request``:
merging settings, preparing the request, its adapter) cost more client CPU per ARM request than the
HTTP exchange itself (0.94 ms against 0.30 ms for the same GET over urllib3), and the Azure
controller makes ~3.4 ARM requests per Service. The layers above are unchanged by it:
authentication, :class:`~lbprov_azure.client.CloudCallsPolicy` (counts and the read-only guard),
long-operation polling and error mapping, whether a request comes from the SDK's operations or
from :mod:`lbprov_azure.arm`. Only the last hop changes, as ``lbprov_gcp.transport`` did for Compute.

What ``requests`` did that is kept here: the connect and read timeouts of each request (the
pipeline's ``connection_timeout`` / ``read_timeout``), TLS verified against the CA bundle
(``connection_verify``: a path, or True for the default trust store), the proxy the environment
names for the endpoint (:mod:`lbprov.httpenv`, read once; a proxy URL without a scheme is
``http://``, its ``user:password`` goes as ``Proxy-Authorization``), no redirects and no retries
(azure-core's and CloudCalls' own), and connection failures raised as azure-core's
``ServiceRequestError`` / ``ServiceResponseError`` (with their timeout variants), which CloudCalls
retries and its circuit breaker counts. Responses are read whole (ARM answers are JSON documents);
a streamed download is not offered.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from types import SimpleNamespace
from typing import Any

import urllib3
from azure.core.exceptions import (
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest
from azure.core.rest._helpers import get_charset_encoding
from azure.core.rest._http_response_impl import HttpResponseImpl
from azure.core.utils import CaseInsensitiveDict
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from lbprov.httpenv import proxy_manager


def _no_stream(*args: Any, **kwargs: Any) -> Iterator[bytes]:  # pragma: no cover - bodies are read whole
    raise RuntimeError("lbprov_azure.transport reads every response whole; it does not stream")


@functools.lru_cache(maxsize=64)
def charset_of(content_type: str) -> str | None:
    """azure-core's ``charset`` of a ``Content-Type`` (its own function), once per distinct value.

    azure-core works it out for each response whose text or JSON is read (every ARM answer: the
    SDK's deserializer, long-operation polling, lbprov's raw reads) by building an
    ``email.message.Message`` and looking the codec up: about 0.2 ms of CPU per response, for the
    same two or three values every time."""
    return get_charset_encoding(SimpleNamespace(headers={"Content-Type": content_type}))


class Response(HttpResponseImpl):
    """An ``azure.core.rest.HttpResponse`` whose body was read with the response (and whose
    encoding comes from :func:`charset_of`)."""

    def __init__(self, request: HttpRequest, raw: urllib3.BaseHTTPResponse) -> None:
        headers = CaseInsensitiveDict(raw.headers)
        super().__init__(
            request=request,
            internal_response=raw,
            status_code=raw.status,
            headers=headers,
            reason=raw.reason or "",
            content_type=headers.get("content-type"),
            stream_download_generator=_no_stream,
        )
        self._content = raw.data
        content_type = headers.get("content-type")
        self._encoding = charset_of(content_type) if content_type else None


class Urllib3Transport(HttpTransport[HttpRequest, Response]):
    """Sends azure-core's requests over one urllib3 pool (see the module doc)."""

    def __init__(
        self,
        *,
        endpoint: str,
        proxies: Mapping[str, str],
        verify: str | bool,
        connection_timeout: float,
        read_timeout: float,
        maxsize: int = 16,
    ) -> None:
        #: without them a silent endpoint would hold a worker (azure-core's own read timeout is
        #: 300 s); the core's timeouts make it fail fast, once
        self.connection_timeout = connection_timeout
        self.read_timeout = read_timeout
        self.verify = verify
        pool_kw: dict[str, Any] = {"maxsize": maxsize, "block": False, "retries": False}
        if verify is False:
            pool_kw["cert_reqs"] = "CERT_NONE"
        else:
            pool_kw["cert_reqs"] = "CERT_REQUIRED"
            if isinstance(verify, str):
                pool_kw["ca_certs"] = verify
            else:
                import certifi

                pool_kw["ca_certs"] = certifi.where()
        scheme = endpoint.split("://", 1)[0].lower()
        proxy = proxies.get(scheme) or proxies.get("all")
        self.pool: urllib3.PoolManager = (
            proxy_manager(proxy, **pool_kw) if proxy else urllib3.PoolManager(**pool_kw)
        )
        #: the endpoint's own connection pool and its origin (``scheme://host[:port]``), when no
        #: proxy is in the way: every ARM request (long-operation URLs too) goes to that origin, and
        #: sending on its pool directly skips what ``PoolManager.urlopen`` does per request to find
        #: that same pool (parse the URL, build and look up its key: ~8% of an ARM request's CPU)
        self._origin, self._endpoint_pool = "", None
        if not proxy:
            parsed = urllib3.util.parse_url(endpoint)
            self._origin = f"{parsed.scheme}://{parsed.netloc}".lower()
            self._endpoint_pool = self.pool.connection_from_url(self._origin)
        self._timeout = urllib3.Timeout(connect=connection_timeout, read=read_timeout)

    def open(self) -> None:
        pass

    def close(self) -> None:
        self._endpoint_pool = None  # closed with the others: later requests go through the PoolManager
        self.pool.clear()

    def __enter__(self) -> Urllib3Transport:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def send(self, request: HttpRequest, **kwargs: Any) -> Response:
        if kwargs.get("connection_timeout") or kwargs.get("read_timeout"):
            timeout = urllib3.Timeout(
                connect=kwargs.get("connection_timeout") or self.connection_timeout,
                read=kwargs.get("read_timeout") or self.read_timeout,
            )
        else:
            timeout = self._timeout
        body = request.content
        if hasattr(body, "read"):  # the SDK sends a body given as IO as it is: read it, sized
            body = body.read()
        elif isinstance(body, str):
            body = body.encode()
        url = request.url
        pool: Any = self.pool
        endpoint_pool = self._endpoint_pool  # read once: a close() in another thread sets it to None
        if endpoint_pool is not None and url[: len(self._origin) + 1].lower() == self._origin + "/":
            # what PoolManager.urlopen would do: the same pool, the path and query, any host allowed
            pool, url = endpoint_pool, url[len(self._origin) :]
        try:
            raw = pool.urlopen(
                request.method,
                url,
                assert_same_host=False,
                body=body,
                headers=dict(request.headers),
                timeout=timeout,
                retries=False,
                redirect=False,
                preload_content=True,
            )
        except ConnectTimeoutError as exc:
            raise ServiceRequestTimeoutError(exc, error=exc) from exc
        except ReadTimeoutError as exc:
            raise ServiceResponseTimeoutError(exc, error=exc) from exc
        except (NewConnectionError, SSLError, ProxyError) as exc:
            raise ServiceRequestError(exc, error=exc) from exc
        except ProtocolError as exc:  # the connection broke after the request went
            raise ServiceResponseError(exc, error=exc) from exc
        except HTTPError as exc:
            raise ServiceRequestError(exc, error=exc) from exc
        return Response(request, raw)
