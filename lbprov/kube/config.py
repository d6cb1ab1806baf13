"""Where the Kubernetes API is and how to authenticate to it: one :class:`ClusterConfig`.

Why not the official client's ``Configuration``: importing ``kubernetes.client`` costs a process
about 46 MB and 0.4 s (every API class and ~850 generated models), and lbprov only needs a URL, TLS
files and a bearer token. The controller's paths -- :func:`url_config` and :func:`in_cluster_config`
-- therefore never import ``kubernetes``. A kubeconfig (contexts, exec credential plugins, OIDC,
embedded certificates) is a large format with many corners; :func:`kubeconfig_config` keeps using
the official loader for it, imported lazily, and takes the result out of its ``Configuration``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_FILE_ENV = "LBPROV_INCLUSTER_TOKEN_FILE"
CA_FILE_ENV = "LBPROV_INCLUSTER_CA_FILE"

#: How often an in-cluster token file is re-read. Projected service-account tokens are rotated by
#: the kubelet (at 80% of their lifetime, at least hourly); client-go's file token source and the
#: official Python ``InClusterConfigLoader`` both re-read the file once a minute.
TOKEN_REFRESH_SECONDS = 60.0

#: Answers the ``Authorization`` header value for the next request (``None``: send none). Called
#: once per request, so a source may refresh a rotating token.
Authorization = Callable[[], "str | None"]


class KubeConfigError(Exception):
    """The cluster configuration is missing or unusable (names the variable, file or field)."""


@dataclass(frozen=True)
class ClusterConfig:
    """What a :class:`~lbprov.kube.transport.Transport` needs to reach the API server."""

    #: ``scheme://host:port`` plus any path prefix (a proxying front end), no trailing slash.
    host: str
    #: CA bundle to verify the server with (``None``: the system's / certifi's store).
    ca_file: str | None = None
    #: Client certificate and key files (TLS client authentication).
    cert_file: str | None = None
    key_file: str | None = None
    #: ``False`` only for kubeconfig's ``insecure-skip-tls-verify: true``.
    verify_ssl: bool = True
    #: Host name to check the server's certificate against, or ``False`` not to check it.
    assert_hostname: str | bool | None = None
    #: SNI name (kubeconfig's ``tls-server-name``).
    tls_server_name: str | None = None
    #: ``http(s)://`` or ``socks5(h)://`` proxy URL; ``None`` connects directly.
    proxy: str | None = None
    proxy_headers: Mapping[str, str] | None = None
    #: Per-request ``Authorization`` header source.
    authorization: Authorization | None = field(default=None, compare=False)
    #: Where the CA came from, for a TLS error to say what to check.
    ca_source: str = "the CA bundle"


# ---- authorization sources ----------------------------------------------------------------------


class StaticToken:
    """A bearer token that never changes (``--token``-style)."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token.strip()}"

    def __call__(self) -> str:
        return self._header


class TokenFile:
    """A bearer token read from a file and re-read every ``period`` seconds.

    Why: bound service-account tokens expire (one hour by default) and the kubelet rewrites the
    file before they do; a client that read it once starts failing with 401 after the rotation.
    If a re-read fails (the file is briefly missing while the kubelet swaps it), the last token is
    kept and the next request tries again, as client-go's caching file token source does.
    """

    def __init__(
        self, path: str, *, period: float = TOKEN_REFRESH_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = path
        #: Seconds between reads (read at each call, so it can be changed on a live client).
        self.period = period
        self._clock = clock
        self._lock = threading.Lock()
        self._header = f"Bearer {self._read()}"
        self._read_at = clock()

    def _read(self) -> str:
        try:
            with open(self.path, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as exc:
            raise KubeConfigError(f"service-account token file {self.path}: {exc.strerror or exc}") from exc
        if not token:
            raise KubeConfigError(f"service-account token file {self.path} is empty")
        return token

    def __call__(self) -> str:
        now = self._clock()
        if now - self._read_at < self.period:
            return self._header
        with self._lock:
            if now - self._read_at >= self.period:
                try:
                    self._header = f"Bearer {self._read()}"
                except KubeConfigError as exc:
                    log.warning("keeping the previous token: %s", exc)
                self._read_at = now
            return self._header


# ---- proxies ------------------------------------------------------------------------------------


def env_proxy(host: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The proxy the environment names for ``host`` (``https_proxy``/``http_proxy``/``all_proxy``,
    lower case first, unless ``no_proxy`` matches), as the official client's ``Configuration`` and
    client-go's ``ProxyFromEnvironment`` do."""
    env = os.environ if environ is None else environ
    scheme = urlsplit(host).scheme or "https"
    proxy = None
    for name in (f"{scheme}_proxy", "all_proxy"):
        proxy = env.get(name) or env.get(name.upper())
        if proxy:
            break
    if not proxy:
        return None
    no_proxy = env.get("no_proxy") or env.get("NO_PROXY") or ""
    return None if bypasses_proxy(host, no_proxy) else proxy


def bypasses_proxy(url: str, no_proxy: str) -> bool:
    """Whether ``url`` matches a comma-separated ``no_proxy`` rule: ``*``, a host or domain suffix
    (a leading dot optional), ``host:port``, an IP address or a CIDR range."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        return True
    host_port = parts.netloc.lower().rpartition("@")[2]
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for rule in (r.strip().lower() for r in no_proxy.split(",")):
        if not rule:
            continue
        if rule == "*":
            return True
        if ip is not None:
            try:
                if ip in ipaddress.ip_network(rule, strict=False):
                    return True
            except ValueError:
                pass
        rule = rule.lstrip(".")
        for name in (host, host_port):
            if name == rule or name.endswith("." + rule):
                return True
    return False


# ---- sources of configuration -------------------------------------------------------------------


def url_config(url: str, *, token: str | None = None, ca_file: str | None = None) -> ClusterConfig:
    """An explicit API server URL (tests, the sandbox, benches), with an optional token and CA."""
    host = url.rstrip("/")
    return ClusterConfig(
        host=host,
        ca_file=ca_file,
        proxy=env_proxy(host),
        authorization=StaticToken(token) if token else None,
        ca_source=f"the CA file {ca_file}" if ca_file else "the system's CA store",
    )


def join_host_port(host: str, port: str) -> str:
    """``host:port``, with an IPv6 literal in brackets (Go's ``net.JoinHostPort``)."""
    return f"[{host}]:{port}" if ":" in host or "%" in host else f"{host}:{port}"


def in_cluster_config(environ: Mapping[str, str] | None = None) -> ClusterConfig:
    """What the kubelet gives a pod: ``KUBERNETES_SERVICE_HOST``/``PORT``, the service-account token
    (re-read once a minute, see :class:`TokenFile`) and CA. ``LBPROV_INCLUSTER_TOKEN_FILE`` and
    ``LBPROV_INCLUSTER_CA_FILE`` redirect the files."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        missing = [
            n for n, v in (("KUBERNETES_SERVICE_HOST", host), ("KUBERNETES_SERVICE_PORT", port)) if not v
        ]
        raise KubeConfigError(f"in-cluster configuration: {' and '.join(missing)} not set")
    token_file = env.get(TOKEN_FILE_ENV) or os.path.join(SA_DIR, "token")
    ca_file = env.get(CA_FILE_ENV) or os.path.join(SA_DIR, "ca.crt")
    try:
        with open(ca_file, "rb") as f:
            if not f.read(1):
                raise KubeConfigError(f"in-cluster configuration: the CA file {ca_file} is empty")
    except OSError as exc:
        raise KubeConfigError(
            f"in-cluster configuration: the CA file {ca_file}: {exc.strerror or exc}"
        ) from exc
    url = "https://" + join_host_port(host, port)
    return ClusterConfig(
        host=url,
        ca_file=ca_file,
        proxy=env_proxy(url, env),
        authorization=TokenFile(token_file),
        ca_source=f"the service account's CA file {ca_file}",
    )


def kubeconfig_config(path: str, context: str | None = None) -> ClusterConfig:
    """A kubeconfig file, loaded by the official client's loader (imported here, lazily: it pulls in
    ``kubernetes.client``). Host, TLS files, proxy and the authorization are taken from the loaded
    ``Configuration``; the authorization is asked of it per request through ``auth_settings()``, so
    its refresh hook (expiring exec-plugin or OIDC tokens) runs as the official ``ApiClient`` runs
    it."""
    import kubernetes.client
    import kubernetes.config

    cfg = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=path, context=context, client_configuration=cfg
    )
    return from_official_configuration(cfg)


def from_official_configuration(cfg: Any) -> ClusterConfig:
    """A :class:`ClusterConfig` from an official ``kubernetes.client.Configuration``."""

    def authorization() -> str | None:
        # The loader puts every credential (bearer token, exec/OIDC token, a kubeconfig's
        # username/password as a Basic header) behind ``auth_settings()``.
        for setting in cfg.auth_settings().values():
            if setting.get("in") == "header" and str(setting.get("key", "")).lower() == "authorization":
                value = setting.get("value")
                if value:
                    return str(value)
        return None

    return ClusterConfig(
        host=str(cfg.host).rstrip("/"),
        ca_file=cfg.ssl_ca_cert,
        cert_file=cfg.cert_file,
        key_file=cfg.key_file,
        verify_ssl=bool(cfg.verify_ssl),
        assert_hostname=cfg.assert_hostname,
        tls_server_name=getattr(cfg, "tls_server_name", None),
        proxy=cfg.proxy if cfg.proxy and not bypasses_proxy(str(cfg.host), cfg.no_proxy or "") else None,
        proxy_headers=cfg.proxy_headers,
        authorization=authorization,
        ca_source="the certificate-authority of the kubeconfig",
    )
