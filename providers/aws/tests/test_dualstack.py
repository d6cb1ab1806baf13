"""spec.ipFamilies and `ip-address-type` on AWS (DESIGN.md "IP families"): IPv4, or IPv4 + IPv6 as a
dualstack NLB (its subnets need IPv6 CIDRs); IPv6-only and dual-stack classic ELBs are refused
naming spec.ipFamilies; through boto3 against the strict sandbox."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.testing import ANN, AwsView, Svc, converge, intent_of, kinds, node_objects

from lbprov.model import InvalidService
from lbprov.provider import SandboxCloud

DUAL = {"ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "RequireDualStack"}


def _ipv6_subnets(cloud: SandboxCloud, view: AwsView) -> None:
    """Give the VPC and its public subnets IPv6 CIDRs (as a dual-stack VPC has)."""
    vpc = view.ec2.associate_vpc_cidr_block(VpcId=cloud.extra["vpc_id"], AmazonProvidedIpv6CidrBlock=True)
    block = ipaddress.ip_network(vpc["Ipv6CidrBlockAssociation"]["Ipv6CidrBlock"])
    for subnet, cidr in zip(cloud.extra["public_subnets"], block.subnets(new_prefix=64), strict=False):
        view.ec2.associate_subnet_cidr_block(SubnetId=subnet, Ipv6CidrBlock=str(cidr))


def _lb(view: AwsView, uid: str) -> dict[str, Any]:
    [lb] = view.nlbs(uid)
    return lb


def test_ip_families_v4_and_v6_give_a_dualstack_nlb(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    _ipv6_subnets(cloud, view)
    svc = Svc(spec=dict(DUAL))
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert _lb(view, svc.uid)["IpAddressType"] == "dualstack"


def test_ip_address_type_annotation_switches_in_place(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    _ipv6_subnets(cloud, view)
    nodes = node_objects(cloud)
    svc = Svc()
    converge(provider, intent_of(provider, svc, nodes))
    arn = _lb(view, svc.uid)["LoadBalancerArn"]
    assert _lb(view, svc.uid)["IpAddressType"] == "ipv4"

    svc.annotations[ANN + "ip-address-type"] = "dualstack"
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert kinds(plan) == [("update", "load-balancer")]  # SetIpAddressType, same load balancer
    assert (_lb(view, svc.uid)["LoadBalancerArn"], _lb(view, svc.uid)["IpAddressType"]) == (arn, "dualstack")

    del svc.annotations[ANN + "ip-address-type"]
    converge(provider, intent_of(provider, svc, nodes))
    assert _lb(view, svc.uid)["IpAddressType"] == "ipv4"


def test_dualstack_without_ipv6_subnets_is_refused_clearly(
    provider: AWSProvider, cloud: SandboxCloud
) -> None:
    svc = Svc(spec=dict(DUAL))
    with pytest.raises(InvalidService, match="IPv6 CIDR") as err:
        provider.plan(intent_of(provider, svc, node_objects(cloud)))
    assert "spec.ipFamilies" in str(err.value)
    assert cloud.mutating_requests() == []


def test_prefer_dual_stack_on_a_classic_elb_is_served_ipv4(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(
        annotations={ANN + "type": "classic"},
        spec={"ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack"},
    )
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert len(view.classics(svc.uid)) == 1


@pytest.mark.parametrize(
    ("annotations", "spec", "field", "says"),
    [
        ({}, {"ipFamilies": ["IPv6"], "ipFamilyPolicy": "SingleStack"}, "spec.ipFamilies", "IPv6-only"),
        ({ANN + "type": "classic"}, {"ipFamilies": ["IPv6"]}, "spec.ipFamilies", "IPv4 only"),
        ({ANN + "type": "classic"}, DUAL, "spec.ipFamilies", "IPv4 only"),
        (
            {ANN + "type": "classic", ANN + "ip-address-type": "dualstack"},
            {},
            ANN + "ip-address-type",
            "IPv4 only",
        ),
        ({ANN + "ip-address-type": "ipv4"}, DUAL, ANN + "ip-address-type", "contradicts"),
        ({ANN + "ip-address-type": "ipv6"}, {}, ANN + "ip-address-type", "ipv4, dualstack"),
    ],
)
def test_families_aws_cannot_serve_are_refused(
    provider: AWSProvider,
    cloud: SandboxCloud,
    annotations: dict[str, str],
    spec: dict[str, Any],
    field: str,
    says: str,
) -> None:
    with pytest.raises(InvalidService) as err:
        intent_of(provider, Svc(annotations=annotations, spec=dict(spec)), node_objects(cloud))
    assert field in str(err.value) and says in str(err.value)
