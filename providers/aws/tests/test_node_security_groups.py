"""Node security groups resolved per instance, as upstream (issue 10, item 1).

cloud-provider-aws ``findSecurityGroupForInstance``: the instance's group tagged for the cluster;
else its only group; else an error naming the instance. Nodes of two node groups get the rules in
both groups; an untagged only group gets them too (it used to get none, and the Service succeeded);
an instance whose group cannot be told fails the Service with the instance's ID in the message.
"""

from __future__ import annotations

from typing import Any

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.desired import NodeSecurityGroupError
from lbprov_aws.testing import (
    ANN,
    CLUSTER,
    NODE_RULE_MODEL,
    AwsView,
    Svc,
    converge,
    delete_all,
    intent_of,
)

from lbprov import naming
from lbprov.provider import SandboxCloud

#: NodePort rules per node group: the model of NLBs created without security groups (the backend
#: group's rules per node group: test_nlb_security_groups.py).
#: (conftest.py's ``provider`` fixture builds the module's provider with these settings.)
PROVIDER_SETTINGS = NODE_RULE_MODEL


def _group(view: AwsView, cloud: SandboxCloud, name: str, *, tagged: bool) -> str:
    spec = (
        [
            {
                "ResourceType": "security-group",
                "Tags": [{"Key": naming.cluster_tag_key(CLUSTER), "Value": "owned"}],
            }
        ]
        if tagged
        else []
    )
    kw: dict[str, Any] = {"TagSpecifications": spec} if spec else {}
    sg: str = view.ec2.create_security_group(
        GroupName=name, Description=name, VpcId=cloud.extra["vpc_id"], **kw
    )["GroupId"]
    return sg


def _node(view: AwsView, cloud: SandboxCloud, name: str, groups: list[str]) -> dict[str, Any]:
    inst = view.ec2.run_instances(
        ImageId="ami-03cf127a",
        MinCount=1,
        MaxCount=1,
        SubnetId=cloud.extra["private_subnets"][0],
        SecurityGroupIds=groups,
    )["Instances"][0]
    zone = inst["Placement"]["AvailabilityZone"]
    return {
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
        "spec": {"providerID": f"aws:///{zone}/{inst['InstanceId']}"},
        "status": {"addresses": [{"type": "InternalIP", "address": inst["PrivateIpAddress"]}]},
    }


def _client_ports(view: AwsView, sg_id: str) -> set[tuple[str, int, int, str]]:
    desc = f"lbprov.io/rule/nlb/client={CLUSTER}"
    group = view.ec2.describe_security_groups(GroupIds=[sg_id])["SecurityGroups"][0]
    return {
        (p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIp"])
        for p in group["IpPermissions"]
        for r in p.get("IpRanges", [])
        if r.get("Description") == desc
    }


def test_two_node_groups_each_get_the_rules_and_lose_them_on_delete(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    g1 = _group(view, cloud, "ng-1", tagged=True)
    g2 = _group(view, cloud, "ng-2", tagged=True)
    nodes = [_node(view, cloud, "n1", [g1]), _node(view, cloud, "n2", [g2])]
    svc = Svc()
    converge(provider, intent_of(provider, svc, nodes))
    assert _client_ports(view, g1) == {("tcp", 30080, 30080, "0.0.0.0/0")}
    assert _client_ports(view, g2) == {("tcp", 30080, 30080, "0.0.0.0/0")}
    delete_all(provider, svc)
    assert _client_ports(view, g1) == set() and _client_ports(view, g2) == set()


def test_eks_cluster_group_beside_an_untagged_node_group_takes_the_tagged_one(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    cluster_sg = _group(view, cloud, "eks-cluster-sg", tagged=True)
    node_group_sg = _group(view, cloud, "ng-untagged", tagged=False)
    nodes = [_node(view, cloud, "n1", [cluster_sg, node_group_sg])]
    svc = Svc()
    converge(provider, intent_of(provider, svc, nodes))
    assert _client_ports(view, cluster_sg) == {("tcp", 30080, 30080, "0.0.0.0/0")}
    assert _client_ports(view, node_group_sg) == set()


@pytest.mark.parametrize("kind", ["nlb", "classic"])
def test_an_untagged_only_group_gets_the_rules_and_a_delete_finds_them(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView, kind: str
) -> None:
    only = _group(view, cloud, "lonely", tagged=False)
    nodes = [_node(view, cloud, "n1", [only])]
    svc = Svc(annotations={ANN + "type": kind})
    converge(provider, intent_of(provider, svc, nodes))
    group = view.ec2.describe_security_groups(GroupIds=[only])["SecurityGroups"][0]
    if kind == "nlb":
        assert _client_ports(view, only) == {("tcp", 30080, 30080, "0.0.0.0/0")}
    else:
        pairs = [pair for p in group["IpPermissions"] for pair in p.get("UserIdGroupPairs", [])]
        assert len(pairs) == 1, group["IpPermissions"]
    delete_all(provider, svc)
    group = view.ec2.describe_security_groups(GroupIds=[only])["SecurityGroups"][0]
    assert group["IpPermissions"] == []


@pytest.mark.parametrize("tagged", [False, True])
def test_an_instance_whose_group_cannot_be_told_fails_naming_it(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView, tagged: bool
) -> None:
    a = _group(view, cloud, "a", tagged=tagged)
    b = _group(view, cloud, "b", tagged=tagged)
    node = _node(view, cloud, "n1", [a, b])
    instance = node["spec"]["providerID"].rsplit("/", 1)[-1]
    with pytest.raises(NodeSecurityGroupError, match=instance):
        provider.plan(intent_of(provider, Svc(), [node]))
    assert view.nlbs() == []
