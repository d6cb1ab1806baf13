"""Desired vs observed -> the Plan's changes for one Service (the model's synthesizer).

:class:`Planner` reads what exists through the :class:`~lbprov_azure.observe.Observer` (cached
within a read round), builds what the Service wants with :mod:`lbprov_azure.desired`, and compares
the two by the managed-field views, resource kind by resource kind: the public IP, the Service's
parts of the shared load balancer (frontend, probes, rules, its entry in the LB's Service map, the
shared backend pool), what it left on the other scheme's LB, and its NSG rules; each concern beyond
the load balancer is a mixin of its own module (:mod:`~lbprov_azure.diff.pips` public IPs,
:mod:`~lbprov_azure.diff.nsg` NSG rules, :mod:`~lbprov_azure.diff.fleet` placement,
:mod:`~lbprov_azure.diff.adopt` adoption). A delete plan finds everything by the ownership marks
(names with the UID, tags, rule descriptions), never by today's annotations.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

from lbprov import naming
from lbprov.model import (
    Action,
    Change,
    Ingress,
    Intent,
    InvalidService,
    Plan,
    ServiceRef,
)
from lbprov_azure import names, parts, placement
from lbprov_azure.desired import (
    LB_FIELDS,
    VIEWS,
    Ids,
    build_desired,
    family_of,
    ref_id,
    view_nsg_rule,
)
from lbprov_azure.diff.adopt import AdoptChanges, has_parts, keep_unmanaged
from lbprov_azure.diff.families import owned_frontends, v6_pool_change
from lbprov_azure.diff.fleet import Fleet, FleetChanges
from lbprov_azure.diff.nsg import NsgChanges, Priorities
from lbprov_azure.diff.pips import PipChanges
from lbprov_azure.lbwriter import deletable
from lbprov_azure.observe import Observer, find, items
from lbprov_azure.options import AzureOptions, parse_options
from lbprov_azure.reservations import Reservations
from lbprov_azure.settings import AzureSettings

__all__ = ["Fleet", "Planner", "Priorities", "options_of"]

JSON = dict[str, Any]
PROVIDER = "azure"
_ORDER = {
    "load-balancer": 0,
    "lb-service-tag": 1,
    "backend-pool": 2,
    "frontend-ip-configuration": 3,
    "probe": 4,
    "load-balancing-rule": 5,
}


def options_of(intent: Intent) -> AzureOptions:
    """The Service's validated options (``resolve`` put them on the intent)."""
    if isinstance(intent.options, AzureOptions):
        return intent.options
    return parse_options(intent, {})


class Planner(FleetChanges, NsgChanges, PipChanges, AdoptChanges):
    """Plans one Service's changes from what the observer sees."""

    def __init__(
        self,
        settings: AzureSettings,
        seen: Observer,
        priorities: Priorities,
        reservations: Reservations | None = None,
    ) -> None:
        self.settings = settings
        self.seen = seen
        self.priorities = priorities
        self.ids = Ids(settings.subscription_id)
        self.reservations = reservations

    def plan(self, intent: Intent) -> Plan:
        """The Service's plan; room it takes on a slot is held until the plan's apply ends, or
        dropped when the plan fails here or is discarded (:mod:`lbprov_azure.reservations`)."""
        res = self.reservations
        opts = options_of(intent)
        scheme = "internal" if opts.internal else "external"
        node_ips = sorted({str(t.internal_ip) for t in intent.targets if t.internal_ip})
        token = names.uid_token(intent.ref.uid)
        with res.placing() if res is not None else nullcontext(0) as since:  # before the fleet is read
            fleet = self._fleet(base=intent.lb_name, node_ips=node_ips)
            with res.lock if res is not None else nullcontext():  # the choice and its hold: one step
                slot, ticket = self._place(
                    intent, opts, fleet, scheme, intent.lb_name, token, len(node_ips), since
                )
        try:
            plan = self._plan_on(intent, opts, fleet, scheme, slot, node_ips)
        except BaseException:
            if res is not None:
                res.drop(ticket)
            raise
        if res is not None:
            res.bind(ticket, plan)
        return plan

    def _plan_on(
        self, intent: Intent, opts: AzureOptions, fleet: Fleet, scheme: str, slot: int, node_ips: list[str]
    ) -> Plan:
        """The Service's changes, placed on ``slot``."""
        s = self.settings
        cluster = s.cluster_name
        base = intent.lb_name
        token = names.uid_token(intent.ref.uid)
        lbn = names.lb_name(cluster, scheme, slot)
        lb = fleet.lbs.get((slot, scheme))
        # parts named by the Service's UID that the LB's Service map does not record: upstream's
        # predecessor, adopted in place once proven (a look-alike is an ownership conflict); and the
        # LB itself when it is upstream's (or AKS's) of this cluster, not yet lbprov's
        predecessor = (
            lb is not None and token not in names.service_tokens(lb.get("tags")) and has_parts(lb, base)
        )
        if predecessor:
            assert lb is not None
            self._prove_predecessor(lb, lbn, base, intent.ref)
        adopting = predecessor or (slot, scheme) in fleet.predecessors
        slots = sorted({k for k, _ in fleet.lbs} | {slot})
        assignment = placement.assign_nodes(node_ips, fleet.pools(), slots)
        pool_ips = assignment.get(slot, set())
        self._check_foreign_pools(fleet, assignment, (slot, scheme))
        changes: list[Change] = []
        if predecessor and intent.ip_families != ("IPv4",):
            raise InvalidService(
                "spec.ipFamilies",
                f"{list(intent.ip_families)}: lbprov adopts cloud-provider-azure's IPv4 Services only; this "
                "Service's frontends on load balancer " + lbn + " are upstream's, and adopting its IPv6 or "
                "dual-stack parts is not implemented (see the Azure README, migration)",
            )

        # -- public IPs, one per family ------------------------------------------------------------
        pip_ids: dict[str, str] = {}
        pip_ips: dict[str, str | None] = {}
        if not opts.internal:
            for family in intent.ip_families:
                got = self._public_ip(intent, opts, family, lb, base, changes)
                pip_ids[family], pip_ips[family] = got
        desired = build_desired(intent, opts, s, pip_ids, slot=slot, pool_ips=pool_ips)

        # -- the load balancers ----------------------------------------------------------------
        # The Service's parts leave every other LB first (a public IP can be on one frontend only),
        # then LBs that lose nodes to another slot, then the Service's LB, then LBs that only gain.
        group = self._lb_changes(lb, lbn, desired, base, token, intent.ref)
        if adopting:
            assert lb is not None
            group = self._adopt_lb_changes(
                lb, lbn, base, token, desired, group, adopt_lb=(slot, scheme) in fleet.predecessors
            )
        if "IPv6" not in intent.ip_families and lb is not None:
            # the LB's IPv6 pool (other Services' IPv6 frontends) follows its nodes here too
            follow = v6_pool_change(s, self.ids, lb, lbn, pool_ips, intent, token, base)
            if follow is not None:
                group.append(follow)
        losing: list[Change] = []
        gaining: list[Change] = []
        stale_pips: set[str] = set()
        wanted_pips = {v.lower() for v in pip_ids.values()}
        for fe in owned_frontends(lb, base):
            old = ref_id((fe.get("properties") or {}).get("publicIPAddress"))
            if old and wanted_pips and old.lower() not in wanted_pips:
                stale_pips.add(old)
        for (k, sc), body in sorted(fleet.lbs.items()):
            if (k, sc) == (slot, scheme):
                continue
            name = names.lb_name(cluster, sc, k)
            if (k, sc) in fleet.predecessors and not has_parts(body, base):
                # upstream's other LB is adopted by a Service placed on it, never written here
                self._unadopted_keeps_its_nodes(body, name, assignment.get(k, set()))
                continue
            out = self._lb_removal(body, name, base, token, intent.ref)
            for ofe in owned_frontends(body, base):
                old = ref_id((ofe.get("properties") or {}).get("publicIPAddress"))
                if old and old.lower() not in wanted_pips:
                    stale_pips.add(old)
            pool = self._pool_change(body, name, assignment.get(k, set()), intent, token, base)
            if pool is not None:
                out.append(pool)
            v6_pool = v6_pool_change(s, self.ids, body, name, assignment.get(k, set()), intent, token, base)
            if v6_pool is not None:
                out.append(v6_pool)
            loses = any(
                c.kind == "backend-pool"
                and c.before is not None  # pool changes here are updates: before and after both set
                and c.after is not None
                and bool(set(c.before["addresses"]) - set(c.after["addresses"]))
                for c in out
            )
            (losing if loses or any(c.action == Action.DELETE for c in out) else gaining).extend(out)
        changes.extend(losing)
        changes.extend(group)
        changes.extend(gaining)
        # one address per family, primary first; None where it is known only after apply
        fe_changed = {c.name.rsplit("/", 1)[-1] for c in group if c.kind == "frontend-ip-configuration"}
        fronts: list[tuple[str, str, str | None]] = []
        for st in desired.stacks:
            fe_name = str(st.frontend["name"])
            if opts.internal:
                existing_fe = parts.find(lb, "frontendIPConfigurations", fe_name)
                addr = None
                if st.family == "IPv4" and opts.ipv4:
                    addr = opts.ipv4
                elif existing_fe is not None and fe_name not in fe_changed:
                    addr = (existing_fe.get("properties") or {}).get("privateIPAddress")
            else:
                addr = pip_ips.get(st.family)
            fronts.append((st.family, fe_name, addr))
        if opts.internal:
            ingress = tuple(
                Ingress(ip=a)
                for f, n, a in fronts
                if a and not (f == "IPv4" and opts.ipv4 and n in fe_changed)
            )
        else:
            known = [Ingress(ip=a) for _, _, a in fronts if a]
            # azure-additional-public-ips follow the frontend's address, as upstream's status
            ingress = (*known, *(Ingress(ip=ip) for ip in opts.additional_public_ips)) if known else ()
        for old in sorted(stale_pips):
            changes.extend(self._pip_deletion(old, intent.ref))

        # -- NSG rules ---------------------------------------------------------------------------
        nsg = self.seen.nsg()  # once per plan: lbprov's rules, the shared ones and upstream's
        changes.extend(
            self._nsg_changes(
                desired.nsg_rules, base, intent.ref, lbn, {f: (n, a) for f, n, a in fronts}, nsg
            )
        )
        stale: set[str] = set()
        for old in stale_pips:
            seg = old.split("/")
            old_pip = self.seen.pip(seg[4], seg[-1]) if len(seg) >= 9 else None
            if old_pip and (old_pip.get("properties") or {}).get("ipAddress"):
                stale.add(str(old_pip["properties"]["ipAddress"]))
        current = {a for _, _, a in fronts if a}
        for fe in owned_frontends(lb, base):
            old_private = (fe.get("properties") or {}).get("privateIPAddress")
            if old_private and old_private not in current:
                stale.add(str(old_private))
        stale -= current
        # a family the Service no longer has only takes its old address out of the shared rules
        gone = sorted({family_of(a) for a in stale} - {f for f, _, _ in fronts})
        for nsg_family, fe_name, addr in [*fronts, *((f, base, None) for f in gone)]:
            wanted = {
                n: r
                for n, r in desired.shared_nsg_rules.items()
                if desired.shared_rule_family.get(n, "IPv4") == nsg_family and nsg_family not in gone
            }
            changes.extend(
                self._shared_nsg_changes(
                    wanted,
                    intent.ref,
                    lbn,
                    fe_name,
                    addr,
                    {a for a in stale if family_of(a) == nsg_family},
                    nsg,
                    family=nsg_family,
                )
            )
        # upstream's rules go once lbprov's own are in place (no moment without an allow rule)
        changes.extend(self._upstream_nsg_changes(nsg, base, current))
        return Plan(
            provider=PROVIDER,
            ref=intent.ref,
            changes=tuple(changes),
            intent=intent,
            ingress=ingress,
            data={
                "lb": lbn,
                "internal": opts.internal,
                "base": base,
                "frontends": [list(f) for f in fronts],
            },
        )

    def _lb_changes(
        self, lb: JSON | None, lbn: str, desired: Any, base: str, token: str, ref: ServiceRef
    ) -> list[Change]:
        """Changes to the Service's parts on its LB; all carry ``data['lb']`` (one writer group)."""
        common = {"lb": lbn, "service": token, "base": base, "template": desired.lb_template}
        out: list[Change] = []
        if lb is None:
            out.append(
                Change(
                    Action.CREATE,
                    "load-balancer",
                    lbn,
                    after={"sku": "Standard", "backend_pool": desired.pool["name"]},
                    data=common,
                )
            )
        identity = self._identity_change(lb, lbn, common)
        if identity is not None:
            out.append(identity)
        if lb is not None and (lb.get("properties") or {}).get("provisioningState") == "Failed":
            out.append(
                Change(
                    Action.UPDATE,
                    "load-balancer",
                    lbn,
                    before={"provisioning": "Failed"},
                    after={"provisioning": "Succeeded"},
                    reason="its last operation failed: it is written again",
                    data={**common, "repair": True},
                )
            )
        if lb is None or token not in names.service_tokens(lb.get("tags")):
            out.append(
                Change(
                    Action.CREATE,
                    "lb-service-tag",
                    f"{lbn}/{token}",
                    after={"service": ref.key, "uid": ref.uid},
                    data=common,
                )
            )
        # a new LB is made from the template, which holds the IPv4 pool; the IPv6 pool is written
        # all the same (another Service's template may make the LB in the same batch)
        for pool in desired.pools if lb is not None else desired.pools[1:]:
            existing_pool = find(items(lb, "backendAddressPools"), pool["name"])
            before = VIEWS["backend-pool"](existing_pool) if existing_pool else None
            after = VIEWS["backend-pool"](pool)
            if before != after:
                out.append(
                    Change(
                        Action.UPDATE if existing_pool else Action.CREATE,
                        "backend-pool",
                        f"{lbn}/{pool['name']}",
                        before=before,
                        after=after,
                        data={**common, "item": pool},
                    )
                )
        wanted: list[tuple[str, JSON]] = [("frontend-ip-configuration", st.frontend) for st in desired.stacks]
        wanted += [("probe", p) for p in desired.probes.values()]
        wanted += [("load-balancing-rule", r) for r in desired.rules.values()]
        for kind, item in wanted:
            existing = parts.find(lb, LB_FIELDS[kind], item["name"])
            after = VIEWS[kind](item)
            before = VIEWS[kind](existing) if existing else None
            if before != after:
                out.append(
                    Change(
                        Action.UPDATE if existing else Action.CREATE,
                        kind,
                        f"{lbn}/{item['name']}",
                        before=before,
                        after=after,
                        cloud_id=str(existing["id"]) if existing and existing.get("id") else None,
                        data={**common, "item": keep_unmanaged(kind, item, existing)},
                    )
                )
        keep = {("probe", n.lower()) for n in desired.probes} | {
            ("load-balancing-rule", n.lower()) for n in desired.rules
        }
        keep |= {("frontend-ip-configuration", str(st.frontend["name"]).lower()) for st in desired.stacks}
        # a family the Service no longer has: its rules, probes and then its frontend go
        for kind in ("load-balancing-rule", "probe", "frontend-ip-configuration"):
            for item in parts.own(lb, LB_FIELDS[kind], base):
                if (kind, str(item.get("name", "")).lower()) not in keep:
                    out.append(_part_delete(kind, lbn, item, common))
        return sorted(out, key=lambda c: (c.action == Action.DELETE, _ORDER.get(c.kind, 9)))

    def _identity_change(self, lb: JSON | None, lbn: str, common: Mapping[str, Any]) -> Change | None:
        """Add the cluster identity to an LB that predates it (any write to the LB carries it)."""
        cid = self.settings.cluster_id
        if lb is None or not cid or names.identity_of(lb.get("tags")) is not None:
            return None  # never re-tag an LB that carries an identity (ours, or another's)
        if not names.is_cluster_owned(lb.get("tags"), self.settings.cluster_name):
            return None  # upstream's, not adopted (yet): its adoption adds lbprov's tags and identity
        return Change(
            Action.UPDATE,
            "load-balancer",
            lbn,
            before={"cluster_id": names.identity_of(lb.get("tags"))},
            after={"cluster_id": cid},
            reason="the cluster identity is added",
            data={**common, "tags": {names.CLUSTER_ID_KEY: cid}},
        )

    def _lb_removal(self, lb: JSON, lbn: str, base: str, token: str, ref: ServiceRef) -> list[Change]:
        """Changes that remove every part of the Service from ``lb`` (and the LB if it empties)."""
        common = {"lb": lbn, "service": token, "base": base}
        out: list[Change] = []
        remaining = 0
        for kind in ("load-balancing-rule", "probe", "frontend-ip-configuration"):
            mine = parts.own(lb, LB_FIELDS[kind], base)
            out.extend(_part_delete(kind, lbn, item, common) for item in mine)
            remaining += parts.count(lb, LB_FIELDS[kind]) - len(mine)
        services = names.service_tokens(lb.get("tags"))
        if token in services:
            out.insert(
                0,
                Change(
                    Action.DELETE,
                    "lb-service-tag",
                    f"{lbn}/{token}",
                    before={"service": ref.key, "uid": ref.uid},
                    data=common,
                ),
            )
        # The LB's tags once this apply writes it (the identity change, which goes with any change
        # here, adds ours to an LB of the cluster that predates identities). Apply deletes the
        # emptied LB only if lbwriter.deletable holds; the plan asks the same, with this cluster's
        # identity alone: an LB of no identity (cloud-provider-azure's, never adopted) or of another
        # identity (a delete plan takes this Service's parts from it, see _fleet(strict=False), but
        # never the LB itself), or any LB in a run that does not know the identity, is planned kept.
        identity = self._identity_change(lb, lbn, common)
        after = {**(lb.get("tags") or {}), **(identity.data["tags"] if identity is not None else {})}
        known = names.identity_of(after)
        emptied = (out and not remaining and not (services - {token})) or (not remaining and not services)
        if emptied and deletable(after, self.settings.cluster_id, []):
            out.append(
                Change(
                    Action.DELETE,
                    "load-balancer",
                    lbn,
                    before={"sku": "Standard"},
                    cloud_id=str(lb.get("id")),
                    reason="its last Service leaves it",
                    data={**common, "informational": True, "identity": known},
                )
            )
        return [identity, *out] if identity is not None and out else out

    def plan_delete(self, ref: ServiceRef) -> Plan:
        s = self.settings
        cluster = s.cluster_name
        base = naming.lb_name(ref.uid)
        token = names.uid_token(ref.uid)
        changes: list[Change] = []
        pip_ids: set[str] = set()
        frontend_private: set[str] = set()
        fleet = self._fleet(strict=False, base=base)
        for (k, scheme), lb in sorted(fleet.lbs.items()):
            lbn = names.lb_name(cluster, scheme, k)
            for fe in owned_frontends(lb, base):  # a frontend per family
                private = (fe.get("properties") or {}).get("privateIPAddress")
                if private:
                    frontend_private.add(str(private))
                old = ref_id((fe.get("properties") or {}).get("publicIPAddress"))
                if old:
                    pip_ids.add(old)
            removal = self._lb_removal(lb, lbn, base, token, ref)
            if (k, scheme) in fleet.predecessors or (
                removal and token not in names.service_tokens(lb.get("tags"))
            ):
                removal = [replace(c, data={**c.data, "adopt": True}) for c in removal]  # upstream's parts
            changes.extend(removal)
        pip_changes, addresses = self._pip_removal(ref, pip_ids)
        changes.extend(pip_changes)
        # the Service's addresses leave the shared rules first (before its frontends and public IPs
        # go: an address left in an allow rule could open ports to whoever gets it next)
        addresses |= frontend_private
        addresses.discard("None")
        nsg = self.seen.nsg()
        changes[:0] = self._shared_nsg_removal(ref, addresses, nsg)
        if nsg is not None:
            for name, rule in sorted(self._owned_nsg_rules(nsg, base, strict=False).items()):
                changes.append(
                    Change(
                        Action.DELETE,
                        "nsg-rule",
                        f"{nsg['name']}/{name}",
                        before=view_nsg_rule(rule),
                        cloud_id=str(rule.get("id")),
                        data={"name": name},
                    )
                )
            changes.extend(self._upstream_nsg_changes(nsg, base, addresses))
        return Plan(provider=PROVIDER, ref=ref, changes=tuple(changes), intent=None)


def _part_delete(kind: str, lbn: str, item: JSON, common: Mapping[str, Any]) -> Change:
    """Delete one of a Service's parts (rule, probe, frontend) of the shared load balancer."""
    name = str(item.get("name", ""))
    return Change(
        Action.DELETE, kind, f"{lbn}/{name}", before=VIEWS[kind](item), data={**common, "name": name}
    )
