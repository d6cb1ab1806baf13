"""The node sync: the backend pools of the cluster's load balancers, for every Service at once.

What of a Service's load balancer follows the nodes on Azure:

* the backend pools: each node is in exactly one slot's pools (:mod:`lbprov_azure.placement`), the
  IPv4 pool ``<cluster>`` and, on a load balancer with IPv6 Services, the IPv6 pool
  ``<cluster>-IPv6`` that follows it node by node. They are shared by every Service of the load
  balancer, so a node change costs one PUT per load balancer whose pools change, through the same
  :class:`~lbprov_azure.lbwriter.SharedLBWriter` (serialised, If-Match, coalesced with the Services'
  own writes) as a Service's apply;
* the NSG rules of a Service with floating IP off: they open each backend node's IP, so such a
  Service is left to its own plan (uncovered).

The load balancers are taken from the listing the observer keeps (:mod:`lbprov_azure.kept`: the
last one read, patched with this process's writes) while it is younger than
``node_sync_listing_max_age_seconds``: decoding a fresh listing (about 5 MB at 1,000 Services x 2
ports) was most of a node sync's time. Each pool write carries what it was planned from, so a view
gone stale is refused at the write (:class:`~lbprov_azure.lbwriter.StalePlan`), never written.

Everything else of a placed Service is independent of the nodes. The node sync declines (None, and
every Service is re-planned as before) where it cannot be sure: intents that disagree on the nodes,
a load balancer of upstream's being adopted or blocking a slot, a node in a foreign load balancer's
pool, a load balancer whose last operation failed or that no Service uses.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from lbprov.identity_memo import distinct
from lbprov.model import Action, Change, Intent, Target
from lbprov.provider import NodeSyncPlan
from lbprov_azure import names, placement
from lbprov_azure.apply import Applier
from lbprov_azure.desired import VIEWS, node_address
from lbprov_azure.diff import Planner, options_of
from lbprov_azure.lbwriter import LBDelta, Seen
from lbprov_azure.observe import find, items
from lbprov_azure.settings import AzureSettings

JSON = dict[str, Any]
PROVIDER = "azure"


def _nodes(targets: tuple[Target, ...]) -> frozenset[tuple[str, str, str | None]]:
    """What the pools hold of an intent's nodes: (name, IPv4, IPv6) of each node with an IPv4."""
    return frozenset(
        (t.node_name, str(t.internal_ip), node_address(t, "IPv6")) for t in targets if t.internal_ip
    )


def _node_sets(intents: Sequence[Intent]) -> set[frozenset[tuple[str, str, str | None]]]:
    """The distinct :func:`_nodes` of ``intents``, worked out once per targets tuple: every Service's
    intent carries the very same tuple while the nodes are the same for all (the core's
    ``NodeTargetsMemo``, and :meth:`AzureProvider._keyed_targets`), so a node sync of 1,000
    Services walked 22,000 targets to find one set (issue 14)."""
    return {_nodes(targets) for targets in distinct(i.targets for i in intents)}


def _pool_ips(lb: JSON) -> set[str]:
    return {ip for p in items(lb, "backendAddressPools") for ip in VIEWS["backend-pool"](p)["addresses"]}


class NodeSync:
    """Plans and applies the backend pools of every load balancer for all the intents given."""

    def __init__(self, settings: AzureSettings, planner: Planner, applier: Applier) -> None:
        self.settings = settings
        self.planner = planner
        self.applier = applier

    def plan(self, intents: Sequence[Intent]) -> NodeSyncPlan | None:
        """The pool changes for every Service (from the kept listing of the load balancers while it
        is young enough, :mod:`lbprov_azure.kept`, else one listing); None to decline."""
        if not intents:
            return NodeSyncPlan(PROVIDER)
        if len(_node_sets(intents)) != 1:
            return None  # a per-Service node set: the shared pools cannot serve them all
        targets = sorted(t for t in intents[0].targets if t.internal_ip)
        node_ips = sorted({str(t.internal_ip) for t in targets})
        # the kept listing while young enough (lbprov_azure.kept: its pool writes then carry what
        # they were planned from), else one listing, as the Services' plans read it
        kept = self.planner.seen.kept.get(self.settings.node_sync_listing_max_age_seconds)
        fleet = self.planner._fleet(node_ips=node_ips, listing=kept)
        if fleet.predecessors or fleet.blocked or not fleet.lbs:
            return None
        if set(node_ips) & {ip for body in fleet.foreign.values() for ip in _pool_ips(body)}:
            return None  # each Service's plan names the foreign load balancer
        for body in fleet.lbs.values():
            if (body.get("properties") or {}).get("provisioningState") == "Failed":
                return None
            if not names.services_of(body.get("tags")):
                return None
        assignment = placement.assign_nodes(node_ips, fleet.pools(), sorted({k for k, _ in fleet.lbs}))
        by_lb: dict[tuple[int, str], list[Change]] = {}
        cluster = self.settings.cluster_name
        for (k, sc), body in sorted(fleet.lbs.items()):
            lbn = names.lb_name(cluster, sc, k)
            out = [
                c
                for family in ("IPv4", "IPv6")
                if (c := self._pool_change(body, lbn, family, assignment.get(k, set()), targets)) is not None
            ]
            if out:
                by_lb[(k, sc)] = out
        changed = set(by_lb)
        floating_off = {
            i.ref.key: "floating IP is off: its NSG rules open each backend node"
            for i in intents
            if not options_of(i).floating_ip
        }
        # A Service on no load balancer of this view (one made since the kept listing, by another
        # replica of the cluster, say) has pools the plan never saw: its own plan adds the nodes.
        placed = {t for body in fleet.lbs.values() for t in names.services_of(body.get("tags"))}
        unseen = {
            i.ref.key: "its load balancer is not in the node sync's listing (made since it was read)"
            for i in intents
            if i.ref.key not in floating_off and names.uid_token(i.ref.uid) not in placed
        }
        uncovered = {**floating_off, **unseen}
        covered = frozenset(i.ref.key for i in intents if i.ref.key not in uncovered)
        tokens = {t for key in changed for t in names.services_of(fleet.lbs[key].get("tags"))}
        updated = frozenset(
            i.ref.key for i in intents if i.ref.key in covered and names.uid_token(i.ref.uid) in tokens
        )
        return NodeSyncPlan(PROVIDER, _ordered(by_lb), covered, uncovered, updated)

    def _pool_change(
        self, lb: JSON, lbn: str, family: str, ipv4s: Collection[str], targets: Sequence[Target]
    ) -> Change | None:
        """The ``family`` pool of ``lb`` holding the nodes of its slot (``ipv4s``), when it differs.
        The IPv4 pool is made where it is missing; the IPv6 one is written only where it exists."""
        s = self.settings
        name = names.pool_name(s.cluster_name, family)
        existing = find(items(lb, "backendAddressPools"), name)
        if existing is None and family == "IPv6":
            return None
        vnet_id = self.planner.ids.vnet(s.vnet_rg, s.vnet_name)
        want = {
            "name": name,
            "properties": {
                "loadBalancerBackendAddresses": [
                    {"name": t.node_name, "properties": {"ipAddress": ip, "virtualNetwork": {"id": vnet_id}}}
                    for t in targets
                    if t.internal_ip in ipv4s
                    and (ip := node_address(t, "IPv6") if family == "IPv6" else t.internal_ip)
                ]
            },
        }
        before = VIEWS["backend-pool"](existing) if existing is not None else None
        after = VIEWS["backend-pool"](want)
        if before == after:
            return None
        return Change(
            Action.UPDATE if existing is not None else Action.CREATE,
            "backend-pool",
            f"{lbn}/{name}",
            before=before,
            after=after,
            reason="the cluster's nodes changed",
            data={
                "lb": lbn,
                "item": want,
                "seen": tuple(before["addresses"]) if before is not None else None,
            },
        )

    def apply(self, plan: NodeSyncPlan) -> None:
        """One submission per load balancer, in the plan's order, through the Services' writers.

        Each carries what its plan saw of the pools it writes (:class:`~lbprov_azure.lbwriter.Seen`):
        a load balancer that differs from it when the PUT is sent (the plan's view was stale: another
        writer changed it, its last operation failed, no Service uses it any more) is not written,
        and :class:`~lbprov_azure.lbwriter.StalePlan` fails the node sync, so that the controller plans
        every Service again (from a fresh listing: the failure also drops the kept one)."""
        by_lb: dict[str, list[Change]] = {}
        for change in plan.changes:
            by_lb.setdefault(str(change.data["lb"]), []).append(change)
        for lbn, changes in by_lb.items():
            self.applier.seen.writing()
            # no Service of its own: the delta only writes the pools (and never joins or leaves)
            delta = LBDelta(
                service="",
                base="",
                pools=tuple(c.data["item"] for c in changes),
                seen=Seen(tuple((str(c.data["item"]["name"]), c.data["seen"]) for c in changes)),
            )
            try:
                self.applier.writer(lbn).submit(delta)
            except BaseException:
                self.planner.seen.kept.forget(lbn)
                raise


def _addresses(view: Mapping[str, Any] | None) -> set[str]:
    return set((view or {}).get("addresses", ()))


def _ordered(by_lb: Mapping[tuple[int, str], list[Change]]) -> tuple[Change, ...]:
    """The load balancers' changes, each written after every one that gives up a node it takes: a
    NIC IP configuration is in the pools of at most one public and one internal load balancer, so a
    node leaves its old slot's pools before it joins the new one's (ARM refuses it otherwise).
    Nodes only move from a slot over its share to one under it, so there is no cycle; were there
    one, the rest is written in slot order (ARM's refusal then fails the node sync, and the
    controller falls back to the Services' own plans)."""
    gains = {
        lb: set().union(*(_addresses(c.after) - _addresses(c.before) for c in cs)) for lb, cs in by_lb.items()
    }
    losses = {
        lb: set().union(*(_addresses(c.before) - _addresses(c.after) for c in cs)) for lb, cs in by_lb.items()
    }
    left = sorted(by_lb)
    out: list[Change] = []
    while left:
        ready = [lb for lb in left if not any(gains[lb] & losses[o] for o in left if o != lb)] or left[:1]
        out.extend(by_lb[ready[0]])
        left.remove(ready[0])
    return tuple(out)
