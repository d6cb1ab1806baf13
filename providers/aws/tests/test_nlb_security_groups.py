"""NLBs created with security groups (diff/nlb_security_groups.py): a frontend group per NLB, the
cluster's backend group admitted by the node groups, and the older model kept for NLBs without
groups; through boto3 against the strict sandbox, with DESIGN.md's invariants."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lbprov_aws import AWSProvider
from lbprov_aws.names import (
    LBC_CLUSTER_TAG,
    LBC_RESOURCE_TAG,
    NLB_SECURITY_GROUPS_TAG,
    nlb_backend_security_group_name,
    nlb_frontend_security_group_name,
    nlb_rule_description,
)
from lbprov_aws.testing import (
    CLUSTER,
    CLUSTER_ID,
    AwsView,
    Svc,
    build_ref,
    converge,
    delete_all,
    fast_settings,
    intent_of,
    kinds,
    node_objects,
)

from lbprov import naming
from lbprov.cloudcalls import ReadOnlyViolation
from lbprov.model import OwnershipConflict
from lbprov.provider import SandboxCloud
from lbprov.render import render_plan

BACKEND = nlb_backend_security_group_name(CLUSTER)
BACKEND_DESC = nlb_rule_description("backend", CLUSTER)


def _group(view: AwsView, name: str) -> dict[str, Any] | None:
    found = [sg for sg in view.security_groups() if sg["GroupName"] == name]
    assert len(found) <= 1
    return found[0] if found else None


def _frontend(view: AwsView, svc: Svc) -> dict[str, Any] | None:
    return _group(view, nlb_frontend_security_group_name(CLUSTER, build_ref(svc)))


def _cidr_rules(sg: dict[str, Any]) -> set[tuple[str, int, int, str]]:
    return {
        (p["IpProtocol"], p["FromPort"], p["ToPort"], r.get("CidrIp") or r.get("CidrIpv6"))
        for p in sg["IpPermissions"]
        for r in p.get("IpRanges", []) + p.get("Ipv6Ranges", [])
    }


def _backend_rules(view: AwsView) -> set[tuple[str, int, int, str]]:
    """(protocol, from, to, source group) of the node group's rules admitting the backend group."""
    return {
        (p["IpProtocol"], p["FromPort"], p["ToPort"], pair["GroupId"])
        for p in view.node_sg()["IpPermissions"]
        for pair in p.get("UserIdGroupPairs", [])
        if pair.get("Description") == BACKEND_DESC
    }


def _all_lbprov_node_rules(view: AwsView) -> int:
    return sum(
        1
        for p in view.node_sg()["IpPermissions"]
        for e in p.get("IpRanges", []) + p.get("UserIdGroupPairs", [])
        if str(e.get("Description", "")).startswith("lbprov.io/")
    )


def test_a_new_nlb_gets_a_frontend_and_the_backend_group_and_no_nodeport_rule(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(
        ports=[(80, "TCP", 30080), (53, "UDP", 30053)],
        spec={"loadBalancerSourceRanges": ["203.0.113.0/24", "198.51.100.0/24"]},
    )
    plan = converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert kinds(plan).count(("create", "security-group")) == 2, render_plan(plan)

    front, back = _frontend(view, svc), _group(view, BACKEND)
    assert front is not None and back is not None
    [lb] = view.nlbs(svc.uid)
    assert sorted(lb["SecurityGroups"]) == sorted([front["GroupId"], back["GroupId"]])
    # The frontend group: the listener ports per protocol from the source ranges (upstream's shape).
    assert front["Description"] == "[k8s] Managed SecurityGroup for LoadBalancer"
    digest = hashlib.sha256(f"{CLUSTER}web default{svc.uid}".replace(" ", "").encode()).hexdigest()
    assert front["GroupName"] == f"k8s-default-web-{digest[:10]}"  # buildManagedSecurityGroupName
    assert _cidr_rules(front) == {
        (proto, port, port, cidr)
        for proto, port in (("tcp", 80), ("udp", 53))
        for cidr in ("203.0.113.0/24", "198.51.100.0/24")
    }
    tags = {t["Key"]: t["Value"] for t in front["Tags"]}
    assert naming.is_owned_by_service(tags, CLUSTER, svc.uid) and tags[naming.CLUSTER_ID_TAG] == CLUSTER_ID
    # The backend group: aws-load-balancer-controller's name, description and tags, plus lbprov's.
    btags = {t["Key"]: t["Value"] for t in back["Tags"]}
    assert back["Description"] == "[k8s] Shared Backend SecurityGroup for LoadBalancer"
    assert btags[LBC_CLUSTER_TAG] == CLUSTER and btags[LBC_RESOURCE_TAG] == "backend-sg"
    assert naming.is_owned_by_cluster(btags, CLUSTER) and btags[naming.CLUSTER_ID_TAG] == CLUSTER_ID
    assert naming.SERVICE_UID_TAG not in btags
    # The node group admits the backend group on the NodePort range and kube-proxy's port, and no
    # source range reaches a NodePort.
    sg = back["GroupId"]
    assert _backend_rules(view) == {
        ("tcp", 30000, 32767, sg),
        ("udp", 30000, 32767, sg),
        ("tcp", 10256, 10256, sg),
    }
    assert view.node_rules() == set() and view.node_rules("kube-proxy") == set()
    assert all(tg["Tags"][NLB_SECURITY_GROUPS_TAG] == "true" for tg in view.tgs(svc.uid))

    delete = delete_all(provider, svc)
    assert kinds(delete).index(("delete", "load-balancer")) < kinds(delete).index(
        ("delete", "security-group")
    )
    view.assert_nothing_owned(svc, [30080, 30053])
    assert _frontend(view, svc) is None and _group(view, BACKEND) is None and _backend_rules(view) == set()


def test_node_groups_need_three_rules_however_many_services(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svcs = [
        Svc(
            name=f"s{i}",
            ports=[(80, "TCP", 30100 + 7 * i)],
            spec={"loadBalancerSourceRanges": [f"10.{i}.0.0/16"]},
        )
        for i in range(8)
    ]
    for svc in svcs:
        converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert _all_lbprov_node_rules(view) == 3
    assert len({sg["GroupId"] for sg in view.security_groups() if sg["GroupName"] == BACKEND}) == 1
    # The backend group stays while any NLB carries it; with the last one it goes, rules and all.
    for svc in svcs[:-1]:
        delete_all(provider, svc)
        assert _group(view, BACKEND) is not None and len(_backend_rules(view)) == 3
    delete_all(provider, svcs[-1])
    assert _group(view, BACKEND) is None and _all_lbprov_node_rules(view) == 0
    for svc in svcs:
        view.assert_nothing_owned(svc)


def test_source_range_changes_touch_only_the_frontend_group(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc()
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    svc.spec["loadBalancerSourceRanges"] = ["192.0.2.0/24"]
    plan = converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert sorted(kinds(plan)) == [("create", "security-group-rule"), ("delete", "security-group-rule")]
    front = _frontend(view, svc)
    assert front is not None and _cidr_rules(front) == {("tcp", 80, 80, "192.0.2.0/24")}
    assert view.node_rules() == set()


def test_an_nlb_without_groups_keeps_the_node_rule_model(cloud: SandboxCloud, view: AwsView) -> None:
    old = AWSProvider.from_settings(fast_settings(cloud, nlb_security_groups=False))
    svc = Svc()
    converge(old, intent_of(old, svc, node_objects(cloud)))
    [lb] = view.nlbs(svc.uid)
    assert not lb.get("SecurityGroups")
    assert view.node_rules("client") == {("tcp", 30080, 30080, "0.0.0.0/0")}
    # With groups the default again, the existing NLB keeps its model: nothing to change.
    new = AWSProvider.from_settings(fast_settings(cloud))
    plan = new.plan(intent_of(new, svc, node_objects(cloud)))
    assert plan.empty, render_plan(plan)
    # A second Service gets groups; the first one's rules stay, and the backend group with it.
    other = Svc(name="other", ports=[(81, "TCP", 30081)])
    converge(new, intent_of(new, other, node_objects(cloud)))
    assert view.node_rules("client") == {("tcp", 30080, 30080, "0.0.0.0/0")}
    assert len(_backend_rules(view)) == 3
    # The old NLB's plan neither uses nor releases the group another NLB carries.
    assert new.plan(intent_of(new, svc, node_objects(cloud))).empty
    delete_all(new, svc)
    assert view.node_rules() == set() and len(_backend_rules(view)) == 3
    delete_all(new, other)
    assert _group(view, BACKEND) is None and _all_lbprov_node_rules(view) == 0


def test_a_scheme_change_replaces_an_nlb_without_groups_by_one_with_groups(
    cloud: SandboxCloud, view: AwsView
) -> None:
    old = AWSProvider.from_settings(fast_settings(cloud, nlb_security_groups=False))
    svc = Svc()
    converge(old, intent_of(old, svc, node_objects(cloud)))
    new = AWSProvider.from_settings(fast_settings(cloud))
    svc.annotations["service.beta.kubernetes.io/aws-load-balancer-internal"] = "true"
    plan = converge(new, intent_of(new, svc, node_objects(cloud)))
    assert ("replace", "load-balancer") in kinds(plan)
    [lb] = view.nlbs(svc.uid)
    assert len(lb["SecurityGroups"]) == 2 and view.node_rules() == set() and len(_backend_rules(view)) == 3
    delete_all(new, svc)
    view.assert_nothing_owned(svc, [30080])
    assert _group(view, BACKEND) is None


def test_dry_run_of_an_nlb_with_groups_is_read_only(cloud: SandboxCloud) -> None:
    ro = AWSProvider.from_settings(fast_settings(cloud), read_only=True)
    plan = ro.plan(intent_of(ro, Svc(), node_objects(cloud)))
    assert ("create", "security-group") in kinds(plan)
    with pytest.raises(ReadOnlyViolation):
        ro.apply(plan)
    assert cloud.mutating_requests() == []


def test_read_only_delete_plan_of_the_last_nlb_names_the_backend_release(
    provider: AWSProvider, cloud: SandboxCloud
) -> None:
    svc = Svc()
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    before = list(cloud.mutating_requests())
    ro = AWSProvider.from_settings(fast_settings(cloud), read_only=True)
    plan = ro.plan_delete(build_ref(svc))
    assert [c.name for c in plan.changes if c.kind == "security-group"].count(BACKEND) == 1
    with pytest.raises(ReadOnlyViolation):
        ro.apply(plan)
    assert cloud.mutating_requests() == before


def test_a_foreign_group_under_the_frontend_name_is_a_conflict(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc()
    name = nlb_frontend_security_group_name(CLUSTER, build_ref(svc))
    view.ec2.create_security_group(GroupName=name, Description="someone else", VpcId=cloud.extra["vpc_id"])
    with pytest.raises(OwnershipConflict):
        provider.plan(intent_of(provider, svc, node_objects(cloud)))


def test_a_foreign_group_under_the_backend_name_is_a_conflict(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    view.ec2.create_security_group(GroupName=BACKEND, Description="someone else", VpcId=cloud.extra["vpc_id"])
    with pytest.raises(OwnershipConflict):
        provider.plan(intent_of(provider, Svc(), node_objects(cloud)))


def test_aws_load_balancer_controllers_backend_group_is_shared_and_never_deleted(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    made = view.ec2.create_security_group(
        GroupName=BACKEND,
        Description="[k8s] Shared Backend SecurityGroup for LoadBalancer",
        VpcId=cloud.extra["vpc_id"],
        TagSpecifications=[
            {
                "ResourceType": "security-group",
                "Tags": [
                    {"Key": LBC_CLUSTER_TAG, "Value": CLUSTER},
                    {"Key": LBC_RESOURCE_TAG, "Value": "backend-sg"},
                ],
            }
        ],
    )["GroupId"]
    svc = Svc()
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    [lb] = view.nlbs(svc.uid)
    assert made in lb["SecurityGroups"] and len(_backend_rules(view)) == 3
    delete_all(provider, svc)
    assert _group(view, BACKEND) is not None  # upstream's: used, never deleted
    view.assert_nothing_owned(svc)


def test_a_backend_group_of_another_identity_is_never_released(cloud: SandboxCloud, view: AwsView) -> None:
    other = AWSProvider.from_settings(fast_settings(cloud, cluster_id="another-cluster-uid"))
    svc = Svc()
    converge(other, intent_of(other, svc, node_objects(cloud)))
    view.elbv2.delete_load_balancer(LoadBalancerArn=view.nlbs(svc.uid)[0]["LoadBalancerArn"])
    provider = AWSProvider.from_settings(fast_settings(cloud))
    provider.apply(provider.plan_delete(build_ref(svc)))
    assert _group(view, BACKEND) is not None and len(_backend_rules(view)) == 3


def test_a_crash_right_after_the_last_nlbs_delete_leaks_no_group(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc()
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    # SIGKILL right after DeleteLoadBalancer: the NLB is gone, nothing else was done.
    view.elbv2.delete_load_balancer(LoadBalancerArn=view.nlbs(svc.uid)[0]["LoadBalancerArn"])
    plan = delete_all(provider, svc)
    assert [c.name for c in plan.changes if c.kind == "security-group"].count(BACKEND) == 1
    assert _frontend(view, svc) is None and _group(view, BACKEND) is None and _backend_rules(view) == set()
    view.assert_nothing_owned(svc, [30080])


def test_a_delete_whose_target_groups_are_gone_too_still_finds_the_groups(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc()
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    view.elbv2.delete_load_balancer(LoadBalancerArn=view.nlbs(svc.uid)[0]["LoadBalancerArn"])
    for tg in view.tgs(svc.uid):
        view.elbv2.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
    delete_all(provider, svc)
    assert _frontend(view, svc) is None and _group(view, BACKEND) is None and _backend_rules(view) == set()


def test_setting_off_keeps_the_older_model_for_new_nlbs(cloud: SandboxCloud, view: AwsView) -> None:
    old = AWSProvider.from_settings(fast_settings(cloud, nlb_security_groups=False))
    svc = Svc()
    plan = converge(old, intent_of(old, svc, node_objects(cloud)))
    assert ("create", "security-group") not in kinds(plan)
    assert view.node_rules("client") == {("tcp", 30080, 30080, "0.0.0.0/0")}
    assert _group(view, BACKEND) is None and _frontend(view, svc) is None


def test_a_new_node_group_gets_the_backend_rules(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc()
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    vpc = cloud.extra["vpc_id"]
    second = view.ec2.create_security_group(
        GroupName="nodes-b",
        Description="second node group",
        VpcId=vpc,
        TagSpecifications=[
            {
                "ResourceType": "security-group",
                "Tags": [{"Key": naming.cluster_tag_key(CLUSTER), "Value": "owned"}],
            }
        ],
    )["GroupId"]
    node = cloud.add_node("node-d")  # type: ignore[attr-defined]
    instance = node.provider_id.rsplit("/", 1)[1]
    view.ec2.modify_instance_attribute(InstanceId=instance, Groups=[second])
    nodes = [
        *node_objects(cloud),
        {
            **node_objects(cloud)[0],
            "metadata": {"name": "node-d", "labels": {}},
            "spec": {"providerID": node.provider_id},
        },
    ]
    converge(provider, intent_of(provider, svc, nodes))
    rules = [
        p
        for p in view.ec2.describe_security_groups(GroupIds=[second])["SecurityGroups"][0]["IpPermissions"]
        for pair in p.get("UserIdGroupPairs", [])
        if pair.get("Description") == BACKEND_DESC
    ]
    assert len(rules) == 3
    delete_all(provider, svc)
    assert view.ec2.describe_security_groups(GroupIds=[second])["SecurityGroups"][0]["IpPermissions"] == []


def test_the_strict_layer_refuses_deleting_a_group_in_use(cloud: SandboxCloud, view: AwsView) -> None:
    vpc = cloud.extra["vpc_id"]
    sg = view.ec2.create_security_group(GroupName="front", Description="d", VpcId=vpc)["GroupId"]
    ref = view.ec2.create_security_group(GroupName="nodes", Description="d", VpcId=vpc)["GroupId"]
    lb = view.elbv2.create_load_balancer(
        Name="lb-sg", Type="network", Subnets=cloud.extra["public_subnets"], SecurityGroups=[sg]
    )["LoadBalancers"][0]["LoadBalancerArn"]
    for group in (sg,):  # an NLB's interfaces use it
        with pytest.raises(ClientError) as err:
            view.ec2.delete_security_group(GroupId=group)
        assert err.value.response["Error"]["Code"] == "DependencyViolation"
    view.elbv2.delete_load_balancer(LoadBalancerArn=lb)
    # The deleted NLB's interfaces are released asynchronously: refused once more, then it goes.
    with pytest.raises(ClientError) as err:
        view.ec2.delete_security_group(GroupId=sg)
    assert err.value.response["Error"]["Code"] == "DependencyViolation"
    # A rule of another group that references it also holds it.
    view.ec2.authorize_security_group_ingress(
        GroupId=ref, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": sg}]}]
    )
    with pytest.raises(ClientError) as err:
        view.ec2.delete_security_group(GroupId=sg)
    assert err.value.response["Error"]["Code"] == "DependencyViolation"
    view.ec2.revoke_security_group_ingress(
        GroupId=ref, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": sg}]}]
    )
    view.ec2.delete_security_group(GroupId=sg)


def test_the_strict_layer_refuses_an_nlb_with_an_unknown_group(cloud: SandboxCloud, view: AwsView) -> None:
    with pytest.raises(ClientError) as err:
        view.elbv2.create_load_balancer(
            Name="lb-nosg",
            Type="network",
            Subnets=cloud.extra["public_subnets"],
            SecurityGroups=["sg-0123456789abcdef0"],
        )
    assert err.value.response["Error"]["Code"] == "InvalidSecurityGroup"


def test_services_planned_from_one_snapshot_share_one_backend_group(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """Every plan of a fresh cluster creates the backend group and its node rules; applied at once
    from threads, they all succeed and make one group with three rules, each written once (the
    first apply's writes are the flight the others join, apply/flights.py: no duplicate errors)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    nodes = node_objects(cloud)
    services = [Svc(name=f"c{i}", ports=[(80, "TCP", 30300 + i)]) for i in range(6)]
    plans = [provider.plan(intent_of(provider, s, nodes)) for s in services]
    assert all(BACKEND in [c.name for c in p.changes if c.kind == "security-group"] for p in plans)
    barrier = threading.Barrier(len(plans))

    def apply(plan: Any) -> None:
        barrier.wait()
        provider.apply(plan)

    cloud.extra["sandbox"].recorder.clear()
    with ThreadPoolExecutor(len(plans)) as pool:
        list(pool.map(apply, plans))  # raises if any apply failed
    assert len([sg for sg in view.security_groups() if sg["GroupName"] == BACKEND]) == 1
    assert _all_lbprov_node_rules(view) == 3
    sent = cloud.mutating_requests()
    # One frontend group per Service and one backend group; one frontend rule per Service and the
    # backend group's three node rules: nothing sent twice, so nothing refused as a duplicate.
    assert sent.count("ec2:CreateSecurityGroup") == len(services) + 1, sent
    assert sent.count("ec2:AuthorizeSecurityGroupIngress") == len(services) + 3, sent
    for svc in services:
        converge(provider, intent_of(provider, svc, nodes))


def test_a_backend_group_deleted_by_someone_else_is_made_again(cloud: SandboxCloud, view: AwsView) -> None:
    """The single flight never hides a deletion: a plan made after this process made the backend
    group, which still finds it missing (another process released it), creates it again."""
    nodes = node_objects(cloud)
    ours = AWSProvider.from_settings(fast_settings(cloud))
    other = AWSProvider.from_settings(fast_settings(cloud))  # another process: its own records
    first, second = Svc(name="first"), Svc(name="second", ports=[(80, "TCP", 30081)])
    converge(ours, intent_of(ours, first, nodes))
    made = _group(view, BACKEND)
    assert made is not None
    delete_all(other, first)  # the last NLB: the other process releases the backend group
    assert _group(view, BACKEND) is None and _backend_rules(view) == set()
    plan = converge(ours, intent_of(ours, second, nodes))
    assert [c.name for c in plan.changes if c.kind == "security-group"].count(BACKEND) == 1
    again = _group(view, BACKEND)
    assert again is not None and again["GroupId"] != made["GroupId"]
    assert len(_backend_rules(view)) == 3
    [lb] = view.nlbs(second.uid)
    assert again["GroupId"] in lb["SecurityGroups"]
    delete_all(ours, second)
    assert _group(view, BACKEND) is None and _all_lbprov_node_rules(view) == 0


def test_a_release_planned_before_another_nlb_attached_the_group_gives_up(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    first, second = Svc(name="first"), Svc(name="second", ports=[(80, "TCP", 30081)])
    converge(provider, intent_of(provider, first, nodes))
    release = provider.plan_delete(build_ref(first))  # the last NLB: releases the backend group
    assert [c.name for c in release.changes if c.kind == "security-group"].count(BACKEND) == 1
    converge(provider, intent_of(provider, second, nodes))  # attaches the group meanwhile
    provider.apply(release)
    assert _group(view, BACKEND) is not None and len(_backend_rules(view)) == 3
    assert provider.plan_delete(build_ref(first)).empty
    assert provider.plan(intent_of(provider, second, nodes)).empty
    delete_all(provider, second)
    assert _group(view, BACKEND) is None and _all_lbprov_node_rules(view) == 0


def test_plans_in_a_read_round_see_the_groups_made_in_the_round(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    services = [Svc(name=f"r{i}", ports=[(80, "TCP", 30400 + i)]) for i in range(3)]
    with provider.read_round():
        for svc in services:
            provider.apply(provider.plan(intent_of(provider, svc, nodes)))
        for svc in services:
            plan = provider.plan(intent_of(provider, svc, nodes))
            assert plan.empty, render_plan(plan)
        for svc in services[:2]:
            provider.apply(provider.plan_delete(build_ref(svc)))
        assert provider.plan(intent_of(provider, services[2], nodes)).empty
        provider.apply(provider.plan_delete(build_ref(services[2])))
    assert _group(view, BACKEND) is None and _all_lbprov_node_rules(view) == 0
    for svc in services:
        view.assert_nothing_owned(svc)


def test_a_create_plan_applied_twice_makes_each_group_and_rule_once(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """A restarted or retried apply of the same create plan (its first answers lost) finds the
    groups and rules made: no error, nothing twice."""
    svc = Svc()
    intent = intent_of(provider, svc, node_objects(cloud))
    plan = provider.plan(intent)
    provider.apply(plan)
    provider.apply(plan)
    assert len(view.nlbs(svc.uid)) == 1
    front = _frontend(view, svc)
    assert front is not None and _cidr_rules(front) == {("tcp", 80, 80, "0.0.0.0/0")}
    assert len([sg for sg in view.security_groups() if sg["GroupName"] == BACKEND]) == 1
    assert _all_lbprov_node_rules(view) == 3
    assert provider.plan(intent).empty


def test_an_nlb_carrying_only_others_groups_keeps_them(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """An adopted predecessor made by cloud-provider-aws in its managed NLB security-group mode
    carries that controller's group, not lbprov's: kept as it is, never managed nor deleted
    (diff/adopt.py). Made here by swapping an NLB's groups for a group of someone else."""
    svc = Svc()
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    theirs = view.ec2.create_security_group(
        GroupName="upstream-managed", Description="managed by someone else", VpcId=cloud.extra["vpc_id"]
    )["GroupId"]
    arn = view.nlbs(svc.uid)[0]["LoadBalancerArn"]
    view.elbv2.set_security_groups(LoadBalancerArn=arn, SecurityGroups=[theirs])
    plan = provider.plan(intent_of(provider, svc, node_objects(cloud)))
    assert ("update", "load-balancer") not in kinds(plan), render_plan(plan)
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert view.nlbs(svc.uid)[0]["SecurityGroups"] == [theirs]
    # lbprov's own groups, carried by no NLB any more, went (and the backend group's node rules).
    assert (
        _frontend(view, svc) is None and _group(view, BACKEND) is None and _all_lbprov_node_rules(view) == 0
    )
    delete_all(provider, svc)
    assert _group(view, "upstream-managed") is not None
    assert (
        _frontend(view, svc) is None and _group(view, BACKEND) is None and _all_lbprov_node_rules(view) == 0
    )


def test_backend_group_name_is_aws_load_balancer_controllers_on_every_call() -> None:
    """``getBackendSGName``: k8s-traffic-<cluster, alphanumerics>-<sha256(cluster)[:10]>; the name
    is cached per cluster, so a second call must give the same text."""
    import hashlib

    expected = "k8s-traffic-prodeu1-" + hashlib.sha256(b"prod-eu-1").hexdigest()[:10]
    assert nlb_backend_security_group_name("prod-eu-1") == expected
    assert nlb_backend_security_group_name("prod-eu-1") == expected
    assert nlb_backend_security_group_name("other") != expected
