"""The round's security group index follows its listing write by write (sg_index.py, sg_listing.py).

Issue 14: every security group write used to copy the round's whole listing and the next plan
rebuilt the index over every group (a cost per write that grew with N: N^2 over N creates). Now a
write makes a new persistent listing and index that share all but the groups it touched; the
index so updated must be the one a full build would make, and the old listing and index must
stay what they were for the plans holding them.
"""

from __future__ import annotations

from typing import Any

from lbprov_aws import AWSProvider, sg_index, sg_listing
from lbprov_aws.names import CLIENT_RULE, KUBE_PROXY_RULE, nlb_rule_description
from lbprov_aws.observe import ObservedSG
from lbprov_aws.sg_index import GroupIndex
from lbprov_aws.testing import Svc, converge, delete_all, intent_of, node_objects

from lbprov.provider import SandboxCloud

CLUSTER = "c1"
VPC = "vpc-1"


def _view(index: GroupIndex) -> dict[str, Any]:
    """Everything a plan can look up in an index."""
    ids = sorted(index.by_id)
    return {
        "by_id": {i: index.by_id[i] for i in ids},
        "order": [sg.id for sg in index.in_order(ids)],
        "by_name": {k: [sg.id for sg in v] for k, v in index.by_name.items()},
        "by_name_tag": {k: [sg.id for sg in v] for k, v in index.by_name_tag.items()},
        "matching": {ref: [sg.id for sg in index.matching(ref)] for ref in ["web", "a", "sg-0003"]},
        "rules": dict(index.rules),
        "kube_proxy": dict(index.kube_proxy),
        "upstream_rules": dict(index.upstream_rules),
        "admitted_by": dict(index.admitted_by),
        "parsed": {i: index.parsed(index.by_id[i]) for i in ids},
    }


def _perm(port: int, cidr: str, description: str) -> dict[str, Any]:
    return {
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": port,
        "IpRanges": [{"CidrIp": cidr, "Description": description}],
    }


WRITES: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
    (
        "ec2:CreateSecurityGroup",
        {"GroupName": "web", "VpcId": VPC, "TagSpecifications": [{"Tags": [{"Key": "Name", "Value": "a"}]}]},
        {"GroupId": "sg-0005"},
    ),
    ("ec2:CreateSecurityGroup", {"GroupName": "z", "VpcId": "vpc-other"}, {"GroupId": "sg-0009"}),
    (
        "ec2:AuthorizeSecurityGroupIngress",
        {
            "GroupId": "sg-0001",
            "IpPermissions": [_perm(30100, "10.0.0.0/16", nlb_rule_description(CLIENT_RULE, CLUSTER))],
        },
        None,
    ),
    (
        "ec2:AuthorizeSecurityGroupIngress",
        {
            "GroupId": "sg-0005",
            "IpPermissions": [_perm(10256, "10.0.0.0/16", nlb_rule_description(KUBE_PROXY_RULE, CLUSTER))],
        },
        None,
    ),
    (
        "ec2:AuthorizeSecurityGroupIngress",
        {
            "GroupId": "sg-0003",
            "IpPermissions": [_perm(80, "0.0.0.0/0", "kubernetes.io/rule/nlb/client=lb1")],
        },
        None,
    ),
    (
        "ec2:AuthorizeSecurityGroupIngress",
        {
            "GroupId": "sg-0001",
            "IpPermissions": [{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-0005"}]}],
        },
        None,
    ),
    (
        "ec2:CreateTags",
        {"Resources": ["sg-0003", "sg-0001"], "Tags": [{"Key": "Name", "Value": "web"}]},
        None,
    ),
    ("ec2:DeleteTags", {"Resources": ["sg-0005"], "Tags": [{"Key": "Name"}]}, None),
    (
        "ec2:RevokeSecurityGroupIngress",
        {"GroupId": "sg-0001", "IpPermissions": [_perm(30100, "10.0.0.0/16", "")]},
        None,
    ),
    ("ec2:DeleteSecurityGroup", {"GroupId": "sg-0003"}, None),
    ("ec2:CreateSecurityGroup", {"GroupName": "web", "VpcId": VPC}, {"GroupId": "sg-0000"}),
]


def test_an_index_updated_write_by_write_is_the_index_a_full_build_makes() -> None:
    groups = [ObservedSG(f"sg-000{i}", name, VPC, {}, []) for i, name in [(1, "nodes"), (3, "web"), (7, "x")]]
    listing = sg_listing.Listing.of(groups)
    index = GroupIndex(listing, CLUSTER)
    builds = sg_index.BUILDS["count"]
    history = [(listing, index, _view(index))]
    for operation, params, result in WRITES:
        mirrored = sg_listing.mirror(listing, VPC, operation, params, result)
        assert mirrored is not None, operation
        listing, changed = mirrored
        index = index.updated(listing, changed)
        assert index.groups is listing
        history.append((listing, index, _view(index)))
    assert sg_index.BUILDS["count"] == builds  # updated, never rebuilt
    for listing, index, seen in history:
        assert seen == _view(GroupIndex(listing, CLUSTER)), listing
        assert _view(index) == seen  # an older listing's index did not change with later writes
    final = history[-1][0]
    assert [sg.id for sg in final] == ["sg-0000", "sg-0001", "sg-0005", "sg-0007"]
    assert [sg.id for sg in history[0][0]] == ["sg-0001", "sg-0003", "sg-0007"]


def test_writes_in_a_round_update_the_listing_and_index_without_rebuilding_or_sorting(
    provider: AWSProvider, cloud: SandboxCloud
) -> None:
    """The old code copied and re-sorted the listing per write and rebuilt the index per plan after
    one: counted here, so that the cost per write cannot grow with the groups again."""
    nodes = node_objects(cloud)
    services = [Svc(name=f"i{i}", ports=[(80, "TCP", 30300 + i)]) for i in range(4)]
    converge(provider, intent_of(provider, services[0], nodes))
    vpc = cloud.extra["vpc_id"]
    with provider.read_round() as rnd:
        provider.plan(intent_of(provider, services[0], nodes))  # reads the listing, builds the index
        assert rnd.cluster_sgs is not None
        first = rnd.cluster_sgs[vpc]
        builds, updates, sorts = (
            sg_index.BUILDS["count"],
            sg_index.UPDATES["count"],
            sg_listing.SORTS["count"],
        )
        for svc in services[1:]:
            provider.apply(provider.plan(intent_of(provider, svc, nodes)))
        assert rnd.cluster_sgs is not None and vpc in rnd.cluster_sgs
        assert sg_index.BUILDS["count"] == builds
        assert sg_index.UPDATES["count"] > updates  # (each security group write: one update)
        assert sg_listing.SORTS["count"] == sorts
        listing = rnd.cluster_sgs[vpc]
        index = rnd.sg_indexes[vpc]
        assert index.groups is listing
        assert _view(index) == _view(GroupIndex(listing, provider.cluster))
        # The groups the writes did not touch are shared, not copied.
        assert all(
            listing.get(sg.id) is sg
            for sg in first
            if sg.id in listing.by_id and not sg.name.startswith("k8s")
        )
        assert len(listing) > len(first)
    for svc in services:
        delete_all(provider, svc)
