"""Keep-alive requests to one origin, each one sent and read by http.client alone.

Why: urllib3 costs a request about as much CPU again as the http.client work under it. Against the
sandbox API server, a GET costs the calling thread ~170 us through ``HTTPConnectionPool.urlopen``
and ~70 us through a bare ``http.client`` connection (bench/kube_cpu.py, issue 14): retry and
timeout objects, header checks on the way out, a second header dict and response object on the way
back, the pool's queue. Every Service costs the controller four such requests (finalizer, status,
two events), on the one GIL that also runs every cloud call.

What urllib3 still does here is what is hard to get right: the connection. A new connection is
made by ``urllib3.connection.HTTP(S)Connection.connect()`` with the pool's own arguments -- TCP
options, TLS context, CA, client certificate, hostname checks and SNI exactly as urllib3 makes them
-- and its socket is handed to a plain :class:`http.client.HTTPConnection` that sends the request
and reads the whole answer. Its behaviour is urllib3's as :mod:`lbprov.kube.transport` configures
it: a failed connect is tried ``connect_attempts`` times in all and then raises
``urllib3.exceptions.MaxRetryError``; a request that gets no answer in the read timeout raises
``urllib3.exceptions.ReadTimeoutError`` and is not repeated; a broken or malformed answer raises
``urllib3.exceptions.ProtocolError``; an idle connection that the server closed is noticed before
it is used (``urllib3.util.wait.wait_for_read``, as urllib3's pool does) and replaced; redirects are
answers, never followed. Streams (watches) and proxies stay with urllib3.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from typing import Any

import urllib3
from urllib3.util.wait import wait_for_read

#: The context an ``http.client.HTTPSConnection`` insists on at construction; never used to
#: connect (urllib3 makes the TLS connection), so one unverified context serves every connection.
_UNUSED_CONTEXT: ssl.SSLContext | None = None


def _unused_context() -> ssl.SSLContext:
    global _UNUSED_CONTEXT
    if _UNUSED_CONTEXT is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        _UNUSED_CONTEXT = context
    return _UNUSED_CONTEXT


def connect_attempts(retries: urllib3.Retry | int) -> int:
    """How many times a connect is tried under urllib3's ``retries`` (``Retry(connect=1)``: 2)."""
    if isinstance(retries, urllib3.Retry):
        left = [n for n in (retries.connect, retries.total) if n is not None and n is not False]
        return 1 + max(0, min(left, default=0))
    return 1 + max(0, int(retries))


class LeanPool:
    """Up to ``maxsize`` idle keep-alive connections to ``scheme://host:port``; thread-safe.

    ``conn_kw`` are urllib3's connection arguments (``cert_reqs``, ``ca_certs``, ``cert_file``,
    ``key_file``, ``assert_hostname``, ``server_hostname``; the TLS ones only for https).
    """

    def __init__(self, scheme: str, host: str, port: int | None, *, maxsize: int, **conn_kw: Any) -> None:
        https = scheme == "https"
        self._connection_class = (
            urllib3.connection.HTTPSConnection if https else urllib3.connection.HTTPConnection
        )
        self._https = https
        self.host = host
        self.port = port if port is not None else (443 if https else 80)
        self.maxsize = maxsize
        self._conn_kw = conn_kw
        #: Names the origin in urllib3's errors, where a urllib3 pool would name itself.
        self._label = f"{scheme}://{host}:{self.port}"
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        #: Connections made (tests: keep-alive reuse, reconnects).
        self.connections_made = 0

    def request(
        self,
        method: str,
        target: str,
        body: bytes | None,
        headers: dict[str, str],
        *,
        connect_timeout: float,
        read_timeout: float,
        connect_attempts: int = 2,
    ) -> tuple[int, str, bytes]:
        """Send one request and read the whole answer: ``(status, reason, body)``. A new connection
        is tried ``connect_attempts`` times (:func:`connect_attempts` of urllib3's retries)."""
        conn = self._take()
        if conn is None:
            conn = self._connect(target, connect_timeout, connect_attempts)
        sock = conn.sock
        assert sock is not None
        sock.settimeout(read_timeout)
        try:
            conn.request(method, target, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except TimeoutError as exc:  # socket.timeout: no answer within the read timeout
            conn.close()
            raise urllib3.exceptions.ReadTimeoutError(
                self._label,  # type: ignore[arg-type]  # only printed: there is no urllib3 pool
                target,
                f"Read timed out. (read timeout={read_timeout})",
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise urllib3.exceptions.ProtocolError("Connection aborted.", exc) from exc
        except BaseException:
            conn.close()
            raise
        if resp.will_close:
            conn.close()
        else:
            self._give(conn)
        return resp.status, resp.reason, data

    def clear(self) -> None:
        """Close every idle connection (the next request connects afresh)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- connections ----------------------------------------------------------------------------

    def _take(self) -> http.client.HTTPConnection | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()
            # An idle HTTP/1.1 connection has nothing to read: readable means the server closed it
            # (or broke the protocol); urllib3's pool checks the same before reusing one.
            if conn.sock is not None and not wait_for_read(conn.sock, timeout=0.0):
                return conn
            conn.close()

    def _give(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.maxsize:
                self._idle.append(conn)
                return
        conn.close()

    def _connect(self, target: str, timeout: float, attempts: int) -> http.client.HTTPConnection:
        error: Exception | None = None
        for _ in range(attempts):
            made = self._connection_class(self.host, self.port, timeout=timeout, **self._conn_kw)
            try:
                made.connect()
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                made.close()
                error = exc
                continue
            conn: http.client.HTTPConnection
            if self._https:  # the class only for its Host header's default port (443)
                conn = http.client.HTTPSConnection(self.host, self.port, context=_unused_context())
            else:
                conn = http.client.HTTPConnection(self.host, self.port)
            conn.sock = made.sock
            conn.auto_open = 0  # never a connection of http.client's own making (no TLS)
            self.connections_made += 1
            return conn
        raise urllib3.exceptions.MaxRetryError(self._label, target, error)  # type: ignore[arg-type]
