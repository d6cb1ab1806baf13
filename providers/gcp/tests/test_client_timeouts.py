"""Every GCE request's deadline is the core's read timeout (CloudCalls.timeouts), issue 13.

The hang itself is tested once for all providers in tests/safety; here only the wiring.
"""

from __future__ import annotations

from google.auth.credentials import AnonymousCredentials
from lbprov_gcp.client import Compute
from lbprov_gcp.settings import GCPSettings

from lbprov.cloudcalls import CloudCalls, Timeouts


def test_requests_use_the_core_read_timeout() -> None:
    settings = GCPSettings(
        project="lbprov-test", region="us-central1", network="default", api_endpoint="http://127.0.0.1:1"
    )
    calls = CloudCalls("gcp", is_write=lambda op: False, timeouts=Timeouts(connect=3.0, read=7.0))
    assert Compute(settings, calls, credentials=AnonymousCredentials()).timeout == 7.0
