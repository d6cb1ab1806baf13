"""Desired vs observed -> the Plan's changes for one Service (the model's synthesizer).

:class:`Planner` reads what exists through the :class:`~lbprov_azure.observe.Observer` (cached
within a read round), builds what the Service wants with :mod:`lbprov_azure.desired`, and compares
the two by the managed-field views, resource kind by resource kind: the public IP, the Service's
parts of the shared load balancer (frontend, probes, rules, its entry in the LB's Service map, the
shared backend pool), what it left on the other scheme's LB, and its NSG rules. A delete plan finds
everything by the ownership marks (names with the UID, tags, rule descriptions), never by today's
annotations.
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
from lbprov_azure import names, parts, placement, upstream
from lbprov_azure.desired import (
    LB_FIELDS,
    VIEWS,
    Ids,
    build_desired,
    ref_id,
    view_nsg_rule,
    view_pip,
)
from lbprov_azure.diff.adopt import AdoptChanges, has_parts, keep_unmanaged
from lbprov_azure.diff.fleet import Fleet, FleetChanges
from lbprov_azure.diff.nsg import NsgChanges, Priorities
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


class Planner(FleetChanges, NsgChanges, AdoptChanges):
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
        cluster, rg = s.cluster_name, s.resource_group
        base = intent.lb_name
        token = names.uid_token(intent.ref.uid)
        lbn = names.lb_name(cluster, scheme, slot)
        lb = fleet.lbs.get((slot, scheme))
        # parts named by the Service's UID that the LB's Service map does not record: upstream's
        # predecessor, adopted in place once proven (a look-alike is an ownership conflict); and the
        # LB itself when it is upstream's (or AKS's) of this cluster, not yet lbprov's
        predecessor = (
            lb is not None and token not in names.services_of(lb.get("tags")) and has_parts(lb, base)
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
        ingress: tuple[Ingress, ...] = ()

        # -- public IP ---------------------------------------------------------------------------
        pip_id: str | None = None
        pip_ip: str | None = None
        if not opts.internal:
            pip_rg = opts.pip_resource_group or rg
            if opts.ipv4:
                found = [
                    p
                    for p in self.seen.pips(pip_rg)
                    if (p.get("properties") or {}).get("ipAddress") == opts.ipv4
                ]
                if not found:
                    raise InvalidService(
                        "spec.loadBalancerIP",
                        f"no public IP address with address {opts.ipv4} in resource group {pip_rg!r}; "
                        "create a Standard static public IP with it first",
                    )
                pip = found[0]
                self._check_user_pip(pip, lb, base)
                pip_id, pip_ip = str(pip["id"]), (pip.get("properties") or {}).get("ipAddress")
            else:
                pip_name = opts.pip_name or names.pip_name(cluster, base)
                found_pip = self.seen.pip(pip_rg, pip_name)
                pip_id = self.ids.pip(pip_rg, pip_name)
                desired_pip = build_desired(intent, opts, s, pip_id, slot=slot, pool_ips=pool_ips).pip_body
                assert desired_pip is not None
                known = names.identity_of((found_pip or {}).get("tags"))
                if not s.cluster_id and known:  # a run that does not know the identity keeps it
                    desired_pip["tags"][names.CLUSTER_ID_KEY] = known
                if found_pip is None:
                    changes.append(
                        Change(
                            Action.CREATE,
                            "public-ip",
                            f"{pip_rg}/{pip_name}",
                            after=view_pip(desired_pip),
                            data={"rg": pip_rg, "name": pip_name, "body": desired_pip},
                        )
                    )
                elif names.is_service_owned(found_pip.get("tags"), cluster, intent.ref.uid):
                    pip_id, pip_ip = (
                        str(found_pip["id"]),
                        (found_pip.get("properties") or {}).get("ipAddress"),
                    )
                    before, after = view_pip(found_pip), view_pip(desired_pip)
                    if before["prefix"] != after["prefix"]:
                        # ARM allocates a public IP's address from its prefix once, at creation
                        raise InvalidService(
                            "metadata.annotations[service.beta.kubernetes.io/azure-pip-prefix-id]",
                            f"public IP {pip_name!r} exists with prefix {before['prefix']}; the prefix of a "
                            "public IP is set when it is created and cannot change",
                        )
                    if before != after:
                        changes.append(
                            Change(
                                Action.UPDATE,
                                "public-ip",
                                f"{pip_rg}/{pip_name}",
                                before=before,
                                after=after,
                                cloud_id=pip_id,
                                data={
                                    "rg": pip_rg,
                                    "name": pip_name,
                                    "body": desired_pip,
                                    "etag": found_pip.get("etag"),
                                },
                            )
                        )
                elif opts.pip_name:
                    self._check_user_pip(found_pip, lb, base)
                    pip_id, pip_ip = (
                        str(found_pip["id"]),
                        (found_pip.get("properties") or {}).get("ipAddress"),
                    )
                else:  # upstream's public IP of this Service (a look-alike raises)
                    changes.append(self._adopt_pip(found_pip, intent.ref, pip_rg, pip_name, desired_pip))
                    pip_id, pip_ip = (
                        str(found_pip["id"]),
                        (found_pip.get("properties") or {}).get("ipAddress"),
                    )
        desired = build_desired(intent, opts, s, pip_id, slot=slot, pool_ips=pool_ips)

        # -- the load balancers ----------------------------------------------------------------
        # The Service's parts leave every other LB first (a public IP can be on one frontend only),
        # then LBs that lose nodes to another slot, then the Service's LB, then LBs that only gain.
        group = self._lb_changes(lb, lbn, desired, base, token, intent.ref)
        if adopting:
            assert lb is not None
            group = self._adopt_lb_changes(
                lb, lbn, base, token, desired, group, adopt_lb=(slot, scheme) in fleet.predecessors
            )
        losing: list[Change] = []
        gaining: list[Change] = []
        stale_pips: set[str] = set()
        fe = parts.find(lb, "frontendIPConfigurations", base)
        if fe is not None:
            old = ref_id((fe.get("properties") or {}).get("publicIPAddress"))
            if old and pip_id and old.lower() != pip_id.lower():
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
            ofe = parts.find(body, "frontendIPConfigurations", base)
            old = ref_id(((ofe or {}).get("properties") or {}).get("publicIPAddress"))
            if old and (not pip_id or old.lower() != pip_id.lower()):
                stale_pips.add(old)
            pool = self._pool_change(body, name, assignment.get(k, set()), intent, token, base)
            if pool is not None:
                out.append(pool)
            loses = pool is not None and bool(set(pool.before["addresses"]) - set(pool.after["addresses"]))
            (losing if loses or any(c.action == Action.DELETE for c in out) else gaining).extend(out)
        changes.extend(losing)
        changes.extend(group)
        changes.extend(gaining)
        if opts.internal:
            if fe is not None and not any(c.kind == "frontend-ip-configuration" for c in group):
                addr = (fe.get("properties") or {}).get("privateIPAddress")
                ingress = (Ingress(ip=addr),) if addr else ()
        elif pip_ip:
            # azure-additional-public-ips follow the frontend's address, as upstream's status
            ingress = (Ingress(ip=pip_ip), *(Ingress(ip=ip) for ip in opts.additional_public_ips))
        for old in sorted(stale_pips):
            changes.extend(self._pip_deletion(old, intent.ref))

        # -- NSG rules ---------------------------------------------------------------------------
        if opts.internal:
            frontend_addr = opts.ipv4 or (
                (fe.get("properties") or {}).get("privateIPAddress")
                if fe is not None and not any(c.kind == "frontend-ip-configuration" for c in group)
                else None
            )
        else:
            frontend_addr = pip_ip
        nsg = self.seen.nsg()  # once per plan: lbprov's rules, the shared ones and upstream's
        changes.extend(self._nsg_changes(desired.nsg_rules, base, intent.ref, lbn, frontend_addr, nsg))
        stale: set[str] = set()
        for old in stale_pips:
            seg = old.split("/")
            gone = self.seen.pip(seg[4], seg[-1]) if len(seg) >= 9 else None
            if gone and (gone.get("properties") or {}).get("ipAddress"):
                stale.add(str(gone["properties"]["ipAddress"]))
        old_private = ((fe or {}).get("properties") or {}).get("privateIPAddress")
        if old_private and old_private != frontend_addr:
            stale.add(str(old_private))
        stale.discard(frontend_addr or "")
        changes.extend(
            self._shared_nsg_changes(
                desired.shared_nsg_rules, intent.ref, lbn, base, frontend_addr, stale, nsg
            )
        )
        # upstream's rules go once lbprov's own are in place (no moment without an allow rule)
        changes.extend(self._upstream_nsg_changes(nsg, base, {frontend_addr} if frontend_addr else set()))
        return Plan(
            provider=PROVIDER,
            ref=intent.ref,
            changes=tuple(changes),
            intent=intent,
            ingress=ingress,
            data={"lb": lbn, "internal": opts.internal, "base": base},
        )

    def _check_user_pip(self, pip: JSON, lb: JSON | None, base: str) -> None:
        if (pip.get("sku") or {}).get("name") != "Standard":
            raise InvalidService(
                "metadata.annotations[service.beta.kubernetes.io/azure-pip-name]",
                f"public IP {pip.get('name')!r} has SKU {(pip.get('sku') or {}).get('name')!r}; the shared "
                "Standard load balancer needs a Standard public IP",
            )
        used_by = ref_id((pip.get("properties") or {}).get("ipConfiguration"))
        if used_by:
            ours = lb is not None and used_by.lower() == f"{lb['id']}/frontendIPConfigurations/{base}".lower()
            if not ours:
                raise InvalidService(
                    "metadata.annotations[service.beta.kubernetes.io/azure-pip-name]",
                    f"public IP {pip.get('name')!r} is already attached to {used_by}",
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
        if lb is None or token not in names.services_of(lb.get("tags")):
            out.append(
                Change(
                    Action.CREATE,
                    "lb-service-tag",
                    f"{lbn}/{token}",
                    after={"service": ref.key, "uid": ref.uid},
                    data=common,
                )
            )
        if lb is not None:
            existing_pool = find(items(lb, "backendAddressPools"), desired.pool["name"])
            before = VIEWS["backend-pool"](existing_pool) if existing_pool else None
            after = VIEWS["backend-pool"](desired.pool)
            if before != after:
                out.append(
                    Change(
                        Action.UPDATE if existing_pool else Action.CREATE,
                        "backend-pool",
                        f"{lbn}/{desired.pool['name']}",
                        before=before,
                        after=after,
                        data={**common, "item": desired.pool},
                    )
                )
        wanted: list[tuple[str, JSON]] = [("frontend-ip-configuration", desired.frontend)]
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
        for kind in ("load-balancing-rule", "probe"):
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
        services = names.services_of(lb.get("tags"))
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
        cid = self.settings.cluster_id
        theirs = names.identity_of(lb.get("tags"))
        # ours (or none yet, which the identity change adds), or the identity the LB carries, when
        # this Service's parts are taken from it on purpose (see _fleet(strict=False))
        known = theirs or cid
        if known and (
            (out and not remaining and not (services - {token})) or (not remaining and not services)
        ):
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
        identity = self._identity_change(lb, lbn, common) if out else None
        return [identity, *out] if identity is not None else out

    def _pip_deletion(self, pip_id: str, ref: ServiceRef) -> list[Change]:
        seg = pip_id.split("/")
        if len(seg) < 9:
            return []
        rg, name = seg[4], seg[-1]
        pip = self.seen.pip(rg, name)
        if pip is None or not names.is_service_owned(pip.get("tags"), self.settings.cluster_name, ref.uid):
            return []  # gone, or the user's: never deleted
        return [
            Change(
                Action.DELETE,
                "public-ip",
                f"{rg}/{name}",
                before=view_pip(pip),
                cloud_id=str(pip.get("id")),
                data={"rg": rg, "name": name, "etag": pip.get("etag")},
            )
        ]

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
            fe = parts.find(lb, "frontendIPConfigurations", base)
            private = ((fe or {}).get("properties") or {}).get("privateIPAddress")
            if private:
                frontend_private.add(str(private))
            old = ref_id(((fe or {}).get("properties") or {}).get("publicIPAddress"))
            if old:
                pip_ids.add(old)
            removal = self._lb_removal(lb, lbn, base, token, ref)
            if (k, scheme) in fleet.predecessors or (
                removal and token not in names.services_of(lb.get("tags"))
            ):
                removal = [replace(c, data={**c.data, "adopt": True}) for c in removal]  # upstream's parts
            changes.extend(removal)
        pips: dict[str, JSON] = {}
        for pip in self.seen.pips(s.resource_group):
            if names.is_service_owned(pip.get("tags"), cluster, ref.uid):
                pips[str(pip["id"]).lower()] = pip
        for pid in pip_ids:
            if pid.lower() not in pips:
                seg = pid.split("/")
                if len(seg) < 9:
                    continue
                other_pip = self.seen.pip(seg[4], seg[-1])
                tags = (other_pip or {}).get("tags")
                if other_pip and (
                    names.is_service_owned(tags, cluster, ref.uid)
                    # upstream's public IP of this Service, never adopted: it goes with the Service
                    or upstream.is_predecessor_pip(tags, cluster, ref)
                ):
                    pips[pid.lower()] = other_pip
        for pip in sorted(pips.values(), key=lambda p: str(p["id"])):
            seg = str(pip["id"]).split("/")
            changes.append(
                Change(
                    Action.DELETE,
                    "public-ip",
                    f"{seg[4]}/{seg[-1]}",
                    before=view_pip(pip),
                    cloud_id=str(pip["id"]),
                    data={"rg": seg[4], "name": seg[-1], "etag": pip.get("etag")},
                )
            )
        # the Service's addresses leave the shared rules first (before its frontends and public IPs
        # go: an address left in an allow rule could open ports to whoever gets it next)
        addresses = {str((p.get("properties") or {}).get("ipAddress")) for p in pips.values()}
        for pid in pip_ids:  # the frontends' public IPs, the user's (azure-pip-name) included
            if pid.lower() in pips:
                continue
            seg = pid.split("/")
            used = self.seen.pip(seg[4], seg[-1]) if len(seg) >= 9 else None
            addresses.add(str(((used or {}).get("properties") or {}).get("ipAddress")))
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
