"""Migration in place from cloud-provider-aws (issue 10): predecessors are adopted, not recreated.

The predecessors are made through plain boto3 exactly as upstream makes them
(lbprov_aws.testing_upstream). The plan shows ``adopt`` plus only what differs; apply adds lbprov's
ownership tags (with the cluster identity) and keeps the DNS name; upstream's node rules are taken
over in place or revoked only after lbprov's own rules are in (checked after every write); a second
plan is empty; deleting the Service leaves nothing of upstream's. Resources of another cluster or
another Service stay foreign.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from lbprov_aws import AWSProvider
from lbprov_aws.diff.adopt import ADOPTED_FROM, ADOPTED_TAG
from lbprov_aws.operations import is_write
from lbprov_aws.testing import (
    ANN,
    CLUSTER,
    CLUSTER_ID,
    AwsView,
    Svc,
    build_ref,
    converge,
    delete_all,
    fast_settings,
    intent_of,
    node_objects,
)
from lbprov_aws.testing_upstream import make_upstream_classic, make_upstream_nlb

from lbprov import naming
from lbprov.model import Action, OwnershipConflict
from lbprov.provider import SandboxCloud
from lbprov.render import render_plan

PORTS = [(80, "TCP", 30080), (443, "TCP", 30443)]


@contextmanager
def _after_every_write(provider: AWSProvider, check: Callable[[str], None]) -> Iterator[list[str]]:
    """Run ``check`` after each write the provider sends (the state a client would meet then)."""
    writes: list[str] = []
    call = provider.clients.call

    def checked(op: str, **params: Any) -> Any:
        out = call(op, **params)
        if is_write(op):
            writes.append(op)
            check(op)
        return out

    provider.clients.call = checked  # type: ignore[method-assign]
    try:
        yield writes
    finally:
        provider.clients.call = call  # type: ignore[method-assign]


def _admitted(view: AwsView, port: int, cidr: str) -> bool:
    """Whether the node group admits TCP ``port`` from all of ``cidr`` (whatever the description)."""
    want = ipaddress.ip_network(cidr)
    for perm in view.node_sg()["IpPermissions"]:
        if perm["IpProtocol"] not in ("tcp", "-1"):
            continue
        if perm["IpProtocol"] == "tcp" and not perm["FromPort"] <= port <= perm["ToPort"]:
            continue
        for r in perm.get("IpRanges", []):
            if want.subnet_of(ipaddress.ip_network(r["CidrIp"])):  # type: ignore[arg-type]
                return True
    return False


def _pairs(view: AwsView) -> set[str]:
    return {
        p["GroupId"] for perm in view.node_sg()["IpPermissions"] for p in perm.get("UserIdGroupPairs", [])
    }


def _actions(plan: Any) -> list[tuple[str, str]]:
    return sorted({(c.action.value, c.kind) for c in plan.changes})


def test_a_classic_elb_of_cloud_provider_aws_is_adopted_in_place(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(ports=PORTS, annotations={ANN + "type": "classic"})
    up = make_upstream_classic(cloud, svc)
    intent = intent_of(provider, svc, node_objects(cloud))
    plan = provider.plan(intent)
    text = render_plan(plan)
    assert ("adopt", "load-balancer") in _actions(plan) and ("adopt", "security-group") in _actions(plan), (
        text
    )
    assert not any(
        c.kind == "load-balancer" and c.action in (Action.CREATE, Action.DELETE, Action.REPLACE)
        for c in plan.changes
    ), text
    assert not any(c.kind == "listener" for c in plan.changes), text  # upstream's listeners are lbprov's too
    assert plan.ingress[0].hostname == up.dns

    def traffic_flows(op: str) -> None:
        # The ELB's groups are admitted by the node group at every moment.
        lb = view.elb.describe_load_balancers(LoadBalancerNames=[svc.lb_name])["LoadBalancerDescriptions"][0]
        assert set(lb["SecurityGroups"]) & _pairs(view), (
            f"after {op}: node group admits none of the ELB's groups"
        )

    with _after_every_write(provider, traffic_flows) as writes:
        converge(provider, intent)
    assert writes.index("ec2:AuthorizeSecurityGroupIngress") < writes.index("ec2:RevokeSecurityGroupIngress")
    lb = view.classics(svc.uid)[0]
    assert lb["DNSName"] == up.dns
    assert lb["Tags"][naming.CLUSTER_ID_TAG] == CLUSTER_ID
    assert lb["Tags"][naming.SERVICE_NAME_TAG] == "default/web"
    sg = next(g for g in view.security_groups() if g["GroupId"] == up.security_group_id)
    tags = {t["Key"]: t["Value"] for t in sg["Tags"]}
    assert tags[naming.SERVICE_UID_TAG] == svc.uid and tags[naming.CLUSTER_ID_TAG] == CLUSTER_ID
    assert up.security_group_id not in _pairs(view)  # upstream's per-ELB node rule is gone

    delete_all(provider, svc)
    view.assert_nothing_owned(svc, [p for _, _, p in PORTS])
    assert view.classics() == []
    assert all(g["GroupName"] != f"k8s-elb-{svc.lb_name}" for g in view.security_groups())
    assert _pairs(view) == set()


@pytest.mark.parametrize("source", ["0.0.0.0/0", "203.0.113.0/24"])
def test_an_nlb_of_cloud_provider_aws_is_adopted_in_place(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView, source: str
) -> None:
    svc = Svc(ports=PORTS, annotations={ANN + "type": "nlb"}, spec={"loadBalancerSourceRanges": [source]})
    up = make_upstream_nlb(cloud, svc, source_ranges=[source])
    intent = intent_of(provider, svc, node_objects(cloud))
    dry = AWSProvider.from_settings(fast_settings(cloud), read_only=True)
    before = list(cloud.mutating_requests())
    plan = dry.plan(intent)  # a dry run sees the adoption and writes nothing
    assert cloud.mutating_requests() == before
    text = render_plan(plan)
    adopted = {(c.kind, c.name) for c in plan.changes if c.action is Action.ADOPT}
    assert ("load-balancer", svc.lb_name) in adopted, text
    assert {n for k, n in adopted if k == "target-group"} == set(up.target_groups), text
    taken = [c for c in plan.changes if c.action is Action.ADOPT and c.kind == "security-group-rule"]
    assert sum(
        (c.after or {}).get("description") == f"lbprov.io/rule/nlb/client={CLUSTER}" for c in taken
    ) == len(PORTS), text  # upstream's client rules are taken over in place
    # Only what differs: no load balancer, target group or listener is created, replaced or deleted.
    assert not any(
        c.kind in ("load-balancer", "target-group", "listener")
        and c.action in (Action.CREATE, Action.DELETE, Action.REPLACE)
        for c in plan.changes
    ), text

    def traffic_flows(op: str) -> None:
        for _, _, node_port in PORTS:
            assert _admitted(view, node_port, source), (
                f"after {op}: NodePort {node_port} not admitted from {source}"
            )

    with _after_every_write(provider, traffic_flows) as writes:
        converge(provider, intent)
    assert "ec2:UpdateSecurityGroupRuleDescriptionsIngress" in writes
    lb = view.nlbs(svc.uid)[0]
    assert lb["DNSName"] == up.dns and lb["LoadBalancerArn"] == up.lb_arn
    assert lb["Tags"][naming.CLUSTER_ID_TAG] == CLUSTER_ID
    tgs = view.tgs(svc.uid)
    assert sorted(tg["TargetGroupName"] for tg in tgs) == sorted(up.target_groups)
    assert all(tg["Tags"][ADOPTED_TAG] == ADOPTED_FROM for tg in tgs)
    client = f"lbprov.io/rule/nlb/client={CLUSTER}"
    assert view.node_rules("client") == {("tcp", p, p, source) for _, _, p in PORTS}
    descriptions = {
        r.get("Description") for perm in view.node_sg()["IpPermissions"] for r in perm.get("IpRanges", [])
    }
    assert client in descriptions
    assert not any(d and d.startswith("kubernetes.io/rule/nlb/") for d in descriptions), descriptions

    # A restart re-plans from scratch: still nothing to do.
    again = AWSProvider.from_settings(fast_settings(cloud)).plan(intent)
    assert again.empty, render_plan(again)

    delete_all(provider, svc)
    view.assert_nothing_owned(svc, [p for _, _, p in PORTS])
    assert view.nlbs() == [] and view.tgs() == []
    assert view.node_rules() == set()
    assert all(
        not (r.get("Description") or "").startswith("kubernetes.io/rule/nlb/")
        for perm in view.node_sg()["IpPermissions"]
        for r in perm.get("IpRanges", [])
    )


def test_deleting_a_service_never_adopted_removes_what_cloud_provider_aws_made(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nlb, classic = Svc(name="n", ports=PORTS), Svc(name="c", ports=PORTS)
    make_upstream_nlb(cloud, nlb)
    make_upstream_classic(cloud, classic)
    for svc in (nlb, classic):
        plan = delete_all(provider, svc)
        assert plan.changes, render_plan(plan)
    assert view.nlbs() == [] and view.tgs() == [] and view.classics() == []
    assert [g["GroupName"] for g in view.security_groups() if g["GroupName"].startswith("k8s-elb-")] == []
    assert _pairs(view) == set()
    assert all(
        not (r.get("Description") or "").startswith("kubernetes.io/rule/nlb/")
        for perm in view.node_sg()["IpPermissions"]
        for r in perm.get("IpRanges", [])
    )


@pytest.mark.parametrize("kind", ["nlb", "classic"])
@pytest.mark.parametrize("owner", ["another cluster", "another Service"])
def test_a_load_balancer_of_another_cluster_or_service_stays_foreign(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView, kind: str, owner: str
) -> None:
    svc = Svc(ports=PORTS, annotations={ANN + "type": kind})
    make = make_upstream_nlb if kind == "nlb" else make_upstream_classic
    if owner == "another cluster":
        up = make(cloud, svc, cluster="other")
    else:
        up = make(cloud, svc, service_key="default/other")
    with pytest.raises(OwnershipConflict):
        provider.plan(intent_of(provider, svc, node_objects(cloud)))
    plan = provider.plan_delete(build_ref(svc))
    assert not any(c.kind in ("load-balancer", "target-group") for c in plan.changes), render_plan(plan)
    provider.apply(plan)
    if kind == "nlb":
        assert [lb["DNSName"] for lb in view.nlbs()] == [up.dns]
        assert len(view.tgs()) == len(PORTS)
    else:
        assert [lb["DNSName"] for lb in view.classics()] == [up.dns]


def test_without_node_rule_management_an_adopted_nlb_keeps_upstreams_rules(
    cloud: SandboxCloud, view: AwsView
) -> None:
    provider = AWSProvider.from_settings(fast_settings(cloud, manage_node_security_group=False))
    svc = Svc(ports=PORTS, annotations={ANN + "type": "nlb"})
    make_upstream_nlb(cloud, svc)
    before = view.node_sg()["IpPermissions"]
    plan = converge(provider, intent_of(provider, svc, node_objects(cloud)))
    assert not any(c.kind == "security-group-rule" for c in plan.changes), render_plan(plan)
    assert view.node_sg()["IpPermissions"] == before
    assert view.nlbs(svc.uid)[0]["Tags"][naming.SERVICE_UID_TAG] == svc.uid


@pytest.mark.parametrize("kind", ["nlb", "classic"])
@pytest.mark.parametrize("cut", ["first", "middle"])
def test_an_adoption_cut_short_by_a_crash_is_finished_by_the_next_plan(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView, kind: str, cut: str
) -> None:
    svc = Svc(ports=PORTS, annotations={ANN + "type": kind})
    up = (make_upstream_nlb if kind == "nlb" else make_upstream_classic)(cloud, svc)
    intent = intent_of(provider, svc, node_objects(cloud))
    plan = provider.plan(intent)
    n = 1 if cut == "first" else len(plan.changes) // 2
    provider.apply(dataclasses.replace(plan, changes=plan.changes[:n]))  # the process dies here
    restarted = AWSProvider.from_settings(fast_settings(cloud))
    again = restarted.plan(intent)
    assert not any(
        c.action in (Action.CREATE, Action.REPLACE) and c.kind == "load-balancer" for c in again.changes
    )
    converge(restarted, intent)
    found = view.nlbs(svc.uid) if kind == "nlb" else view.classics(svc.uid)
    assert [lb["DNSName"] for lb in found] == [up.dns]
    delete_all(restarted, svc)
    assert view.nlbs() == [] and view.tgs() == [] and view.classics() == []
    assert all(not g["GroupName"].startswith("k8s-elb-a") for g in view.security_groups())


def test_a_resync_round_adopts_several_predecessors(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    classic = Svc(name="c", ports=PORTS, annotations={ANN + "type": "classic"})
    nlb = Svc(name="n", ports=[(8080, "TCP", 31080)], annotations={ANN + "type": "nlb"})
    ups = {classic.uid: make_upstream_classic(cloud, classic), nlb.uid: make_upstream_nlb(cloud, nlb)}
    intents = [intent_of(provider, s, node_objects(cloud)) for s in (classic, nlb)]
    with provider.read_round():
        for intent in intents:
            plan = provider.plan(intent)
            assert any(c.action is Action.ADOPT for c in plan.changes), render_plan(plan)
            provider.apply(plan)
    for intent in intents:
        again = provider.plan(intent)
        assert again.empty, render_plan(again)
    assert view.classics(classic.uid)[0]["DNSName"] == ups[classic.uid].dns
    assert view.nlbs(nlb.uid)[0]["DNSName"] == ups[nlb.uid].dns


def test_a_local_policy_nlb_is_adopted_with_its_health_check_and_health_rules(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    svc = Svc(
        ports=PORTS,
        annotations={ANN + "type": "nlb"},
        spec={"externalTrafficPolicy": "Local", "healthCheckNodePort": 32000},
    )
    up = make_upstream_nlb(cloud, svc, health_node_port=32000)
    intent = intent_of(provider, svc, node_objects(cloud))
    plan = provider.plan(intent)
    text = render_plan(plan)
    assert not any(
        c.kind in ("load-balancer", "target-group", "listener")
        and c.action in (Action.CREATE, Action.DELETE, Action.REPLACE)
        for c in plan.changes
    ), text
    assert not any(c.kind == "target-group" and "health_check" in c.diff() for c in plan.changes), text

    def health_admitted(op: str) -> None:
        assert _admitted(view, 32000, "10.0.0.0/20") and _admitted(view, 32000, "10.0.16.0/20"), op

    with _after_every_write(provider, health_admitted):
        converge(provider, intent)
    assert sorted(tg["TargetGroupName"] for tg in view.tgs(svc.uid)) == sorted(up.target_groups)
    assert ("tcp", 32000, 32000, cloud.extra["vpc_cidr"]) in view.node_rules("health")
    delete_all(provider, svc)
    view.assert_nothing_owned(svc, [32000, *(p for _, _, p in PORTS)])
    assert view.tgs() == [] and view.node_rules() == set()
