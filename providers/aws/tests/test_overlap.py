"""A new NLB's independent creates run beside the others (apply/overlap.py), with the same calls.

The schedule is pure and tested on its own; the overlap itself through the provider against the
strict sandbox: a request is held back until one that a one-after-the-other apply would send only
later has been sent, so these tests fail on an apply that does not overlap (no timing involved).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lbprov_aws import AWSProvider
from lbprov_aws.apply.overlap import Step, overlaps, steps
from lbprov_aws.testing import AwsView, Svc, converge, delete_all, intent_of, node_objects

from lbprov.model import Action, Change, Intent
from lbprov.provider import SandboxCloud
from lbprov.testing import HoldUntilSent


def change(kind: str, type_: str, action: Action = Action.CREATE, name: str = "") -> Change:
    return Change(action, kind, name or f"{type_}-{kind}", data={"type": type_})


GROUP = change("security-group", "nlb-sg")
RULE = change("security-group-rule", "nlb-sg-rule")
BACKEND_RULE = change("security-group-rule", "backend-rule")
TG = change("target-group", "tg")
LB = change("load-balancer", "nlb")
LISTENER = change("listener", "listener")


def test_a_new_nlb_starts_its_target_group_at_once_and_its_rules_beside_the_load_balancer() -> None:
    # plan order: frontend group, its rule, target group, load balancer, listener
    assert steps([GROUP, RULE, TG, LB, LISTENER]) == (
        Step("start", 2),  # the target group (and its targets) from the start ...
        Step("run", 0),
        Step("start", 1),  # ... the group's rule once the group exists ...
        Step("run", 3),  # ... beside the load balancer's create
        Step("wait", 2),  # the listener waits for its target group only
        Step("run", 4),
    )  # the rule is waited for when the apply ends


def test_two_ports_and_a_fresh_clusters_backend_group_overlap_the_same_way() -> None:
    tg2, listener2 = change("target-group", "tg", name="b"), change("listener", "listener", name="b")
    backend = change("security-group", "nlb-sg", name="backend")
    plan = [GROUP, backend, RULE, BACKEND_RULE, TG, tg2, LB, LISTENER, listener2]
    assert steps(plan) == (
        Step("start", 4),
        Step("start", 5),
        Step("run", 0),
        Step("run", 1),
        Step("start", 2),
        Step("start", 3),
        Step("run", 6),
        Step("wait", 4),
        Step("wait", 5),
        Step("run", 7),
        Step("run", 8),
    )


@pytest.mark.parametrize(
    "other",
    [
        change("target-group", "tg", Action.UPDATE),  # an update
        change("listener", "listener", Action.DELETE),  # a delete
        change("load-balancer", "nlb", Action.REPLACE),  # a replacement
        change("security-group-rule", "node-sg-range"),  # a node rule range (apply recomputes it)
        change("security-group-rule", "kube-proxy-rule"),
        change("load-balancer", "adopt-rule", Action.ADOPT),  # an adoption
    ],
)
def test_anything_but_a_new_nlbs_creates_keeps_the_plans_order(other: Change) -> None:
    plan = [GROUP, RULE, TG, LB, other, LISTENER]
    assert not overlaps(plan)
    assert steps(plan) == tuple(Step("run", i) for i in range(len(plan)))


def test_creates_without_a_new_load_balancer_keep_the_plans_order() -> None:
    # a port added to an existing NLB: its target group, rule and listener are creates, but the
    # Service is not new
    plan = [RULE, TG, LISTENER]
    assert steps(plan) == (Step("run", 0), Step("run", 1), Step("run", 2))


def test_every_change_is_done_exactly_once_and_a_wait_follows_its_start() -> None:
    for plan in ([GROUP, RULE, TG, LB, LISTENER], [TG, LB, LISTENER], [LB], [GROUP, LB, RULE]):
        out = steps(plan)
        done = Counter(s.index for s in out if s.action in ("run", "start"))
        assert done == Counter(range(len(plan)))
        for at, step in enumerate(out):
            if step.action == "wait":
                assert Step("start", step.index) in out[:at]
            if plan[step.index].data["type"] == "listener":  # after every target group's wait
                tgs = [i for i, c in enumerate(plan) if c.data["type"] == "tg"]
                assert all(Step("wait", i) in out[:at] for i in tgs)


# -- through the provider against the strict sandbox ------------------------------------------------


PER_SERVICE_WRITES = Counter(
    {
        "ec2:CreateSecurityGroup": 1,
        "ec2:AuthorizeSecurityGroupIngress": 1,
        "elbv2:CreateTargetGroup": 1,
        "elbv2:RegisterTargets": 1,
        "elbv2:CreateLoadBalancer": 1,
        "elbv2:CreateListener": 1,
    }
)


SECOND = Svc(name="second", ports=[(80, "TCP", 30081)])


def second_service(provider: AWSProvider, cloud: SandboxCloud) -> Intent:
    """The cluster's shared backend group made (by a first Service), and a second Service's intent:
    its plan is the six per-Service writes."""
    nodes = node_objects(cloud)
    converge(provider, intent_of(provider, Svc(name="first"), nodes))
    return intent_of(provider, SECOND, nodes)


@pytest.mark.parametrize(
    ("held", "until"),
    [
        # the target group goes out beside the groups and the load balancer, not after the rule
        ("elbv2:CreateTargetGroup", "elbv2:CreateLoadBalancer"),
        # its targets too
        ("elbv2:RegisterTargets", "elbv2:CreateLoadBalancer"),
        # the frontend group's rule goes out beside the load balancer's create, not before it
        ("ec2:AuthorizeSecurityGroupIngress", "elbv2:CreateLoadBalancer"),
    ],
)
def test_a_new_nlb_overlaps_its_independent_writes(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView, held: str, until: str
) -> None:
    intent = second_service(provider, cloud)
    plan = provider.plan(intent)
    assert [(c.action, c.data["type"]) for c in plan.changes] == [
        (Action.CREATE, "nlb-sg"),
        (Action.CREATE, "nlb-sg-rule"),
        (Action.CREATE, "tg"),
        (Action.CREATE, "nlb"),
        (Action.CREATE, "listener"),
    ]
    gate = HoldUntilSent(held, until)
    provider.calls.listeners.append(gate)
    cloud.extra["sandbox"].recorder.clear()
    ingress = provider.apply(plan)
    provider.calls.listeners.remove(gate)
    assert not gate.waited_in_vain, f"{held} went out only after {until}: {gate.sent}"
    # the same calls as one after the other: the six writes, and the describe before the load
    # balancer's create (apply/nlb.py _existing_nlb: outside a read round)
    assert Counter(gate.sent) == PER_SERVICE_WRITES + Counter({"elbv2:DescribeLoadBalancers": 1})
    assert Counter(cloud.mutating_requests()) == PER_SERVICE_WRITES
    [lb] = view.nlbs(intent.ref.uid)
    assert ingress and ingress[0].hostname == lb["DNSName"]
    # converged: a fresh provider's plan is empty, and a second apply writes nothing
    again = AWSProvider.from_settings(provider.settings)
    assert again.plan(intent).empty
    converge(again, intent)


class Refuse:
    """A before-call hook refusing one operation once with a non-retryable error."""

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.refused = False

    def __call__(self, model: Any, **_: Any) -> None:
        if model.name == self.operation and not self.refused:
            self.refused = True
            raise ClientError({"Error": {"Code": "ValidationError", "Message": "refused"}}, model.name)


@pytest.mark.parametrize(
    ("refused", "client", "held", "until", "answered", "missing"),
    [
        # the target group (beside) fails while the load balancer is created: no listener is sent
        (
            "CreateTargetGroup",
            "elbv2",
            "elbv2:CreateTargetGroup",
            "elbv2:CreateLoadBalancer",
            {"ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress", "elbv2:CreateLoadBalancer"},
            {"tg", "listener"},
        ),
        # the load balancer fails while the target group's targets are registered: apply raises
        # only once they are answered
        (
            "CreateLoadBalancer",
            "elbv2",
            "elbv2:RegisterTargets",
            "elbv2:CreateLoadBalancer",
            {
                "ec2:CreateSecurityGroup",
                "ec2:AuthorizeSecurityGroupIngress",
                "elbv2:CreateTargetGroup",
                "elbv2:RegisterTargets",
            },
            {"nlb", "listener"},
        ),
    ],
)
def test_a_failed_write_beside_others_raises_after_they_end_and_the_next_plan_holds_the_rest(
    provider: AWSProvider,
    cloud: SandboxCloud,
    view: AwsView,
    refused: str,
    client: str,
    held: str,
    until: str,
    answered: set[str],
    missing: set[str],
) -> None:
    intent = second_service(provider, cloud)
    refuse = Refuse(refused)
    provider.clients.clients[client].meta.events.register("before-call.*.*", refuse)
    gate = HoldUntilSent(held, until)
    provider.calls.listeners.append(gate)
    cloud.extra["sandbox"].recorder.clear()
    with pytest.raises(ClientError, match="refused"):
        provider.apply(provider.plan(intent))
    provider.calls.listeners.remove(gate)
    assert refuse.refused and not gate.waited_in_vain
    # apply raised only once every write it started was answered: the log holds them all now
    assert set(cloud.mutating_requests()) == answered
    # a restart: the next plan holds only what is missing, and everything made carries its tags
    fresh = AWSProvider.from_settings(provider.settings)
    plan = fresh.plan(intent)
    assert {c.data["type"] for c in plan.changes} == missing
    assert all(c.action is Action.CREATE for c in plan.changes)
    converge(fresh, intent)
    delete_all(fresh, SECOND)  # and nothing of it leaks
    view.assert_nothing_owned(SECOND, [30081])
