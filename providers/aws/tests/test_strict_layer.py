"""The strict layer in front of moto (sandbox/strict.py): one test per rule that it rejects what
AWS rejects, with AWS's error code; and that idempotent creates complete at most once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lbprov_aws.testing import AwsView
from lbprov_aws.testing import raw_nlb as _nlb
from lbprov_aws.testing import raw_target_group as _tg

from lbprov.provider import SandboxCloud


def _sg(view: AwsView, cloud: SandboxCloud) -> str:
    sg: str = view.ec2.create_security_group(GroupName="g", Description="d", VpcId=cloud.extra["vpc_id"])[
        "GroupId"
    ]
    return sg


Case = tuple[str, str, Callable[[AwsView, SandboxCloud], Any]]

CASES: list[Case] = [
    # botocore's model constraints (max / pattern / enum)
    ("model-max", "ValidationError", lambda v, c: _tg(v, c, name="k8s-" + "x" * 40)),
    ("model-enum", "ValidationError", lambda v, c: _tg(v, c, protocol="SCTP")),
    # load balancer and target group names
    ("lb-name-hyphen", "ValidationError", lambda v, c: _nlb(v, c, name="-bad")),
    ("lb-name-internal", "ValidationError", lambda v, c: _nlb(v, c, name="internal-x")),
    ("tg-name-double-hyphen", "ValidationError", lambda v, c: _tg(v, c, name="k8s-web--api-1")),
    ("tg-name-trailing-hyphen", "ValidationError", lambda v, c: _tg(v, c, name="k8s-web-")),
    # NLB health checks
    (
        "hc-timeout-above-interval",
        "ValidationError",
        lambda v, c: _tg(v, c, HealthCheckIntervalSeconds=10, HealthCheckTimeoutSeconds=20),
    ),
    ("hc-interval-range", "ValidationError", lambda v, c: _tg(v, c, HealthCheckIntervalSeconds=400)),
    ("hc-threshold-range", "ValidationError", lambda v, c: _tg(v, c, HealthyThresholdCount=11)),
    (
        "hc-path-with-tcp",
        "ValidationError",
        lambda v, c: _tg(v, c, HealthCheckProtocol="TCP", HealthCheckPath="/x"),
    ),
    (
        "hc-modify-timeout-above-kept-interval",
        "ValidationError",
        lambda v, c: v.elbv2.modify_target_group(
            TargetGroupArn=_tg(v, c, HealthCheckIntervalSeconds=10, HealthCheckTimeoutSeconds=10),
            HealthCheckTimeoutSeconds=30,
        ),
    ),
    # TCP_UDP and listener vs target group protocol (create and modify)
    (
        "listener-tcp-udp-needs-tcp-udp-group",
        "ValidationError",
        lambda v, c: v.elbv2.create_listener(
            LoadBalancerArn=_nlb(v, c),
            Protocol="TCP_UDP",
            Port=53,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": _tg(v, c)}],
        ),
    ),
    (
        "modify-listener-protocol-mismatch",
        "ValidationError",
        lambda v, c: v.elbv2.modify_listener(
            ListenerArn=v.elbv2.create_listener(
                LoadBalancerArn=_nlb(v, c),
                Protocol="TCP",
                Port=80,
                DefaultActions=[{"Type": "forward", "TargetGroupArn": _tg(v, c)}],
            )["Listeners"][0]["ListenerArn"],
            Protocol="UDP",
        ),
    ),
    # security groups on an NLB created without them
    (
        "set-security-groups-on-nlb-without",
        "ValidationError",
        lambda v, c: v.elbv2.set_security_groups(LoadBalancerArn=_nlb(v, c), SecurityGroups=[_sg(v, c)]),
    ),
    # two subnets in one AZ
    (
        "two-subnets-one-az",
        "InvalidConfigurationRequest",
        lambda v, c: v.elbv2.create_load_balancer(
            Name="lb-two",
            Type="network",
            Subnets=[c.extra["public_subnets"][0], c.extra["private_subnets"][0]],
        ),
    ),
    # tags: 50 per resource, aws: prefix, characters, classic's 10
    (
        "too-many-tags",
        "TooManyTags",
        lambda v, c: _tg(v, c, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)]),
    ),
    ("aws-prefix", "ValidationError", lambda v, c: _tg(v, c, Tags=[{"Key": "aws:x", "Value": "v"}])),
    ("tag-value-comma", "ValidationError", lambda v, c: _tg(v, c, Tags=[{"Key": "k", "Value": "a,b"}])),
    (
        "classic-eleven-tags",
        "TooManyTags",
        lambda v, c: v.elb.create_load_balancer(
            LoadBalancerName="clb",
            Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}],
            Subnets=c.extra["public_subnets"],
            Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(11)],
        ),
    ),
    # attribute keys valid for the type
    (
        "nlb-attribute-of-an-alb",
        "ValidationError",
        lambda v, c: v.elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=_nlb(v, c), Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "60"}]
        ),
    ),
    (
        "tg-attribute-of-an-alb",
        "ValidationError",
        lambda v, c: v.elbv2.modify_target_group_attributes(
            TargetGroupArn=_tg(v, c), Attributes=[{"Key": "slow_start.duration_seconds", "Value": "30"}]
        ),
    ),
    # classic health checks
    (
        "classic-timeout-not-below-interval",
        "ValidationError",
        lambda v, c: v.elb.configure_health_check(
            LoadBalancerName=v.elb.create_load_balancer(
                LoadBalancerName="clb",
                Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}],
                Subnets=c.extra["public_subnets"],
            )
            and "clb",
            HealthCheck={
                "Target": "TCP:30080",
                "Interval": 5,
                "Timeout": 5,
                "HealthyThreshold": 2,
                "UnhealthyThreshold": 2,
            },
        ),
    ),
    # EC2 descriptions
    (
        "sg-description-apostrophe",
        "InvalidParameterValue",
        lambda v, c: v.ec2.create_security_group(GroupName="g", Description="it's", VpcId=c.extra["vpc_id"]),
    ),
    # idempotence: same name, other settings
    (
        "duplicate-lb-other-settings",
        "DuplicateLoadBalancerName",
        lambda v, c: (_nlb(v, c, name="lb-dup"), _nlb(v, c, name="lb-dup", Scheme="internal")),
    ),
    (
        "duplicate-tg-other-settings",
        "DuplicateTargetGroupName",
        lambda v, c: (_tg(v, c, name="k8s-dup"), _tg(v, c, name="k8s-dup", HealthCheckIntervalSeconds=10)),
    ),
]


@pytest.mark.parametrize(("label", "code", "call"), CASES, ids=[c[0] for c in CASES])
def test_the_strict_layer_rejects_what_aws_rejects(
    cloud: SandboxCloud, view: AwsView, label: str, code: str, call: Callable[[AwsView, SandboxCloud], Any]
) -> None:
    with pytest.raises(ClientError) as err:
        call(view, cloud)
    assert err.value.response["Error"]["Code"] == code, (label, err.value.response["Error"])


def test_sixty_one_inbound_rules_are_refused(cloud: SandboxCloud, view: AwsView) -> None:
    sg = _sg(view, cloud)
    perms = [
        {
            "IpProtocol": "tcp",
            "FromPort": 1000 + i,
            "ToPort": 1000 + i,
            "IpRanges": [{"CidrIp": "10.9.0.0/16"}],
        }
        for i in range(60)
    ]
    view.ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=perms)
    with pytest.raises(ClientError) as err:
        view.ec2.authorize_security_group_ingress(
            GroupId=sg,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 2000,
                    "ToPort": 2000,
                    "IpRanges": [{"CidrIp": "10.9.0.0/16"}],
                }
            ],
        )
    assert err.value.response["Error"]["Code"] == "RulesPerSecurityGroupLimitExceeded"


def test_identical_creates_complete_at_most_once(cloud: SandboxCloud, view: AwsView) -> None:
    first = _nlb(view, cloud, name="lb-once")
    again = _nlb(view, cloud, name="lb-once")  # a retry after a lost response
    assert first == again
    assert [lb["LoadBalancerName"] for lb in view.elbv2.describe_load_balancers()["LoadBalancers"]] == [
        "lb-once"
    ]
    tg = _tg(view, cloud, name="k8s-once")
    assert _tg(view, cloud, name="k8s-once") == tg
    listener = dict(Protocol="TCP", Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    a = view.elbv2.create_listener(LoadBalancerArn=first, **listener)["Listeners"][0]["ListenerArn"]
    b = view.elbv2.create_listener(LoadBalancerArn=first, **listener)["Listeners"][0]["ListenerArn"]
    assert a == b and len(view.elbv2.describe_listeners(LoadBalancerArn=first)["Listeners"]) == 1
    with pytest.raises(ClientError) as err:
        view.elbv2.create_listener(LoadBalancerArn=first, **{**listener, "Port": 80, "Protocol": "UDP"})
    assert err.value.response["Error"]["Code"] in ("DuplicateListener", "ValidationError")


def test_the_strict_layer_accepts_a_valid_lifecycle_and_records_no_refusal(
    cloud: SandboxCloud, view: AwsView
) -> None:
    box = cloud.extra["sandbox"]
    tg = _tg(view, cloud, HealthCheckIntervalSeconds=10, HealthCheckTimeoutSeconds=10)
    lb = _nlb(view, cloud)
    view.elbv2.create_listener(
        LoadBalancerArn=lb,
        Protocol="TCP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
    )
    view.elbv2.modify_target_group_attributes(
        TargetGroupArn=tg, Attributes=[{"Key": "proxy_protocol_v2.enabled", "Value": "true"}]
    )
    view.elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=lb, Attributes=[{"Key": "load_balancing.cross_zone.enabled", "Value": "true"}]
    )
    assert box.recorder.refused == []
