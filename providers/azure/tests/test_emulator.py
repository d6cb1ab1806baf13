"""The ARM emulator is strict like ARM: these are the behaviours the provider's tests rely on."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request

import pytest
from azure.core.exceptions import HttpResponseError
from lbprov_azure.testing import arm_raw, network_prefix

RG = "lbprov-sandbox"


def test_https_with_the_throwaway_certificate_only(sandbox):
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(sandbox.endpoint + "/", context=ssl.create_default_context())  # untrusted


def test_api_version_and_token_are_required(sandbox):
    status, body, _ = arm_raw(sandbox, "GET", network_prefix(sandbox) + "/loadBalancers/x")
    assert status == 400 and body["error"]["code"] == "MissingApiVersionParameter"
    status, body, _ = arm_raw(
        sandbox, "GET", network_prefix(sandbox) + "/loadBalancers/x?api-version=2024-05-01", token=False
    )
    assert status == 401


def test_put_is_a_long_operation_with_an_async_status_url(sandbox):
    pip = {
        "location": "westeurope",
        "sku": {"name": "Standard"},
        "properties": {"publicIPAllocationMethod": "Static"},
    }
    status, body, headers = arm_raw(
        sandbox, "PUT", network_prefix(sandbox) + "/publicIPAddresses/lro?api-version=2026-03-01", pip
    )
    assert status == 201 and body["properties"]["provisioningState"] == "Updating"
    op = headers["Azure-AsyncOperation"].removeprefix(sandbox.endpoint)
    assert arm_raw(sandbox, "GET", op)[1]["status"] == "Succeeded"
    status, body, _ = arm_raw(
        sandbox, "GET", network_prefix(sandbox) + "/publicIPAddresses/lro?api-version=2026-03-01"
    )
    assert body["properties"]["provisioningState"] == "Succeeded" and body["properties"]["ipAddress"]
    assert (
        arm_raw(sandbox, "DELETE", network_prefix(sandbox) + "/publicIPAddresses/lro?api-version=2026-03-01")[
            0
        ]
        == 202
    )
    assert (
        arm_raw(sandbox, "DELETE", network_prefix(sandbox) + "/publicIPAddresses/lro?api-version=2026-03-01")[
            0
        ]
        == 204
    )


def test_basic_rules_of_arm_through_the_sdk(provider, sandbox, state):
    c = provider.client
    s = provider.settings
    with pytest.raises(HttpResponseError) as info:
        c.public_ip_addresses.begin_create_or_update(
            RG,
            "dyn",
            {
                "location": "westeurope",
                "sku": {"name": "Standard"},
                "properties": {"publicIPAllocationMethod": "Dynamic"},
            },
        ).result()
    assert info.value.error.code == "StandardSkuPublicIPAddressesMustBeStatic"
    with pytest.raises(HttpResponseError) as info:
        c.public_ip_addresses.begin_create_or_update(RG, "x" * 81, {"location": "westeurope"}).result()
    assert info.value.error.code == "InvalidResourceName"
    pip = c.public_ip_addresses.begin_create_or_update(
        RG,
        "emu-pip",
        {
            "location": "westeurope",
            "sku": {"name": "Standard"},
            "properties": {"publicIPAllocationMethod": "Static"},
        },
    ).result()
    lb_id = state.resource_id(RG, "loadBalancers", "emu-lb")
    vnet = state.resource_id(RG, "virtualNetworks", s.vnet_name)

    def body(rules: int, probe: str = "p0"):
        return {
            "location": "westeurope",
            "sku": {"name": "Standard"},
            "properties": {
                "frontendIPConfigurations": [
                    {"name": "fe", "properties": {"publicIPAddress": {"id": pip.id}}}
                ],
                "backendAddressPools": [
                    {
                        "name": "pool",
                        "properties": {
                            "loadBalancerBackendAddresses": [
                                {
                                    "name": "n",
                                    "properties": {
                                        "ipAddress": "10.240.0.50",
                                        "virtualNetwork": {"id": vnet},
                                    },
                                }
                            ]
                        },
                    }
                ],
                "probes": [
                    {
                        "name": "p0",
                        "properties": {
                            "protocol": "Tcp",
                            "port": 30000,
                            "intervalInSeconds": 5,
                            "numberOfProbes": 2,
                        },
                    }
                ],
                "loadBalancingRules": [
                    {
                        "name": f"r{i}",
                        "properties": {
                            "protocol": "Tcp",
                            "frontendPort": 1 + i,
                            "backendPort": 20000 + i,
                            "frontendIPConfiguration": {"id": f"{lb_id}/frontendIPConfigurations/fe"},
                            "backendAddressPool": {"id": f"{lb_id}/backendAddressPools/pool"},
                            "probe": {"id": f"{lb_id}/probes/{probe}"},
                        },
                    }
                    for i in range(rules)
                ],
            },
        }

    with pytest.raises(HttpResponseError) as info:
        c.load_balancers.begin_create_or_update(RG, "emu-lb", body(1, probe="missing")).result()
    assert info.value.status_code == 400 and info.value.error.code == "InvalidResourceReference"
    with pytest.raises(HttpResponseError) as info:  # the one backend address would be in 301 rules
        c.load_balancers.begin_create_or_update(RG, "emu-lb", body(301)).result()
    assert info.value.error.code == "LoadBalancerRuleCountLimitReachedForNic"
    lb = c.load_balancers.begin_create_or_update(
        RG, "emu-lb", body(300), headers={"If-None-Match": "*"}
    ).result()
    with pytest.raises(HttpResponseError) as info:
        c.load_balancers.begin_create_or_update(
            RG, "emu-lb", body(2), headers={"If-None-Match": "*"}
        ).result()
    assert info.value.status_code == 412
    with pytest.raises(HttpResponseError) as info:
        c.load_balancers.begin_create_or_update(
            RG, "emu-lb", body(2), headers={"If-Match": 'W/"stale"'}
        ).result()
    assert info.value.status_code == 412 and info.value.error.code == "PreconditionFailed"
    lb = c.load_balancers.begin_create_or_update(
        RG, "emu-lb", body(2), headers={"If-Match": lb.etag}
    ).result()
    assert all(r.etag == lb.etag for r in lb.load_balancing_rules)  # sub-resources carry the LB's ETag
    # the public IP's own write (a tag) keeps the back reference to the frontend that uses it
    c.public_ip_addresses.begin_create_or_update(
        RG,
        "emu-pip",
        {
            "location": "westeurope",
            "sku": {"name": "Standard"},
            "tags": {"t": "1"},
            "properties": {"publicIPAllocationMethod": "Static"},
        },
    ).result()
    used_by = c.public_ip_addresses.get(RG, "emu-pip").ip_configuration
    assert used_by is not None and used_by.id.lower() == f"{lb_id}/frontendIPConfigurations/fe".lower()
    with pytest.raises(HttpResponseError) as info:
        c.public_ip_addresses.begin_delete(RG, "emu-pip").result()
    # ARM's code (hashicorp/terraform-provider-azurerm#2566)
    assert info.value.status_code == 400 and info.value.error.code == "PublicIPAddressCannotBeDeleted"
    c.load_balancers.begin_delete(RG, "emu-lb", headers={"If-Match": lb.etag}).result()
    c.public_ip_addresses.begin_delete(RG, "emu-pip").result()


def test_private_addresses_come_from_the_subnet_and_do_not_clash(provider, state):
    s = provider.settings
    subnet = state.resource_id(RG, "virtualNetworks", s.vnet_name) + "/subnets/services"

    def lb(name, fe_props):
        return {
            "location": "westeurope",
            "sku": {"name": "Standard"},
            "properties": {
                "frontendIPConfigurations": [
                    {"name": "fe", "properties": {"subnet": {"id": subnet}, **fe_props}}
                ]
            },
        }

    c = provider.client
    one = c.load_balancers.begin_create_or_update(
        RG, "emu-int-1", lb("a", {"privateIPAllocationMethod": "Static", "privateIPAddress": "10.240.8.10"})
    ).result()
    assert one.frontend_ip_configurations[0].private_ip_address == "10.240.8.10"
    with pytest.raises(HttpResponseError) as info:
        c.load_balancers.begin_create_or_update(
            RG,
            "emu-int-2",
            lb("b", {"privateIPAllocationMethod": "Static", "privateIPAddress": "10.240.8.10"}),
        ).result()
    assert info.value.error.code == "PrivateIPAddressInUse"
    with pytest.raises(HttpResponseError) as info:
        c.load_balancers.begin_create_or_update(
            RG,
            "emu-int-2",
            lb("b", {"privateIPAllocationMethod": "Static", "privateIPAddress": "10.240.9.10"}),
        ).result()
    assert info.value.error.code == "PrivateIPAddressNotInSubnet"
    two = c.load_balancers.begin_create_or_update(
        RG, "emu-int-2", lb("b", {"privateIPAllocationMethod": "Dynamic"})
    ).result()
    addr = two.frontend_ip_configurations[0].private_ip_address
    assert addr.startswith("10.240.8.") and addr != "10.240.8.10"
    for n in ("emu-int-1", "emu-int-2"):
        c.load_balancers.begin_delete(RG, n).result()
    # released: the static address can be taken again
    again = c.load_balancers.begin_create_or_update(
        RG, "emu-int-3", lb("c", {"privateIPAllocationMethod": "Static", "privateIPAddress": "10.240.8.10"})
    ).result()
    assert again.frontend_ip_configurations[0].private_ip_address == "10.240.8.10"
    c.load_balancers.begin_delete(RG, "emu-int-3").result()


def test_security_rule_priorities_are_unique_per_direction(provider, state):
    c = provider.client
    props = {
        "protocol": "Tcp",
        "access": "Allow",
        "direction": "Inbound",
        "sourceAddressPrefix": "*",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "*",
        "destinationPortRange": "80",
    }
    prio = state.free_priority(RG, "lbprov-nsg", 3000)
    c.security_rules.begin_create_or_update(
        RG, "lbprov-nsg", "emu-a", {"properties": {**props, "priority": prio}}
    ).result()
    with pytest.raises(HttpResponseError) as info:
        c.security_rules.begin_create_or_update(
            RG, "lbprov-nsg", "emu-b", {"properties": {**props, "priority": prio}}
        ).result()
    assert info.value.error.code == "SecurityRuleConflict"
    with pytest.raises(HttpResponseError) as info:
        c.security_rules.begin_create_or_update(
            RG, "lbprov-nsg", "emu-b", {"properties": {**props, "priority": 5000}}
        ).result()
    assert info.value.error.code == "SecurityRuleInvalidPriority"
    c.security_rules.begin_delete(RG, "lbprov-nsg", "emu-a").result()


def test_request_log_records_mutations(sandbox, provider):
    before = len(sandbox.mutating_requests())
    provider.client.load_balancers.begin_delete(RG, "does-not-exist").result()
    assert sandbox.mutating_requests()[before:] == [
        f"DELETE {network_prefix(sandbox)}/loadBalancers/does-not-exist"
    ]


def test_public_and_private_frontends_do_not_mix_on_one_lb(provider, state):
    c = provider.client
    pip = c.public_ip_addresses.begin_create_or_update(
        RG,
        "mix-pip",
        {
            "location": "westeurope",
            "sku": {"name": "Standard"},
            "properties": {"publicIPAllocationMethod": "Static"},
        },
    ).result()
    subnet = state.resource_id(RG, "virtualNetworks", provider.settings.vnet_name) + "/subnets/services"
    body = {
        "location": "westeurope",
        "sku": {"name": "Standard"},
        "properties": {
            "frontendIPConfigurations": [
                {"name": "pub", "properties": {"publicIPAddress": {"id": pip.id}}},
                {"name": "priv", "properties": {"subnet": {"id": subnet}}},
            ]
        },
    }
    with pytest.raises(HttpResponseError) as info:
        c.load_balancers.begin_create_or_update(RG, "mix-lb", body).result()
    assert info.value.error.code == "LoadBalancerCannotHavePublicAndPrivateFrontends"
    c.public_ip_addresses.begin_delete(RG, "mix-pip").result()


def test_the_emulator_reads_and_writes_json_as_the_standard_library_did():
    """orjson where it can (large LB bodies), the standard library for what orjson refuses."""
    import json
    import math

    from lbprov_azure.sandbox.base import encode as _dumps
    from lbprov_azure.sandbox.server import _loads

    assert _loads(b'{"a": [1, "\\u00e9"]}') == {"a": [1, "é"]}
    assert math.isnan(_loads(b'{"a": NaN}')["a"])  # json.loads takes it; orjson does not
    assert json.loads(_dumps({"a": [1, "é"], "b": None})) == {"a": [1, "é"], "b": None}
    assert json.loads(_dumps({1: "x"})) == {"1": "x"}  # a key orjson refuses
