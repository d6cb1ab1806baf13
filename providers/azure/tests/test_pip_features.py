"""``azure-pip-prefix-id`` and ``azure-pip-ip-tags`` on the public IP lbprov creates, as upstream:
the address comes from the prefix (ARM refuses a missing prefix, a full one, and moving a public IP
between prefixes), IP tags are written on the public IP. Through azure-mgmt-network against the ARM
emulator, with convergence, idempotence and no leaks."""

from __future__ import annotations

import ipaddress
import uuid

import pytest
from azure.core.exceptions import HttpResponseError
from lbprov_azure.testing import SANDBOX_RG

from lbprov.model import InvalidService

P = "service.beta.kubernetes.io/azure-"


def _prefix(provider, length: int = 31) -> tuple[str, str]:
    name = f"prefix-{uuid.uuid4().hex[:6]}"
    body = {
        "location": provider.settings.location,
        "sku": {"name": "Standard"},
        "properties": {"prefixLength": length},
    }
    made = (
        provider.client.public_ip_prefixes.begin_create_or_update(SANDBOX_RG, name, body).result().as_dict()
    )
    return made["id"], made["properties"]["ipPrefix"]


def _pip(state, cluster, intent):
    return state.get("publicIPAddresses", SANDBOX_RG, f"{cluster}-{intent.lb_name}")


def test_the_public_ip_is_taken_from_the_prefix(provider, cluster, intent_for, make_service, ensure, state):
    prefix_id, block = _prefix(provider)
    intent = intent_for(make_service(annotations={P + "pip-prefix-id": prefix_id}))
    (ingress,) = ensure(intent)
    assert ipaddress.ip_address(ingress.ip) in ipaddress.ip_network(block)
    assert _pip(state, cluster, intent)["properties"]["publicIPPrefix"]["id"].lower() == prefix_id.lower()
    provider.apply(provider.plan_delete(intent.ref))
    assert _pip(state, cluster, intent) is None


def test_a_full_prefix_is_refused_by_arm(provider, intent_for, make_service, ensure):
    prefix_id, _ = _prefix(provider, 31)  # two addresses
    made = [
        intent_for(make_service(name=f"s{i}", annotations={P + "pip-prefix-id": prefix_id})) for i in range(3)
    ]
    ensure(made[0])
    ensure(made[1])
    with pytest.raises(HttpResponseError, match="PublicIpPrefixOutOfIpAddressesForPublicIp"):
        provider.apply(provider.plan(made[2]))
    for i in made:
        provider.apply(provider.plan_delete(i.ref))


@pytest.mark.parametrize("length", [24, 27, 32])
def test_arm_refuses_a_prefix_length_outside_28_to_31(provider, length):
    # ARM's code and message (hashicorp/terraform-provider-azurerm#19060)
    with pytest.raises(HttpResponseError) as info:
        _prefix(provider, length)
    assert info.value.status_code == 400
    assert info.value.error.code == "SpecifiedPrefixLengthNotSupported"
    assert f"Specified PrefixLength {length} for PublicIpPrefix" in str(info.value)
    assert "Minimum PrefixLength 28 Maximum PrefixLength 31" in str(info.value)


def test_arm_cannot_parse_a_prefix_length_that_is_not_an_integer(provider):
    with pytest.raises(HttpResponseError) as info:
        _prefix(provider, "28")  # type: ignore[arg-type]
    assert info.value.status_code == 400 and info.value.error.code == "InvalidRequestFormat"


def test_a_missing_prefix_is_refused_by_arm(provider, intent_for, make_service):
    missing = f"/subscriptions/{provider.settings.subscription_id}/resourceGroups/{SANDBOX_RG}/providers/Microsoft.Network/publicIPPrefixes/nope"
    intent = intent_for(make_service(annotations={P + "pip-prefix-id": missing}))
    with pytest.raises(HttpResponseError, match="InvalidResourceReference"):
        provider.apply(provider.plan(intent))


def test_the_prefix_of_an_existing_public_ip_cannot_change(provider, intent_for, make_service, ensure):
    svc = make_service()
    ensure(intent_for(svc))
    prefix_id, _ = _prefix(provider)
    svc["metadata"]["annotations"][P + "pip-prefix-id"] = prefix_id
    with pytest.raises(InvalidService, match="cannot change") as info:
        provider.plan(intent_for(svc))
    assert "pip-prefix-id" in info.value.field
    provider.apply(provider.plan_delete(intent_for(svc).ref))


def test_arm_refuses_moving_a_public_ip_between_prefixes(provider, state):
    first, _ = _prefix(provider)
    second, _ = _prefix(provider)
    ops = provider.client.public_ip_addresses
    base = {"location": provider.settings.location, "sku": {"name": "Standard"}}
    props = {"publicIPAllocationMethod": "Static"}
    ops.begin_create_or_update(
        SANDBOX_RG, "moving", {**base, "properties": {**props, "publicIPPrefix": {"id": first}}}
    ).result()
    with pytest.raises(HttpResponseError, match="PublicIPPrefixCannotBeChanged"):
        ops.begin_create_or_update(
            SANDBOX_RG, "moving", {**base, "properties": {**props, "publicIPPrefix": {"id": second}}}
        ).result()
    ops.begin_delete(SANDBOX_RG, "moving").result()


def test_ip_tags_are_written_and_updated(provider, cluster, intent_for, make_service, ensure, state):
    svc = make_service(annotations={P + "pip-ip-tags": "RoutingPreference=Internet"})
    intent = intent_for(svc)
    ensure(intent)
    assert _pip(state, cluster, intent)["properties"]["ipTags"] == [
        {"ipTagType": "RoutingPreference", "tag": "Internet"}
    ]
    svc["metadata"]["annotations"][P + "pip-ip-tags"] = "FirstPartyUsage=/Unprivileged"
    changed = intent_for(svc)
    assert [(c.action.value, c.kind) for c in provider.plan(changed).changes] == [("update", "public-ip")]
    ensure(changed)
    assert _pip(state, cluster, intent)["properties"]["ipTags"] == [
        {"ipTagType": "FirstPartyUsage", "tag": "/Unprivileged"}
    ]
    provider.apply(provider.plan_delete(intent.ref))
