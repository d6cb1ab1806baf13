"""Every GCE request's deadline is the core's connect and read timeouts (CloudCalls.timeouts),
issue 13; an ``operations.wait`` alone may hold its answer for the API's two minutes.

The hang itself is tested once for all providers in tests/safety; here only the wiring, on the
requests the provider really sends to the emulator.
"""

from __future__ import annotations

from typing import Any

import pytest
from gcp_helpers import converge, intent_for, make_service
from google.auth.credentials import AnonymousCredentials
from lbprov_gcp import GCPProvider
from lbprov_gcp.client import WAIT_ANSWER_SECONDS, Compute
from lbprov_gcp.settings import GCPSettings
from lbprov_gcp.transport import Transport

from lbprov.cloudcalls import CloudCalls, Timeouts


def test_requests_use_the_core_connect_and_read_timeouts() -> None:
    settings = GCPSettings(
        project="lbprov-test", region="us-central1", network="default", api_endpoint="http://127.0.0.1:1"
    )
    calls = CloudCalls("gcp", is_write=lambda op: False, timeouts=Timeouts(connect=3.0, read=7.0))
    assert Compute(settings, calls, credentials=AnonymousCredentials()).timeout == (3.0, 7.0)


def test_operation_waits_may_answer_after_two_minutes_and_nothing_else_may(
    provider: GCPProvider, sandbox: Any, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[str, Any]] = []
    real = Transport.send

    def send(self: Transport, method: str, url: str, params: Any, body: Any, timeout: Any) -> Any:
        sent.append((url, timeout))
        return real(self, method, url, params, body, timeout)

    monkeypatch.setattr(Transport, "send", send)
    server.emulator.operation_delay = 0.05  # operations answer RUNNING: the writes wait for them
    try:
        converge(provider, intent_for(provider, make_service("timeouts"), sandbox.nodes))
    finally:
        server.emulator.operation_delay = 0.0
    t = provider.calls.timeouts
    waits = [timeout for url, timeout in sent if url.split("?")[0].endswith("/wait")]
    others = [timeout for url, timeout in sent if not url.split("?")[0].endswith("/wait")]
    assert waits and others
    assert set(waits) == {(t.connect, max(t.read, WAIT_ANSWER_SECONDS))}
    assert set(others) == {(t.connect, t.read)}
