"""Every request goes through CloudCalls with a stable operation name from operations.py."""

from __future__ import annotations

import pytest
from lbprov_azure import AzureProvider
from lbprov_azure.operations import OPERATIONS, is_write, operation_for

from lbprov.cloudcalls import ReadOnlyViolation

BASE = "https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network"


@pytest.mark.parametrize(
    ("method", "url", "op"),
    [
        ("GET", f"{BASE}/loadBalancers/k?api-version=1", "loadBalancers.get"),
        ("PUT", f"{BASE}/loadBalancers/k", "loadBalancers.create_or_update"),
        ("DELETE", f"{BASE}/loadBalancers/k", "loadBalancers.delete"),
        ("GET", f"{BASE}/loadBalancers", "loadBalancers.list"),
        ("GET", f"{BASE}/publicIPAddresses/p", "publicIPAddresses.get"),
        ("DELETE", f"{BASE}/publicIPAddresses/p", "publicIPAddresses.delete"),
        ("PUT", f"{BASE}/networkSecurityGroups/n/securityRules/r", "securityRules.create_or_update"),
        ("DELETE", f"{BASE}/networkSecurityGroups/n/securityRules/r", "securityRules.delete"),
        ("GET", f"{BASE}/networkSecurityGroups/n", "networkSecurityGroups.get"),
        ("GET", f"{BASE}/virtualNetworks/v/subnets/s", "subnets.get"),
        (
            "GET",
            "https://x/subscriptions/s/providers/Microsoft.Network/locations/w/operations/1",
            "operations.get",
        ),
        ("POST", f"{BASE}/loadBalancers/k/migrateToIpBased", "unknown.POST"),
    ],
)
def test_operation_names(method, url, op):
    assert operation_for(method, url) == op
    if op in OPERATIONS:
        assert OPERATIONS[op].permissions[0].startswith("Microsoft.Network/")
        assert is_write(op) == (OPERATIONS[op].kind == "write")
    else:
        assert is_write(op)  # unknown mutating shapes count as writes: the guard refuses them


def test_every_request_of_a_full_lifecycle_is_counted_and_named(provider, intent_for, make_service, sandbox):
    state = sandbox.extra["state"]
    before = len(state.log)
    provider.calls.reset()
    intent = intent_for(make_service("ops", ports=[("TCP", 80), ("UDP", 53)]))
    provider.apply(provider.plan(intent))
    provider.list_owned()
    provider.apply(provider.plan_delete(intent.ref))
    stats = provider.calls.stats
    sent = sum(stats.sent.values())
    assert sent == len(state.log) - before  # the policy saw every request the emulator received
    assert stats.operations() <= set(OPERATIONS)  # every name is in the table (IAM mapping)
    writes = {op for op in stats.operations("write")}
    assert writes == {
        "publicIPAddresses.create_or_update",
        "publicIPAddresses.delete",
        "loadBalancers.create_or_update",
        "loadBalancers.delete",
        "securityRules.create_or_update",
        "securityRules.delete",
    }


def test_read_only_guard_refuses_in_the_pipeline_before_sending(sandbox, provider, intent_for, make_service):
    dry = AzureProvider.from_settings(
        {**sandbox.settings, "cluster_name": provider.settings.cluster_name}, read_only=True
    )
    state = sandbox.extra["state"]
    before = len(state.mutating_requests())
    with pytest.raises(ReadOnlyViolation, match=r"publicIPAddresses\.create_or_update"):
        dry.client.public_ip_addresses.begin_create_or_update(
            "lbprov-sandbox", "direct-sdk-call", {"location": "westeurope", "sku": {"name": "Standard"}}
        )
    assert state.mutating_requests()[before:] == []
