"""The ARM client reads the environment's proxies and CA bundle once, not on every request (issue 14).

azure-core's ``RequestsTransport`` leaves its ``requests`` session trusting the environment, which
re-reads ``os.environ`` (twice) and ``~/.netrc`` per request: about 9% of the Azure controller's CPU.
The tests count those reads (none per request) and check that a proxy from the environment still
applies, ``NO_PROXY`` still bypasses it, and the CA bundle of the environment is still used (what
is read is :mod:`lbprov.httpenv`'s, tested in tests/test_httpenv.py; here, that the client uses it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError
from lbprov_azure import AzureProvider
from lbprov_azure.client import get_json, make_client
from lbprov_azure.desired import Ids
from lbprov_azure.settings import AzureSettings
from lbprov_azure.testing import offline_settings

from lbprov.cloudcalls import CloudCalls
from lbprov.provider import SandboxCloud
from lbprov.testing import clean_http_environment, count_http_environment_reads


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    clean_http_environment(monkeypatch)
    yield monkeypatch


def _read_lb(provider: AzureProvider, name: str = "no-such-lb") -> Any:
    s = provider.settings
    return get_json(provider.observer.arm, Ids(s.subscription_id).lb(s.resource_group, name))


def _provider(sandbox: SandboxCloud) -> AzureProvider:
    return AzureProvider.from_settings({**sandbox.settings, "cluster_name": "proxy-test"})


def test_the_environment_is_read_once_per_client_not_once_per_request(
    sandbox: SandboxCloud, clean_env: pytest.MonkeyPatch
) -> None:
    provider = _provider(sandbox)
    reads = count_http_environment_reads(clean_env)
    provider.calls.reset()
    for _ in range(10):
        assert _read_lb(provider) is None
    assert provider.calls.stats.reads == 10, dict(provider.calls.stats.sent)  # the requests were sent
    assert reads == []


def test_a_proxy_from_the_environment_still_applies_and_no_proxy_still_bypasses_it(
    sandbox: SandboxCloud, clean_env: pytest.MonkeyPatch
) -> None:
    # A proxy nobody listens on: a request sent through it fails; one that bypasses it succeeds.
    clean_env.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with pytest.raises(ServiceRequestError):
        _read_lb(_provider(sandbox))
    clean_env.setenv("NO_PROXY", "127.0.0.1")
    assert _read_lb(_provider(sandbox)) is None


def test_the_ca_bundle_of_the_environment_is_kept_and_the_settings_one_wins(
    clean_env: pytest.MonkeyPatch,
) -> None:
    calls = CloudCalls("azure", is_write=lambda op: False)

    def verify(settings: AzureSettings) -> Any:
        return make_client(settings, calls)._client._pipeline._transport.verify

    assert verify(offline_settings()) is True
    clean_env.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/corporate.pem")
    assert verify(offline_settings()) == "/etc/ssl/certs/corporate.pem"
    assert verify(offline_settings(ca_bundle="/etc/lbprov/ca.pem")) == "/etc/lbprov/ca.pem"
