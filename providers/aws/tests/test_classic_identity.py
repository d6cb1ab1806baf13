"""A classic ELB's own security group made before cluster identities gets the identity (issue 10).

Load balancers and target groups get ``lbprov.io/cluster-id`` on their next reconcile; the classic
ELB's group ``k8s-elb-<lb>`` does too now (ec2:CreateTags, which terraform grants only on groups
tagged for the cluster and only for lbprov's keys), so that deletes decided from cloud state can
trust it.
"""

from __future__ import annotations

from lbprov_aws import AWSProvider
from lbprov_aws.testing import ANN, CLUSTER_ID, AwsView, Svc, converge, fast_settings, intent_of, node_objects

from lbprov import naming
from lbprov.model import Action
from lbprov.provider import SandboxCloud


def _group_tags(view: AwsView, name: str) -> dict[str, str]:
    (sg,) = [g for g in view.security_groups() if g["GroupName"] == name]
    return {t["Key"]: t["Value"] for t in sg.get("Tags", [])}


def test_an_older_classic_security_group_gets_the_identity_on_its_next_reconcile(
    cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(annotations={ANN + "type": "classic"})
    older = AWSProvider.from_settings(fast_settings(cloud, cluster_id=None))
    converge(older, intent_of(older, svc, node_objects(cloud)))
    name = f"k8s-elb-{svc.lb_name}"
    assert naming.CLUSTER_ID_TAG not in _group_tags(view, name)
    provider = AWSProvider.from_settings(fast_settings(cloud))
    plan = converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert any(
        c.action is Action.UPDATE and c.kind == "security-group" and c.name == name for c in plan.changes
    )
    assert _group_tags(view, name)[naming.CLUSTER_ID_TAG] == CLUSTER_ID
