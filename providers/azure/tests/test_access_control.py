"""Upstream's access-control annotations on the NSG (cloud-provider-azure ``loadbalancer/accesscontrol.go``):
``azure-allowed-service-tags`` (one allow rule per tag, no ``Internet`` rule), ``azure-allowed-ip-ranges``
(sources; never with spec.loadBalancerSourceRanges), ``azure-deny-all-except-load-balancer-source-ranges``
(a deny-all rule below the allow rules) and ``azure-additional-public-ips`` (ingress and destinations).
Each through azure-mgmt-network against the ARM emulator, with convergence, idempotence and no leaks."""

from __future__ import annotations

import pytest
from lbprov_azure.diff.nsg import NSG_PRIORITY_MIN
from lbprov_azure.testing import SANDBOX_RG

from lbprov.model import InvalidService

P = "service.beta.kubernetes.io/azure-"


def _rules(state, base):
    nsg = state.get("networkSecurityGroups", SANDBOX_RG, "lbprov-nsg")
    return {r["name"]: r["properties"] for r in nsg["properties"]["securityRules"] if base in r["name"]}


def _delete(provider, intent, state):
    provider.apply(provider.plan_delete(intent.ref))
    assert _rules(state, intent.lb_name) == {}
    assert provider.plan_delete(intent.ref).empty


def test_allowed_service_tags_get_one_rule_each_and_no_internet_rule(
    provider, intent_for, make_service, ensure, state
):
    svc = make_service(
        ports=[("TCP", 80), ("TCP", 443)],
        annotations={P + "allowed-service-tags": "AzureFrontDoor.Backend, AzureTrafficManager"},
    )
    intent = intent_for(svc)
    (ingress,) = ensure(intent)
    rules = _rules(state, intent.lb_name)
    base = f"lbprov-{intent.lb_name}-TCP"
    assert sorted(rules) == [f"{base}-AzureFrontDoor.Backend", f"{base}-AzureTrafficManager"]
    for tag in ("AzureFrontDoor.Backend", "AzureTrafficManager"):
        r = rules[f"{base}-{tag}"]
        assert (r["sourceAddressPrefix"], r["destinationAddressPrefix"], r["access"]) == (
            tag,
            ingress.ip,
            "Allow",
        )
        assert sorted(r["destinationPortRanges"]) == ["443", "80"]
    _delete(provider, intent, state)


def test_service_tags_and_ip_ranges_together_get_both_rules(
    provider, intent_for, make_service, ensure, state
):
    intent = intent_for(
        make_service(
            annotations={
                P + "allowed-service-tags": "AzureCloud",
                P + "allowed-ip-ranges": "10.1.0.0/16,192.0.2.0/24",
            }
        )
    )
    ensure(intent)
    rules = _rules(state, intent.lb_name)
    main = rules[f"lbprov-{intent.lb_name}-TCP"]
    assert sorted(main["sourceAddressPrefixes"]) == ["10.1.0.0/16", "192.0.2.0/24"]
    assert rules[f"lbprov-{intent.lb_name}-TCP-AzureCloud"]["sourceAddressPrefix"] == "AzureCloud"
    assert not any(r.get("sourceAddressPrefix") == "Internet" for r in rules.values())
    _delete(provider, intent, state)


def test_allowed_ip_ranges_refused_with_spec_source_ranges(intent_for, make_service):
    svc = make_service(source_ranges=["10.0.0.0/8"], annotations={P + "allowed-ip-ranges": "192.0.2.0/24"})
    with pytest.raises(InvalidService, match="loadBalancerSourceRanges") as info:
        intent_for(svc)
    assert "allowed-ip-ranges" in info.value.field


def test_an_unknown_service_tag_is_refused_by_arm(provider, intent_for, make_service, state):
    intent = intent_for(make_service(annotations={P + "allowed-service-tags": "NoSuchTag"}))
    with pytest.raises(Exception, match="SecurityRuleInvalidAddressPrefix"):
        provider.apply(provider.plan(intent))
    provider.apply(provider.plan_delete(intent.ref))


def test_deny_all_except_source_ranges_adds_a_deny_rule_below_the_allow_rules(
    provider, intent_for, make_service, ensure, state
):
    svc = make_service(
        source_ranges=["203.0.113.0/24"],
        annotations={P + "deny-all-except-load-balancer-source-ranges": "true"},
    )
    intent = intent_for(svc)
    (ingress,) = ensure(intent)
    rules = _rules(state, intent.lb_name)
    allow, deny = rules[f"lbprov-{intent.lb_name}-TCP"], rules[f"lbprov-{intent.lb_name}-deny-all"]
    assert allow["sourceAddressPrefix"] == "203.0.113.0/24"
    assert (deny["access"], deny["protocol"], deny["sourceAddressPrefix"], deny["destinationPortRange"]) == (
        "Deny",
        "*",
        "*",
        "*",
    )
    assert deny["destinationAddressPrefix"] == ingress.ip
    assert NSG_PRIORITY_MIN <= allow["priority"] < deny["priority"]
    _delete(provider, intent, state)


def test_deny_all_without_source_ranges_has_no_effect_as_upstream(
    provider, intent_for, make_service, ensure, state
):
    intent = intent_for(make_service(annotations={P + "deny-all-except-load-balancer-source-ranges": "true"}))
    ensure(intent)
    assert sorted(_rules(state, intent.lb_name)) == [f"lbprov-{intent.lb_name}-TCP"]
    _delete(provider, intent, state)


def test_additional_public_ips_are_ingress_and_nsg_destinations(
    provider, intent_for, make_service, ensure, state
):
    intent = intent_for(make_service(annotations={P + "additional-public-ips": "203.0.113.7, 203.0.113.8"}))
    ingress = ensure(intent)
    assert [i.ip for i in ingress][1:] == ["203.0.113.7", "203.0.113.8"]
    rule = _rules(state, intent.lb_name)[f"lbprov-{intent.lb_name}-TCP"]
    assert sorted(rule["destinationAddressPrefixes"]) == sorted([ingress[0].ip, "203.0.113.7", "203.0.113.8"])
    _delete(provider, intent, state)


def test_adding_a_tag_later_replaces_the_internet_rule(provider, intent_for, make_service, ensure, state):
    svc = make_service()
    intent = intent_for(svc)
    ensure(intent)
    svc["metadata"]["annotations"][P + "allowed-service-tags"] = "AzureCloud"
    tagged = intent_for(svc)
    kinds = sorted((c.action.value, c.name.split("/")[-1]) for c in provider.plan(tagged).changes)
    assert kinds == [
        ("create", f"lbprov-{intent.lb_name}-TCP-AzureCloud"),
        ("delete", f"lbprov-{intent.lb_name}-TCP"),
    ]
    ensure(tagged)
    _delete(provider, tagged, state)
