"""``security-groups``, ``extra-security-groups`` and ``manage-backend-security-group-rules`` on an
NLB, with aws-load-balancer-controller's semantics (sg_options.py), through boto3 against the
strict sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.names import (
    nlb_backend_security_group_name,
    nlb_frontend_security_group_name,
    nlb_rule_description,
)
from lbprov_aws.testing import (
    ANN,
    CLUSTER,
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

from lbprov.model import InvalidService
from lbprov.provider import SandboxCloud
from lbprov.render import render_plan

BACKEND = nlb_backend_security_group_name(CLUSTER)
BACKEND_DESC = nlb_rule_description("backend", CLUSTER)


def _user_group(view: AwsView, cloud: SandboxCloud, name: str) -> str:
    group: str = view.ec2.create_security_group(
        GroupName=name,
        Description="a group of the user",
        VpcId=cloud.extra["vpc_id"],
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "Name", "Value": f"{name}-tag"}]}
        ],
    )["GroupId"]
    view.ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.1.0.0/16"}]}
        ],
    )
    return group


def _names(view: AwsView) -> set[str]:
    return {sg["GroupName"] for sg in view.security_groups()}


def _backend_rules(view: AwsView) -> int:
    return sum(
        1
        for p in view.node_sg()["IpPermissions"]
        for pair in p.get("UserIdGroupPairs", [])
        if pair.get("Description") == BACKEND_DESC
    )


def _group(view: AwsView, group_id: str) -> dict[str, Any]:
    found: dict[str, Any] = view.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return found


def test_security_groups_replace_the_frontend_and_are_never_written(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    mine = _user_group(view, cloud, "mine")
    before = _group(view, mine)["IpPermissions"]
    svc = Svc(annotations={ANN + "security-groups": "mine"})  # by name
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    [lb] = view.nlbs(svc.uid)
    assert lb["SecurityGroups"] == [mine]  # no backend group: manage-backend-security-group-rules is false
    assert nlb_frontend_security_group_name(CLUSTER, build_ref(svc)) not in _names(view)
    assert BACKEND not in _names(view) and _backend_rules(view) == 0
    assert view.node_rules() == set()  # admitting the NLB into the nodes is the user's
    assert _group(view, mine)["IpPermissions"] == before
    delete_all(provider, svc)
    assert _group(view, mine)["IpPermissions"] == before  # never deleted, never written
    view.assert_nothing_owned(svc)


def test_manage_backend_rules_attaches_the_backend_group_beside_the_users(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    mine = _user_group(view, cloud, "mine")
    svc = Svc(
        annotations={ANN + "security-groups": "mine-tag", ANN + "manage-backend-security-group-rules": "true"}
    )
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    [lb] = view.nlbs(svc.uid)
    backend = next(sg["GroupId"] for sg in view.security_groups() if sg["GroupName"] == BACKEND)
    assert sorted(lb["SecurityGroups"]) == sorted([mine, backend]) and _backend_rules(view) == 3
    delete_all(provider, svc)
    assert BACKEND not in _names(view) and _backend_rules(view) == 0 and "mine" in _names(view)


def test_extra_security_groups_are_added_to_lbprovs_groups(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    extra = _user_group(view, cloud, "extra")
    svc = Svc(annotations={ANN + "extra-security-groups": extra})
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    [lb] = view.nlbs(svc.uid)
    assert extra in lb["SecurityGroups"] and len(lb["SecurityGroups"]) == 3
    # Dropping the annotation takes the group off again (SetSecurityGroups), in place.
    del svc.annotations[ANN + "extra-security-groups"]
    plan = converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert kinds(plan) == [("update", "load-balancer")], render_plan(plan)
    [lb] = view.nlbs(svc.uid)
    assert extra not in lb["SecurityGroups"] and len(lb["SecurityGroups"]) == 2
    delete_all(provider, svc)
    assert "extra" in _names(view)


def test_switching_to_user_groups_drops_lbprovs_frontend_group(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    mine = _user_group(view, cloud, "mine")
    svc = Svc()
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    frontend = nlb_frontend_security_group_name(CLUSTER, build_ref(svc))
    assert frontend in _names(view)
    svc.annotations[ANN + "security-groups"] = mine
    plan = converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert kinds(plan).index(("update", "load-balancer")) < kinds(plan).index(("delete", "security-group"))
    assert frontend not in _names(view) and view.nlbs(svc.uid)[0]["SecurityGroups"] == [mine]
    # The backend group no NLB carries any more goes too (and its node rules).
    assert BACKEND not in _names(view) and _backend_rules(view) == 0


def test_groups_on_an_nlb_created_without_any_replace_it_and_say_why(
    cloud: SandboxCloud, view: AwsView
) -> None:
    old = AWSProvider.from_settings(fast_settings(cloud, nlb_security_groups=False))
    svc = Svc()
    converge(old, intent_of(old, svc, node_objects(cloud)))
    mine = _user_group(view, cloud, "mine")
    svc.annotations[ANN + "security-groups"] = mine
    plan = old.plan(intent_of(old, svc, node_objects(cloud)))
    [replace] = [c for c in plan.changes if c.kind == "load-balancer"]
    assert replace.action.value == "replace" and "created without" in (replace.reason or "")
    converge(old, intent_of(old, svc, node_objects(cloud)))
    assert view.nlbs(svc.uid)[0]["SecurityGroups"] == [mine]
    assert view.node_rules() == set()  # the replaced NLB's NodePort rules went with it
    delete_all(old, svc)
    view.assert_nothing_owned(svc, [30080])


@pytest.mark.parametrize(
    ("annotations", "field"),
    [
        ({ANN + "security-groups": "no-such-group"}, "security-groups"),
        ({ANN + "extra-security-groups": "sg-0123456789abcdef0"}, "extra-security-groups"),
        ({ANN + "security-groups": " , "}, "security-groups"),
        ({ANN + "manage-backend-security-group-rules": "true"}, "manage-backend-security-group-rules"),
        (
            {ANN + "security-groups": "x", ANN + "manage-backend-security-group-rules": "maybe"},
            "manage-backend",
        ),
        ({ANN + "type": "classic", ANN + "security-groups": "x"}, "security-groups"),
    ],
)
def test_bad_security_group_annotations_are_refused_naming_the_annotation(
    provider: AWSProvider, cloud: SandboxCloud, annotations: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidService) as err:
        provider.plan(intent_of(provider, Svc(annotations=annotations), node_objects(cloud)))
    assert field in str(err.value)
    assert cloud.mutating_requests() == []
