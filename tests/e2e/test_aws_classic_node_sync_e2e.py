"""The controller's node sync with the AWS provider on moto, classic ELB Services beside an NLB one: a
node change registers (or deregisters) the node in every classic ELB without a per-Service plan, and
each Service whose load balancer got the new host gets upstream's event."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lbprov import naming
from lbprov.controller.nodes import NodeSyncReport
from lbprov.intent import EXCLUDE_LABEL
from lbprov.sandbox.demo import node_object

from .conftest import NAMESPACE, Env, wait_for

pytestmark = pytest.mark.e2e

CLASSIC = {"service.beta.kubernetes.io/aws-load-balancer-type": "classic"}


def _synced(env: Env, before: int, done: Callable[[], bool], what: str) -> NodeSyncReport:
    """The node sync's report once the cloud shows ``done`` (the very state asserted, not a
    count of handler runs) and the sync that made it has finished."""
    c = env.controllers[-1]
    wait_for(done, 60, what)
    wait_for(lambda: c.node_sync.triggers > before and not c.nodes_changed.in_flight(), 60, "sync done")
    report = c.nodes_changed.last
    assert report is not None
    return report


def _classic_instances(env: Env, uid: str) -> set[str]:
    name = naming.lb_name(uid)
    (lb,) = env.box.client("elb").describe_load_balancers(LoadBalancerNames=[name])[
        "LoadBalancerDescriptions"
    ]
    return {i["InstanceId"] for i in lb["Instances"]}


def test_a_node_change_is_one_aws_node_sync_for_classic_elbs_too(env: Env) -> None:
    c = env.controller()
    uids = {
        "old-one": env.create_service("old-one", annotations=CLASSIC)["metadata"]["uid"],
        "old-two": env.create_service("old-two", [(80, "TCP"), (443, "TCP")], annotations=CLASSIC)[
            "metadata"
        ]["uid"],
        "nlb": env.create_service("nlb")["metadata"]["uid"],
    }
    for name in uids:
        env.wait_ingress(name)
    wait_for(lambda: not c.nodes_changed.in_flight(), 60, "no sync in flight")
    keys = {f"{NAMESPACE}/{n}" for n in uids}

    new = env.cloud.add_node("node-4")
    triggers = c.node_sync.triggers
    env.kube.create_node(node_object(new))
    new_id = new.provider_id.rsplit("/", 1)[-1]
    every = env.all_instance_ids() | {new_id}
    report = _synced(
        env,
        triggers,
        lambda: (
            all(_classic_instances(env, uids[n]) == every for n in ("old-one", "old-two"))
            and new_id in env.registered_instances(uids["nlb"])
        ),
        "the new node registered",
    )
    plan = report.synced["aws"]
    assert plan.covered == keys and not plan.uncovered, plan.uncovered
    assert report.queued == []  # no Service re-planned
    for name in uids:
        wait_for(lambda n=name: "UpdatedLoadBalancer" in env.reasons(n), 60, f"{name}'s event")

    # The node is excluded: one node sync deregisters it from each classic ELB.
    triggers = c.node_sync.triggers
    env.kube.patch_node("node-4", {"metadata": {"labels": {EXCLUDE_LABEL: "true"}}})
    report = _synced(
        env,
        triggers,
        lambda: all(_classic_instances(env, uids[n]) == every - {new_id} for n in ("old-one", "old-two")),
        "the excluded node deregistered",
    )
    plan = report.synced["aws"]
    assert plan.covered == keys and not plan.uncovered and report.queued == []
