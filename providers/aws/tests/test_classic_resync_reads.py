"""Classic ELB Services in the periodic resync: the read budget and drift repair (issue 14, ask 4).

A classic plan in a read round reads no per-Service security group (the round's listing of the VPC
holds every group, tagged or not) and no attributes unless the Service is due for its deep check
(a new ELB's attributes are AWS's defaults, remembered at its create, then kept current by lbprov's
writes: remembered.py). Every Service is deep-checked once within K periods (drift_schedule.py), so
an attribute edited by hand is repaired within K; listeners, the health check and the group rules
are in the listings of every period and are repaired at once. Through boto3 against the strict
sandbox, calls counted by CloudCalls.
"""

from __future__ import annotations

from collections import Counter

from lbprov_aws import AWSProvider
from lbprov_aws.testing import ANN, AwsView, Svc, converge, fast_settings, intent_of, node_objects

from lbprov.provider import SandboxCloud

CLASSIC = {ANN + "type": "classic"}
ATTRIBUTES = "elb:DescribeLoadBalancerAttributes"


def _services(n: int) -> list[Svc]:
    return [Svc(name=f"c{i}", ports=[(80, "TCP", 30500 + i)], annotations=dict(CLASSIC)) for i in range(n)]


def _reads(ops: Counter[str]) -> int:
    return sum(n for op, n in ops.items() if ":Describe" in op)


def _periodic(provider: AWSProvider, services: list[Svc], nodes: list[dict[str, object]]) -> Counter[str]:
    provider.calls.reset()
    with provider.read_round() as rnd:
        rnd.drift_check()  # what the controller's periodic resync does
        for svc in services:
            plan = provider.plan(intent_of(provider, svc, nodes))
            if not plan.empty:
                provider.apply(plan)
    return provider.calls.reset().by_operation()


def test_a_classic_resync_reads_listings_and_deep_checks_each_service_once_in_k(
    provider: AWSProvider, cloud: SandboxCloud
) -> None:
    k = provider.drift_check_periods
    services = _services(2 * k)
    nodes = node_objects(cloud)
    for svc in services:
        converge(provider, intent_of(provider, svc, nodes))
    rounds = [_periodic(provider, services, nodes) for _ in range(k)]
    # Each Service's attributes read exactly once in K periods, at most ceil(N / K) in a period.
    assert sum(r[ATTRIBUTES] for r in rounds) == len(services), rounds
    assert all(r[ATTRIBUTES] <= -(-len(services) // k) for r in rounds), rounds
    for r in rounds:
        assert not {op for op in r if ":Describe" not in op}, r  # converged: nothing written
        # Security groups: the VPC's listing, one page; never one read per Service by name.
        assert r["ec2:DescribeSecurityGroups"] == 1, r
        # The rest is account-wide listings: a constant, whatever the number of Services.
        assert _reads(r) - r[ATTRIBUTES] <= 12, r


def test_a_new_classic_elb_is_planned_without_reading_its_attributes(
    provider: AWSProvider, cloud: SandboxCloud
) -> None:
    """Before: the first resync after a create read every new ELB's attributes (not remembered)."""
    nodes = node_objects(cloud)
    svc = _services(1)[0]
    svc.annotations[ANN + "connection-idle-timeout"] = "120"  # a ModifyLoadBalancerAttributes too
    provider.apply(provider.plan(intent_of(provider, svc, nodes)))  # (no plan after it reads them)
    provider.calls.reset()
    with provider.read_round():  # not periodic: nobody is due
        assert provider.plan(intent_of(provider, svc, nodes)).empty
    ops = provider.calls.reset().by_operation()
    assert ops[ATTRIBUTES] == 0, ops


def test_classic_drift_made_by_hand_is_repaired_within_k_resyncs(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    k = provider.drift_check_periods
    services = _services(4)
    nodes = node_objects(cloud)
    for svc in services:
        converge(provider, intent_of(provider, svc, nodes))
    names = [svc.lb_name for svc in services]
    for name in names:  # every ELB: an attribute, a listener and its group's rule changed by hand
        view.elb.modify_load_balancer_attributes(
            LoadBalancerName=name,
            LoadBalancerAttributes={"ConnectionSettings": {"IdleTimeout": 7}},
        )
        view.elb.delete_load_balancer_listeners(LoadBalancerName=name, LoadBalancerPorts=[80])
        [group] = [g for g in view.security_groups() if g["GroupName"] == f"k8s-elb-{name}"]
        view.ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
    _periodic(provider, services, nodes)
    # Listeners and group rules are in the listings of every period: repaired at once.
    for name in names:
        [lb] = [lb for lb in view.classics() if lb["LoadBalancerName"] == name]
        assert [li["Listener"]["LoadBalancerPort"] for li in lb["ListenerDescriptions"]] == [80]
        [group] = [g for g in view.security_groups() if g["GroupName"] == f"k8s-elb-{name}"]
        assert group["IpPermissions"], name
    for _ in range(k - 1):
        _periodic(provider, services, nodes)
    # Attributes are a deep check: every Service's turn came within K periods.
    for name in names:
        attrs = view.elb.describe_load_balancer_attributes(LoadBalancerName=name)["LoadBalancerAttributes"]
        assert attrs["ConnectionSettings"]["IdleTimeout"] == 60, name
    fresh = AWSProvider.from_settings(fast_settings(cloud))
    for svc in services:
        assert fresh.plan(intent_of(fresh, svc, nodes)).empty
