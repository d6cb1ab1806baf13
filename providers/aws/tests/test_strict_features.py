"""The strict layer's rules for the feature annotations (attributes, TLS policies, ALPN, success
codes, subnet mappings, dualstack, classic attributes): one case per rule that it rejects what AWS
rejects, with AWS's error code (the older rules are in test_strict_layer.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lbprov_aws.testing import AwsView
from lbprov_aws.testing import raw_nlb as _nlb
from lbprov_aws.testing import raw_target_group as _tg

from lbprov.provider import SandboxCloud


def _lb_attr(view: AwsView, cloud: SandboxCloud, key: str, value: str) -> Any:
    return view.elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=_nlb(view, cloud), Attributes=[{"Key": key, "Value": value}]
    )


def _tg_attr(view: AwsView, cloud: SandboxCloud, key: str, value: str, protocol: str = "TCP") -> Any:
    return view.elbv2.modify_target_group_attributes(
        TargetGroupArn=_tg(view, cloud, protocol=protocol), Attributes=[{"Key": key, "Value": value}]
    )


def _protected_delete(view: AwsView, cloud: SandboxCloud) -> Any:
    arn = _nlb(view, cloud)
    view.elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}]
    )
    return view.elbv2.delete_load_balancer(LoadBalancerArn=arn)


Case = tuple[str, str, Callable[[AwsView, SandboxCloud], Any]]

CASES: list[Case] = [
    # attribute values (LoadBalancerAttribute / TargetGroupAttribute)
    (
        "lb-attribute-bool",
        "ValidationError",
        lambda v, c: _lb_attr(v, c, "deletion_protection.enabled", "yes"),
    ),
    (
        "lb-attribute-enum",
        "ValidationError",
        lambda v, c: _lb_attr(v, c, "dns_record.client_routing_policy", "nearest"),
    ),
    (
        "tg-attribute-range",
        "ValidationError",
        lambda v, c: _tg_attr(v, c, "deregistration_delay.timeout_seconds", "3601"),
    ),
    (
        "tg-preserve-client-ip-off-on-udp",
        "ValidationError",
        lambda v, c: _tg_attr(v, c, "preserve_client_ip.enabled", "false", protocol="UDP"),
    ),
    (
        "tg-proxy-protocol-on-udp",
        "ValidationError",
        lambda v, c: _tg_attr(v, c, "proxy_protocol_v2.enabled", "true", protocol="UDP"),
    ),
    (
        "access-logs-without-bucket",
        "InvalidConfigurationRequest",
        lambda v, c: _lb_attr(v, c, "access_logs.s3.enabled", "true"),
    ),
    (
        "access-logs-missing-bucket",
        "InvalidConfigurationRequest",
        lambda v, c: v.elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=_nlb(v, c),
            Attributes=[
                {"Key": "access_logs.s3.enabled", "Value": "true"},
                {"Key": "access_logs.s3.bucket", "Value": "no-such-bucket"},
            ],
        ),
    ),
    ("delete-with-deletion-protection", "OperationNotPermitted", _protected_delete),
]


@pytest.mark.parametrize(("label", "code", "call"), CASES, ids=[c[0] for c in CASES])
def test_the_strict_layer_rejects_what_aws_rejects(
    cloud: SandboxCloud, view: AwsView, label: str, code: str, call: Callable[[AwsView, SandboxCloud], Any]
) -> None:
    with pytest.raises(ClientError) as err:
        call(view, cloud)
    assert err.value.response["Error"]["Code"] == code, (label, err.value.response["Error"])


def test_valid_feature_requests_pass_the_strict_layer(cloud: SandboxCloud, view: AwsView) -> None:
    box = cloud.extra["sandbox"]
    box.client("s3").create_bucket(Bucket="logs")
    arn = _nlb(view, cloud)
    view.elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=arn,
        Attributes=[
            {"Key": "access_logs.s3.enabled", "Value": "true"},
            {"Key": "access_logs.s3.bucket", "Value": "logs"},
            {"Key": "deletion_protection.enabled", "Value": "false"},
        ],
    )
    _tg_attr(view, cloud, "preserve_client_ip.enabled", "true", protocol="UDP")
    view.elbv2.delete_load_balancer(LoadBalancerArn=arn)
    assert box.recorder.refused == []


def _listener(view: AwsView, cloud: SandboxCloud, **kw: Any) -> Any:
    cert = cloud.extra["create_certificate"]()
    params: dict[str, Any] = {
        "LoadBalancerArn": _nlb(view, cloud),
        "Protocol": "TLS",
        "Port": 443,
        "Certificates": [{"CertificateArn": cert}],
        "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": _tg(view, cloud)}],
        **kw,
    }
    if params["Protocol"] != "TLS":
        params.pop("Certificates"), params.pop("SslPolicy")
    return view.elbv2.create_listener(**params)


CASES_TLS: list[Case] = [
    (
        "unknown-ssl-policy",
        "SSLPolicyNotFound",
        lambda v, c: _listener(v, c, SslPolicy="ELBSecurityPolicy-Nope"),
    ),
    ("alpn-value", "ValidationError", lambda v, c: _listener(v, c, AlpnPolicy=["h2"])),
    (
        "alpn-on-tcp",
        "ValidationError",
        lambda v, c: _listener(v, c, Protocol="TCP", AlpnPolicy=["HTTP2Only"]),
    ),
    (
        "success-codes-range",
        "ValidationError",
        lambda v, c: _tg(v, c, HealthCheckProtocol="HTTP", Matcher={"HttpCode": "200-600"}),
    ),
    (
        "success-codes-with-tcp-check",
        "ValidationError",
        lambda v, c: _tg(v, c, HealthCheckProtocol="TCP", Matcher={"HttpCode": "200"}),
    ),
]


@pytest.mark.parametrize(("label", "code", "call"), CASES_TLS, ids=[c[0] for c in CASES_TLS])
def test_the_strict_layer_rejects_bad_tls_and_matcher_requests(
    cloud: SandboxCloud, view: AwsView, label: str, code: str, call: Callable[[AwsView, SandboxCloud], Any]
) -> None:
    with pytest.raises(ClientError) as err:
        call(view, cloud)
    assert err.value.response["Error"]["Code"] == code, (label, err.value.response["Error"])


def _mapped(view: AwsView, cloud: SandboxCloud, scheme: str, **mapping: str) -> Any:
    subnets = cloud.extra["private_subnets" if scheme == "internal" else "public_subnets"]
    return _nlb(view, cloud, Scheme=scheme, SubnetMappings=[{"SubnetId": subnets[0], **mapping}])


def _eip_twice(view: AwsView, cloud: SandboxCloud) -> Any:
    alloc = view.ec2.allocate_address(Domain="vpc")["AllocationId"]
    _nlb(
        view,
        cloud,
        name="lb-one",
        SubnetMappings=[{"SubnetId": cloud.extra["public_subnets"][0], "AllocationId": alloc}],
    )
    return _nlb(
        view,
        cloud,
        name="lb-two",
        SubnetMappings=[{"SubnetId": cloud.extra["public_subnets"][1], "AllocationId": alloc}],
    )


CASES_MAPPINGS: list[Case] = [
    (
        "eip-unknown",
        "AllocationIdNotFound",
        lambda v, c: _mapped(v, c, "internet-facing", AllocationId="eipalloc-00000000"),
    ),
    (
        "eip-on-internal",
        "ValidationError",
        lambda v, c: _mapped(
            v, c, "internal", AllocationId=v.ec2.allocate_address(Domain="vpc")["AllocationId"]
        ),
    ),
    ("eip-in-use", "InvalidConfigurationRequest", _eip_twice),
    (
        "private-ip-on-internet-facing",
        "ValidationError",
        lambda v, c: _mapped(v, c, "internet-facing", PrivateIPv4Address="10.0.0.5"),
    ),
    (
        "private-ip-outside-subnet",
        "InvalidConfigurationRequest",
        lambda v, c: _mapped(v, c, "internal", PrivateIPv4Address="10.0.0.5"),
    ),
]


@pytest.mark.parametrize(("label", "code", "call"), CASES_MAPPINGS, ids=[c[0] for c in CASES_MAPPINGS])
def test_the_strict_layer_rejects_bad_subnet_mappings(
    cloud: SandboxCloud, view: AwsView, label: str, code: str, call: Callable[[AwsView, SandboxCloud], Any]
) -> None:
    with pytest.raises(ClientError) as err:
        call(view, cloud)
    assert err.value.response["Error"]["Code"] == code, (label, err.value.response["Error"])


def _clb(view: AwsView, cloud: SandboxCloud) -> str:
    view.elb.create_load_balancer(
        LoadBalancerName="clb",
        Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}],
        Subnets=cloud.extra["public_subnets"],
    )
    return "clb"


def _clb_attrs(view: AwsView, cloud: SandboxCloud, **attrs: Any) -> Any:
    return view.elb.modify_load_balancer_attributes(
        LoadBalancerName=_clb(view, cloud), LoadBalancerAttributes=attrs
    )


CASES_CLASSIC: list[Case] = [
    (
        "classic-access-log-without-bucket",
        "InvalidConfigurationRequest",
        lambda v, c: _clb_attrs(v, c, AccessLog={"Enabled": True}),
    ),
    (
        "classic-access-log-missing-bucket",
        "InvalidConfigurationRequest",
        lambda v, c: _clb_attrs(
            v, c, AccessLog={"Enabled": True, "S3BucketName": "nope-bucket", "EmitInterval": 5}
        ),
    ),
    (
        "classic-emit-interval",
        "ValidationError",
        lambda v, c: _clb_attrs(v, c, AccessLog={"Enabled": True, "S3BucketName": "b", "EmitInterval": 10}),
    ),
    (
        "classic-idle-timeout",
        "ValidationError",
        lambda v, c: _clb_attrs(v, c, ConnectionSettings={"IdleTimeout": 4001}),
    ),
    (
        "classic-unknown-ssl-policy",
        "PolicyNotFound",
        lambda v, c: v.elb.create_load_balancer_policy(
            LoadBalancerName=_clb(v, c),
            PolicyName="k8s-SSLNegotiationPolicy-x",
            PolicyTypeName="SSLNegotiationPolicyType",
            PolicyAttributes=[
                {
                    "AttributeName": "Reference-Security-Policy",
                    "AttributeValue": "ELBSecurityPolicy-TLS13-1-2-2021-06",
                }
            ],
        ),
    ),
]


@pytest.mark.parametrize(("label", "code", "call"), CASES_CLASSIC, ids=[c[0] for c in CASES_CLASSIC])
def test_the_strict_layer_rejects_bad_classic_attributes_and_policies(
    cloud: SandboxCloud, view: AwsView, label: str, code: str, call: Callable[[AwsView, SandboxCloud], Any]
) -> None:
    with pytest.raises(ClientError) as err:
        call(view, cloud)
    assert err.value.response["Error"]["Code"] == code, (label, err.value.response["Error"])


def test_the_strict_layer_refuses_dualstack_without_ipv6_subnets(cloud: SandboxCloud, view: AwsView) -> None:
    with pytest.raises(ClientError) as err:
        _nlb(view, cloud, IpAddressType="dualstack")
    assert err.value.response["Error"]["Code"] == "InvalidConfigurationRequest"
    arn = _nlb(view, cloud)
    with pytest.raises(ClientError) as err:
        view.elbv2.set_ip_address_type(LoadBalancerArn=arn, IpAddressType="dualstack")
    assert err.value.response["Error"]["Code"] == "InvalidConfigurationRequest"
