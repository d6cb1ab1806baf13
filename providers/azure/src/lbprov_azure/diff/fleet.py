"""The cluster's load balancers as a fleet of slots, and the Service's place in it.

Mixed into :class:`~lbprov_azure.diff.Planner`: reads every slot's load balancers with one listing,
places the Service (:mod:`lbprov_azure.placement`), and plans the pool changes that keep each node in
exactly one slot's pools.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from lbprov import naming
from lbprov.model import Action, Change, Intent, InvalidService, OwnershipConflict
from lbprov_azure import names, parts, placement
from lbprov_azure.desired import VIEWS, Ids, rule_count
from lbprov_azure.observe import Observer, find, items
from lbprov_azure.options import LB_CONFIGURATIONS, AzureOptions
from lbprov_azure.reservations import Hold, Reservations, Ticket
from lbprov_azure.settings import AzureSettings

JSON = dict[str, Any]


@dataclass
class Fleet:
    """The cluster's load balancers as observed: (slot, scheme) -> body."""

    lbs: dict[tuple[int, str], JSON] = field(default_factory=dict)
    #: load balancers of ``lbs`` that cloud-provider-azure made and lbprov adopts with this Service
    #: (no lbprov ownership tag yet; they hold the Service's predecessor, see :mod:`.adopt`)
    predecessors: set[tuple[int, str]] = field(default_factory=set)
    #: slot names taken by a load balancer lbprov does not own and may not take (upstream's, not
    #: holding this Service): never written, never placed on
    blocked: set[tuple[int, str]] = field(default_factory=set)
    #: every other load balancer of the resource group by name (AKS's ``kubernetes``, anyone's):
    #: never written, but their rules count toward each node's limit and their pools bind nodes
    foreign: dict[str, JSON] = field(default_factory=dict)

    def foreign_rules(self) -> dict[str, int]:
        """Load-balancing rules per node IP on the load balancers lbprov does not own (a NIC IP
        configuration is in at most 300 rules across ALL load balancers, AKS's included)."""
        out: dict[str, int] = {}
        for body in self.foreign.values():
            for ip, n in rules_per_ip(body).items():
                out[ip] = out.get(ip, 0) + n
        return out

    def pools(self) -> dict[int, set[str]]:
        """Node IPs in each slot's pools (either LB of the slot)."""
        out: dict[int, set[str]] = {}
        for (k, _), body in self.lbs.items():
            if items(body, "backendAddressPools"):
                out.setdefault(k, set()).update(parts.pool_addresses(body))
        return out


def rules_per_ip(lb: JSON) -> dict[str, int]:
    """How many of ``lb``'s load-balancing rules reach each backend IP (through the rules' pools)."""
    ips_of = {
        str(p.get("name", "")).lower(): set(VIEWS["backend-pool"](p)["addresses"])
        for p in items(lb, "backendAddressPools")
    }
    out: dict[str, int] = {}
    for rule in items(lb, "loadBalancingRules"):
        props = rule.get("properties") or {}
        refs = [props.get("backendAddressPool"), *(props.get("backendAddressPools") or [])]
        pools = {str(r["id"]).rsplit("/", 1)[-1].lower() for r in refs if isinstance(r, dict) and r.get("id")}
        for ip in set().union(*(ips_of.get(p, set()) for p in pools)) if pools else set():
            out[ip] = out.get(ip, 0) + 1
    return out


def _pool_ips(lb: JSON) -> set[str]:
    return {ip for p in items(lb, "backendAddressPools") for ip in VIEWS["backend-pool"](p)["addresses"]}


def is_public(lb: JSON) -> bool | None:
    """Whether ``lb`` is public (a frontend on a public IP), internal, or unknown (no frontend)."""
    fes = items(lb, "frontendIPConfigurations")
    if not fes:
        return None
    return any((f.get("properties") or {}).get("publicIPAddress") for f in fes)


def _others(lb: JSON | None, fld: str, base: str) -> int:
    """How many of ``lb``'s ``fld`` are not the Service's own (by name)."""
    return parts.others(lb, fld, base)


def _held(fleet: Fleet, holds: list[Hold], token: str, scheme: str) -> dict[int, tuple[int, int, int]]:
    """Room held per slot for other Services' plans: (rules on the slot, rules and frontends on its
    LB of ``scheme``). A hold for a Service that the observed LB already records is its apply's
    result, already counted as observed."""
    out: dict[int, tuple[int, int, int]] = {}
    recorded: dict[tuple[int, str], frozenset[str]] = {}  # each LB's Service map, read once here
    for h in holds:
        if h.token == token:
            continue
        where = (h.slot, h.scheme)
        if where not in recorded:
            lb = fleet.lbs.get(where)
            recorded[where] = names.service_tokens(lb.get("tags")) if lb is not None else frozenset()
        if h.token in recorded[where]:
            continue
        rules, lb_rules, frontends = out.get(h.slot, (0, 0, 0))
        mine = h.scheme == scheme
        out[h.slot] = (rules + h.rules, lb_rules + h.rules * mine, frontends + h.frontends * mine)
    return out


class FleetChanges:
    """The fleet part of the planner (see the module doc)."""

    settings: AzureSettings
    seen: Observer
    ids: Ids
    #: room held for plans not yet applied (None: a dry run, which never applies)
    reservations: Reservations | None

    def _fleet(
        self,
        *,
        strict: bool = True,
        base: str | None = None,
        node_ips: Collection[str] = (),
        listing: Mapping[str, JSON] | None = None,
    ) -> Fleet:
        """The cluster's load balancers by (slot, scheme), from one listing of the resource group.

        ``strict`` (ensure): a load balancer of another cluster identity is an ownership conflict. A
        delete plan (``strict=False``) takes the Service's parts from it all the same: the caller
        (gc with the identity check, or a user naming it) decided that this Service's parts go.

        A load balancer at one of the slot names without lbprov's ownership tag is cloud-provider-
        azure's (upstream names its shared LB after the cluster too; AKS's is ``kubernetes``). It
        joins the fleet as a *predecessor* when it holds the Service's frontend ``base`` (the plan
        then proves and adopts it, :mod:`.adopt`), or, at slot 0, when its pools hold this cluster's
        nodes (``node_ips``: no other cluster's load balancer can); otherwise its slot is blocked
        (never written, never placed on), and an ensure that has nowhere else to go gets the
        ownership conflict. Every other load balancer of the resource group is ``foreign``.

        ``listing``: the load balancers by lower-case name, when the caller has them (the node
        sync's kept listing); otherwise one listing is read.
        """
        cluster = self.settings.cluster_name
        if listing is None:
            listing = self.seen.lbs_by_name()
        fleet = Fleet()
        for k in range(self.settings.max_load_balancers):
            for sc in ("external", "internal"):
                body = listing.get(names.lb_name(cluster, sc, k).lower())
                if body is None:
                    continue
                other_id = names.identity_of(body.get("tags"))
                if strict and self.settings.cluster_id and other_id and other_id != self.settings.cluster_id:
                    raise OwnershipConflict(
                        f"load balancer {body.get('name')!r} is tagged for cluster {cluster!r} but carries another "
                        f"cluster's identity ({naming.CLUSTER_ID_TAG}={other_id}, this cluster is "
                        f"{self.settings.cluster_id}): two clusters share the name; lbprov never touches it"
                    )
                if not names.is_cluster_owned(body.get("tags"), cluster):
                    holds = bool(base and parts.find(body, "frontendIPConfigurations", base))
                    ours = k == 0 and bool(set(node_ips) & _pool_ips(body))
                    if other_id is None and (holds or ours):
                        fleet.predecessors.add((k, sc))
                    else:
                        fleet.blocked.add((k, sc))
                        continue
                fleet.lbs[(k, sc)] = body
        mine = {names.lb_name(cluster, sc, k).lower() for k, sc in fleet.lbs}
        fleet.foreign = {n: b for n, b in listing.items() if n not in mine}
        return fleet

    def _check_foreign_pools(
        self, fleet: Fleet, assignment: Mapping[int, set[str]], want: tuple[int, str]
    ) -> None:
        """Refuse to put a node into a pool of lbprov's when a load balancer of the same kind that
        lbprov does not own already load-balances to it (see :class:`placement.ForeignPoolConflict`)."""
        lbs = set(fleet.lbs) | {want}
        for name, body in sorted(fleet.foreign.items()):
            public = is_public(body)
            inbound = set(rules_per_ip(body))
            if public is None or not inbound:
                continue
            for k, sc in sorted(lbs):
                clash = sorted(inbound & assignment.get(k, set()))
                if clash and public == (sc == "external"):
                    ours = names.lb_name(self.settings.cluster_name, sc, k)
                    raise placement.ForeignPoolConflict(
                        f"nodes {', '.join(clash)} are in the load-balancing pool of load balancer "
                        f"{body.get('name', name)!r}, which lbprov does not own, and would also be in the pool of "
                        f"{'public' if public else 'internal'} load balancer {ours!r}: Azure puts a NIC IP "
                        "configuration in the backend pools of at most one public and one internal load balancer. "
                        f"If {body.get('name', name)!r} is this cluster's own (AKS names it 'kubernetes'), set "
                        "cluster_name to its name so that lbprov adopts it; otherwise leave these Services to its "
                        "controller or exclude those nodes"
                    )

    def _blocked_conflict(self, fleet: Fleet, slot: int, scheme: str) -> None:
        """Refuse a slot taken by a load balancer lbprov does not own (see :meth:`_fleet`)."""
        if (slot, scheme) in fleet.blocked:
            name = names.lb_name(self.settings.cluster_name, scheme, slot)
            raise OwnershipConflict(
                f"load balancer {name!r} exists in resource group {self.settings.resource_group!r} but is not "
                f"owned by cluster {self.settings.cluster_name!r}; lbprov never adopts it (a load balancer of "
                "cloud-provider-azure is adopted with the first of its Services that lbprov reconciles: "
                "rename the cluster or remove that load balancer otherwise)"
            )

    def _place(
        self,
        intent: Intent,
        opts: AzureOptions,
        fleet: Fleet,
        scheme: str,
        base: str,
        token: str,
        nodes: int,
        since: int = 0,
    ) -> tuple[int, Ticket | None]:
        """The slot of the Service: where it is, else chosen by :func:`placement.choose_slot`.

        A Service put on a slot that does not hold it yet holds room there for its plan
        (:mod:`lbprov_azure.reservations`: the ticket returned; None for a dry run or a Service
        that stays where it is), counted by every placement decided before the plan's apply ends.
        ``since``: the plan's mark (:meth:`Reservations.placing`), taken before ``fleet`` was read.
        Call it under the reservations' lock, so that the choice and its hold are one step.
        """
        cluster = self.settings.cluster_name
        allowed: set[int] | None = None
        if opts.lb_configurations:
            by_name = {
                names.lb_name(cluster, "external", k).lower(): k
                for k in range(self.settings.max_load_balancers)
            }
            allowed = set()
            for want in opts.lb_configurations:
                if want.lower() not in by_name:
                    raise InvalidService(
                        f"metadata.annotations[{LB_CONFIGURATIONS}]",
                        f"{want!r} is not a load balancer of this cluster; accepted: "
                        + ", ".join(sorted(by_name)),
                    )
                allowed.add(by_name[want.lower()])
        for (k, sc), body in sorted(fleet.lbs.items()):
            holds = token in names.service_tokens(body.get("tags")) or parts.find(
                body, "frontendIPConfigurations", base
            )
            if sc == scheme and (allowed is None or k in allowed) and holds:
                return k, None
        # counted from the rules' names alone (desired.rule_count: the same count as build_desired's)
        need = rule_count(intent, opts)
        uses = []
        pools, foreign = fleet.pools(), fleet.foreign_rules()
        res = self.reservations
        held = _held(fleet, res.counted(since) if res is not None else [], token, scheme)
        for k in sorted({k for k, _ in fleet.lbs} | set(held)):
            own = fleet.lbs.get((k, scheme))
            h_rules, h_lb_rules, h_frontends = held.get(k, (0, 0, 0))
            uses.append(
                placement.SlotUse(
                    index=k,
                    # a node of the slot is in every rule of the slot and in those of foreign LBs
                    rules=sum(
                        _others(b, "loadBalancingRules", base) for (j, _), b in fleet.lbs.items() if j == k
                    )
                    + max((foreign.get(ip, 0) for ip in pools.get(k, set())), default=0),
                    lb_rules=_others(own, "loadBalancingRules", base),
                    frontends=_others(own, "frontendIPConfigurations", base),
                    held_rules=h_rules,
                    held_lb_rules=h_lb_rules,
                    held_frontends=h_frontends,
                )
            )
        slot = placement.choose_slot(
            uses,
            need,
            max_slots=self.settings.max_load_balancers,
            nodes=nodes,
            allowed=allowed,
            blocked={k for k, sc in fleet.blocked if sc == scheme},
            describe=f"Service {intent.ref.key}",
            frontends=len(intent.ip_families),
            foreign_floor=min(
                (foreign.get(str(t.internal_ip), 0) for t in intent.targets if t.internal_ip), default=0
            ),
        )
        self._blocked_conflict(fleet, slot, scheme)
        theirs = sorted(k for k, sc in fleet.blocked if sc == scheme)
        if theirs and slot not in {k for k, _ in fleet.lbs}:
            # a new load balancer would take nodes that are in that one's pool (a NIC IP
            # configuration is in at most one public and one internal load balancer): wait for it
            self._blocked_conflict(fleet, theirs[0], scheme)
        hold = Hold(token, slot, scheme, need, frontends=len(intent.ip_families))
        return slot, res.take(hold) if res is not None else None

    def _pool_change(
        self, lb: JSON, lbn: str, ips: set[str], intent: Intent, token: str, base: str
    ) -> Change | None:
        """The backend pool of another LB, when the node assignment changed it."""
        s = self.settings
        pool_name = names.pool_name(s.cluster_name)
        vnet_id = self.ids.vnet(s.vnet_rg, s.vnet_name)
        by_ip = {str(t.internal_ip): t.node_name for t in intent.targets if t.internal_ip}
        want = {
            "name": pool_name,
            "properties": {
                "loadBalancerBackendAddresses": [
                    {"name": by_ip[ip], "properties": {"ipAddress": ip, "virtualNetwork": {"id": vnet_id}}}
                    for ip in sorted(ips)
                ]
            },
        }
        existing = find(items(lb, "backendAddressPools"), pool_name)
        before = VIEWS["backend-pool"](existing) if existing else {"addresses": []}
        after = VIEWS["backend-pool"](want)
        if before == after:
            return None
        return Change(
            Action.UPDATE if existing else Action.CREATE,
            "backend-pool",
            f"{lbn}/{pool_name}",
            before=before,
            after=after,
            reason="nodes spread over the cluster's load balancers",
            data={"lb": lbn, "service": token, "base": base, "item": want},
        )
