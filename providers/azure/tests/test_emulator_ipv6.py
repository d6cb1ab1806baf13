"""The ARM emulator's IPv6 public IPs (groundwork for IPv6 frontends): Standard static IPv6 addresses,
the version fixed at creation, unknown versions refused (azure-mgmt-network's IPVersion: IPv4, IPv6)."""

from __future__ import annotations

import ipaddress

import pytest
from azure.core.exceptions import HttpResponseError
from lbprov_azure.testing import SANDBOX_RG


def _body(provider, version):
    return {
        "location": provider.settings.location,
        "sku": {"name": "Standard"},
        "properties": {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": version},
    }


def test_an_ipv6_public_ip_gets_an_ipv6_address_and_keeps_its_version(provider):
    ops = provider.client.public_ip_addresses
    made = ops.begin_create_or_update(SANDBOX_RG, "v6-ip", _body(provider, "IPv6")).result()
    assert ipaddress.ip_address(made.ip_address).version == 6
    with pytest.raises(HttpResponseError, match="PublicIPAddressVersionCannotBeChanged"):
        ops.begin_create_or_update(SANDBOX_RG, "v6-ip", _body(provider, "IPv4")).result()
    with pytest.raises(HttpResponseError, match="publicIPAddressVersion"):
        ops.begin_create_or_update(SANDBOX_RG, "v7-ip", _body(provider, "IPv7")).result()
    ops.begin_delete(SANDBOX_RG, "v6-ip").result()
