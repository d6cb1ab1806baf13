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


def test_a_read_rounds_records_share_what_they_have_in_common(
    cloud: SandboxCloud, provider: AWSProvider
) -> None:
    """A round keeps one record per load balancer, target group and security group of the account:
    each shares the remembered tag dict of its resource (no copy) and one string per VPC, subnet
    and group ID, and has no per-instance ``__dict__``."""
    from lbprov_aws.testing import Svc, converge, intent_of, node_objects

    nodes = node_objects(cloud)
    svcs = [Svc(name=f"mem{i}", ports=[(80, "TCP", 30300 + i)]) for i in range(2)]
    for svc in svcs:
        converge(provider, intent_of(provider, svc, nodes))
    reader = provider.reader
    with provider.read_round() as rnd:
        for svc in svcs:
            provider.plan(intent_of(provider, svc, nodes))
        assert rnd.nlbs is not None and rnd.target_groups is not None and rnd.cluster_sgs is not None
        a, b = (rnd.nlbs[svc.lb_name] for svc in svcs)
        tg_a, tg_b = (rnd.target_groups.with_prefix(f"k8s-default-mem{i}-")[0] for i in range(2))
        groups = [g for gs in rnd.cluster_sgs.values() for g in gs]
    for record in (a, tg_a):
        assert record.tags is reader.remembered.tags[record.arn]
        assert not hasattr(record, "__dict__")
    assert a.vpc_id is b.vpc_id and tg_a.vpc_id is tg_b.vpc_id and a.vpc_id == tg_a.vpc_id
    assert a.subnets[0] is b.subnets[0]
    assert tg_a.health["protocol"] is tg_b.health["protocol"]
    assert len(groups) >= 2 and len({id(g.vpc_id) for g in groups}) == 1
