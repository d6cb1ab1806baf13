"""Subnet discovery as cloud-provider-aws does it (issue 10, item 3): candidates tagged for this
cluster or for no cluster; internet-facing only public subnets (an igw route in the subnet's table or
the VPC's main table); one per AZ, role tag first, then the cluster tag, then the lowest ID; Local
Zone, Wavelength and Outpost subnets skipped; role tags are a preference, not a requirement."""

from __future__ import annotations

from typing import Any

from lbprov_aws import AWSProvider
from lbprov_aws.desired import discover_subnets
from lbprov_aws.observe import ClusterContext
from lbprov_aws.testing import ANN, CLUSTER, AwsView, Svc, converge, intent_of, node_objects

from lbprov import naming
from lbprov.provider import SandboxCloud

ROLES = ("kubernetes.io/role/elb", "kubernetes.io/role/internal-elb")


def _lb_subnets(view: AwsView, svc: Svc) -> set[str]:
    (lb,) = view.nlbs(svc.uid)
    return {az["SubnetId"] for az in lb["AvailabilityZones"]}


def test_a_vpc_without_role_tags_works_and_internet_facing_takes_the_public_subnets(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    subnets = cloud.extra["public_subnets"] + cloud.extra["private_subnets"]
    view.ec2.delete_tags(Resources=subnets, Tags=[{"Key": k} for k in ROLES])
    public = Svc(name="public")
    converge(provider, intent_of(provider, public, node_objects(cloud)))
    assert _lb_subnets(view, public) == set(cloud.extra["public_subnets"])
    internal = Svc(name="internal", annotations={ANN + "internal": "true"})
    converge(provider, intent_of(provider, internal, node_objects(cloud)))
    # Any subnet may serve internal: one per AZ, the lowest ID (all carry the cluster tag).
    by_az: dict[str, list[str]] = {}
    for s in view.ec2.describe_subnets(SubnetIds=subnets)["Subnets"]:
        by_az.setdefault(s["AvailabilityZone"], []).append(s["SubnetId"])
    assert _lb_subnets(view, internal) == {min(ids) for ids in by_az.values()}


def test_role_tag_wins_then_cluster_tag_and_other_clusters_subnets_are_skipped(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    vpc = cloud.extra["vpc_id"]
    public_rt = view.ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": [cloud.extra["public_subnets"][0]]}]
    )["RouteTables"][0]["RouteTableId"]
    first = view.ec2.describe_subnets(SubnetIds=[cloud.extra["public_subnets"][0]])["Subnets"][0]
    zone = first["AvailabilityZone"]

    def subnet(cidr: str, tags: dict[str, str]) -> str:
        spec: dict[str, Any] = (
            {
                "TagSpecifications": [
                    {"ResourceType": "subnet", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
                ]
            }
            if tags
            else {}
        )
        sid: str = view.ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone, **spec)["Subnet"][
            "SubnetId"
        ]
        view.ec2.associate_route_table(RouteTableId=public_rt, SubnetId=sid)
        return sid

    other = subnet("10.0.64.0/24", {naming.cluster_tag_key("other"): "owned", ROLES[0]: "1"})
    untagged = subnet("10.0.65.0/24", {ROLES[0]: "1"})
    # The seeded public subnet of that AZ has the role and the cluster tag: it wins over both.
    svc = Svc(name="a")
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert first["SubnetId"] in _lb_subnets(view, svc) and other not in _lb_subnets(view, svc)
    # Without its role tag, the untagged-for-any-cluster subnet with the role tag wins.
    view.ec2.delete_tags(Resources=[first["SubnetId"]], Tags=[{"Key": ROLES[0]}])
    svc2 = Svc(name="b")
    converge(provider, intent_of(provider, svc2, node_objects(cloud)))
    assert untagged in _lb_subnets(view, svc2) and other not in _lb_subnets(view, svc2)


def _ctx(
    subnets: list[dict[str, Any]], tables: list[dict[str, Any]], zones: dict[str, str]
) -> ClusterContext:
    return ClusterContext("vpc-1", ("10.0.0.0/16",), subnets, [], {}, route_tables=tables, zone_types=zones)


def _sub(sid: str, az: str, **extra: Any) -> dict[str, Any]:
    return {"SubnetId": sid, "AvailabilityZone": az, "Tags": [], **extra}


def test_local_zone_wavelength_and_outpost_subnets_are_skipped_and_main_table_counts() -> None:
    igw_main = [{"Associations": [{"Main": True}], "Routes": [{"GatewayId": "igw-1"}]}]
    subnets = [
        _sub("subnet-a", "us-east-1a"),
        _sub("subnet-0lz", "us-east-1-bos-1a"),
        _sub("subnet-0wl", "us-east-1-wl1-bos-wlz-1"),
        _sub("subnet-0op", "us-east-1b", OutpostArn="arn:aws:outposts:us-east-1:1:outpost/op-1"),
        _sub("subnet-b", "us-east-1b"),
    ]
    zones = {
        "us-east-1a": "availability-zone",
        "us-east-1b": "availability-zone",
        "us-east-1-bos-1a": "local-zone",
        "us-east-1-wl1-bos-wlz-1": "wavelength-zone",
    }
    assert discover_subnets("external", _ctx(subnets, igw_main, zones), CLUSTER) == ["subnet-a", "subnet-b"]
    private_main = [
        {"Associations": [{"Main": True}], "Routes": [{"GatewayId": "local"}]},
        {"Associations": [{"SubnetId": "subnet-b"}], "Routes": [{"GatewayId": "igw-1"}]},
    ]
    assert discover_subnets("external", _ctx(subnets, private_main, zones), CLUSTER) == ["subnet-b"]
    assert discover_subnets("internal", _ctx(subnets, private_main, zones), CLUSTER) == [
        "subnet-a",
        "subnet-b",
    ]
