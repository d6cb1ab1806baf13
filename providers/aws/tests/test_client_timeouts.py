"""botocore gets the core's connect and read timeouts (issue 13: a silent endpoint fails fast).

The hang itself is tested once in tests/safety; here only the wiring and the defaults.
"""

from __future__ import annotations

from lbprov_aws import AWSProvider


def test_botocore_uses_the_core_timeouts_from_the_settings() -> None:
    provider = AWSProvider.from_settings(
        {"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:1", "connect_timeout": 3, "read_timeout": 7}
    )
    assert (provider.calls.timeouts.connect, provider.calls.timeouts.read) == (3, 7)
    for client in provider.clients.clients.values():
        assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (3, 7)


def test_default_timeouts_give_up_within_half_a_minute() -> None:
    provider = AWSProvider.from_settings({"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:1"})
    assert (provider.calls.timeouts.connect, provider.calls.timeouts.read) == (5, 30)
