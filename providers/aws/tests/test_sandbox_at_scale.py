"""The sandbox's fixes of moto's scans over every resource (sandbox/at_scale.py): the same answers
as moto's own code, AWS's paging of DescribeTargetGroups, and no pass over the region's tags."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from lbprov_aws.sandbox import at_scale
from lbprov_aws.testing import AwsView
from moto.ec2.models import ec2_backends
from moto.ec2.models.tags import TagBackend
from moto.elbv2.models import elbv2_backends

from lbprov.provider import SandboxCloud

ACCOUNT, REGION = "123456789012", "us-east-1"


def _tgs(view: AwsView, cloud: SandboxCloud, n: int) -> list[str]:
    for i in range(n):
        view.elbv2.create_target_group(
            Name=f"k8s-page-{i}",
            Protocol="TCP",
            Port=30000 + i,
            VpcId=cloud.extra["vpc_id"],
            TargetType="instance",
        )
    return sorted(f"k8s-page-{i}" for i in range(n))


def _lbs(view: AwsView, cloud: SandboxCloud, names: list[str]) -> None:
    for name in names:
        view.elbv2.create_load_balancer(Name=name, Type="network", Subnets=cloud.extra["public_subnets"])


def test_ec2_tags_are_moto_s_own_answer_without_a_pass_over_every_tag(
    cloud: SandboxCloud, view: AwsView, monkeypatch: pytest.MonkeyPatch
) -> None:
    ec2 = ec2_backends[ACCOUNT][REGION]
    for i in range(3):
        view.ec2.create_security_group(
            GroupName=f"g{i}",
            Description="d",
            VpcId=cloud.extra["vpc_id"],
            TagSpecifications=[
                {
                    "ResourceType": "security-group",
                    "Tags": [{"Key": "k", "Value": str(i)}, {"Key": "z", "Value": "1"}],
                }
            ],
        )
    resources = [g for groups in ec2.groups.values() for g in groups.values()]
    resources += [i for r in ec2.reservations.values() for i in r.instances]
    assert len(resources) >= 3 + 3 + 1  # three groups, three node instances, the node group
    for res in resources:
        assert res.get_tags() == at_scale.ORIGINAL["get_tags"](res)

    scans: list[Any] = []
    monkeypatch.setattr(TagBackend, "describe_tags", lambda self, filters=None: scans.append(filters) or [])
    groups = view.ec2.describe_security_groups(Filters=[{"Name": "tag:k", "Values": ["1"]}])["SecurityGroups"]
    assert [g["GroupName"] for g in groups] == ["g1"]
    assert {t["Key"]: t["Value"] for t in groups[0]["Tags"]} == {"k": "1", "z": "1"}
    assert scans == []  # each resource's tags came from its own entry


def test_describe_load_balancers_by_name_and_arn_answers_as_moto(cloud: SandboxCloud, view: AwsView) -> None:
    _lbs(view, cloud, ["lb-a", "lb-b", "lb-c"])
    backend = elbv2_backends[ACCOUNT][REGION]
    arn = {lb.name: lb.arn for lb in backend.load_balancers.values()}
    cases: list[tuple[list[str] | None, list[str] | None]] = [
        (None, ["lb-b"]),
        (None, ["lb-c", "lb-a"]),
        (None, ["lb-a", "lb-missing"]),  # moto's quirk (TOOLING.md): the missing name is no error
        ([arn["lb-b"]], None),
        ([arn["lb-a"], arn["lb-c"]], None),
        (None, None),
    ]
    for arns, names in cases:
        ours = at_scale._describe_load_balancers(backend, arns, names)
        theirs = at_scale.ORIGINAL["describe_load_balancers"](backend, arns, names)
        assert [lb.name for lb in ours] == [lb.name for lb in theirs], (arns, names)
    with pytest.raises(ClientError) as err:
        view.elbv2.describe_load_balancers(Names=["lb-missing"])
    assert err.value.response["Error"]["Code"] == "LoadBalancerNotFound"


def test_describe_target_groups_pages_as_aws(cloud: SandboxCloud, view: AwsView) -> None:
    names = _tgs(view, cloud, 5)
    pages: list[list[str]] = []
    marker: dict[str, str] = {}
    while True:
        resp = view.elbv2.describe_target_groups(PageSize=2, **marker)
        pages.append([tg["TargetGroupName"] for tg in resp["TargetGroups"]])
        if "NextMarker" not in resp:
            break
        marker = {"Marker": resp["NextMarker"]}
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [n for p in pages for n in p] == names
    # Without PageSize: every group, as moto answered before.
    assert [tg["TargetGroupName"] for tg in view.elbv2.describe_target_groups()["TargetGroups"]] == names


def test_describe_target_groups_refuses_a_page_above_400(cloud: SandboxCloud, view: AwsView) -> None:
    # AWS: "PageSize ... Valid Range: Minimum value of 1. Maximum value of 400." (ELB API Reference,
    # DescribeTargetGroups); the strict layer enforces it from botocore's model.
    with pytest.raises(ClientError) as err:
        view.elbv2.describe_target_groups(PageSize=401)
    assert err.value.response["Error"]["Code"] == "ValidationError"


def test_security_groups_by_name_answer_as_moto(cloud: SandboxCloud, view: AwsView) -> None:
    vpc = cloud.extra["vpc_id"]
    for name in ("k8s-a", "k8s-b", "k8s-a-2"):
        view.ec2.create_security_group(GroupName=name, Description="d", VpcId=vpc)
    backend = ec2_backends[ACCOUNT][REGION]
    cases: list[dict[str, list[str]]] = [
        {"group-name": ["k8s-a"], "vpc-id": [vpc]},
        {"group-name": ["k8s-a", "k8s-b"]},
        {"group-name": ["k8s-a*"]},  # a wildcard: moto's own path
        {"group-name": ["k8s-missing"], "vpc-id": [vpc]},
        {"vpc-id": [vpc]},
    ]
    for filters in cases:
        ours = at_scale._describe_security_groups(backend, None, None, filters)
        theirs = at_scale.ORIGINAL["describe_security_groups"](backend, None, None, filters)
        assert [g.id for g in ours] == [g.id for g in theirs], filters
    found = view.ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["k8s-b"]}])
    assert [g["GroupName"] for g in found["SecurityGroups"]] == ["k8s-b"]


def test_describe_security_groups_pages_as_aws(cloud: SandboxCloud, view: AwsView) -> None:
    vpc = cloud.extra["vpc_id"]
    for i in range(7):
        view.ec2.create_security_group(GroupName=f"k8s-p{i}", Description="d", VpcId=vpc)
    every = view.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
    pages: list[list[str]] = []
    token: dict[str, str] = {}
    while True:
        resp = view.ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}], MaxResults=5, **token
        )
        pages.append([g["GroupId"] for g in resp["SecurityGroups"]])
        if not resp.get("NextToken"):
            break
        token = {"NextToken": resp["NextToken"]}
    assert all(len(p) <= 5 for p in pages) and len(pages) == -(-len(every) // 5)
    assert sorted(g for p in pages for g in p) == sorted(g["GroupId"] for g in every)


def test_describe_security_groups_refuses_a_page_above_1000(view: AwsView) -> None:
    # AWS: "This value can be between 5 and 1000." (EC2 API Reference, DescribeSecurityGroups,
    # MaxResults); the strict layer enforces the maximum from botocore's model (botocore itself
    # checks only the minimum).
    with pytest.raises(ClientError) as err:
        view.ec2.describe_security_groups(MaxResults=1001)
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_per_request_fixes_answer_as_moto(cloud: SandboxCloud, view: AwsView) -> None:
    """The module listing, the response classes' method names and the instance lookup: moto's own
    answers (at_scale.py computes them once, or without the copies)."""
    from moto import backends
    from moto.core import responses
    from moto.ec2.responses import EC2Response
    from moto.elb.responses import ELBResponse
    from moto.elbv2.responses import ELBV2Response

    assert list(backends.list_of_moto_modules()) == list(at_scale.ORIGINAL["list_of_moto_modules"]())
    assert "ec2" in backends.list_of_moto_modules() and "elbv2" in backends.list_of_moto_modules()
    for clazz in (EC2Response, ELBResponse, ELBV2Response):
        for _ in range(2):  # computed, then remembered
            assert responses.method_names_from_class(clazz) == at_scale.ORIGINAL["method_names_from_class"](
                clazz
            )
    ec2 = ec2_backends[ACCOUNT][REGION]
    ids = [i.id for r in ec2.reservations.values() for i in r.instances]
    assert len(ids) == 3  # the seeded nodes
    for iid in [*ids, "i-0123456789abcdef0"]:
        assert ec2.get_instance_by_id(iid) is at_scale.ORIGINAL["get_instance_by_id"](ec2, iid)


def test_the_strict_layer_finds_a_member_as_the_pass_over_every_key_did() -> None:
    """strict.py's ``_paths``: a path is present exactly when it is a key or a dotted prefix of one
    (what ``prefix in params or any(k.startswith(prefix + "."))`` answered)."""
    from lbprov_aws.sandbox.strict import _paths

    params = {
        "Action": "x",
        "Tags.member.1.Key": "k",
        "Tags.member.10.Value": "v",
        "IpPermissions.1.UserIdGroupPairs.2.GroupId": "sg-1",
        "Names.member.1": "a.b",
    }
    candidates = {
        "Action",
        "Act",
        "Tags",
        "Tags.member",
        "Tags.member.1",
        "Tags.member.10",
        "Tags.member.2",
        "Tags.member.1.Key",
        "Tags.member.1.K",
        "IpPermissions.1.UserIdGroupPairs",
        "IpPermissions.1.UserIdGroupPairs.1",
        "IpPermissions.1.UserIdGroupPairs.2",
        "IpPermissions.2",
        "Names.member.1",
        "Names.member.1.a",
        "",
    }
    paths = _paths(params)
    for prefix in candidates:
        before = prefix in params or any(k.startswith(prefix + ".") for k in params)
        assert (prefix in paths) == before, prefix
