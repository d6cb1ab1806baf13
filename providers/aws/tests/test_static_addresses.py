"""`eip-allocations` (internet-facing) and `private-ipv4-addresses` (internal) through
SubnetMappings (issue 10, features): one address per subnet; a change replaces the NLB and the plan
says why; through boto3 against the strict sandbox (which reports LoadBalancerAddresses as AWS does)."""

from __future__ import annotations

from typing import Any

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.testing import ANN, AwsView, Svc, converge, delete_all, intent_of, node_objects

from lbprov.model import Action, InvalidService
from lbprov.provider import SandboxCloud

EIPS = ANN + "eip-allocations"
PRIVATE = ANN + "private-ipv4-addresses"


def _eip(view: AwsView) -> str:
    alloc: str = view.ec2.allocate_address(Domain="vpc")["AllocationId"]
    return alloc


def _addresses(lb: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {az["SubnetId"]: (az.get("LoadBalancerAddresses") or [{}])[0] for az in lb["AvailabilityZones"]}


def test_elastic_ips_per_subnet_and_a_change_replaces_the_nlb(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    first, second = _eip(view), _eip(view)
    svc = Svc(annotations={EIPS: f"{first}, {second}"})
    converge(provider, intent_of(provider, svc, nodes))
    [lb] = view.nlbs(svc.uid)
    # The n-th allocation goes to the subnet of the n-th zone (us-east-1a, us-east-1b).
    a, b = cloud.extra["public_subnets"]
    assert {s: x.get("AllocationId") for s, x in _addresses(lb).items()} == {a: first, b: second}

    third = _eip(view)
    svc.annotations[EIPS] = f"{first},{third}"
    plan = provider.plan(intent_of(provider, svc, nodes))
    [change] = [c for c in plan.changes if c.kind == "load-balancer"]
    assert change.action is Action.REPLACE
    assert change.reason is not None and "Elastic IPs" in change.reason
    assert change.before is not None and change.after is not None
    assert change.before["subnet_mappings"] != change.after["subnet_mappings"]
    converge(provider, intent_of(provider, svc, nodes))
    [lb] = view.nlbs(svc.uid)
    assert {x.get("AllocationId") for x in _addresses(lb).values()} == {first, third}

    # The annotation removed: the Elastic IPs are released by a replacement too.
    del svc.annotations[EIPS]
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert [c.action for c in plan.changes if c.kind == "load-balancer"] == [Action.REPLACE]
    [lb] = view.nlbs(svc.uid)
    assert all("AllocationId" not in x for x in _addresses(lb).values())
    delete_all(provider, svc)
    view.assert_nothing_owned(svc)


def test_private_ipv4_addresses_of_an_internal_nlb(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    # Private subnets 10.0.128.0/20 (us-east-1a) and 10.0.144.0/20 (us-east-1b); given in any order.
    svc = Svc(annotations={ANN + "scheme": "internal", PRIVATE: "10.0.144.20,10.0.128.10"})
    converge(provider, intent_of(provider, svc, nodes))
    [lb] = view.nlbs(svc.uid)
    a, b = cloud.extra["private_subnets"]
    assert {s: x.get("PrivateIPv4Address") for s, x in _addresses(lb).items()} == {
        a: "10.0.128.10",
        b: "10.0.144.20",
    }

    svc.annotations[PRIVATE] = "10.0.128.11,10.0.144.20"
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert [c.action for c in plan.changes if c.kind == "load-balancer"] == [Action.REPLACE]


@pytest.mark.parametrize(
    ("annotations", "key", "says"),
    [
        ({EIPS: "eipalloc-0123456789abcdef0"}, EIPS, "2 subnets"),  # one address, two discovered subnets
        (
            {EIPS: "eipalloc-0123456789abcdef0,eipalloc-0123456789abcdef1", ANN + "scheme": "internal"},
            EIPS,
            "internet-facing",
        ),
        ({EIPS: "eip-1,eip-2"}, EIPS, "allocation ID"),
        ({PRIVATE: "10.0.128.10,10.0.144.10"}, PRIVATE, "internal"),
        ({PRIVATE: "10.0.128.10,10.0.128.11", ANN + "scheme": "internal"}, PRIVATE, "both in subnet"),
        ({PRIVATE: "10.0.128.10,192.168.0.1", ANN + "scheme": "internal"}, PRIVATE, "in none"),
        ({PRIVATE: "10.0.128.300", ANN + "scheme": "internal"}, PRIVATE, "IPv4"),
        ({PRIVATE: "10.0.128.10", ANN + "type": "classic", ANN + "scheme": "internal"}, PRIVATE, "classic"),
    ],
)
def test_bad_static_addresses_are_refused_naming_the_annotation(
    provider: AWSProvider, cloud: SandboxCloud, annotations: dict[str, str], key: str, says: str
) -> None:
    svc = Svc(annotations=annotations)
    with pytest.raises(InvalidService) as err:
        provider.plan(intent_of(provider, svc, node_objects(cloud)))
    assert key in str(err.value) and says in str(err.value)
    assert cloud.mutating_requests() == []
