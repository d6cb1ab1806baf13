"""Faults: injected throttling, a crash between two writes, then convergence with no duplicates."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lbprov_aws import AWSProvider
from lbprov_aws.testing import ANN, AwsView, Svc, converge, delete_all, fast_settings, intent_of, node_objects

from lbprov.provider import SandboxCloud


class EveryThirdCallThrottled:
    """A ``before-call`` hook (registered after the provider's counting hook) that throttles every
    third request, as AWS would with ``Throttling`` / ``RequestLimitExceeded``. In-process hooks are the
    way to inject faults here: moto has no throttling of its own (TOOLING.md)."""

    def __init__(self) -> None:
        self.calls = 0
        self.raised = 0
        self.lock = threading.Lock()

    def __call__(self, model: Any, **_: Any) -> None:
        with self.lock:
            self.calls += 1
            throttle = self.calls % 3 == 0
            if throttle:
                self.raised += 1
        if throttle:
            code = "RequestLimitExceeded" if model.service_model.service_name == "ec2" else "Throttling"
            raise ClientError({"Error": {"Code": code, "Message": "Rate exceeded"}}, model.name)

    def install(self, provider: AWSProvider) -> None:
        for client in provider.clients.clients.values():
            client.meta.events.register("before-call.*.*", self)


@pytest.mark.parametrize("kind", ["nlb", "classic"])
def test_throttling_on_every_third_call_still_converges(
    cloud: SandboxCloud, view: AwsView, kind: str
) -> None:
    provider = AWSProvider.from_settings(fast_settings(cloud))
    fault = EveryThirdCallThrottled()
    fault.install(provider)
    svc = Svc(ports=[(80, "TCP", 30080), (443, "TCP", 30443)], annotations={ANN + "type": kind})
    intent = intent_of(provider, svc, node_objects(cloud))
    provider.calls.reset()
    plan = provider.plan(intent)
    provider.apply(plan)
    stats = provider.calls.stats
    assert fault.raised > 3
    assert sum(stats.retries.values()) == fault.raised
    assert sum(stats.throttled.values()) == fault.raised
    assert stats.backoff_seconds > 0
    # Every attempt was counted, retries included.
    assert stats.reads + stats.writes == fault.calls
    assert provider.plan(intent).empty
    provider.calls.reset()
    provider.apply(provider.plan(intent))
    assert provider.calls.stats.writes == 0
    assert len(view.nlbs(svc.uid)) + len(view.classics(svc.uid)) == 1
    delete_all(provider, svc)
    view.assert_nothing_owned(svc, [30080, 30443])


class Crash(Exception):
    pass


def test_crash_after_target_group_created_then_fresh_plan_converges(
    cloud: SandboxCloud, view: AwsView
) -> None:
    crashing = AWSProvider.from_settings(fast_settings(cloud))

    def crash_after_create(model: Any, **_: Any) -> None:
        if model.name == "CreateTargetGroup":
            raise Crash("process died after CreateTargetGroup")

    crashing.clients.clients["elbv2"].meta.events.register("after-call.*.*", crash_after_create)
    svc = Svc(ports=[(80, "TCP", 30080), (443, "TCP", 30443)])
    nodes = node_objects(cloud)
    with pytest.raises(Crash):
        crashing.apply(crashing.plan(intent_of(crashing, svc, nodes)))
    # The target groups exist, with no targets: both ports' creates go out at once (a new NLB's
    # target groups run beside its other creates, apply/overlap.py), and each died after it.
    orphans = {tg["TargetGroupName"]: tg["TargetGroupArn"] for tg in view.tgs(svc.uid)}
    assert orphans and all(tg["Targets"] == [] for tg in view.tgs(svc.uid))

    # A restarted controller: a fresh provider, a fresh plan.
    fresh = AWSProvider.from_settings(fast_settings(cloud))
    plan = fresh.plan(intent_of(fresh, svc, nodes))
    assert not any(
        c.kind == "target-group" and c.name in orphans and c.action.value == "create" for c in plan.changes
    )
    converge(fresh, intent_of(fresh, svc, nodes))
    tgs = view.tgs(svc.uid)
    assert len(tgs) == 2 and len({tg["TargetGroupName"] for tg in tgs}) == 2  # no duplicates
    assert set(orphans.values()) <= {tg["TargetGroupArn"] for tg in tgs}  # its own kept, not recreated
    assert len(view.nlbs(svc.uid)) == 1
    delete_all(fresh, svc)
    view.assert_nothing_owned(svc, [30080, 30443])


def test_crash_mid_delete_then_fresh_delete_finishes(cloud: SandboxCloud, view: AwsView) -> None:
    provider = AWSProvider.from_settings(fast_settings(cloud))
    svc = Svc(ports=[(80, "TCP", 30080)])
    converge(provider, intent_of(provider, svc, node_objects(cloud)))

    def crash_after_lb_delete(model: Any, **_: Any) -> None:
        if model.name == "DeleteLoadBalancer":
            raise Crash("died after deleting the load balancer")

    crashing = AWSProvider.from_settings(fast_settings(cloud))
    crashing.clients.clients["elbv2"].meta.events.register("after-call.*.*", crash_after_lb_delete)
    ref = intent_of(crashing, svc, []).ref
    with pytest.raises(Crash):
        crashing.apply(crashing.plan_delete(ref))
    assert view.nlbs(svc.uid) == [] and view.tgs(svc.uid) != []
    delete_all(AWSProvider.from_settings(fast_settings(cloud)), svc)
    view.assert_nothing_owned(svc, [30080])


def test_non_retryable_error_is_not_retried(cloud: SandboxCloud) -> None:
    provider = AWSProvider.from_settings(fast_settings(cloud))

    def deny(model: Any, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, model.name)

    provider.clients.clients["ec2"].meta.events.register("before-call.*.*", deny)
    with pytest.raises(ClientError, match="AccessDenied"):
        provider.plan(intent_of(provider, Svc(), node_objects(cloud)))
    assert sum(provider.calls.stats.retries.values()) == 0


def test_classic_crash_after_security_group_created_then_fresh_plan_converges(
    cloud: SandboxCloud, view: AwsView
) -> None:
    crashing = AWSProvider.from_settings(fast_settings(cloud))

    def crash(model: Any, **_: Any) -> None:
        if model.name == "AuthorizeSecurityGroupIngress":
            raise Crash("died after the ELB security group and its first rule")

    crashing.clients.clients["ec2"].meta.events.register("after-call.*.*", crash)
    svc = Svc(ports=[(80, "TCP", 30080), (443, "TCP", 30443)], annotations={ANN + "type": "classic"})
    nodes = node_objects(cloud)
    with pytest.raises(Crash):
        crashing.apply(crashing.plan(intent_of(crashing, svc, nodes)))
    fresh = AWSProvider.from_settings(fast_settings(cloud))
    converge(fresh, intent_of(fresh, svc, nodes))
    assert len([sg for sg in view.security_groups() if sg["GroupName"] == f"k8s-elb-{svc.lb_name}"]) == 1
    assert len(view.classics(svc.uid)) == 1
    delete_all(fresh, svc)
    view.assert_nothing_owned(svc, [30080, 30443])
