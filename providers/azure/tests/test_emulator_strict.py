"""The emulator refuses what ARM refuses: api-versions, NSG address prefixes and ports, retired and
unknown SKUs; and its long operations follow the ARM contract (status URL, Location, api-version)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from lbprov_azure.testing import arm_raw, network_prefix

RG = "lbprov-sandbox"


STANDARD_PIP = {
    "location": "westeurope",
    "sku": {"name": "Standard"},
    "properties": {"publicIPAllocationMethod": "Static"},
}


@pytest.mark.parametrize(
    ("version", "code"),
    [("banana", "InvalidApiVersionParameter"), ("2099-01-01", "NoRegisteredProviderFound")],
)
def test_an_api_version_microsoft_network_never_published_is_refused(sandbox, version, code):
    status, body, _ = arm_raw(
        sandbox, "GET", network_prefix(sandbox) + f"/loadBalancers/x?api-version={version}"
    )
    assert status == 400 and body["error"]["code"] == code


def _rule(**override):
    props = {
        "protocol": "Tcp",
        "access": "Allow",
        "direction": "Inbound",
        "priority": 4000,
        "sourceAddressPrefix": "Internet",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "10.0.0.0/8",
        "destinationPortRange": "80",
    }
    props.update(override)
    return {"properties": props}


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"sourceAddressPrefix": "999.1.1.1/33"}, "SecurityRuleInvalidAddressPrefix"),
        ({"destinationAddressPrefix": "not-a-cidr"}, "SecurityRuleInvalidAddressPrefix"),
        (
            {"sourceAddressPrefix": None, "sourceAddressPrefixes": ["10.0.0.0/8", "10.1.0.0/40"]},
            "SecurityRuleInvalidAddressPrefix",
        ),
        ({"destinationPortRange": "70000"}, "SecurityRuleInvalidPortRange"),
        ({"destinationPortRange": "90-80"}, "SecurityRuleInvalidPortRange"),
        (
            {"destinationPortRange": None, "destinationPortRanges": ["80", "x"]},
            "SecurityRuleInvalidPortRange",
        ),
    ],
)
def test_nsg_rules_with_invalid_prefixes_or_ports_are_refused(provider, override, code):
    rules = provider.client.security_rules
    body = _rule(**override)
    body["properties"] = {k: v for k, v in body["properties"].items() if v is not None}
    with pytest.raises(HttpResponseError) as info:
        rules.begin_create_or_update(RG, "lbprov-nsg", "strict", body).result()
    assert info.value.status_code == 400 and info.value.error.code == code
    if code == "InvalidRequestFormat":
        assert info.value.error.message == "Cannot parse the request."
        (detail,) = info.value.error.details
        assert detail.code == "InvalidJson" and "sku." in detail.message
    if code == "IPv4BasicSkuPublicIpCountLimitReached":
        assert "Cannot create more than 0 IPv4 Basic SKU public IP addresses" in info.value.error.message


def test_valid_prefixes_service_tags_and_ranges_are_accepted(provider):
    rules = provider.client.security_rules
    body = _rule(
        sourceAddressPrefix="AzureLoadBalancer",
        destinationAddressPrefix="2001:db8::/64",
        destinationPortRange="1000-2000",
    )
    rules.begin_create_or_update(RG, "lbprov-nsg", "strict-ok", body).result()
    rules.begin_delete(RG, "lbprov-nsg", "strict-ok").result()


@pytest.mark.parametrize(
    ("kind", "sku", "code"),
    [
        # ARM's answer since the Basic public IP retirement (skypilot-org/skypilot#7977)
        ("public_ip_addresses", {"name": "Basic"}, "IPv4BasicSkuPublicIpCountLimitReached"),
        ("public_ip_addresses", None, "IPv4BasicSkuPublicIpCountLimitReached"),  # an omitted SKU is Basic
        # a value outside the SKU enums cannot be deserialised: ARM's parse error
        ("public_ip_addresses", {"name": "Premium"}, "InvalidRequestFormat"),
        ("public_ip_addresses", {"name": "Standard", "tier": "Galactic"}, "InvalidRequestFormat"),
        ("load_balancers", {"name": "Basic"}, "BasicSkuLoadBalancerRetired"),  # the emulator's own code
        ("load_balancers", {"name": "Ultra"}, "InvalidRequestFormat"),
    ],
)
def test_retired_basic_and_unknown_skus_are_refused(provider, kind, sku, code):
    body: dict = {"location": "westeurope", "properties": {}}
    if kind == "public_ip_addresses":
        body["properties"] = {"publicIPAllocationMethod": "Static"}
    if sku is not None:
        body["sku"] = sku
    with pytest.raises(HttpResponseError) as info:
        getattr(provider.client, kind).begin_create_or_update(RG, "sku-test", body).result()
    assert info.value.status_code == 400 and info.value.error.code == code
    if code == "InvalidRequestFormat":
        assert info.value.error.message == "Cannot parse the request."
        (detail,) = info.value.error.details
        assert detail.code == "InvalidJson" and "sku." in detail.message
    if code == "IPv4BasicSkuPublicIpCountLimitReached":
        assert "Cannot create more than 0 IPv4 Basic SKU public IP addresses" in info.value.error.message


def test_a_delete_answers_202_with_location_and_poll_urls_keep_the_api_version(sandbox, state):
    url = network_prefix(sandbox) + "/publicIPAddresses/loc?api-version=2024-05-01"
    status, _, headers = arm_raw(sandbox, "PUT", url, STANDARD_PIP)
    assert status == 201 and "api-version=2024-05-01" in headers["Azure-AsyncOperation"]
    state.lro_seconds = 30.0
    status, _, headers = arm_raw(sandbox, "DELETE", url)
    assert status == 202 and "api-version=2024-05-01" in headers["Location"]
    assert "api-version=2024-05-01" in headers["Azure-AsyncOperation"]
    assert arm_raw(sandbox, "GET", headers["Location"])[0] == 202  # still in progress
    assert arm_raw(sandbox, "GET", headers["Azure-AsyncOperation"])[1]["status"] == "InProgress"
    state.finish_operations()
    assert arm_raw(sandbox, "GET", headers["Location"])[0] == 204
    assert arm_raw(sandbox, "GET", headers["Azure-AsyncOperation"])[1]["status"] == "Succeeded"


def test_a_long_operation_stays_in_progress_then_succeeds_or_fails(sandbox, state):
    url = network_prefix(sandbox) + "/publicIPAddresses/slow?api-version=2026-03-01"
    # An hour, ended by the test itself: no wall-clock window for a loaded CI machine to miss.
    state.lro_seconds = 3600.0
    _, _, headers = arm_raw(sandbox, "PUT", url, STANDARD_PIP)
    op = headers["Azure-AsyncOperation"]
    assert arm_raw(sandbox, "GET", op)[1]["status"] == "InProgress"
    assert arm_raw(sandbox, "GET", url)[1]["properties"]["provisioningState"] == "Updating"
    state.finish_operations()
    assert arm_raw(sandbox, "GET", op)[1]["status"] == "Succeeded"
    assert arm_raw(sandbox, "GET", url)[1]["properties"]["provisioningState"] == "Succeeded"
    state.lro_seconds = 0.0
    state.fail_operations(method="PUT", path="publicipaddresses/slow", code="InternalServerError")
    _, _, headers = arm_raw(sandbox, "PUT", url, STANDARD_PIP)
    status = arm_raw(sandbox, "GET", headers["Azure-AsyncOperation"])[1]
    assert status["status"] == "Failed" and status["error"]["code"] == "InternalServerError"
    assert arm_raw(sandbox, "GET", url)[1]["properties"]["provisioningState"] == "Failed"
    assert arm_raw(sandbox, "DELETE", url)[0] == 202


def test_a_load_balancer_referencing_a_public_ip_whose_operation_has_not_succeeded_is_refused(sandbox, state):
    """ARM's ReferencedResourceNotProvisioned (gardener/gardener-extension-provider-azure#2,
    kubernetes/kubernetes#95748): an LB PUT waits for its public IPs' own operations to succeed."""
    prefix = network_prefix(sandbox)
    pip_url = prefix + "/publicIPAddresses/notyet?api-version=2026-03-01"
    lb_url = prefix + "/loadBalancers/notyet-lb?api-version=2026-03-01"
    state.lro_seconds = 3600.0  # ended by the test itself
    try:
        status, _, _ = arm_raw(sandbox, "PUT", pip_url, STANDARD_PIP)
        assert status == 201
        pip_id = arm_raw(sandbox, "GET", pip_url)[1]["id"]
        lb = {
            "location": "westeurope",
            "sku": {"name": "Standard"},
            "properties": {
                "frontendIPConfigurations": [
                    {"name": "fe", "properties": {"publicIPAddress": {"id": pip_id}}}
                ]
            },
        }
        status, body, _ = arm_raw(sandbox, "PUT", lb_url, lb)
        assert status == 400 and body["error"]["code"] == "ReferencedResourceNotProvisioned"
        assert "is in Updating state" in body["error"]["message"]
        assert arm_raw(sandbox, "GET", lb_url)[0] == 404  # nothing was written
        state.finish_operations()
        status, _, _ = arm_raw(sandbox, "PUT", lb_url, lb)
        assert status == 201
    finally:
        state.lro_seconds = 0.0
        state.finish_operations()
    assert arm_raw(sandbox, "DELETE", lb_url)[0] in (200, 202, 204)
    state.fail_operations(method="PUT", path="publicipaddresses/notyet", code="InternalServerError")
    arm_raw(sandbox, "PUT", pip_url, STANDARD_PIP)  # its operation fails: the public IP is Failed
    status, body, _ = arm_raw(sandbox, "PUT", lb_url, lb)
    assert status == 400 and body["error"]["code"] == "ReferencedResourceNotProvisioned"
    assert "is in Failed state" in body["error"]["message"]
    assert arm_raw(sandbox, "DELETE", pip_url)[0] in (200, 202, 204)
