"""Which load balancer a Service goes on, and which nodes are in which load balancer's pool.

Azure's limits (learn.microsoft.com "Azure subscription and service limits", Load Balancer and
Networking): a Standard load balancer holds at most 600 frontend IP configurations and 1,500 rules,
and a NIC IP configuration can be in at most 300 load-balancing and inbound NAT rules across all
load balancers. The last binds first: one pool of every node caps the whole cluster at 300 Service
ports. So, as upstream's "multiple standard load balancers", the cluster's load balancers come in
*slots*: slot ``k`` is the public LB ``<cluster>[-<k+1>]`` and the internal LB
``<cluster>[-<k+1>]-internal``, and each node is in exactly one slot's pools (both LBs of the slot).
Every rule of a slot reaches every node of the slot, so a slot holds at most 300 rules in all.

Placement (pure and deterministic given what exists, so concurrent plans agree):

* A Service stays on the slot that holds it (nothing moves that need not move), unless
  ``azure-load-balancer-configurations`` names other load balancers.
* A new Service goes on the slot in use with the fewest rules that still fits it (ties: the lowest
  index); if none fits, on a new slot (the lowest free index), as long as there are fewer slots than
  ``max_load_balancers`` and than nodes (a slot needs a node); otherwise the Service is refused
  with :class:`CapacityExceeded`, naming the limit.
* Whether a slot *fits* counts the room held for other plans decided but not yet applied
  (:mod:`lbprov_azure.reservations`), so concurrent plans never each take the same last room; which
  fitting slot is *chosen* counts only what exists (as before holds: plans made at the same moment
  keep going to the same load balancer, where their writes share one PUT).
* Nodes are spread evenly over the slots in use (sizes differ by at most one); a node keeps its
  slot unless its slot has more than its share, and new nodes fill the slots with the fewest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

#: A NIC IP configuration is in at most 300 load-balancing + inbound NAT rules across all LBs.
MAX_RULES_PER_NIC = 300
#: A Standard load balancer: at most 1,500 rules and 600 frontend IP configurations.
MAX_RULES_PER_LB = 1500
MAX_FRONTENDS_PER_LB = 600
#: A network security group holds at most 1,000 security rules.
MAX_NSG_RULES = 1000


class CapacityExceeded(RuntimeError):
    """No load balancer of the cluster can take the Service within Azure's limits."""


class ForeignPoolConflict(RuntimeError):
    """The Service's nodes are in the load-balancing pool of a load balancer lbprov does not own, of
    the same kind (public or internal) as the Service's: a NIC IP configuration can be in the
    backend pools of at most one public and one internal load balancer."""


@dataclass(frozen=True)
class SlotUse:
    """What one slot holds today, without the Service being placed."""

    index: int
    rules: int  # on both LBs of the slot
    lb_rules: int  # on the slot's LB of the Service's scheme
    frontends: int  # on the slot's LB of the Service's scheme
    #: held for other plans not yet applied (:mod:`lbprov_azure.reservations`), same three counts
    held_rules: int = 0
    held_lb_rules: int = 0
    held_frontends: int = 0


def _fits(use: SlotUse, rules: int, frontends: int = 1) -> bool:
    """``frontends``: a dual-stack Service has one per family. Its IPv6 rules count toward the rules
    per NIC as well (conservative: Azure counts per NIC IP configuration, and IPv6 is a second one)."""
    return (
        use.rules + use.held_rules + rules <= MAX_RULES_PER_NIC
        and use.lb_rules + use.held_lb_rules + rules <= MAX_RULES_PER_LB
        and use.frontends + use.held_frontends + frontends <= MAX_FRONTENDS_PER_LB
    )


def choose_slot(
    in_use: Sequence[SlotUse],
    rules: int,
    *,
    max_slots: int,
    nodes: int,
    allowed: Iterable[int] | None = None,
    blocked: Iterable[int] = (),
    describe: str = "",
    foreign_floor: int = 0,
    frontends: int = 1,
) -> int:
    """The slot for a Service that is on none yet (see the module doc).

    ``foreign_floor``: the rules of load balancers lbprov does not own (AKS's) that reach every node
    of the Service (a new slot's nodes carry at least these).
    """
    allow = set(allowed) if allowed is not None else None
    block = set(blocked)
    fitting = [
        u
        for u in in_use
        if _fits(u, rules, frontends) and (allow is None or u.index in allow) and u.index not in block
    ]
    if fitting:
        return min(fitting, key=lambda u: (u.rules, u.index)).index
    used = {u.index for u in in_use}
    limit = min(max_slots, max(nodes, 1))
    taken = used | block
    free = [k for k in range(max_slots) if k not in taken and (allow is None or k in allow)]
    if free and len(used) < limit and foreign_floor + rules <= MAX_RULES_PER_NIC:
        return free[0]
    held = sum(u.held_rules for u in in_use)
    pending = f", {held} of their rules held for plans not yet applied" if held else ""
    raise CapacityExceeded(
        f"no load balancer of the cluster can take {describe or 'the Service'} ({rules} rules): each of "
        f"the {len(used)} in use is full{pending} (a node is in at most {MAX_RULES_PER_NIC} load-balancing rules "
        f"across all load balancers, a load balancer holds at most {MAX_RULES_PER_LB} rules and "
        f"{MAX_FRONTENDS_PER_LB} frontends), and no new one can be added "
        f"(max_load_balancers={max_slots}, {nodes} nodes: a load balancer needs a node of its own)"
    )


def assign_nodes(
    ips: Iterable[str], current: Mapping[int, Iterable[str]], slots: Sequence[int]
) -> dict[int, set[str]]:
    """Node IPs per slot: even sizes, fewest moves from ``current`` (see the module doc)."""
    wanted = sorted(set(ips))
    order = sorted(set(slots))
    if not order:
        return {}
    taken: set[str] = set()
    keep: dict[int, list[str]] = {}
    wanted_set = set(wanted)  # once, not once per node of every slot (every plan asks)
    for k in order:  # a node in two slots' pools stays in the lower one
        keep[k] = sorted(ip for ip in set(current.get(k, ())) if ip in wanted_set and ip not in taken)
        taken.update(keep[k])
    free = [ip for ip in wanted if ip not in taken]
    base, extra = divmod(len(wanted), len(order))
    by_size = sorted(order, key=lambda k: (-len(keep[k]), k))
    target = {k: base + (1 if i < extra else 0) for i, k in enumerate(by_size)}
    for k in order:
        while len(keep[k]) > target[k]:
            free.append(keep[k].pop())
    free.sort()
    for k in order:
        while len(keep[k]) < target[k]:
            keep[k].append(free.pop(0))
    return {k: set(v) for k, v in keep.items()}
