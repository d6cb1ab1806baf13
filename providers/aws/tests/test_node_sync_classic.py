"""The AWS node sync (node_sync.py) for classic ELBs, through botocore against moto, with NLB Services
beside them: a node change costs one RegisterInstancesWithLoadBalancer / DeregisterInstancesFromLoadBalancer
per classic ELB that changes and no read per Service, and leaves every Service's own plan empty."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lbprov_aws import AWSProvider
from lbprov_aws.testing import ANN, AwsView, Svc, converge, fast_settings, intent_of, node_objects
from lbprov_aws.testing_upstream import make_upstream_classic

from lbprov import naming
from lbprov.model import Intent
from lbprov.provider import NodeSyncPlan, SandboxCloud, apply_nodes, plan_nodes
from lbprov.render import render_plan

EXCLUDE = "node.kubernetes.io/exclude-from-external-load-balancers"


def _writes(ops: Counter[str]) -> dict[str, int]:
    return {op: n for op, n in ops.items() if ":Describe" not in op}


def _node(cloud: SandboxCloud, name: str) -> dict[str, Any]:
    added = cloud.add_node(name)
    return {
        "metadata": {"name": added.name, "labels": {"topology.kubernetes.io/zone": added.zone}},
        "spec": {"providerID": added.provider_id},
        "status": {"addresses": [{"type": "InternalIP", "address": added.internal_ip}]},
    }


def _instance(node: dict[str, Any]) -> str:
    return str(node["spec"]["providerID"]).rsplit("/", 1)[1]


def key(svc: Svc) -> str:
    return f"{svc.namespace}/{svc.name}"


def _classic(name: str, annotations: dict[str, str] | None = None, **kw: Any) -> Svc:
    return Svc(name=name, annotations={ANN + "type": "classic", **(annotations or {})}, **kw)


def _services() -> list[Svc]:
    """Two classic ELB Services (one with two ports: still one ELB), two NLB Services."""
    return [
        _classic("old-one"),
        _classic("old-two", ports=[(80, "TCP", 30081), (443, "TCP", 30443)]),
        Svc(name="nlb-one", ports=[(80, "TCP", 30082)]),
        Svc(name="nlb-two", ports=[(80, "TCP", 30083), (443, "TCP", 30444)]),
    ]


def _converged(provider: AWSProvider, cloud: SandboxCloud, services: list[Svc]) -> list[dict[str, Any]]:
    nodes = node_objects(cloud)
    for svc in services:
        converge(provider, intent_of(provider, svc, nodes))
    return nodes


def _intents(provider: AWSProvider, services: list[Svc], nodes: list[dict[str, Any]]) -> list[Intent]:
    return [intent_of(provider, svc, nodes) for svc in services]


def _plan(provider: AWSProvider, services: list[Svc], nodes: list[dict[str, Any]]) -> NodeSyncPlan:
    plan = plan_nodes(provider, _intents(provider, services, nodes))
    assert plan is not None
    return plan


def _all_plans_empty(provider: AWSProvider, services: list[Svc], nodes: list[dict[str, Any]]) -> None:
    for svc in services:
        plan = provider.plan(intent_of(provider, svc, nodes))
        assert plan.empty, render_plan(plan)


def _registered(view: AwsView, svc: Svc) -> list[str]:
    (lb,) = view.classics(svc.uid)
    return sorted(i["InstanceId"] for i in lb["Instances"])


def _nothing_left_to_sync(provider: AWSProvider, services: list[Svc], nodes: list[dict[str, Any]]) -> None:
    """A second node sync with the same nodes covers every Service and writes nothing."""
    again = _plan(provider, services, nodes)
    assert again.empty and again.covered == {key(s) for s in services}, again.uncovered
    provider.calls.reset()
    apply_nodes(provider, again)
    assert _writes(provider.calls.reset().by_operation()) == {}


def test_a_new_node_costs_one_register_per_classic_elb_and_no_read_per_service(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    services = _services()
    nodes = [*_converged(provider, cloud, services), _node(cloud, "node-new")]
    provider.calls.reset()
    plan = _plan(provider, services, nodes)
    assert plan.covered == plan.updated == {key(s) for s in services}, plan.uncovered
    reads = provider.calls.reset().by_operation()
    assert reads == {"ec2:DescribeInstances": 1}, reads  # for every Service at once
    classic_changes = [c for c in plan.changes if c.data["type"] == "classic"]
    assert sorted(c.name for c in classic_changes) == sorted(s.lb_name for s in services[:2])
    apply_nodes(provider, plan)
    ops = provider.calls.reset().by_operation()
    # One per classic ELB (however many ports), one per target group of the NLBs, nothing else.
    assert _writes(ops) == {"elb:RegisterInstancesWithLoadBalancer": 2, "elbv2:RegisterTargets": 3}, ops
    new = _instance(nodes[-1])
    for svc in services[:2]:
        assert _registered(view, svc) == sorted([*(_instance(n) for n in nodes)])
    assert all(new in tg["Targets"] for tg in view.tgs())
    _all_plans_empty(provider, services, nodes)
    _nothing_left_to_sync(provider, services, nodes)


def test_an_excluded_node_costs_one_deregister_per_classic_elb(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    services = _services()
    nodes = _converged(provider, cloud, services)
    gone = _instance(nodes[0])
    nodes[0]["metadata"]["labels"][EXCLUDE] = "true"
    plan = _plan(provider, services, nodes)
    assert plan.covered == {key(s) for s in services} and not plan.uncovered
    provider.calls.reset()
    assert apply_nodes(provider, plan) == {}
    ops = provider.calls.reset().by_operation()
    assert _writes(ops) == {"elb:DeregisterInstancesFromLoadBalancer": 2, "elbv2:DeregisterTargets": 3}, ops
    for svc in services[:2]:
        assert gone not in _registered(view, svc) and len(_registered(view, svc)) == 2
    _all_plans_empty(provider, services, nodes)
    _nothing_left_to_sync(provider, services, nodes)


def test_a_replaced_node_costs_one_register_and_one_deregister_per_classic_elb(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    services = _services()
    nodes = _converged(provider, cloud, services)
    gone = _instance(nodes[1])
    nodes = [nodes[0], nodes[2], _node(cloud, "node-replacement")]
    plan = _plan(provider, services, nodes)
    assert plan.covered == {key(s) for s in services} and not plan.uncovered
    provider.calls.reset()
    assert apply_nodes(provider, plan) == {}
    ops = provider.calls.reset().by_operation()
    assert _writes(ops) == {
        "elb:RegisterInstancesWithLoadBalancer": 2,
        "elb:DeregisterInstancesFromLoadBalancer": 2,
        "elbv2:RegisterTargets": 3,
        "elbv2:DeregisterTargets": 3,
    }, ops
    for svc in services[:2]:
        assert _registered(view, svc) == sorted(_instance(n) for n in nodes)
        assert gone not in _registered(view, svc)
    _all_plans_empty(provider, services, nodes)
    _nothing_left_to_sync(provider, services, nodes)


def test_only_the_classic_elbs_that_change_are_written(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """A Service whose node filter keeps it as it is (``target-node-labels``) is covered, not written."""
    picky = _classic("picky", {ANN + "target-node-labels": "pool=edge"})
    plain = _classic("plain", ports=[(80, "TCP", 30090)])
    nodes = node_objects(cloud, labels={"node-a": {"pool": "edge"}})
    for svc in (picky, plain):
        converge(provider, intent_of(provider, svc, nodes))
    nodes = [*nodes, _node(cloud, "node-other")]
    plan = _plan(provider, [picky, plain], nodes)
    assert plan.covered == {key(picky), key(plain)} and plan.updated == {key(plain)}
    provider.calls.reset()
    apply_nodes(provider, plan)
    assert _writes(provider.calls.reset().by_operation()) == {"elb:RegisterInstancesWithLoadBalancer": 1}
    assert _registered(view, picky) == [_instance(nodes[0])]
    assert len(_registered(view, plain)) == 4
    _all_plans_empty(provider, [picky, plain], nodes)


def test_a_failed_classic_write_re_plans_only_its_service_and_forgets_its_instances(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    services = _services()
    nodes = [*_converged(provider, cloud, services), _node(cloud, "node-new")]
    plan = _plan(provider, services, nodes)
    assert plan.covered == {key(s) for s in services}
    # Someone deletes one classic ELB after the plan: its write fails (moto refuses it as AWS does).
    lost = services[0]
    view.elb.delete_load_balancer(LoadBalancerName=lost.lb_name)
    failed = apply_nodes(provider, plan)
    assert set(failed) == {key(lost)}, failed
    assert lost.lb_name in failed[key(lost)] and "LoadBalancerNotFound" in failed[key(lost)]
    assert provider.reader.remembered.classic(lost.lb_name) is None
    new = _instance(nodes[-1])
    assert new in _registered(view, services[1])
    assert all(new in tg["Targets"] for tg in view.tgs())
    _all_plans_empty(provider, services[1:], nodes)
    # The failed one's next node sync leaves it to its own plan, which recreates what was lost.
    again = _plan(provider, services, nodes)
    assert set(again.uncovered) == {key(lost)} and "not remembered" in again.uncovered[key(lost)]
    converge(provider, intent_of(provider, lost, nodes))
    assert _registered(view, lost) == sorted(_instance(n) for n in nodes)
    _nothing_left_to_sync(provider, services, nodes)


@pytest.mark.parametrize(
    "op", ["register_instances_with_load_balancer", "deregister_instances_from_load_balancer"]
)
def test_the_strict_layer_refuses_instances_of_a_classic_elb_that_does_not_exist(
    view: AwsView, op: str
) -> None:
    """As AWS does (LoadBalancerNotFound, HTTP 400): moto fails with a 500 that a client retries."""
    with pytest.raises(ClientError) as err:
        getattr(view.elb, op)(LoadBalancerName="a" * 32, Instances=[{"InstanceId": "i-0123456789abcdef0"}])
    assert err.value.response["Error"]["Code"] == "LoadBalancerNotFound"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_failed_classic_write_in_a_read_round_re_plans_from_a_fresh_read(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """A failed write may have been applied (a lost answer): its Service's re-plan in the same read
    round reads its ELB again instead of the round's listing. The failure is raised by a handler of
    the SDK's ``after-call`` event, once moto has applied the request: moto cannot fail a call on
    request, and this is the one case that needs a call that both takes effect and fails."""
    svc = _classic("flaky")
    nodes = _converged(provider, cloud, [svc])
    nodes = [*nodes, _node(cloud, "node-new")]
    elb = provider.clients.clients["elb"]

    def lost_answer(**kwargs: Any) -> None:  # (an error no retry hides, after the write went through)
        raise ClientError({"Error": {"Code": "InvalidEndPoint", "Message": "injected"}}, "Register")

    with provider.read_round():
        assert provider.plan(intent_of(provider, svc, nodes[:-1])).empty  # the round lists them
        plan = _plan(provider, [svc], nodes)
        elb.meta.events.register(
            "after-call.elastic-load-balancing.RegisterInstancesWithLoadBalancer", lost_answer
        )
        try:
            failed = apply_nodes(provider, plan)
        finally:
            elb.meta.events.unregister(
                "after-call.elastic-load-balancing.RegisterInstancesWithLoadBalancer", lost_answer
            )
        assert set(failed) == {key(svc)}
        assert provider.reader.remembered.classic(svc.lb_name) is None
        assert _instance(nodes[-1]) in _registered(view, svc)  # applied after all
        # Its re-plan in the round sees the ELB as it is (the round's listing is older): nothing to do.
        replan = provider.plan(intent_of(provider, svc, nodes))
        assert replan.empty, render_plan(replan)
    _nothing_left_to_sync(provider, [svc], nodes)


def test_a_node_sync_in_a_read_round_leaves_the_rounds_later_plans_empty(
    provider: AWSProvider, cloud: SandboxCloud
) -> None:
    """The round listed the classic ELBs before the node sync registered the new node: the later
    plans of the round take the instances lbprov wrote since, not the listing's."""
    services = _services()
    nodes = _converged(provider, cloud, services)
    new_nodes = [*nodes, _node(cloud, "node-new")]
    with provider.read_round():
        _all_plans_empty(provider, services, nodes)  # the round's listings
        plan = _plan(provider, services, new_nodes)
        assert apply_nodes(provider, plan) == {}
        provider.calls.reset()
        _all_plans_empty(provider, services, new_nodes)
        ops = provider.calls.reset().by_operation()
        assert "elb:DescribeLoadBalancers" not in ops, ops  # from what is remembered, not read again


def test_instances_changed_behind_lbprovs_back_are_repaired_by_the_services_own_plan(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = _classic("drifted")
    nodes = _converged(provider, cloud, [svc])
    by_hand = _instance(nodes[0])
    view.elb.deregister_instances_from_load_balancer(
        LoadBalancerName=svc.lb_name, Instances=[{"InstanceId": by_hand}]
    )
    # The node sync plans from what lbprov remembers: it cannot see the hand edit.
    nodes = [*nodes, _node(cloud, "node-new")]
    plan = _plan(provider, [svc], nodes)
    (change,) = plan.changes
    assert by_hand in change.before["instances"]
    apply_nodes(provider, plan)
    assert by_hand not in _registered(view, svc)
    # The Service's own plan (its deep check: the resync's read round lists the ELBs afresh) sees
    # it and registers it again; what is remembered follows.
    with provider.read_round():
        repair = provider.plan(intent_of(provider, svc, nodes))
        assert [(c.kind, c.before["instances"], c.after["instances"]) for c in repair.changes] == [
            ("load-balancer", sorted(_registered(view, svc)), sorted(_instance(n) for n in nodes))
        ], render_plan(repair)
        provider.apply(repair)
    remembered = provider.reader.remembered.classic(svc.lb_name)
    assert remembered is not None and list(remembered[1]) == sorted(_instance(n) for n in nodes)
    assert _registered(view, svc) == sorted(_instance(n) for n in nodes)
    _all_plans_empty(provider, [svc], nodes)
    _nothing_left_to_sync(provider, [svc], nodes)


def test_classic_elbs_not_remembered_or_not_their_own_are_left_to_their_plans(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    services = _services()
    nodes = [*_converged(provider, cloud, services), _node(cloud, "node-new")]
    # A provider that never read them (a restart): nothing to plan from, no guess.
    fresh = AWSProvider.from_settings(fast_settings(cloud))
    plan = _plan(fresh, services, nodes)
    assert plan.empty and not plan.covered and set(plan.uncovered) == {key(s) for s in services}
    # Once it listed them (its first plans), the classic ELBs are known; the target groups' targets
    # come from each Service's own plan.
    fresh.plan(intent_of(fresh, services[2], nodes))
    plan = _plan(fresh, services, nodes)
    assert plan.covered == {key(s) for s in services[:3]}, plan.uncovered
    # Another cluster identity on an ELB (a second cluster of the same name): never answered for.
    view.elb.add_tags(
        LoadBalancerNames=[services[0].lb_name], Tags=[{"Key": naming.CLUSTER_ID_TAG, "Value": "other"}]
    )
    fresh.plan(intent_of(fresh, services[2], nodes))  # a listing
    plan = _plan(fresh, services, nodes)
    assert key(services[0]) in plan.uncovered and key(services[1]) in plan.covered
    assert all(c.data["service"] != key(services[0]) for c in plan.changes)


def test_a_predecessor_classic_elb_is_left_to_its_plan_until_adopted(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """cloud-provider-aws's ELB for the Service (its tags, not lbprov's): its own plan adopts it."""
    svc = _classic("moved")
    nodes = node_objects(cloud)
    make_upstream_classic(cloud, svc)
    first = provider.plan(intent_of(provider, svc, nodes))
    assert any(c.action.value == "adopt" for c in first.changes), render_plan(first)
    plan = _plan(provider, [svc], [*nodes])
    assert set(plan.uncovered) == {key(svc)} and "not its own" in plan.uncovered[key(svc)]
    converge(provider, intent_of(provider, svc, nodes))
    nodes = [*nodes, _node(cloud, "node-new")]
    plan = _plan(provider, [svc], nodes)
    assert plan.covered == {key(svc)}, plan.uncovered
    apply_nodes(provider, plan)
    assert _registered(view, svc) == sorted(_instance(n) for n in nodes)
    _all_plans_empty(provider, [svc], nodes)


def test_a_read_only_provider_writes_nothing_to_classic_elbs(
    cloud: SandboxCloud, provider: AWSProvider
) -> None:
    services = _services()
    nodes = [*_converged(provider, cloud, services), _node(cloud, "node-new")]
    dry = AWSProvider.from_settings(fast_settings(cloud), read_only=True)
    for svc in services:  # its plans remember the Services' resources, as a controller's would
        dry.plan(intent_of(dry, svc, nodes))
    before = list(cloud.mutating_requests())
    plan = _plan(dry, services, nodes)
    assert len(plan.changes) == 5
    failed = apply_nodes(dry, plan)  # every write refused by the read-only guard: all re-planned
    assert set(failed) == {key(s) for s in services}
    assert cloud.mutating_requests() == before


def test_a_node_with_another_security_group_leaves_the_classic_elb_to_its_own_plan(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """Its node group would need the rule admitting the cluster's classic ELB backend group: the
    Service's own plan writes it."""
    svc = _classic("guarded")
    nodes = _converged(provider, cloud, [svc])
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
    plan = _plan(provider, [svc], nodes)
    assert plan.empty and set(plan.uncovered) == {key(svc)}
    assert "security groups change" in plan.uncovered[key(svc)]
    own = provider.plan(intent_of(provider, svc, nodes))
    assert any(group in str(c.cloud_id) for c in own.changes if c.kind == "security-group-rule"), render_plan(
        own
    )


def test_a_classic_elb_kept_without_the_type_annotation_is_left_to_its_plan(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """cloud-provider-aws's default is a classic ELB, lbprov's an NLB: a Service without the type
    annotation keeps the classic ELB it has (diff/adopt.py ``keep_kind``), which only its own plan
    decides (an NLB of the Service as well would make it an NLB Service)."""
    svc = Svc(name="unannotated")
    make_upstream_classic(cloud, svc)
    nodes = node_objects(cloud)
    converge(provider, intent_of(provider, svc, nodes))
    assert len(view.classics(svc.uid)) == 1 and not view.nlbs(svc.uid)  # adopted, kept classic
    nodes = [*nodes, _node(cloud, "node-new")]
    plan = _plan(provider, [svc], nodes)
    assert set(plan.uncovered) == {key(svc)} and plan.empty
    converge(provider, intent_of(provider, svc, nodes))  # what the controller's re-plan does
    assert _registered(view, svc) == sorted(_instance(n) for n in nodes)
