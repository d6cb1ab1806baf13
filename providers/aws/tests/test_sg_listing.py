"""The read round's security group listing, kept current by our own writes (sg_listing.py).

The listing a round holds after lbprov's writes must be what DescribeSecurityGroups answers then
(checked against a fresh read through plain boto3), without listing the groups again; a write whose
effect is not mirrored drops the listing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lbprov_aws import AWSProvider, sg_listing
from lbprov_aws.observe import ObservedSG
from lbprov_aws.testing import AwsView, Svc, converge, delete_all, intent_of, node_objects

from lbprov.provider import SandboxCloud


def _entries(groups: Iterable[Any]) -> dict[str, Any]:
    """Group ID -> (name, VPC, tags, every ingress entry), the way the plans read them."""
    out: dict[str, Any] = {}
    for sg in groups:
        if isinstance(sg, ObservedSG):
            gid, name, vpc, tags, perms = sg.id, sg.name, sg.vpc_id, sg.tags, sg.permissions
        else:
            gid, name, vpc = sg["GroupId"], sg["GroupName"], sg["VpcId"]
            tags = {t["Key"]: t["Value"] for t in sg.get("Tags", [])}
            perms = sg.get("IpPermissions", [])
        rules = set()
        for p in perms:
            ports = (p.get("FromPort"), p.get("ToPort")) if str(p["IpProtocol"]) != "-1" else (None, None)
            for key, field in (
                ("IpRanges", "CidrIp"),
                ("Ipv6Ranges", "CidrIpv6"),
                ("UserIdGroupPairs", "GroupId"),
            ):
                for e in p.get(key, []):
                    rules.add((str(p["IpProtocol"]), *ports, e[field], e.get("Description")))
        out[gid] = (name, vpc, tags, rules)
    return out


def test_the_round_listing_after_our_writes_is_what_aws_lists(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    vpc = cloud.extra["vpc_id"]
    kept = [Svc(name=f"k{i}", ports=[(80, "TCP", 30200 + i)]) for i in range(3)]
    gone = Svc(name="gone", ports=[(80, "TCP", 30210)])
    for svc in [*kept, gone]:
        converge(provider, intent_of(provider, svc, nodes))
    with provider.read_round() as rnd:
        provider.plan(intent_of(provider, kept[0], nodes))  # reads the listing
        provider.calls.reset().by_operation()
        # Creates (frontend group + rules), a rule change (source ranges), a delete (group revoked).
        new = Svc(name="new", ports=[(80, "TCP", 30220), (443, "TCP", 30221)])
        provider.apply(provider.plan(intent_of(provider, new, nodes)))
        kept[1].spec["loadBalancerSourceRanges"] = ["10.1.0.0/16", "192.0.2.0/24"]
        provider.apply(provider.plan(intent_of(provider, kept[1], nodes)))
        provider.apply(provider.plan_delete(intent_of(provider, gone, nodes).ref))
        assert rnd.cluster_sgs is not None and vpc in rnd.cluster_sgs  # kept, not dropped
        mirrored = _entries(rnd.cluster_sgs[vpc])
        reads = provider.calls.reset().by_operation()
        # Later plans of the round see those writes, from the listing, without reading it again.
        for svc in [*kept, new]:
            assert provider.plan(intent_of(provider, svc, nodes)).empty
        assert provider.calls.reset().by_operation()["ec2:DescribeSecurityGroups"] == 0
    assert reads["ec2:DescribeSecurityGroups"] == 0, reads
    listed = view.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])[
        "SecurityGroups"
    ]
    assert mirrored == _entries(listed)
    for svc in [*kept, new]:
        delete_all(provider, svc)
        view.assert_nothing_owned(svc)


def test_a_write_that_is_not_mirrored_drops_the_listing(provider: AWSProvider, cloud: SandboxCloud) -> None:
    groups = sg_listing.Listing.of([ObservedSG("sg-1", "g", "vpc-1", {}, [])])
    assert (
        sg_listing.mirror(groups, "vpc-1", "ec2:UpdateSecurityGroupRuleDescriptionsIngress", {}, {}) is None
    )
    assert sg_listing.mirror(groups, "vpc-1", "ec2:CreateSecurityGroup", {"VpcId": "vpc-1"}, {}) is None
    assert sg_listing.mirror(groups, None, "ec2:DeleteSecurityGroup", {"GroupId": "sg-1"}, {}) is None
    deleted = sg_listing.mirror(groups, "vpc-1", "ec2:DeleteSecurityGroup", {"GroupId": "sg-1"}, {})
    assert deleted is not None and list(deleted[0]) == [] and deleted[1] == {"sg-1"}
    # In a round: a failed security group write drops the listing; the next plan reads it again.
    nodes = node_objects(cloud)
    svc = Svc()
    with provider.read_round() as rnd:
        provider.plan(intent_of(provider, svc, nodes))
        assert rnd.cluster_sgs is not None
        provider.reader.write_failed("ec2:AuthorizeSecurityGroupIngress", {"GroupId": "sg-x"})
        assert rnd.cluster_sgs is None
        provider.calls.reset().by_operation()
        provider.plan(intent_of(provider, svc, nodes))
        assert provider.calls.reset().by_operation()["ec2:DescribeSecurityGroups"] == 1
