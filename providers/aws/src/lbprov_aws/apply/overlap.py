"""Which of a new NLB's creates may run while the others go on (pure).

A plan lists its changes in an order where nothing points at something missing (diff/common.py),
and apply used to send them one after the other: a new Service paid six round trips in a row
(CreateSecurityGroup, AuthorizeSecurityGroupIngress, CreateTargetGroup, RegisterTargets,
CreateLoadBalancer, CreateListener), while only three of them depend on each other. The load
balancer needs its security groups; the listener needs the load balancer and its target group;
nothing needs a group's rules, and the target group (with its targets) needs neither the groups nor
the load balancer. So, with the same calls:

* every new target group (CreateTargetGroup, its attributes if any, RegisterTargets) starts when
  the apply does, and the first listener waits for them;
* every new rule of a new group (the frontend group's source ranges, the node groups' rules
  admitting the backend group) starts once the groups are made, beside the load balancer's create;
  apply waits for them before it returns.

The chain a new Service waits for is then CreateSecurityGroup -> CreateLoadBalancer ->
CreateListener (issue 14: AWS create time over its ideal), as GCP does (lbprov_gcp/overlap.py).

Only a new load balancer's plan overlaps, and only when it holds nothing but creates of these kinds:
an update, a replacement, a delete, an adoption, a node-rule range or anything else keeps the whole
plan in its order. A crash between two overlapping writes leaves a state the next plan completes,
as any interrupted apply does: each resource is planned from what exists, and each carries its
ownership tags from its create on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from lbprov.model import Action, Change

#: Change types (``Change.data["type"]``) a new NLB's plan may hold and still overlap.
_GROUPS = frozenset({"nlb-sg"})
_RULES = frozenset({"nlb-sg-rule", "backend-rule"})
_TARGET_GROUPS = frozenset({"tg"})
_LOAD_BALANCER = "nlb"
_LISTENERS = frozenset({"listener"})
_OVERLAPPING = _GROUPS | _RULES | _TARGET_GROUPS | _LISTENERS | {_LOAD_BALANCER}


@dataclass(frozen=True)
class Step:
    """``run`` the change here; ``start`` it beside the next steps; ``wait`` for a started one.

    A change started and never waited for here (a group's rule) is waited for when the apply ends.
    """

    action: Literal["run", "start", "wait"]
    index: int  # into the plan's changes


def _type(c: Change) -> str:
    return str(c.data.get("type", ""))


def overlaps(changes: Sequence[Change]) -> bool:
    """Whether the plan is a new NLB's creates alone (see the module docstring)."""
    return any(_type(c) == _LOAD_BALANCER and c.action is Action.CREATE for c in changes) and all(
        c.action is Action.CREATE and _type(c) in _OVERLAPPING for c in changes
    )


def steps(changes: Sequence[Change]) -> tuple[Step, ...]:
    """The plan's changes as steps: every change is run or started exactly once, and a change that
    another one needs is done before that one starts. A plan that does not overlap is run in order."""
    if not overlaps(changes):
        return tuple(Step("run", i) for i in range(len(changes)))
    target_groups = [i for i, c in enumerate(changes) if _type(c) in _TARGET_GROUPS]
    out = [Step("start", i) for i in target_groups]
    waiting = list(target_groups)
    for i, c in enumerate(changes):
        kind = _type(c)
        if kind in _TARGET_GROUPS:
            continue
        if kind in _RULES:  # after every group the plan makes (diff/common.py's order), all run here
            out.append(Step("start", i))
            continue
        if kind in _LISTENERS:  # a listener forwards to one of the target groups
            out += [Step("wait", j) for j in waiting]
            waiting = []
        out.append(Step("run", i))
    return tuple(out)
