"""`load-balancer-name` on an NLB (issue 10, features): the chosen name is used; a name held by a
load balancer this Service does not own is an OwnershipConflict; a change replaces the NLB and the
plan says so; deletes find the NLB under its chosen name, whatever the annotations say now."""

from __future__ import annotations

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.testing import ANN, AwsView, Svc, converge, delete_all, intent_of, kinds, node_objects

from lbprov.model import Action, InvalidService, OwnershipConflict
from lbprov.provider import SandboxCloud

NAME = ANN + "name"


def test_chosen_name_is_used_and_a_rename_replaces_the_nlb(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    svc = Svc(annotations={NAME: "web-public"})
    converge(provider, intent_of(provider, svc, nodes))
    [lb] = view.nlbs(svc.uid)
    assert lb["LoadBalancerName"] == "web-public"

    svc.annotations[NAME] = "web-public-2"
    plan = provider.plan(intent_of(provider, svc, nodes))
    [replace] = [c for c in plan.changes if c.kind == "load-balancer"]
    assert replace.action is Action.REPLACE and replace.name == "web-public-2"
    assert replace.reason is not None and "web-public -> web-public-2" in replace.reason
    assert replace.before is not None and replace.before["name"] == "web-public"
    assert ("create", "listener") in kinds(plan)
    converge(provider, intent_of(provider, svc, nodes))
    assert [lb["LoadBalancerName"] for lb in view.nlbs(svc.uid)] == ["web-public-2"]

    # Back to the UID-derived name: found through the name its target groups record.
    del svc.annotations[NAME]
    plan = converge(provider, intent_of(provider, svc, nodes))
    assert [c.action for c in plan.changes if c.kind == "load-balancer"] == [Action.REPLACE]
    assert [lb["LoadBalancerName"] for lb in view.nlbs(svc.uid)] == [svc.lb_name]


def test_delete_finds_the_nlb_under_its_chosen_name(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(annotations={NAME: "web-chosen"})
    converge(provider, intent_of(provider, svc, node_objects(cloud)))
    plan = delete_all(provider, svc)
    assert ("delete", "load-balancer") in kinds(plan)
    view.assert_nothing_owned(svc)
    assert view.nlbs() == []


def test_a_name_held_by_a_foreign_load_balancer_is_an_ownership_conflict(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    view.elbv2.create_load_balancer(Name="taken", Type="network", Subnets=cloud.extra["public_subnets"])
    other = Svc(name="other", annotations={NAME: "taken-too"})
    converge(provider, intent_of(provider, other, node_objects(cloud)))
    before = list(cloud.mutating_requests())
    for name in ("taken", "taken-too"):  # someone else's, another Service's
        svc = Svc(annotations={NAME: name})
        with pytest.raises(OwnershipConflict, match=name):
            provider.plan(intent_of(provider, svc, node_objects(cloud)))
    assert cloud.mutating_requests() == before


@pytest.mark.parametrize(
    ("value", "says"),
    [("-web", "hyphen"), ("internal-web", "internal-"), ("x" * 33, "1-32"), ("web_1", "letters")],
)
def test_bad_names_are_refused_naming_the_annotation(
    provider: AWSProvider, cloud: SandboxCloud, value: str, says: str
) -> None:
    with pytest.raises(InvalidService) as err:
        intent_of(provider, Svc(annotations={NAME: value}), node_objects(cloud))
    assert NAME in str(err.value) and says in str(err.value)


def test_a_classic_elb_refuses_a_chosen_name(provider: AWSProvider, cloud: SandboxCloud) -> None:
    with pytest.raises(InvalidService, match="classic"):
        intent_of(provider, Svc(annotations={NAME: "web", ANN + "type": "classic"}), node_objects(cloud))
