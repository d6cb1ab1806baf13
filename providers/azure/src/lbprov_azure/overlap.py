"""Which NSG rule changes of a plan may go out beside its load-balancer write (pure).

A new Service's plan is: its public IP, then its parts on the shared load balancer (one submission
to the LB's batch writer, :mod:`lbprov_azure.lbwriter`), then its NSG rule (one delta to the shared
rule's batch writer, :mod:`lbprov_azure.nsgwriter`). Apply used to wait for the LB batch (its PUT
and the operation's poll) before it even submitted the NSG rule, and then for the rule's batch (its
PUT and poll): two batch waits in a row, about a fifth of each Service's sync on the scale bench
(issue 14: Azure create time over its ideal).

The NSG rule does not need the load balancer: with floating IP (the default) its destination is the
frontend's address, which for a public frontend is the public IP's address, known once the public
IP is written; without floating IP it names the nodes, known at plan time. ARM checks no reference
from a security rule to a load balancer (a security rule's destination is an address prefix, not a
resource id: azure-rest-api-specs ``SecurityRulePropertiesFormat``). So such a rule change goes out
beside the LB submission and apply waits for both.

Only additions overlap: a rule change that removes an address (or deletes a rule) keeps its place
after the LB write, and nothing overlaps a load-balancer group that deletes anything, so that
traffic is never opened or closed in a new order when something goes away. An address that only the
LB write tells (an internal frontend's private IP) keeps the rule after the write too. A crash
between the two writes leaves a state that the next plan completes, as any interrupted apply: the
rule's address is planned from the Service's frontend, the LB's parts from what the LB holds.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from lbprov.model import Action, Change

#: The load-balancer changes a group may hold for its NSG rules to go out beside it.
_LB_ADDITIONS = frozenset({Action.CREATE, Action.UPDATE, Action.ADOPT})


def independent_rule_changes(
    changes: Sequence[Change], group_end: int, group: Sequence[Change], known_families: Collection[str]
) -> int:
    """The end of the NSG rule changes right after an LB group that may go out beside it.

    ``group`` is the LB group's changes, ``changes[group_end:]`` what follows it, and
    ``known_families`` the IP families whose public IP this apply has written (their address is
    known). Returns ``m`` such that ``changes[group_end:m]`` may run beside the group
    (``m == group_end``: none).
    """
    if not adds_only(group):
        return group_end
    m = group_end
    while m < len(changes) and _addition_known(changes[m], known_families):
        m += 1
    return m


def adds_only(group: Sequence[Change]) -> bool:
    """Whether an LB group only creates, updates or adopts (removes nothing)."""
    return all(ch.action in _LB_ADDITIONS for ch in group)


def _addition_known(ch: Change, known_families: Collection[str]) -> bool:
    """An NSG rule change that only adds a destination this apply already knows."""
    if ch.kind != "nsg-rule" or ch.action not in (Action.CREATE, Action.UPDATE):
        return False
    data = ch.data
    if data.get("remove"):
        return False
    if not data.get("shared") and ch.action is not Action.CREATE:
        return False  # a per-port rule's update rewrites it whole: it may drop an address
    want = data.get("resolve_frontend")
    if not want:
        return True  # its destinations are known at plan time (floating IP off: the nodes)
    return str(want.get("family", "IPv4")) in known_families
