"""The ARM client gets the core's connect and read timeouts (CloudCalls.timeouts).

Checked on the client's transport configuration: a silent endpoint would otherwise hold a worker for
azure-core's own 300 s read timeout (issue 13). The hang itself is tested once for all providers in
tests/safety; here only that the Azure client is wired to the core's values.
"""

from __future__ import annotations

from lbprov_azure.client import make_client
from lbprov_azure.testing import offline_settings

from lbprov.cloudcalls import CloudCalls, Timeouts


def test_the_arm_client_uses_the_core_timeouts() -> None:
    settings = offline_settings(base_url="https://127.0.0.1:1")
    calls = CloudCalls("azure", is_write=lambda op: False, timeouts=Timeouts(connect=3.0, read=7.0))
    client = make_client(settings, calls)
    transport = client._client._pipeline._transport
    assert (transport.connection_timeout, transport.read_timeout) == (3.0, 7.0)
