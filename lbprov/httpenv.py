"""The environment's HTTP settings for a cloud client's one endpoint, read once per client.

A ``requests`` session that trusts the environment reads it again on every request: all of
``os.environ`` twice for the proxies (``get_environ_proxies``) plus a ``~/.netrc`` lookup. That was
a quarter of the GCP controller's CPU per request and about 9% of the Azure controller's (issue 14).
A provider's client sends every request to one endpoint, so the answer is the same each time: the
clients (``lbprov_gcp.client``, ``lbprov_azure.client``) read it here when they are made, hand it to
their transport and turn the per-request reads off. ``.netrc`` is not read: the clients'
credentials sign every request.

``requests`` is imported when the environment is read: the clients that call this are built on it,
the core itself is not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import urllib3


@dataclass(frozen=True)
class HttpEnvironment:
    """What a client needs from the environment to reach its endpoint."""

    #: scheme -> proxy URL, as ``requests`` takes them; empty when ``NO_PROXY`` bypasses the endpoint
    proxies: dict[str, str] = field(default_factory=dict)
    #: the CA bundle to verify the endpoint with; None: the default trust store
    ca_bundle: str | None = None


def read_http_environment(endpoint: str, ca_bundle: str | None = None) -> HttpEnvironment:
    """The proxies for ``endpoint`` (``HTTP(S)_PROXY``/``ALL_PROXY``, ``NO_PROXY`` honoured, exactly as
    ``requests`` decides per request) and the CA bundle: ``ca_bundle`` if given (the provider's own
    setting), else ``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE`` (``requests``' order)."""
    import requests.utils

    proxies = dict(requests.utils.get_environ_proxies(endpoint))
    bundle = ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return HttpEnvironment(proxies=proxies, ca_bundle=bundle or None)


def proxy_manager(proxy: str, **pool_kw: Any) -> urllib3.ProxyManager:
    """A urllib3 pool through ``proxy`` as ``requests`` would use it (the GCP and Azure transports
    send over urllib3 but keep ``requests``' proxy rules): a URL without a scheme is ``http://``
    (``requests.utils.prepend_scheme_if_needed``; urllib3 refuses it) and the URL's
    ``user:password`` is sent as ``Proxy-Authorization: Basic`` (urllib3 sends nothing for it by
    itself)."""
    import requests.utils
    import urllib3

    url = requests.utils.prepend_scheme_if_needed(proxy, "http")
    username, password = requests.utils.get_auth_from_url(url)
    headers = urllib3.make_headers(proxy_basic_auth=f"{username}:{password}") if username else None
    return urllib3.ProxyManager(url, proxy_headers=headers, **pool_kw)
