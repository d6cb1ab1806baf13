"""Aggregation of node security group rules (pure functions; no cloud)."""

from __future__ import annotations

from lbprov_aws.diff.node_rules import Point, RuleRange, desired_ranges, merge, parse_rules, service_points
from lbprov_aws.names import nlb_rule_description


def test_contiguous_ports_merge_per_protocol_and_cidr() -> None:
    points = {Point("client", "tcp", p, "0.0.0.0/0") for p in (30001, 30002, 30003, 30005)}
    points |= {Point("client", "udp", 30004, "0.0.0.0/0"), Point("client", "tcp", 30004, "10.0.0.0/8")}
    assert merge(points) == {
        RuleRange("client", "tcp", 30001, 30003, "0.0.0.0/0"),
        RuleRange("client", "tcp", 30005, 30005, "0.0.0.0/0"),
        RuleRange("client", "udp", 30004, 30004, "0.0.0.0/0"),
        RuleRange("client", "tcp", 30004, 30004, "10.0.0.0/8"),
    }


def test_a_service_replaces_only_its_own_ports_in_shared_ranges() -> None:
    current = {RuleRange("client", "tcp", 30001, 30003, "0.0.0.0/0")}  # three Services
    # The Service owning 30002 moves to 30009.
    wanted = {Point("client", "tcp", 30009, "0.0.0.0/0")}
    assert desired_ranges(current, {30002, 30009}, wanted) == {
        RuleRange("client", "tcp", 30001, 30001, "0.0.0.0/0"),
        RuleRange("client", "tcp", 30003, 30003, "0.0.0.0/0"),
        RuleRange("client", "tcp", 30009, 30009, "0.0.0.0/0"),
    }


def test_health_rule_skipped_when_client_rule_admits_the_vpc() -> None:
    open_all = service_points(
        ports=[("TCP", 30001)], health_ports=[30001], source_ranges=["0.0.0.0/0"], vpc_cidrs=["10.0.0.0/16"]
    )
    assert open_all == {Point("client", "tcp", 30001, "0.0.0.0/0")}
    restricted = service_points(
        ports=[("TCP", 30001)],
        health_ports=[30001],
        source_ranges=["203.0.113.0/24"],
        vpc_cidrs=["10.0.0.0/16"],
    )
    assert Point("health", "tcp", 30001, "10.0.0.0/16") in restricted


def test_parse_rules_separates_ours_from_foreign() -> None:
    ours = nlb_rule_description("client", "c1")
    other_cluster = nlb_rule_description("client", "c2")
    perms = [
        {
            "IpProtocol": "tcp",
            "FromPort": 30001,
            "ToPort": 30002,
            "IpRanges": [
                {"CidrIp": "0.0.0.0/0", "Description": ours},
                {"CidrIp": "10.0.0.0/8", "Description": other_cluster},
                {"CidrIp": "192.0.2.0/24"},
            ],
            "Ipv6Ranges": [{"CidrIpv6": "::/0", "Description": ours}],
        }
    ]
    mine, foreign = parse_rules(perms, "c1")
    assert mine == {
        RuleRange("client", "tcp", 30001, 30002, "0.0.0.0/0"),
        RuleRange("client", "tcp", 30001, 30002, "::/0"),
    }
    assert foreign == {("tcp", 30001, 30002, "10.0.0.0/8"), ("tcp", 30001, 30002, "192.0.2.0/24")}
    assert RuleRange("client", "tcp", 1, 1, "::/0").ip_permission("c1")["Ipv6Ranges"][0]["CidrIpv6"] == "::/0"


def test_rule_count_of_100_services_with_contiguous_node_ports() -> None:
    points: set[Point] = set()
    for i in range(100):
        points |= service_points(
            ports=[("TCP", 30000 + i)],
            health_ports=[30000 + i],
            source_ranges=["0.0.0.0/0"],
            vpc_cidrs=["10.0.0.0/16"],
        )
    assert len(merge(points)) == 1  # upstream: 100 client rules


def test_points_of_target_groups_match_what_the_services_plans_want() -> None:
    from lbprov_aws.diff.node_rules import TargetGroupFacts, points_of_target_groups

    vpc = ["10.0.0.0/16"]
    local = [
        TargetGroupFacts("u1", "TCP", 30080, "32000", 32000, ("203.0.113.0/24",)),
        TargetGroupFacts("u1", "TCP_UDP", 30053, "32000", 32000, ("203.0.113.0/24",)),
    ]
    expected = service_points(
        ports=[("TCP", 30080), ("TCP", 30053), ("UDP", 30053)],
        health_ports=[32000],
        source_ranges=["203.0.113.0/24"],
        vpc_cidrs=vpc,
    )
    assert points_of_target_groups(local, vpc, set()) == expected
    # A custom shared health port (not the Service's) is not wanted by it.
    shared = [TargetGroupFacts("u2", "TCP", 30090, "10256", None, ("0.0.0.0/0",))]
    assert points_of_target_groups(shared, vpc, set()) == {Point("client", "tcp", 30090, "0.0.0.0/0")}
    # Without the source-ranges tag: assumed to want every range key now open for its protocol.
    untagged = [TargetGroupFacts("u3", "UDP", 30100, "traffic-port", None, None)]
    ranged = {("client", "udp", "198.51.100.0/24"), ("client", "tcp", "0.0.0.0/0")}
    assert points_of_target_groups(untagged, vpc, ranged) == {
        Point("client", "udp", 30100, "198.51.100.0/24")
    }
