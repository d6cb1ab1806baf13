"""The AWS node sync (node_sync.py) through botocore against moto: a node change costs one write per
target group and no read per Service, and leaves every Service's own plan empty."""

from __future__ import annotations

from collections import Counter
from typing import Any

from lbprov_aws import AWSProvider
from lbprov_aws.testing import ANN, AwsView, Svc, converge, fast_settings, intent_of, node_objects

from lbprov import naming
from lbprov.model import Intent
from lbprov.provider import SandboxCloud, apply_nodes, plan_nodes
from lbprov.render import render_plan


def _writes(ops: Counter[str]) -> dict[str, int]:
    return {op: n for op, n in ops.items() if ":Describe" not in op}


def _node(cloud: SandboxCloud, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    added = cloud.add_node(name)
    return {
        "metadata": {
            "name": added.name,
            "labels": {"topology.kubernetes.io/zone": added.zone, **(labels or {})},
        },
        "spec": {"providerID": added.provider_id},
        "status": {"addresses": [{"type": "InternalIP", "address": added.internal_ip}]},
    }


def _instance(node: dict[str, Any]) -> str:
    return str(node["spec"]["providerID"]).rsplit("/", 1)[1]


def _services() -> list[Svc]:
    return [
        Svc(name="one", ports=[(80, "TCP", 30080)]),
        Svc(name="two", ports=[(80, "TCP", 30081), (443, "TCP", 30443)]),
        Svc(
            name="three",
            ports=[(53, "UDP", 30053)],
            spec={"externalTrafficPolicy": "Local", "healthCheckNodePort": 30999},
        ),
    ]


def _converged(provider: AWSProvider, cloud: SandboxCloud, services: list[Svc]) -> list[dict[str, Any]]:
    nodes = node_objects(cloud)
    for svc in services:
        converge(provider, intent_of(provider, svc, nodes))
    return nodes


def _intents(provider: AWSProvider, services: list[Svc], nodes: list[dict[str, Any]]) -> list[Intent]:
    return [intent_of(provider, svc, nodes) for svc in services]


def _all_plans_empty(provider: AWSProvider, services: list[Svc], nodes: list[dict[str, Any]]) -> None:
    for svc in services:
        plan = provider.plan(intent_of(provider, svc, nodes))
        assert plan.empty, render_plan(plan)


def test_a_new_node_costs_one_register_per_target_group_and_no_read_per_service(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    services = _services()
    nodes = [*_converged(provider, cloud, services), _node(cloud, "node-new")]
    provider.calls.reset()
    plan = plan_nodes(provider, _intents(provider, services, nodes))
    assert plan is not None
    assert plan.covered == plan.updated == {svc_key(s) for s in services}, plan.uncovered
    assert not plan.uncovered
    reads = provider.calls.reset().by_operation()
    assert _writes(reads) == {}, reads
    # For every Service at once: the node instances (the new one has the old ones' security
    # groups, so the VPC's groups are not listed; test_a_node_with_another_security_group_...).
    assert reads == {"ec2:DescribeInstances": 1}, reads
    apply_nodes(provider, plan)
    ops = provider.calls.reset().by_operation()
    assert _writes(ops) == {"elbv2:RegisterTargets": 4}, ops  # one per target group, nothing else
    new = _instance(nodes[-1])
    assert all(new in tg["Targets"] for tg in view.tgs())
    _all_plans_empty(provider, services, nodes)
    # A second node sync with the same nodes writes nothing.
    again = plan_nodes(provider, _intents(provider, services, nodes))
    assert again is not None and again.empty and again.covered == plan.covered
    provider.calls.reset()
    apply_nodes(provider, again)
    assert _writes(provider.calls.reset().by_operation()) == {}


def test_an_ineligible_node_costs_one_deregister_per_target_group(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    services = _services()
    nodes = _converged(provider, cloud, services)
    gone = _instance(nodes[0])
    nodes[0]["metadata"]["labels"]["node.kubernetes.io/exclude-from-external-load-balancers"] = "true"
    provider.calls.reset()
    plan = plan_nodes(provider, _intents(provider, services, nodes))
    assert plan is not None and len(plan.covered) == 3 and not plan.uncovered
    apply_nodes(provider, plan)
    assert _writes(provider.calls.reset().by_operation()) == {"elbv2:DeregisterTargets": 4}
    assert all(gone not in tg["Targets"] and len(tg["Targets"]) == 2 for tg in view.tgs())
    _all_plans_empty(provider, services, nodes)


def test_target_node_labels_filter_the_targets_as_the_services_own_plan(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    pool = {"pool": "edge"}
    picky = Svc(name="picky", annotations={ANN + "target-node-labels": "pool=edge"})
    plain = Svc(name="plain", ports=[(80, "TCP", 30090)])
    nodes = node_objects(cloud, labels={"node-a": pool})
    for svc in (picky, plain):
        converge(provider, intent_of(provider, svc, nodes))
    nodes = [*nodes, _node(cloud, "node-other"), _node(cloud, "node-edge", pool)]
    plan = plan_nodes(provider, _intents(provider, [picky, plain], nodes))
    assert plan is not None and not plan.uncovered
    apply_nodes(provider, plan)
    targets = {tg["Tags"][naming.SERVICE_UID_TAG]: tg["Targets"] for tg in view.tgs()}
    assert targets[picky.uid] == sorted([_instance(nodes[0]), _instance(nodes[-1])])
    assert len(targets[plain.uid]) == 5
    _all_plans_empty(provider, [picky, plain], nodes)


def test_target_groups_not_ours_and_services_not_remembered_are_left_alone(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    services = _services()
    nodes = _converged(provider, cloud, services)
    old = _instance(nodes[0])
    foreign = view.elbv2.create_target_group(
        Name="someone-elses",
        Protocol="TCP",
        Port=30080,
        VpcId=cloud.extra["vpc_id"],
        TargetType="instance",
        Tags=[{"Key": naming.cluster_tag_key("other"), "Value": "owned"}],
    )["TargetGroups"][0]["TargetGroupArn"]
    view.elbv2.register_targets(TargetGroupArn=foreign, Targets=[{"Id": old}])
    nodes = [*nodes, _node(cloud, "node-new")]
    # A provider that never planned these Services (a restart): nothing to plan from, no guess.
    fresh = AWSProvider.from_settings(fast_settings(cloud))
    plan = plan_nodes(fresh, _intents(fresh, services, nodes))
    assert plan is not None and plan.empty and not plan.covered
    assert set(plan.uncovered) == {svc_key(s) for s in services}
    plan = plan_nodes(provider, _intents(provider, services, nodes))
    assert plan is not None
    apply_nodes(provider, plan)
    assert {c.cloud_id for c in plan.changes}.isdisjoint({foreign})
    (theirs,) = [tg for tg in view.tgs() if tg["TargetGroupArn"] == foreign]
    assert theirs["Targets"] == [old]


def test_a_failed_write_leaves_the_others_applied_and_its_service_uncovered(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    services = _services()
    nodes = _converged(provider, cloud, services)
    nodes = [*nodes, _node(cloud, "node-new")]
    plan = plan_nodes(provider, _intents(provider, services, nodes))
    assert plan is not None and len(plan.covered) == 3
    # Someone deletes one Service's target group after the plan: its write fails.
    (lb,) = view.nlbs(services[0].uid)
    for listener in view.listeners(lb["LoadBalancerArn"]):
        view.elbv2.delete_listener(ListenerArn=listener["ListenerArn"])
    (lost,) = view.tgs(services[0].uid)
    view.elbv2.delete_target_group(TargetGroupArn=lost["TargetGroupArn"])
    failed = apply_nodes(provider, plan)
    assert set(failed) == {svc_key(services[0])}, failed
    assert "TargetGroupNotFound" in failed[svc_key(services[0])]
    assert not plan.uncovered, "the plan is not changed by its apply"
    new = _instance(nodes[-1])
    for svc in services[1:]:
        assert all(new in tg["Targets"] for tg in view.tgs(svc.uid))
    _all_plans_empty(provider, services[1:], nodes)
    # The failed one's own plan (what the controller runs for it) recreates what was lost.
    assert not provider.plan(intent_of(provider, services[0], nodes)).empty


def test_a_read_only_provider_writes_nothing(cloud: SandboxCloud, provider: AWSProvider) -> None:
    services = _services()
    nodes = _converged(provider, cloud, services)
    nodes = [*nodes, _node(cloud, "node-new")]
    dry = AWSProvider.from_settings(fast_settings(cloud), read_only=True)
    for svc in services:  # its plans remember the Services' target groups, as a controller's would
        dry.plan(intent_of(dry, svc, nodes))
    before = list(cloud.mutating_requests())
    plan = plan_nodes(dry, _intents(dry, services, nodes))
    assert plan is not None and len(plan.changes) == 4
    failed = apply_nodes(dry, plan)  # every write refused by the read-only guard: all re-planned
    assert set(failed) == {svc_key(s) for s in services}
    assert cloud.mutating_requests() == before


def svc_key(svc: Svc) -> str:
    return f"{svc.namespace}/{svc.name}"


def test_a_node_with_another_security_group_leaves_the_services_to_their_own_plans(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """Its node group would need the Services' node rules: each Service's own plan writes them."""
    services = _services()[:2]
    nodes = _converged(provider, cloud, services)
    tag = [{"Key": naming.cluster_tag_key(cloud.extra["cluster"]), "Value": "owned"}]
    group = view.ec2.create_security_group(
        GroupName="other-nodes",
        Description="another node group",
        VpcId=cloud.extra["vpc_id"],
        TagSpecifications=[{"ResourceType": "security-group", "Tags": tag}],
    )["GroupId"]
    inst = view.ec2.run_instances(
        ImageId="ami-03cf127a",
        MinCount=1,
        MaxCount=1,
        SubnetId=cloud.extra["private_subnets"][0],
        SecurityGroupIds=[group],
    )["Instances"][0]
    zone = inst["Placement"]["AvailabilityZone"]
    nodes = [
        *nodes,
        {
            "metadata": {"name": "node-other-group", "labels": {"topology.kubernetes.io/zone": zone}},
            "spec": {"providerID": f"aws:///{zone}/{inst['InstanceId']}"},
            "status": {"addresses": [{"type": "InternalIP", "address": inst["PrivateIpAddress"]}]},
        },
    ]
    plan = plan_nodes(provider, _intents(provider, services, nodes))
    assert plan is not None and plan.empty and not plan.covered
    assert set(plan.uncovered) == {svc_key(s) for s in services}
    assert all("security groups change" in why for why in plan.uncovered.values())
    # (and a Service's own plan does write a rule to that group)
    own = provider.plan(intent_of(provider, services[0], nodes))
    assert any(group in str(c.cloud_id) + str(c.after) for c in own.changes), render_plan(own)
