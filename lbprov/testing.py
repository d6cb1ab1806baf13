"""Helpers for the tests of the core and of every provider package (as ``kopf.testing``).

Tests of the providers live in their own packages and cannot import ``tests/``; what they share with
the core's tests lives here, once: polling for a state with a deadline (never a fixed sleep),
DESIGN.md's convergence and idempotence invariants checked on a provider, the HTTP environment
of :mod:`lbprov.httpenv` cleared and its reads counted, a port held where nothing listens. Nothing
here is imported by lbprov at run time; ``pytest`` is needed only by the callers' fixtures.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import pytest

    from lbprov.cloudcalls import CallEvent
    from lbprov.model import Ingress, Intent, Plan
    from lbprov.provider import Provider

T = TypeVar("T")

#: The variables :func:`lbprov.httpenv.read_http_environment` reads (lower-case spellings too).
HTTP_ENVIRONMENT = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


def wait_for(check: Callable[[], T], timeout: float, what: str, *, interval: float = 0.05) -> T:
    """Poll ``check()`` until it returns something truthy and return that; at the deadline fail with an
    ``AssertionError`` naming ``what`` was awaited and the last value seen."""
    deadline = time.monotonic() + timeout
    while not (last := check()):
        if time.monotonic() > deadline:
            shown = repr(last)
            shown = shown if len(shown) <= 200 else shown[:200] + "..."
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {shown})")
        time.sleep(interval)
    return last


def converged(provider: Provider, intent: Intent) -> tuple[Plan, tuple[Ingress, ...]]:
    """Plan and apply ``intent``, then check DESIGN.md's invariants: the plan after apply is empty
    (convergence), and that plan and its apply send no write and report the same ingress (idempotence).
    Returns the applied plan and its ingress."""
    from lbprov.render import render_plan

    plan = provider.plan(intent)
    ingress = provider.apply(plan)
    provider.calls.reset()
    again = provider.plan(intent)
    assert again.empty, "not converged:\n" + render_plan(again)
    assert provider.apply(again) == ingress
    assert provider.calls.stats.writes == 0, provider.calls.stats.to_json()
    return plan, ingress


def clean_http_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every proxy and CA-bundle variable (as the test's monkeypatch, undone after it)."""
    for name in HTTP_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def count_http_environment_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The list that each read of the environment by a ``requests`` session appends to from now on
    (``"proxies"``: ``get_environ_proxies``, ``"netrc"``: ``get_netrc_auth``); the reads still happen."""
    import requests.utils

    reads: list[str] = []
    real_proxies, real_netrc = requests.utils.get_environ_proxies, requests.utils.get_netrc_auth

    def proxies(url: str, no_proxy: Any = None) -> Any:
        reads.append("proxies")
        return real_proxies(url, no_proxy=no_proxy)

    def netrc(url: str, raise_errors: bool = False) -> Any:
        reads.append("netrc")
        return real_netrc(url, raise_errors)

    # a session calls the names it imported from requests.utils
    monkeypatch.setattr("requests.sessions.get_environ_proxies", proxies)
    monkeypatch.setattr("requests.sessions.get_netrc_auth", netrc)
    return reads


def event_messages(kube: Any, name: str, reason: str, namespace: str = "default") -> list[str]:
    """The messages of the Events with ``reason`` about the object ``name`` (``kube``: a
    :class:`lbprov.kube.client.KubeClient`), oldest first; poll it with :func:`wait_for`, since the
    controller posts events from a queue."""
    return [
        e["message"]
        for e in kube.list_events(namespace)
        if (e.get("involvedObject") or {}).get("name") == name and e.get("reason") == reason
    ]


class HeldPort:
    """A TCP port of ``host`` that this process holds: nothing listens on it, yet no other process
    can take it, until :meth:`close` (or the end of its ``with`` block).

    Tests used to get "a port nothing listens on" by binding port 0 and closing the socket, then
    counting on the port staying free. On a busy machine (CI runs the suite with xdist) another
    process may bind it meanwhile: a connection meant to be refused then reaches that process, and
    a server meant to start there later cannot bind. Here a socket stays bound to the port without
    listening. Linux refuses connections to such a port (RST: "connection refused"), the kernel never
    hands it to another socket asking for port 0 or connecting out, and, since the socket has
    ``SO_REUSEADDR`` as :mod:`socketserver`'s and :mod:`http.server`'s servers do, a server the test
    starts on :attr:`port` (in this process or a child) binds beside it and serves. Once that server
    closes, the port refuses connections again and is still held: "down, up, down" on one address.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, 0))
        except BaseException:
            self._sock.close()
            raise
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> HeldPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HoldUntilSent:
    """A CloudCalls listener that holds back the request of operation ``held`` until one of
    ``until`` has been sent (at most ``timeout`` seconds; ``waited_in_vain`` then says so).

    Tests of overlapped writes (GCP's, AWS's and Azure's new load balancers) use it: a sequential
    apply sends ``held`` first and waits in vain, an overlapped one sends ``until`` meanwhile.
    ``sent`` lists the operations sent, in order. The default ``timeout`` only bounds a hang: on a
    loaded machine correct code can take past 15 s to send ``until``, so a shorter wait would fail
    an overlapped apply as if it were sequential. A test that expects the wait to be in vain (the
    write must not overlap) may pass a short one."""

    def __init__(self, held: str, until: str, timeout: float = 60.0) -> None:
        self.held, self.until, self.timeout = held, until, timeout
        self.sent_until = threading.Event()
        self.waited_in_vain = False
        self.sent: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, event: CallEvent) -> None:
        if event.result != "sent":
            return
        with self._lock:
            self.sent.append(event.operation)
        if event.operation == self.until:
            self.sent_until.set()
        elif event.operation == self.held and not self.sent_until.wait(self.timeout):
            self.waited_in_vain = True
