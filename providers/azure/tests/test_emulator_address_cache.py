"""The NSG rule checks parse each address once per value (``_family``, cached): a cached answer
refuses and accepts exactly what a fresh parse does, on every write (issue 14)."""

from __future__ import annotations

import pytest
from lbprov_azure.sandbox.base import ArmError
from lbprov_azure.sandbox.state import ArmState

RULE = {
    "protocol": "Tcp",
    "access": "Allow",
    "direction": "Inbound",
    "priority": 500,
    "sourceAddressPrefix": "Internet",
    "sourcePortRange": "*",
    "destinationPortRange": "80",
}


@pytest.fixture
def state() -> ArmState:
    s = ArmState("sub", "westeurope")
    s.add_resource_group("rg")
    s.put("networkSecurityGroups", "rg", "nsg", {"location": "westeurope", "properties": {}})
    return s


def _code(state: ArmState, name: str, **props: object) -> str | None:
    try:
        state.put_security_rule("rg", "nsg", name, {**RULE, **props})
    except ArmError as err:
        return err.code
    return None


def test_an_invalid_address_is_refused_on_every_write_not_only_the_first(state):
    for _ in range(2):
        assert _code(state, "r", destinationAddressPrefixes=["10.0.0.1", "10.1.0.0/40"]) == (
            "SecurityRuleInvalidAddressPrefix"
        )
    assert _code(state, "r", destinationAddressPrefixes=["10.0.0.1", "10.1.0.0/16"]) is None


def test_addresses_seen_before_are_still_checked_for_one_family(state):
    assert _code(state, "v4", destinationAddressPrefixes=["10.0.0.1"]) is None
    assert _code(state, "v6", priority=501, destinationAddressPrefixes=["fd00::1"]) is None
    mixed = _code(state, "mixed", priority=502, destinationAddressPrefixes=["10.0.0.1", "fd00::1"])
    assert mixed == "ResourceCannotContainAddressPrefixesFromDifferentAddressFamilies"
