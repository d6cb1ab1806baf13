"""Node security group rule modes (ports / nodeport-range / auto) against moto, which enforces
AWS's 60-inbound-rules-per-group limit."""

from __future__ import annotations

import random

from lbprov_aws import AWSProvider
from lbprov_aws.diff.node_rules import Point, RuleConfig, range_keys, render
from lbprov_aws.testing import (
    NODE_RULE_MODEL,
    AwsView,
    Svc,
    delete_all,
    fast_settings,
    intent_of,
    node_objects,
)

from lbprov.provider import SandboxCloud

OPEN, NET, VPC = "0.0.0.0/0", "203.0.113.0/24", "10.0.0.0/16"
FULL = (30000, 32767)


#: The node-rule model these tests pin is that of NLBs created without security groups.
#: (conftest.py's ``provider`` fixture builds the module's provider with these settings.)
PROVIDER_SETTINGS = NODE_RULE_MODEL


def _runs(ports: list[int]) -> set[tuple[int, int]]:
    """Contiguous runs of ports (independent of the code under test)."""
    out: set[tuple[int, int]] = set()
    for p in sorted(ports):
        for lo, hi in list(out):
            if hi + 1 == p:
                out.remove((lo, hi))
                out.add((lo, p))
                break
        else:
            out.add((p, p))
    return out


def _create(provider: AWSProvider, services: list[Svc], nodes: list[dict]) -> None:  # type: ignore[type-arg]
    with provider.read_round():
        for svc in services:
            plan = provider.plan(intent_of(provider, svc, nodes))
            if not plan.empty:
                provider.apply(plan)


def _all_converged(provider: AWSProvider, services: list[Svc], nodes: list[dict]) -> None:  # type: ignore[type-arg]
    with provider.read_round():
        for svc in services:
            plan = provider.plan(intent_of(provider, svc, nodes))
            assert plan.empty, (svc.name, [c.name for c in plan.changes])


def _check_exact_cover(
    view: AwsView, wanted: dict[tuple[str, str], set[int]]
) -> set[tuple[str, int, int, str]]:
    """Every wanted (CIDR, port) is admitted; every rule is a whole range of a wanted CIDR or admits
    only wanted ports (none extra); and the group stays under the budget (50)."""
    rules = view.node_rules("client") | view.node_rules("health")
    assert len(rules) <= 50, len(rules)
    for (kind, cidr), ports in wanted.items():
        for port in ports:
            assert any(c == cidr and lo <= port <= hi for _, lo, hi, c in rules), (kind, cidr, port)
    wanted_cidr: dict[str, set[int]] = {}
    for (_, cidr), ports in wanted.items():
        wanted_cidr.setdefault(cidr, set()).update(ports)
    for _, lo, hi, cidr in rules:
        assert wanted_cidr.get(cidr), (lo, hi, cidr)
        if (lo, hi) != FULL:
            assert set(range(lo, hi + 1)) <= wanted_cidr[cidr], (lo, hi, cidr)
    return rules


def test_100_services_with_random_node_ports_converge_under_the_limit_and_shrink_back(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """auto (default): 80 Services open to the world and 20 restricted to one CIDR, all with random
    NodePorts (exact rules: 80 + 20 + 20 health > 60, AWS's limit): the open CIDR gets the whole
    NodePort range; deleting Services shrinks the rules back to exact ports."""
    nodes = node_objects(cloud)
    foreign = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": OPEN}]}
    view.ec2.authorize_security_group_ingress(
        GroupId=cloud.extra["node_security_group_id"], IpPermissions=[foreign]
    )
    ports = random.Random(11).sample(range(30000, 32768), 100)
    open_svcs = [Svc(name=f"o{i}", ports=[(80, "TCP", p)]) for i, p in enumerate(ports[:80])]
    net_svcs = [Svc(name=f"n{i}", ports=[(80, "TCP", p)]) for i, p in enumerate(ports[80:])]
    for svc in net_svcs:
        svc.spec["loadBalancerSourceRanges"] = [NET]
    _create(provider, open_svcs + net_svcs, nodes)
    net_ports = set(ports[80:])

    def wanted(open_ports: list[int]) -> dict[tuple[str, str], set[int]]:
        return {("client", OPEN): set(open_ports), ("client", NET): net_ports, ("health", VPC): net_ports}

    rules = _check_exact_cover(view, wanted(ports[:80]))
    assert ("tcp", *FULL, OPEN) in rules  # the key with by far the most exact rules
    assert ("tcp", *FULL, NET) not in rules
    _all_converged(provider, open_svcs + net_svcs, nodes)

    # Delete 70 of the open Services one by one: at every step all wanted ports stay admitted,
    # nothing extra, under the budget.
    for i, svc in enumerate(open_svcs[:70]):
        delete_all(provider, svc)
        _check_exact_cover(view, wanted(ports[i + 1 : 80]))
    # 10 + 20 + 20 exact rules fit the budget: exact ports again, whatever merges.
    assert view.node_rules() == {("tcp", lo, hi, OPEN) for lo, hi in _runs(ports[70:80])} | {
        ("tcp", lo, hi, cidr) for lo, hi in _runs(ports[80:]) for cidr in (NET, VPC)
    }
    _all_converged(provider, open_svcs[70:] + net_svcs, nodes)
    for svc in open_svcs[70:] + net_svcs:
        delete_all(provider, svc)
    assert view.node_rules() == set()
    perms = view.node_sg()["IpPermissions"]
    assert any(p["FromPort"] == 22 and p["IpRanges"] == [{"CidrIp": OPEN}] for p in perms)


def test_nodeport_range_mode_one_rule_per_cidr_and_ownership(cloud: SandboxCloud, view: AwsView) -> None:
    provider = AWSProvider.from_settings(
        fast_settings(cloud, **NODE_RULE_MODEL, node_security_group_rules="nodeport-range")
    )
    nodes = node_objects(cloud)
    a = Svc(name="a", ports=[(80, "TCP", 30080)])
    b = Svc(name="b", ports=[(80, "TCP", 31234), (53, "UDP", 32001)])
    c = Svc(name="c", ports=[(80, "TCP", 30555)])
    c.spec["loadBalancerSourceRanges"] = [NET]
    _create(provider, [a, b, c], nodes)
    assert view.node_rules() == {
        ("tcp", *FULL, OPEN),
        ("udp", *FULL, OPEN),
        ("tcp", *FULL, NET),
        ("tcp", *FULL, VPC),  # c's health checks
    }
    _all_converged(provider, [a, b, c], nodes)
    delete_all(provider, a)  # b still wants tcp from 0.0.0.0/0
    assert ("tcp", *FULL, OPEN) in view.node_rules()
    delete_all(provider, b)
    assert view.node_rules() == {("tcp", *FULL, NET), ("tcp", *FULL, VPC)}
    _all_converged(provider, [c], nodes)
    delete_all(provider, c)
    assert view.node_rules() == set()


def test_a_range_rule_is_kept_for_a_service_created_while_the_last_user_is_deleted(
    cloud: SandboxCloud, view: AwsView
) -> None:
    """B is planned while A's range rule exists (B's plan adds no rule); A's delete was planned
    before B existed and would revoke the range. Applying B then A: A's apply re-reads the target
    groups under the lock, sees B, and keeps the range."""
    provider = AWSProvider.from_settings(
        fast_settings(cloud, **NODE_RULE_MODEL, node_security_group_rules="nodeport-range")
    )
    nodes = node_objects(cloud)
    a, b = Svc(name="a", ports=[(80, "TCP", 30080)]), Svc(name="b", ports=[(80, "TCP", 31080)])
    _create(provider, [a], nodes)
    delete_a = provider.plan_delete(intent_of(provider, a, []).ref)
    assert any(c.kind == "security-group-rule" for c in delete_a.changes)
    plan_b = provider.plan(intent_of(provider, b, nodes))
    assert not any(c.kind == "security-group-rule" for c in plan_b.changes)
    provider.apply(plan_b)
    provider.apply(delete_a)
    assert view.node_rules() == {("tcp", *FULL, OPEN)}
    _all_converged(provider, [b], nodes)
    delete_all(provider, b)
    assert view.node_rules() == set()


def test_ports_mode_is_exact_and_hits_the_limit_as_documented(cloud: SandboxCloud, view: AwsView) -> None:
    provider = AWSProvider.from_settings(
        fast_settings(cloud, **NODE_RULE_MODEL, node_security_group_rules="ports")
    )
    nodes = node_objects(cloud)
    ports = random.Random(5).sample(range(30000, 32768), 40)
    svcs = [Svc(name=f"p{i}", ports=[(80, "TCP", p)]) for i, p in enumerate(ports)]
    _create(provider, svcs, nodes)
    assert view.node_rules() == {("tcp", lo, hi, OPEN) for lo, hi in _runs(ports)}


def test_auto_choice_is_a_function_of_the_wanted_points_only() -> None:
    cfg = RuleConfig(mode="auto", budget=5)
    pts = {Point("client", "tcp", 30000 + 2 * i, OPEN) for i in range(4)}
    pts |= {Point("client", "tcp", 31000 + 2 * i, NET) for i in range(3)}
    # 4 + 3 = 7 > 5: the key with most rules goes to the range (1 + 3 = 4).
    assert range_keys(pts, cfg) == {("client", "tcp", OPEN)}
    shuffled = list(pts)
    random.Random(1).shuffle(shuffled)
    assert render(shuffled, cfg) == render(pts, cfg)
    assert len(render(pts, cfg)) == 4
    assert range_keys(pts, RuleConfig(mode="ports", budget=5)) == set()
    assert range_keys(pts, RuleConfig(mode="nodeport-range")) == {
        ("client", "tcp", OPEN),
        ("client", "tcp", NET),
    }
    # A port outside the configured range stays exact.
    out = render({Point("client", "tcp", 8080, OPEN)}, RuleConfig(mode="nodeport-range"))
    assert {(r.from_port, r.to_port) for r in out} == {(8080, 8080)}
