"""The UpdatedLoadBalancer event says what happened, not what a plan would do."""

from __future__ import annotations

from lbprov.controller.service import what_changed
from lbprov.model import Action, Change, Plan, ServiceRef


def test_applied_plan_reads_as_what_happened() -> None:
    plan = Plan(
        "aws",
        ServiceRef("demo", "web", "uid-1"),
        (
            Change(Action.CREATE, "listener", "TCP:80"),
            Change(Action.CREATE, "listener", "TCP:443"),
            Change(Action.UPDATE, "target-group", "tg-1"),
            Change(Action.DELETE, "security-group-rule", "r-1"),
            Change(Action.DELETE, "address", "a-1"),
            Change(Action.DELETE, "address", "a-2"),
            Change(Action.ADOPT, "load-balancer", "lb-1"),
        ),
    )
    assert what_changed(plan) == (
        "created 2 listeners, updated 1 target-group, deleted 1 security-group-rule, deleted 2 addresses, adopted 1 load-balancer"
    )
    assert what_changed(Plan("aws", ServiceRef("demo", "web", "uid-1"))) == "no changes"
