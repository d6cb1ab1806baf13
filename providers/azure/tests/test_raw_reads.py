"""The observer's reads return REST JSON without the SDK's model round trip, and address the API the
SDK itself uses: the same api-version, the same body as ``<ops>.get(...).as_dict()``, counted once."""

from __future__ import annotations

from lbprov_azure.client import ARM_API_VERSION
from lbprov_azure.testing import SANDBOX_RG


def test_raw_reads_use_the_sdk_api_version_and_return_its_json(
    provider, cluster, intent_for, make_service, ensure
):
    intent = intent_for(make_service(ports=[("TCP", 80), ("TCP", 443)]))
    ensure(intent)
    client = provider.client
    url = client.load_balancers.get(
        SANDBOX_RG, cluster, cls=lambda pipeline, _body, _headers: pipeline.http_request.url
    )
    assert f"api-version={ARM_API_VERSION}" in url
    provider.calls.reset()
    raw = provider.observer.lb(cluster)
    assert provider.calls.stats.to_json()["by_operation"] == {"loadBalancers.get (read)": 1}
    assert raw == client.load_balancers.get(SANDBOX_RG, cluster).as_dict()
    listed = {b["name"]: b for b in provider.observer.lbs()}
    assert listed[cluster] == raw
    assert provider.observer.lb("no-such-lb") is None
    pips = provider.observer.pips(SANDBOX_RG)
    assert sorted(p["name"] for p in pips) == sorted(
        p.name for p in client.public_ip_addresses.list(SANDBOX_RG)
    )
