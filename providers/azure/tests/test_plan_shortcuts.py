"""Planning shortcuts taken for CPU (issue 14, Azure create at 1,000 Services) rest on facts that
these tests pin: placement counts a Service's rules from a desired state built without node pools,
and a shared NSG rule's new destinations, given in the rule's own order, come out sorted and unique."""

from __future__ import annotations

import pytest
from lbprov_azure.desired import build_desired, rule_count, with_destinations
from lbprov_azure.diff import options_of


@pytest.mark.parametrize(
    "annotations",
    [
        {},
        {"service.beta.kubernetes.io/azure-disable-load-balancer-floating-ip": "true"},
        {"service.beta.kubernetes.io/port_53_no_lb_rule": "true"},
    ],
)
def test_the_rules_placement_counts_do_not_depend_on_the_nodes(
    provider, intent_for, make_service, annotations
):
    service = make_service(ports=[("TCP", 80), ("UDP", 53), ("TCP", 443)])
    service["metadata"]["annotations"] = annotations
    intent = intent_for(service)
    assert intent.targets
    opts, settings = options_of(intent), provider.settings
    with_nodes = build_desired(intent, opts, settings, "-")
    without = build_desired(intent, opts, settings, "-", pool_ips=())
    assert without.rules == with_nodes.rules and len(without.rules) == len(with_nodes.rules) > 0
    assert without.pool["properties"]["loadBalancerBackendAddresses"] == []


P = "service.beta.kubernetes.io/azure-"
PORT_SETS = [  # each holds ports 80 and 53, which the annotations name
    [("TCP", 80), ("UDP", 53)],
    [("TCP", 80), ("UDP", 53), ("TCP", 443)],
    [("UDP", 53), ("TCP", 80), ("TCP", 53)],
]
ANNOTATION_SETS = [
    {},
    {P + "disable-load-balancer-floating-ip": "true"},
    {"service.beta.kubernetes.io/port_53_no_lb_rule": "true"},
    {
        "service.beta.kubernetes.io/port_80_no_lb_rule": "true",
        "service.beta.kubernetes.io/port_53_no_lb_rule": "true",
    },
    {P + "load-balancer-internal": "true", P + "load-balancer-enable-high-availability-ports": "true"},
    {"service.beta.kubernetes.io/port_80_no_probe_rule": "true"},
]


@pytest.mark.parametrize("families", [("IPv4",), ("IPv6",), ("IPv4", "IPv6")])
@pytest.mark.parametrize("annotations", ANNOTATION_SETS)
@pytest.mark.parametrize("ports", PORT_SETS)
def test_placement_counts_the_rules_build_desired_makes(
    provider, intent_for, make_service, annotations, ports, families
):
    """desired.rule_count (placement's count, from the names alone) against the rules built."""
    service = make_service(ports=ports, annotations=dict(annotations))
    service["spec"]["ipFamilies"] = list(families)
    service["spec"]["ipFamilyPolicy"] = "RequireDualStack" if len(families) == 2 else "SingleStack"
    intent = intent_for(service)
    assert intent.ip_families == families
    opts = options_of(intent)
    built = build_desired(intent, opts, provider.settings, "-", pool_ips=())
    assert rule_count(intent, opts) == len(built.rules)


def test_destinations_come_out_sorted_and_unique_whatever_their_order() -> None:
    props = {"access": "Allow", "destinationAddressPrefix": "10.0.0.1"}
    given = ["198.18.0.9", "198.18.0.10", "198.18.0.2", "198.18.0.10", "198.18.0.1"]
    out = with_destinations(props, given)
    assert out["destinationAddressPrefixes"] == sorted(set(given))
    assert "destinationAddressPrefix" not in out and out["access"] == "Allow"
    assert with_destinations(props, {"198.18.0.5"}) == {
        "access": "Allow",
        "destinationAddressPrefix": "198.18.0.5",
    }


@pytest.mark.parametrize(
    "props",
    [
        {},
        {"destinationAddressPrefix": "10.0.0.1"},
        {"destinationAddressPrefixes": ["10.0.0.1", "10.0.0.2", "10.0.0.3"]},
        {"destinationAddressPrefix": "", "destinationAddressPrefixes": ["10.0.0.1", "10.0.0.2"]},
        {"destinationAddressPrefixes": []},
    ],
)
def test_a_rules_destinations_are_counted_as_listed(props) -> None:
    from lbprov_azure.desired import destination_count, destinations

    assert destination_count(props) == len(destinations(props))


@pytest.mark.parametrize(
    "props",
    [
        {},
        {"destinationAddressPrefix": "10.0.0.1"},
        {"destinationAddressPrefixes": ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.2"]},
        {"destinationAddressPrefix": "", "destinationAddressPrefixes": ["10.0.0.1", "10.0.0.2"]},
    ],
)
def test_a_rules_destination_set_is_its_destinations(props) -> None:
    from lbprov_azure.desired import destination_set, destinations

    assert destination_set(props) == set(destinations(props))
    assert destination_set(props) == set(destinations(props))  # asked again: the kept answer


def test_each_snapshot_of_a_rule_gets_its_own_destination_set_and_the_memo_stays_bounded() -> None:
    from lbprov_azure import desired

    before = {"destinationAddressPrefixes": ["198.18.0.1", "198.18.0.2"]}
    after = with_destinations(before, ["198.18.0.1", "198.18.0.2", "198.18.0.3"])  # a write's new body
    assert desired.destination_set(before) == {"198.18.0.1", "198.18.0.2"}
    assert desired.destination_set(after) == {"198.18.0.1", "198.18.0.2", "198.18.0.3"}
    assert desired.destination_set(before) == {"198.18.0.1", "198.18.0.2"}
    for i in range(3 * desired._DEST_SETS_MAX):
        props = {"destinationAddressPrefixes": [f"198.18.1.{i % 250}", "198.18.0.1"]}
        assert desired.destination_set(props) == {f"198.18.1.{i % 250}", "198.18.0.1"}
        assert len(desired._dest_sets) <= desired._DEST_SETS_MAX


def test_a_rule_body_changed_in_place_is_not_answered_from_the_memo() -> None:
    """Rule bodies are snapshots, never changed in place; if a caller ever did, the memo must not
    answer with the set made before the change (a stale set would plan a wrong NSG write)."""
    from lbprov_azure import desired

    props = {"destinationAddressPrefixes": ["198.18.2.1", "198.18.2.2"]}
    assert desired.destination_set(props) == {"198.18.2.1", "198.18.2.2"}
    props["destinationAddressPrefixes"].append("198.18.2.3")  # an address added in place
    assert desired.destination_set(props) == {"198.18.2.1", "198.18.2.2", "198.18.2.3"}
    props["destinationAddressPrefixes"].remove("198.18.2.1")  # ... and one removed
    assert desired.destination_set(props) == {"198.18.2.2", "198.18.2.3"}
    props["destinationAddressPrefixes"] = ["198.18.2.9", "198.18.2.8"]  # the field set anew
    assert desired.destination_set(props) == {"198.18.2.8", "198.18.2.9"}
    del props["destinationAddressPrefixes"]
    props["destinationAddressPrefix"] = "198.18.2.7"  # the single field instead
    assert desired.destination_set(props) == {"198.18.2.7"}
    props["destinationAddressPrefix"] = "198.18.2.6"
    assert desired.destination_set(props) == {"198.18.2.6"}
