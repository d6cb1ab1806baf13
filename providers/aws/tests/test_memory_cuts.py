"""What the AWS provider's memory at 10,000 Services depends on, pinned by counts, not by timing."""

from __future__ import annotations

import pytest
from lbprov_aws import observe
from lbprov_aws.provider import AWSProvider
from lbprov_aws.testing import AwsView

from lbprov.provider import SandboxCloud


def test_the_vpc_security_group_listing_is_read_in_pages(
    cloud: SandboxCloud, view: AwsView, provider: AWSProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frontend group per NLB Service: unpaged, 10,000 groups would be one 20 MB response parsed
    at once. Pages of SG_PAGE (1,000 in production, 5 here) keep the transient to one page."""
    vpc = cloud.extra["vpc_id"]
    for i in range(12):
        view.ec2.create_security_group(GroupName=f"k8s-mem-{i}", Description="d", VpcId=vpc)
    every = {
        g["GroupId"]
        for g in view.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])[
            "SecurityGroups"
        ]
    }
    monkeypatch.setattr(observe, "SG_PAGE", 5)
    provider.calls.reset()
    listed = provider.reader.security_groups(vpc)
    calls = provider.calls.reset().sent[("ec2:DescribeSecurityGroups", "read")]
    assert {sg.id for sg in listed} == every
    assert len(every) >= 14 and calls == -(-len(every) // 5)  # one call per page of 5
