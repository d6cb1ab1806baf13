"""Classic ELB lifecycle, switching classic <-> NLB, and the invariants for classic."""

from __future__ import annotations

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.testing import (
    ANN,
    CLUSTER,
    AwsView,
    Svc,
    converge,
    delete_all,
    intent_of,
    kinds,
    node_objects,
)

from lbprov import naming
from lbprov.cloudcalls import ReadOnlyViolation
from lbprov.model import OwnershipConflict
from lbprov.provider import SandboxCloud

CLASSIC = {ANN + "type": "classic"}


def _instances(cloud: SandboxCloud, names: tuple[str, ...] = ("node-a", "node-b", "node-c")) -> list[str]:
    return sorted(n.provider_id.rsplit("/", 1)[1] for n in cloud.nodes if n.name in names)


def test_classic_lifecycle(provider: AWSProvider, cloud: SandboxCloud, view: AwsView) -> None:
    svc = Svc(ports=[(80, "TCP", 30080), (443, "TCP", 30443)], annotations=dict(CLASSIC))
    svc.spec["loadBalancerSourceRanges"] = ["203.0.113.0/24"]
    intent = intent_of(provider, svc, node_objects(cloud))
    plan = converge(provider, intent)
    assert kinds(plan)[0] == ("create", "security-group")
    [lb] = view.classics(svc.uid)
    assert lb["LoadBalancerName"] == svc.lb_name
    assert lb["Tags"][naming.LB_KIND_TAG] == "classic"
    assert sorted(
        (li["Listener"]["LoadBalancerPort"], li["Listener"]["InstancePort"])
        for li in lb["ListenerDescriptions"]
    ) == [
        (80, 30080),
        (443, 30443),
    ]
    # Cluster policy: TCP on the first NodePort, 10/5/2/6 (REFERENCE.md).
    assert lb["HealthCheck"] == {
        "Target": "TCP:30080",
        "Interval": 10,
        "Timeout": 5,
        "UnhealthyThreshold": 6,
        "HealthyThreshold": 2,
    }
    assert sorted(i["InstanceId"] for i in lb["Instances"]) == _instances(cloud)
    assert sorted(lb["Subnets"]) == sorted(cloud.extra["public_subnets"])
    # Its own security group opens the service ports to the source ranges...
    [sg] = [sg for sg in view.security_groups() if sg["GroupName"] == f"k8s-elb-{svc.lb_name}"]
    [backend] = [sg for sg in view.security_groups() if sg["GroupName"] == f"k8s-elb-backend-{CLUSTER}"]
    assert sorted(lb["SecurityGroups"]) == sorted([sg["GroupId"], backend["GroupId"]])
    opened = {(p["FromPort"], r["CidrIp"]) for p in sg["IpPermissions"] for r in p["IpRanges"]}
    assert opened == {(80, "203.0.113.0/24"), (443, "203.0.113.0/24")}
    # ...and the node group admits the cluster's shared backend group: one rule for all classic ELBs.
    assert view.node_pair_rules() == [(backend["GroupId"], f"lbprov.io/rule/elb-backend={CLUSTER}")]
    assert view.node_rules() == set()

    ingress = provider.apply(provider.plan(intent))
    assert ingress[0].hostname == lb["DNSName"]
    delete_all(provider, svc)
    view.assert_nothing_owned(svc, [30080, 30443])
    # It was the last classic ELB: the shared group and its node rule are gone too.
    assert [sg for sg in view.security_groups() if sg["GroupName"].startswith("k8s-elb-")] == []
    assert view.node_pair_rules() == []


def test_classic_elbs_share_one_node_rule(provider: AWSProvider, cloud: SandboxCloud, view: AwsView) -> None:
    nodes = node_objects(cloud)
    services = [
        Svc(name=f"c{i}", ports=[(80, "TCP", 30100 + i)], annotations=dict(CLASSIC)) for i in range(3)
    ]
    for svc in services:
        converge(provider, intent_of(provider, svc, nodes))
    [(backend_id, _)] = view.node_pair_rules()
    for lb in view.classics():
        assert backend_id in lb["SecurityGroups"]
    delete_all(provider, services[0])
    assert view.node_pair_rules() == [(backend_id, f"lbprov.io/rule/elb-backend={CLUSTER}")]
    for svc in services[1:]:
        assert provider.plan(intent_of(provider, svc, nodes)).empty
        delete_all(provider, svc)
    assert view.node_pair_rules() == []
    assert [sg for sg in view.security_groups() if sg["GroupName"].startswith("k8s-elb-")] == []


def test_classic_updates_in_place(provider: AWSProvider, cloud: SandboxCloud, view: AwsView) -> None:
    nodes = node_objects(cloud)
    svc = Svc(annotations=dict(CLASSIC))
    converge(provider, intent_of(provider, svc, nodes))
    svc.ports = [(80, "TCP", 30081), (8443, "TCP", 30443)]
    svc.spec.update(
        externalTrafficPolicy="Local", healthCheckNodePort=32001, loadBalancerSourceRanges=["10.1.0.0/16"]
    )
    svc.annotations.update(
        {ANN + "cross-zone-load-balancing-enabled": "true", ANN + "additional-resource-tags": "a=b"}
    )
    nodes = [n for n in nodes if n["metadata"]["name"] != "node-c"]
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert ("replace", "load-balancer") not in kinds(plan)
    assert {("replace", "listener"), ("create", "listener"), ("update", "load-balancer")} <= set(kinds(plan))
    [lb] = view.classics(svc.uid)
    assert sorted(
        (li["Listener"]["LoadBalancerPort"], li["Listener"]["InstancePort"])
        for li in lb["ListenerDescriptions"]
    ) == [
        (80, 30081),
        (8443, 30443),
    ]
    assert lb["HealthCheck"]["Target"] == "HTTP:32001/healthz"
    assert sorted(i["InstanceId"] for i in lb["Instances"]) == _instances(cloud, ("node-a", "node-b"))
    assert lb["Tags"]["a"] == "b"
    attrs = view.elb.describe_load_balancer_attributes(LoadBalancerName=svc.lb_name)["LoadBalancerAttributes"]
    assert attrs["CrossZoneLoadBalancing"]["Enabled"] is True
    [sg] = [sg for sg in view.security_groups() if sg["GroupName"] == f"k8s-elb-{svc.lb_name}"]
    opened = {(p["FromPort"], r["CidrIp"]) for p in sg["IpPermissions"] for r in p["IpRanges"]}
    assert opened == {(80, "10.1.0.0/16"), (8443, "10.1.0.0/16")}
    # internal: replace.
    svc.annotations[ANN + "internal"] = "true"
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert ("replace", "load-balancer") in kinds(plan)
    [lb] = view.classics(svc.uid)
    assert lb["Scheme"] == "internal" and sorted(lb["Subnets"]) == sorted(cloud.extra["private_subnets"])
    delete_all(provider, svc)
    view.assert_nothing_owned(svc)


@pytest.mark.parametrize("start", ["classic", "nlb"])
def test_switching_kind_deletes_the_old_and_creates_the_new(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView, start: str
) -> None:
    nodes = node_objects(cloud)
    svc = Svc(annotations={ANN + "type": start} if start == "classic" else {ANN + "type": "nlb"})
    converge(provider, intent_of(provider, svc, nodes))
    target = "nlb" if start == "classic" else "classic"
    svc.annotations[ANN + "type"] = target
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert ("delete", "load-balancer") in kinds(plan) and ("create", "load-balancer") in kinds(plan)
    assert len(view.nlbs(svc.uid)) == (1 if target == "nlb" else 0)
    assert len(view.classics(svc.uid)) == (1 if target == "classic" else 0)
    if target == "classic":
        assert view.tgs(svc.uid) == [] and view.node_rules() == set()
    else:
        assert [sg for sg in view.security_groups() if sg["GroupName"].startswith("k8s-elb-")] == []
        # (the NLB's backend group is admitted by the node group: test_nlb_security_groups.py)
        assert [d for _, d in view.node_pair_rules() if d and "elb-backend" in d] == []
    delete_all(provider, svc)
    view.assert_nothing_owned(svc, [30080])


def test_delete_ignores_todays_annotation(provider: AWSProvider, cloud: SandboxCloud, view: AwsView) -> None:
    """k/k#95042: the Service drops its type annotation and goes away: the classic ELB must still go."""
    svc = Svc(annotations=dict(CLASSIC))
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    svc.annotations.clear()  # today's Service would ask for an NLB
    plan = delete_all(provider, svc)
    assert ("delete", "load-balancer") in kinds(plan) and ("delete", "security-group") in kinds(plan)
    view.assert_nothing_owned(svc)


def test_foreign_classic_elb_is_a_conflict(provider: AWSProvider, cloud: SandboxCloud, view: AwsView) -> None:
    svc = Svc(annotations=dict(CLASSIC))
    view.elb.create_load_balancer(
        LoadBalancerName=svc.lb_name,
        Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 1, "InstanceProtocol": "TCP", "InstancePort": 1}],
        Subnets=cloud.extra["public_subnets"][:1],
        Tags=[{"Key": naming.cluster_tag_key("other-cluster"), "Value": "owned"}],
    )
    with pytest.raises(OwnershipConflict, match="other-cluster"):
        provider.plan(intent_of(provider, svc, node_objects(cloud)))
    assert provider.plan_delete(intent_of(provider, svc, []).ref).empty
    assert len(view.classics()) == 1


def test_classic_read_only(cloud: SandboxCloud) -> None:
    ro = AWSProvider.from_settings(cloud.settings, read_only=True)
    svc = Svc(annotations=dict(CLASSIC))
    plan = ro.plan(intent_of(ro, svc, node_objects(cloud)))
    with pytest.raises(ReadOnlyViolation):
        ro.apply(plan)
    assert cloud.mutating_requests() == []


def test_foreign_security_group_named_like_ours_is_a_conflict(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(annotations=dict(CLASSIC))
    view.ec2.create_security_group(
        GroupName=f"k8s-elb-{svc.lb_name}", Description="not ours", VpcId=cloud.extra["vpc_id"]
    )
    with pytest.raises(OwnershipConflict, match="security group"):
        provider.plan(intent_of(provider, svc, node_objects(cloud)))
    assert len([sg for sg in view.security_groups() if sg["GroupName"] == f"k8s-elb-{svc.lb_name}"]) == 1
