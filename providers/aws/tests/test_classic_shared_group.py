"""Classic ELB Services created at once share the cluster's backend group without a failed sync.

Every plan of a fresh cluster lists "create k8s-elb-backend-<cluster>" and "admit it in each node
group", since none of them can see the others' applies. Before, every apply sent those writes and
all but the first failed (``InvalidGroup.Duplicate``, ``InvalidPermission.Duplicate``) and were
requeued: 18 failed syncs in a 1,000-Service create. Now the first apply's writes are the flight the
others of this process join (apply/flights.py), and a Duplicate for a group or rule that this
cluster made (another process, a lost answer) is re-read and used. Through boto3 against the strict
sandbox; the plans are all made before any apply, so the duplicates are certain, not timed.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.names import elb_backend_security_group_name
from lbprov_aws.testing import ANN, CLUSTER, AwsView, Svc, converge, fast_settings, intent_of, node_objects

from lbprov.model import OwnershipConflict
from lbprov.provider import SandboxCloud

CLASSIC = {ANN + "type": "classic"}
BACKEND = elb_backend_security_group_name(CLUSTER)


def _classic(i: int) -> Svc:
    return Svc(name=f"c{i}", ports=[(80, "TCP", 30400 + i)], annotations=dict(CLASSIC))


def _backend_groups(view: AwsView) -> list[dict[str, Any]]:
    return [sg for sg in view.security_groups() if sg["GroupName"] == BACKEND]


def _pairs_from(view: AwsView, group_id: str) -> list[tuple[str, str | None]]:
    return [p for p in view.node_pair_rules() if p[0] == group_id]


def test_classic_services_planned_from_one_snapshot_share_one_backend_group(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """All plans create the backend group and its node rule; applied at once from threads (released
    together by a barrier), every apply succeeds, one group and one node rule exist, each written
    once, and every Service then converges."""
    nodes = node_objects(cloud)
    services = [_classic(i) for i in range(6)]
    plans = [provider.plan(intent_of(provider, s, nodes)) for s in services]
    assert all(BACKEND in [c.name for c in p.changes if c.kind == "security-group"] for p in plans)
    barrier = threading.Barrier(len(plans))

    def apply(plan: Any) -> None:
        barrier.wait()
        provider.apply(plan)

    cloud.extra["sandbox"].recorder.clear()
    with ThreadPoolExecutor(len(plans)) as pool:
        list(pool.map(apply, plans))  # raises if any apply failed
    [backend] = _backend_groups(view)
    assert len(_pairs_from(view, backend["GroupId"])) == 1
    sent = cloud.mutating_requests()
    # Each Service's own group and rule, plus the backend group and its one node rule, once each.
    assert sent.count("ec2:CreateSecurityGroup") == len(services) + 1, sent
    assert sent.count("ec2:AuthorizeSecurityGroupIngress") == len(services) + 1, sent
    for svc in services:
        [lb] = view.classics(svc.uid)
        assert backend["GroupId"] in lb["SecurityGroups"]
        converge(provider, intent_of(provider, svc, nodes))


def test_a_duplicate_from_another_process_is_read_and_used(cloud: SandboxCloud, view: AwsView) -> None:
    """Two processes (each its own records) plan a classic Service each before either applies: the
    second apply's CreateSecurityGroup and AuthorizeSecurityGroupIngress answer Duplicate for what
    the first made; it reads the group, finds it the cluster's, and uses it."""
    nodes = node_objects(cloud)
    one = AWSProvider.from_settings(fast_settings(cloud))
    two = AWSProvider.from_settings(fast_settings(cloud))
    first, second = _classic(1), _classic(2)
    plan_one = one.plan(intent_of(one, first, nodes))
    plan_two = two.plan(intent_of(two, second, nodes))
    one.apply(plan_one)
    two.apply(plan_two)  # raised InvalidGroup.Duplicate before
    [backend] = _backend_groups(view)
    assert len(_pairs_from(view, backend["GroupId"])) == 1
    for svc, p in ((first, one), (second, two)):
        [lb] = view.classics(svc.uid)
        assert backend["GroupId"] in lb["SecurityGroups"]
        converge(p, intent_of(p, svc, nodes))


def test_a_foreign_namesake_made_after_the_plan_is_refused(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """A Duplicate is no licence to adopt: a group of the backend's name that is not the cluster's,
    made between plan and apply, is an ownership conflict, and nothing of the Service is created."""
    nodes = node_objects(cloud)
    svc = _classic(1)
    plan = provider.plan(intent_of(provider, svc, nodes))
    view.ec2.create_security_group(GroupName=BACKEND, Description="another team", VpcId=cloud.extra["vpc_id"])
    with pytest.raises(OwnershipConflict):
        provider.apply(plan)
    assert view.classics(svc.uid) == []


def test_a_create_applied_again_after_its_answers_were_lost_succeeds(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """A sync whose apply ran but whose answers were lost (a timeout, a crash before the status)
    applies its plan again: every Duplicate of the Service's own group and rules, and of the shared
    ones, is what this cluster made, so it is used; nothing is made twice."""
    nodes = node_objects(cloud)
    svc = _classic(1)
    svc.spec["loadBalancerSourceRanges"] = ["203.0.113.0/24", "198.51.100.0/24"]
    plan = provider.plan(intent_of(provider, svc, nodes))
    provider.apply(plan)
    other = AWSProvider.from_settings(fast_settings(cloud))  # (no record of the first apply)
    other.apply(plan)
    assert len(_backend_groups(view)) == 1
    assert len([g for g in view.security_groups() if g["GroupName"] == f"k8s-elb-{svc.lb_name}"]) == 1
    assert len(view.classics(svc.uid)) == 1
    converge(provider, intent_of(provider, svc, nodes))
