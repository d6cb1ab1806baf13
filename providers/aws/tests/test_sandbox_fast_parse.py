"""moto's query parser with the sandbox's sorted-key search (sandbox/fast_parse.py): the parameters
it reads are those moto's own parser reads, for requests botocore serialises."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import botocore.serialize
import botocore.session
import pytest
from lbprov_aws.sandbox import at_scale, fast_parse
from moto.core.parse import EC2QueryParser, QueryParser
from moto.core.utils import get_service_model
from werkzeug.datastructures import CombinedMultiDict, MultiDict

TAGS = [{"Key": f"k{i}", "Value": f"v{i}"} for i in range(12)]  # Tags.member.1 is a prefix of .10-.12
CASES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "elbv2",
        "CreateLoadBalancer",
        {
            "Name": "a",
            "Subnets": ["subnet-1", "subnet-2"],
            "SecurityGroups": ["sg-1"],
            "Scheme": "internal",
            "Tags": TAGS,
            "Type": "network",
            "SubnetMappings": [{"SubnetId": "subnet-1", "PrivateIPv4Address": "10.0.0.1"}],
        },
    ),
    (
        "elbv2",
        "CreateTargetGroup",
        {
            "Name": "t",
            "Protocol": "TCP",
            "Port": 30000,
            "VpcId": "vpc-1",
            "HealthCheckEnabled": True,
            "HealthCheckIntervalSeconds": 10,
            "Matcher": {"HttpCode": "200-399"},
            "Tags": TAGS[:3],
        },
    ),
    (
        "elbv2",
        "CreateListener",
        {
            "LoadBalancerArn": "arn:lb",
            "Protocol": "TLS",
            "Port": 443,
            "Certificates": [{"CertificateArn": "arn:cert"}],
            "AlpnPolicy": ["HTTP2Only"],
            "DefaultActions": [{"Type": "forward", "TargetGroupArn": "arn:tg"}],
        },
    ),
    (
        "elbv2",
        "RegisterTargets",
        {"TargetGroupArn": "arn:tg", "Targets": [{"Id": f"i-{i}"} for i in range(21)]},
    ),
    (
        "elbv2",
        "ModifyTargetGroupAttributes",
        {"TargetGroupArn": "arn:tg", "Attributes": [{"Key": "proxy_protocol_v2.enabled", "Value": "true"}]},
    ),
    ("elbv2", "DescribeTargetGroups", {"Names": []}),
    ("elbv2", "DescribeLoadBalancers", {}),
    (
        "ec2",
        "AuthorizeSecurityGroupIngress",
        {
            "GroupId": "sg-1",
            "IpPermissions": [
                {
                    "IpProtocol": "tcp",
                    "FromPort": p,
                    "ToPort": p,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "d"}],
                    "UserIdGroupPairs": [{"GroupId": "sg-2"}],
                }
                for p in range(30000, 30011)
            ],
        },
    ),
    (
        "ec2",
        "CreateSecurityGroup",
        {
            "GroupName": "g",
            "Description": "d",
            "VpcId": "vpc-1",
            "TagSpecifications": [{"ResourceType": "security-group", "Tags": TAGS}],
        },
    ),
    (
        "ec2",
        "DescribeSecurityGroups",
        {"Filters": [{"Name": "group-name", "Values": ["a", "b"]}], "MaxResults": 5, "NextToken": "x"},
    ),
    (
        "elb",
        "CreateLoadBalancer",
        {
            "LoadBalancerName": "c",
            "Listeners": [{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}],
            "Subnets": ["subnet-1"],
            "Tags": TAGS[:2],
        },
    ),
]


def _values(service: str, operation: str, params: dict[str, Any], in_args: bool) -> tuple[Any, Any]:
    model = botocore.session.get_session().get_service_model(service)
    protocol = model.metadata["protocol"]
    body = botocore.serialize.create_serializer(protocol).serialize_to_request(
        params, model.operation_model(operation)
    )["body"]
    op = get_service_model(service).operation_model(operation)  # moto's model, as moto parses
    pairs = list(parse_qsl(body if isinstance(body, str) else "&".join(f"{k}={v}" for k, v in body.items())))
    # request.values: the URL's arguments, then the form; a name in both answers from the arguments
    args = MultiDict(pairs if in_args else [("Action", operation), ("Tags.member.1.Key", "shadow")])
    form = MultiDict([] if in_args else pairs)
    return op, CombinedMultiDict([args, form])


@pytest.mark.parametrize("in_args", [False, True], ids=["form", "query"])
@pytest.mark.parametrize(("service", "operation", "params"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_the_parsed_parameters_are_moto_s_own(
    service: str, operation: str, params: dict[str, Any], in_args: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    at_scale.install()
    op, values = _values(service, operation, params, in_args)
    parser_cls = EC2QueryParser if service == "ec2" else QueryParser
    request = {
        "method": "POST",
        "values": values,
        "headers": {},
        "body": b"",
        "url_path": "/",
        "url_params": {},
    }
    fast = parser_cls(op).parse(request)
    with monkeypatch.context() as m:
        m.setattr(QueryParser, "_do_parse", fast_parse.ORIGINAL["_do_parse"])
        m.setattr(QueryParser, "_gonna_recurse", fast_parse.ORIGINAL["_gonna_recurse"])
        own = parser_cls(op).parse(request)
    assert fast == own
    assert fast or operation.startswith("Describe")  # the creates' parameters were read


def test_the_search_answers_as_the_pass_over_every_name() -> None:
    names = ["Action", "Tags.member.1.Key", "Tags.member.10.Value", "Name", "Names.member.1", "a.b", "ab"]
    values = fast_parse.Values({n: "x" for n in names})
    prefixes = {n[:i] for n in names for i in range(len(n) + 1)} | {"Tags.member.2", "Z", "b", "Namez", "~"}
    for prefix in prefixes:
        assert fast_parse._gonna_recurse(None, values, prefix) == fast_parse.ORIGINAL["_gonna_recurse"](
            None, dict(values), prefix
        ), prefix
