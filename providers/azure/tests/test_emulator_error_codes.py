"""ARM's answers to malformed load-balancer frontends, as the emulator gives them (through the SDK):
the codes and messages public sources quote (cited in ``sandbox/load_balancers.py``)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from lbprov_azure.testing import SANDBOX_RG as RG


def _pip(provider: Any) -> str:
    name = f"codes-{uuid.uuid4().hex[:6]}"
    body = {
        "location": "westeurope",
        "sku": {"name": "Standard"},
        "properties": {"publicIPAllocationMethod": "Static"},
    }
    return str(provider.client.public_ip_addresses.begin_create_or_update(RG, name, body).result().id)


def _lb(frontends: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "location": "westeurope",
        "sku": {"name": "Standard"},
        "properties": {"frontendIPConfigurations": frontends},
    }


def _refused(provider: Any, body: dict[str, Any]) -> HttpResponseError:
    name = f"codes-lb-{uuid.uuid4().hex[:6]}"
    with pytest.raises(HttpResponseError) as info:
        provider.client.load_balancers.begin_create_or_update(RG, name, body).result()
    assert info.value.status_code == 400
    return info.value


def test_a_frontend_without_subnet_or_public_ip(provider):
    err = _refused(provider, _lb([{"name": "fe", "properties": {}}]))
    assert err.error.code == "FrontendIPConfigHasNoSubnetOrPublicIP"
    assert "must reference either a Subnet or a Public IP Address" in str(err)


def test_a_frontend_with_both_subnet_and_public_ip(provider, state):
    subnet = state.resource_id(RG, "virtualNetworks", provider.settings.vnet_name) + "/subnets/services"
    pip = _pip(provider)
    fe = {"name": "fe", "properties": {"publicIPAddress": {"id": pip}, "subnet": {"id": subnet}}}
    err = _refused(provider, _lb([fe]))
    assert err.error.code == "FrontendIPConfigHasBothSubnetAndPublicIP"
    assert "must not reference both a Subnet and a Public IP Address" in str(err)
    provider.client.public_ip_addresses.begin_delete(RG, pip.rsplit("/", 1)[1]).result()


def test_one_public_ip_on_two_frontends_of_a_load_balancer(provider):
    pip = _pip(provider)
    fes = [{"name": n, "properties": {"publicIPAddress": {"id": pip}}} for n in ("a", "b")]
    err = _refused(provider, _lb(fes))
    assert err.error.code == "PublicIPReferencedByMultipleIPConfigs"
    assert "is referenced by multiple ipconfigs in resource" in str(err)
    provider.client.public_ip_addresses.begin_delete(RG, pip.rsplit("/", 1)[1]).result()


def test_one_public_ip_on_two_load_balancers(provider):
    pip = _pip(provider)
    fe = [{"name": "fe", "properties": {"publicIPAddress": {"id": pip}}}]
    lbs = provider.client.load_balancers
    first = f"codes-first-{uuid.uuid4().hex[:6]}"
    lbs.begin_create_or_update(RG, first, _lb(fe)).result()
    err = _refused(provider, _lb(fe))
    assert err.error.code == "PublicIPAddressInUse"  # the emulator's own code (no public source)
    lbs.begin_delete(RG, first).result()
    provider.client.public_ip_addresses.begin_delete(RG, pip.rsplit("/", 1)[1]).result()
