"""The controller's node sync with the AWS provider on moto: a node change registers the node in
every Service's target group without a per-Service plan, and a Service whose write failed is
re-planned by the controller (nothing lost)."""

from __future__ import annotations

import pytest

from lbprov.controller.nodes import NodeSyncReport
from lbprov.sandbox.demo import node_object

from .conftest import NAMESPACE, Env, wait_for

pytestmark = pytest.mark.e2e


def _handled(env: Env, before: int) -> NodeSyncReport:
    c = env.controllers[-1]
    wait_for(lambda: c.node_sync.triggers > before, 20, "the node change handled")
    report = c.nodes_changed.last
    assert report is not None
    return report


def test_a_node_change_is_one_aws_node_sync_and_a_failed_write_is_re_planned(env: Env) -> None:
    c = env.controller()
    uids = {}
    for name in ("a", "b", "c"):
        uids[name] = env.create_service(name)["metadata"]["uid"]
    for name in uids:
        env.wait_ingress(name)
    wait_for(lambda: not c.nodes_changed.in_flight(), 10, "no sync in flight")

    new = env.cloud.add_node("node-4")
    triggers = c.node_sync.triggers
    env.kube.create_node(node_object(new))
    report = _handled(env, triggers)
    plan = report.synced["aws"]
    assert plan.covered == {f"{NAMESPACE}/{n}" for n in uids} and not plan.uncovered
    assert report.queued == []  # no Service re-planned
    new_id = new.provider_id.rsplit("/", 1)[-1]
    for uid in uids.values():
        assert new_id in env.registered_instances(uid)

    # Someone deletes b's listener and target group by hand: the next node change's write for b
    # fails, the others are applied, and the controller re-plans b, which makes them again.
    (tg,) = env.target_groups(uids["b"])
    (lb,) = env.load_balancers(uids["b"])
    for listener in env.elbv2().describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]:
        env.elbv2().delete_listener(ListenerArn=listener["ListenerArn"])
    env.elbv2().delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
    other = env.cloud.add_node("node-5")
    triggers = c.node_sync.triggers
    env.kube.create_node(node_object(other))
    report = _handled(env, triggers)
    assert set(report.failed["aws"]) == {f"{NAMESPACE}/b"}
    assert report.queued == [f"{NAMESPACE}/b"]
    other_id = other.provider_id.rsplit("/", 1)[-1]
    for name in ("a", "c"):
        assert other_id in env.registered_instances(uids[name])
    wait_for(lambda: _registered(env, uids["b"]) >= {new_id, other_id}, 20, "b re-planned and repaired")


def _registered(env: Env, uid: str) -> set[str]:
    """What the Service's target group holds; empty while it is missing (being made again)."""
    return env.registered_instances(uid) if env.target_groups(uid) else set()
