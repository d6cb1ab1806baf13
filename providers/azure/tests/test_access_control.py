"""Upstream's access-control annotations on the NSG (cloud-provider-azure ``loadbalancer/accesscontrol.go``):
``azure-allowed-service-tags`` (one allow rule per tag, no ``Internet`` rule), ``azure-allowed-ip-ranges``
(sources; never with spec.loadBalancerSourceRanges), ``azure-deny-all-except-load-balancer-source-ranges``
(a deny-all rule below the allow rules) and ``azure-additional-public-ips`` (ingress and destinations).
Each through azure-mgmt-network against the ARM emulator, with convergence, idempotence and no leaks."""

from __future__ import annotations

import pytest
from lbprov_azure.diff.nsg import NSG_PRIORITY_MIN
from lbprov_azure.testing import nsg_rules

from lbprov.model import InvalidService

P = "service.beta.kubernetes.io/azure-"


def _rules(state, base, address=None):
    return nsg_rules(state, base, address)


def _by_source(rules):
    return {
        p.get("sourceAddressPrefix") or ",".join(sorted(p["sourceAddressPrefixes"])): p
        for p in rules.values()
    }


def _delete(provider, intent, state, address):
    provider.apply(provider.plan_delete(intent.ref))
    assert _rules(state, intent.lb_name, address) == {}
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
    rules = _by_source(_rules(state, intent.lb_name, ingress.ip))
    assert sorted(rules) == ["AzureFrontDoor.Backend", "AzureTrafficManager"]
    for r in rules.values():
        assert (r["destinationAddressPrefix"], r["access"]) == (ingress.ip, "Allow")
        assert sorted(r["destinationPortRanges"]) == ["443", "80"]
    _delete(provider, intent, state, ingress.ip)


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
    (ingress,) = ensure(intent)
    rules = _by_source(_rules(state, intent.lb_name, ingress.ip))
    assert sorted(rules) == ["10.1.0.0/16,192.0.2.0/24", "AzureCloud"]
    _delete(provider, intent, state, ingress.ip)


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
    rules = _rules(state, intent.lb_name, ingress.ip)
    (allow,) = [r for r in rules.values() if r["access"] == "Allow"]
    deny = rules[f"lbprov-{intent.lb_name}-deny-all"]
    assert allow["sourceAddressPrefix"] == "203.0.113.0/24"
    assert (deny["access"], deny["protocol"], deny["sourceAddressPrefix"], deny["destinationPortRange"]) == (
        "Deny",
        "*",
        "*",
        "*",
    )
    assert deny["destinationAddressPrefix"] == ingress.ip
    assert NSG_PRIORITY_MIN <= allow["priority"] < deny["priority"]
    _delete(provider, intent, state, ingress.ip)


def test_deny_all_without_source_ranges_has_no_effect_as_upstream(
    provider, intent_for, make_service, ensure, state
):
    intent = intent_for(make_service(annotations={P + "deny-all-except-load-balancer-source-ranges": "true"}))
    (ingress,) = ensure(intent)
    assert [r["access"] for r in _rules(state, intent.lb_name, ingress.ip).values()] == ["Allow"]
    _delete(provider, intent, state, ingress.ip)


def test_additional_public_ips_are_ingress_and_nsg_destinations(
    provider, intent_for, make_service, ensure, state
):
    intent = intent_for(make_service(annotations={P + "additional-public-ips": "203.0.113.7, 203.0.113.8"}))
    ingress = ensure(intent)
    assert [i.ip for i in ingress][1:] == ["203.0.113.7", "203.0.113.8"]
    # additional IPs may be shared with other Services: the Service keeps a rule of its own
    rule = _rules(state, intent.lb_name)[f"lbprov-{intent.lb_name}-TCP"]
    assert sorted(rule["destinationAddressPrefixes"]) == sorted([ingress[0].ip, "203.0.113.7", "203.0.113.8"])
    _delete(provider, intent, state, ingress[0].ip)


def test_adding_a_tag_later_replaces_the_internet_rule(provider, intent_for, make_service, ensure, state):
    svc = make_service(ports=[("TCP", 8081)])
    intent = intent_for(svc)
    (ingress,) = ensure(intent)
    assert list(_by_source(_rules(state, intent.lb_name, ingress.ip))) == ["Internet"]
    svc["metadata"]["annotations"][P + "allowed-service-tags"] = "AzureCloud"
    tagged = intent_for(svc)
    kinds = sorted((c.action.value, c.kind) for c in provider.plan(tagged).changes)
    assert kinds == [
        ("create", "nsg-rule"),
        ("delete", "nsg-rule"),
    ]  # it was the Internet rule's only destination
    ensure(tagged)
    assert list(_by_source(_rules(state, intent.lb_name, ingress.ip))) == ["AzureCloud"]
    _delete(provider, tagged, state, ingress.ip)
