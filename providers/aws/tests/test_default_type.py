"""The default load balancer type (issue 10): a setting, and never a reason to replace one.

cloud-provider-aws makes a classic ELB for a Service without ``aws-load-balancer-type``; lbprov makes
an NLB unless ``default_load_balancer_type: classic``. A Service without the annotation keeps the kind
of load balancer it already has (its predecessor's, or one lbprov made under another default), so
neither a migration nor a change of the setting gives a Service a new DNS name.
"""

from __future__ import annotations

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.settings import AWSSettings
from lbprov_aws.testing import ANN, AwsView, Svc, converge, delete_all, fast_settings, intent_of, node_objects
from lbprov_aws.testing_upstream import make_upstream_classic, make_upstream_nlb
from pydantic import ValidationError

from lbprov.model import Action, InvalidService
from lbprov.provider import SandboxCloud
from lbprov.render import render_plan


def test_the_setting_defaults_to_nlb_and_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert AWSSettings(cluster_name="c").default_load_balancer_type == "nlb"
    monkeypatch.setenv("LBPROV_AWS_DEFAULT_LOAD_BALANCER_TYPE", "classic")
    assert AWSSettings(cluster_name="c").default_load_balancer_type == "classic"
    with pytest.raises(ValidationError, match="default_load_balancer_type"):
        AWSSettings(cluster_name="c", default_load_balancer_type="alb")  # type: ignore[arg-type]


def test_default_classic_gives_a_service_without_the_annotation_a_classic_elb(
    cloud: SandboxCloud, view: AwsView
) -> None:
    provider = AWSProvider.from_settings(fast_settings(cloud, default_load_balancer_type="classic"))
    svc, nlb = Svc(name="plain"), Svc(name="asked", annotations={ANN + "type": "nlb"})
    for s in (svc, nlb):
        converge(provider, intent_of(provider, s, node_objects(cloud)))
    assert [lb["LoadBalancerName"] for lb in view.classics(svc.uid)] == [svc.lb_name]
    assert view.nlbs(svc.uid) == []
    assert [lb["LoadBalancerName"] for lb in view.nlbs(nlb.uid)] == [nlb.lb_name]  # the annotation wins


@pytest.mark.parametrize("default", ["nlb", "classic"])
def test_a_service_without_the_annotation_keeps_its_predecessors_kind(
    cloud: SandboxCloud, view: AwsView, default: str
) -> None:
    provider = AWSProvider.from_settings(fast_settings(cloud, default_load_balancer_type=default))
    classic, nlb = Svc(name="was-classic"), Svc(name="was-nlb")
    up_classic = make_upstream_classic(cloud, classic)
    # An NLB Service of cloud-provider-aws whose annotation is gone: it keeps its NLB too.
    up_nlb = make_upstream_nlb(cloud, nlb)
    for svc, up, kind in ((classic, up_classic, "classic"), (nlb, up_nlb, "nlb")):
        intent = intent_of(provider, svc, node_objects(cloud))
        plan = provider.plan(intent)
        assert intent.options.kind == default  # what the setting alone says
        assert any(c.action is Action.ADOPT and c.kind == "load-balancer" for c in plan.changes), render_plan(
            plan
        )
        assert not any(c.action is Action.DELETE and c.kind == "load-balancer" for c in plan.changes), (
            render_plan(plan)
        )
        converge(provider, intent)
        found = view.classics(svc.uid) if kind == "classic" else view.nlbs(svc.uid)
        assert [lb["DNSName"] for lb in found] == [up.dns]
        assert (view.nlbs(svc.uid) if kind == "classic" else view.classics(svc.uid)) == []
    for svc in (classic, nlb):
        delete_all(provider, svc)
    assert view.classics() == [] and view.nlbs() == [] and view.tgs() == []


def test_changing_the_default_never_replaces_lbprovs_own_load_balancer(
    cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc()
    first = AWSProvider.from_settings(fast_settings(cloud))
    converge(first, intent_of(first, svc, node_objects(cloud)))
    dns = view.nlbs(svc.uid)[0]["DNSName"]
    later = AWSProvider.from_settings(fast_settings(cloud, default_load_balancer_type="classic"))
    plan = later.plan(intent_of(later, svc, node_objects(cloud)))
    assert plan.empty, render_plan(plan)
    assert view.nlbs(svc.uid)[0]["DNSName"] == dns and view.classics(svc.uid) == []


def test_a_kept_classic_refuses_what_a_classic_elb_cannot_serve_naming_the_annotation(
    provider: AWSProvider, cloud: SandboxCloud
) -> None:
    svc = Svc(ports=[(53, "UDP", 30053)])
    make_upstream_classic(cloud, Svc(uid=svc.uid, ports=[(53, "TCP", 30053)]))
    with pytest.raises(InvalidService, match="aws-load-balancer-type"):
        provider.plan(intent_of(provider, svc, node_objects(cloud)))
