"""Cluster identity and leaks recoverable from the cloud's state alone (issue 10, item 6).

Every resource lbprov creates carries ``lbprov.io/cluster-id``, and older ones get it on their next
reconcile. A node rule that no target group of the cluster wants (left by the race the issue
describes, or by a crash) is removed by the next reconcile of any Service and by deletes; the shared
classic backend group that no classic ELB uses goes too, even after a crash right after the last
ELB's delete. Both only where the cluster identity is known and matches.
"""

from __future__ import annotations

from lbprov_aws import AWSProvider
from lbprov_aws.testing import (
    ANN,
    CLUSTER,
    CLUSTER_ID,
    NODE_RULE_MODEL,
    AwsView,
    Svc,
    converge,
    delete_all,
    fast_settings,
    intent_of,
    node_objects,
)

from lbprov import naming
from lbprov.provider import SandboxCloud
from lbprov.render import render_plan

CLIENT = f"lbprov.io/rule/nlb/client={CLUSTER}"


#: Orphaned NodePort rules exist only in the model of NLBs created without security groups.
#: (conftest.py's ``provider`` fixture builds the module's provider with these settings.)
PROVIDER_SETTINGS = NODE_RULE_MODEL


def _orphan(view: AwsView, port: int) -> None:
    """A client rule for a NodePort no Service wants, as the delete race leaves it."""
    view.ec2.authorize_security_group_ingress(
        GroupId=view.cloud.extra["node_security_group_id"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": port,
                "ToPort": port,
                "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": CLIENT}],
            }
        ],
    )


def test_everything_created_carries_the_cluster_identity(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    cluster_id = CLUSTER_ID
    nlb, classic = Svc(name="n"), Svc(name="c", annotations={ANN + "type": "classic"})
    for svc in (nlb, classic):
        converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert view.nlbs(nlb.uid)[0]["Tags"][naming.CLUSTER_ID_TAG] == cluster_id
    assert all(tg["Tags"][naming.CLUSTER_ID_TAG] == cluster_id for tg in view.tgs(nlb.uid))
    assert view.classics(classic.uid)[0]["Tags"][naming.CLUSTER_ID_TAG] == cluster_id
    made = [sg for sg in view.security_groups() if sg["GroupName"].startswith("k8s-elb-")]
    assert len(made) == 2
    for sg in made:
        assert {t["Key"]: t["Value"] for t in sg["Tags"]}[naming.CLUSTER_ID_TAG] == cluster_id
    assert [o.cluster_id for o in provider.list_owned()] == [cluster_id, cluster_id]


def test_an_older_load_balancer_gets_the_identity_on_its_next_reconcile(
    cloud: SandboxCloud, view: AwsView
) -> None:
    older = AWSProvider.from_settings(fast_settings(cloud, cluster_id=None))
    svc = Svc()
    converge(older, intent_of(older, svc, node_objects(cloud)))
    assert naming.CLUSTER_ID_TAG not in view.nlbs(svc.uid)[0]["Tags"]
    provider = AWSProvider.from_settings(fast_settings(cloud))
    plan = converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert not plan.empty
    assert view.nlbs(svc.uid)[0]["Tags"][naming.CLUSTER_ID_TAG] == CLUSTER_ID


def test_an_orphaned_node_rule_goes_with_the_next_reconcile(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(ports=[(80, "TCP", 30080)])
    nodes = node_objects(cloud)
    converge(provider, intent_of(provider, svc, nodes))
    _orphan(view, 30999)
    plan = provider.plan(intent_of(provider, svc, nodes))
    assert not plan.empty, "the orphaned rule must show in the plan"
    provider.apply(plan)
    assert view.node_rules("client") == {("tcp", 30080, 30080, "0.0.0.0/0")}
    assert provider.plan(intent_of(provider, svc, nodes)).empty


def test_a_delete_does_not_pass_while_an_orphan_remains(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    a, b = Svc(name="a", ports=[(80, "TCP", 30080)]), Svc(name="b", ports=[(80, "TCP", 30081)])
    nodes = node_objects(cloud)
    for svc in (a, b):
        converge(provider, intent_of(provider, svc, nodes))
    _orphan(view, 30555)
    delete_all(provider, b)  # asserts that the delete converges (plan_delete empty afterwards)
    assert view.node_rules("client") == {("tcp", 30080, 30080, "0.0.0.0/0")}


def test_without_a_cluster_identity_no_rule_is_deleted_from_cloud_state(
    cloud: SandboxCloud, view: AwsView
) -> None:
    provider = AWSProvider.from_settings(fast_settings(cloud, cluster_id=None))
    svc = Svc(ports=[(80, "TCP", 30080)])
    nodes = node_objects(cloud)
    converge(provider, intent_of(provider, svc, nodes))
    _orphan(view, 30999)
    assert provider.plan(intent_of(provider, svc, nodes)).empty
    assert ("tcp", 30999, 30999, "0.0.0.0/0") in view.node_rules("client")


def _backend(view: AwsView) -> list[dict[str, object]]:
    return [sg for sg in view.security_groups() if sg["GroupName"] == f"k8s-elb-backend-{CLUSTER}"]


def test_the_shared_backend_group_goes_even_after_a_crash_past_the_last_elb_delete(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(annotations={ANN + "type": "classic"})
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert len(_backend(view)) == 1 and len(view.node_pair_rules()) == 1
    # SIGKILL right after DeleteLoadBalancer: the ELB is gone, nothing else was done.
    view.elb.delete_load_balancer(LoadBalancerName=svc.lb_name)
    plan = delete_all(provider, svc)
    assert ("delete", "security-group") in [(c.action.value, c.kind) for c in plan.changes], render_plan(plan)
    assert _backend(view) == [] and view.node_pair_rules() == []
    view.assert_nothing_owned(svc)


def test_a_backend_group_of_another_identity_is_never_deleted(cloud: SandboxCloud, view: AwsView) -> None:
    other = AWSProvider.from_settings(fast_settings(cloud, cluster_id="another-cluster-uid"))
    svc = Svc(annotations={ANN + "type": "classic"})
    converge(other, intent_of(other, svc, node_objects(cloud)))
    view.elb.delete_load_balancer(LoadBalancerName=svc.lb_name)
    provider = AWSProvider.from_settings(fast_settings(cloud))
    provider.apply(provider.plan_delete(intent_of(provider, svc, []).ref))
    assert len(_backend(view)) == 1
