"""Desired vs observed -> the Plan's changes, ordered so that nothing points at something missing.

    instance groups -> health check -> its firewall -> address reservation -> (forwarding rules that
    must go first) -> traffic firewall -> backend services -> forwarding rules -> release of the
    reservation -> leftovers (backend services, health
    check, firewalls, address, then shared resources nobody uses any more)

Forwarding rules are immutable (IP, ports, protocol, scheme, backend): a change is a replace. A
backend service's scheme is immutable too; replacing it first deletes the forwarding rules that use
it and creates them again after.

The planner is pure: a function of (desired, snapshot). Every read happened before, in
:class:`lbprov_gcp.snapshot.Observer`. A Service's deletion is the same diff against an *empty*
desired state (``want=None``): whatever the Service owns in the snapshot is a leftover, deleted by
the one loop that also drops what a changed Service no longer needs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lbprov.model import Action, Change, Ingress, Intent, OwnershipConflict, Plan, ServiceRef
from lbprov_gcp import names as N
from lbprov_gcp.desired import Desired, Spec, build, place_nodes
from lbprov_gcp.diff.frontends import plan_frontend
from lbprov_gcp.diff.groups import ForeignInstanceGroup, group_changes
from lbprov_gcp.diff.predecessor import Takeover, takeover
from lbprov_gcp.observe import view_of
from lbprov_gcp.options import GCPOptions, instances
from lbprov_gcp.settings import GCPSettings
from lbprov_gcp.snapshot import Snapshot

Json = dict[str, Any]


#: The per-Service kinds, in the order a delete goes (rules before what they use), and why a
#: changed Service drops one it no longer wants.
_LEFTOVER_KINDS = (
    ("forwardingRules", "forwarding-rule", "protocol no longer used"),
    ("backendServices", "backend-service", "protocol no longer used"),
    ("healthChecks", "health-check", "externalTrafficPolicy is Cluster"),
    ("firewalls", "firewall-rule", "externalTrafficPolicy is Cluster"),
    ("addresses", "address", None),
)


def _wanted(want: Desired | None) -> dict[str, set[str]]:
    """The names the desired state holds, per collection (nothing for the empty state)."""
    if want is None:
        return {}
    hc6 = [want.hc_firewall_ipv6.name] if want.hc_firewall_ipv6 is not None else []
    return {
        "forwardingRules": {r.name for f in want.frontends for r in f.forwarding_rules.values()},
        "backendServices": {b.name for b in want.backend_services.values()},
        "healthChecks": {want.health_check.name},
        "firewalls": {want.hc_firewall.name, *hc6, *(f.firewall.name for f in want.frontends)},
        "addresses": {f.address.name for f in want.frontends},
    }


class Planner:
    """Plans one Service (or its deletion) from a :class:`Snapshot`; pure: it never reads."""

    def __init__(self, provider: str, settings: GCPSettings) -> None:
        self.provider = provider
        self.settings = settings
        self.cluster = settings.cluster_name

    @staticmethod
    def options(intent: Intent) -> GCPOptions:
        if isinstance(intent.options, GCPOptions):
            return intent.options
        return GCPOptions(scheme=intent.scheme)

    def conflict(self, kind: str, name: str, res: Json, who: str) -> OwnershipConflict:
        desc = (res.get("description") or "")[:120]
        return OwnershipConflict(
            f"{kind} {name!r} already exists in project {self.settings.project} but is not owned by {who} "
            f"(description: {desc!r}); lbprov never adopts or changes a foreign resource: rename or delete "
            "it, or change the Service"
        )

    def _check_owner(self, r: Spec, found: Json, ref: ServiceRef) -> None:
        if r.shared:
            if not N.owned_as_shared(found.get("description"), self.cluster):
                raise self.conflict(r.kind, r.name, found, f"cluster {self.cluster}")
        elif not N.owned_by_service(found.get("description"), self.cluster, ref.uid):
            raise self.conflict(r.kind, r.name, found, f"Service {ref.key} of cluster {self.cluster}")

    def plan(self, intent: Intent, seen: Snapshot) -> Plan:
        """The Service's plan: desired (built from the intent and what the snapshot says about the
        nodes' groups and tags) against the snapshot."""
        options = self.options(intent)
        s = self.settings
        group = N.ig_name(self.cluster, s.gce_cluster_id)
        # -- which group each node serves from -----------------------------------------------------
        usable = {
            key
            for key, found in seen.groups.items()
            if key[1] == group or N.owned_as_shared(found.get("description"), self.cluster)
        }
        nodes = instances(intent.targets, s.project, s.region)
        placement = place_nodes(nodes, group, seen.members, usable)
        if placement.conflicts:
            raise ForeignInstanceGroup(placement.conflicts, intent)
        want = build(intent, s, options, placement.groups, seen.node_tags)
        changes, ips, reservations = self.changes(intent.ref, want, seen, intent=intent, usable=usable)
        return Plan(
            self.provider,
            intent.ref,
            changes,
            intent=intent,
            # status.loadBalancer.ingress: one IP per family, in spec.ipFamilies order
            ingress=tuple(Ingress(ip=ip) for ip in ips if ip),
            data={
                "address": reservations.get("IPv4"),
                "addresses": reservations,
                "families": list(intent.ip_families),
            },
        )

    def plan_delete(self, ref: ServiceRef, seen: Snapshot) -> Plan:
        """The Service's deletion: the empty desired state against what the Service owns."""
        changes, _, _ = self.changes(ref, None, seen)
        return Plan(self.provider, ref, changes, intent=None)

    def changes(
        self,
        ref: ServiceRef,
        want: Desired | None,
        seen: Snapshot,
        *,
        intent: Intent | None = None,
        usable: set[tuple[str, str]] | None = None,
    ) -> tuple[tuple[Change, ...], list[str | None], dict[str, str | None]]:
        """Desired vs observed: (the changes in order, the IP of each family in order, the
        reservation each family's rules take it from).

        ``want=None`` is the empty desired state (a delete): only the leftovers remain.
        """
        first: list[Change] = []  # instance groups, health check, its firewall
        reserve: list[Change] = []
        early_rule_deletes: list[Change] = []
        fw_changes: list[Change] = []
        services: list[Change] = []
        rules: list[Change] = []
        rule_patches: list[Change] = []
        release: list[Change] = []
        take: Takeover | None = None
        ips: list[str | None] = []
        reservations: dict[str, str | None] = {}
        if want is not None:
            assert intent is not None and usable is not None
            take = takeover(self, ref, want, seen)
            adopted = take.firewalls if take else {}
            first.extend(
                group_changes(
                    self, want.instance_groups, seen.groups, seen.members, usable, seen.groups_read_at
                )
            )
            hc, hc_fw = want.health_check, want.hc_firewall
            first.extend(self._create_or_update(hc, seen.health_checks.get(hc.name), ref))
            if hc_fw.name not in adopted:
                first.extend(self._create_or_update(hc_fw, seen.firewalls.get(hc_fw.name), ref))
            if want.hc_firewall_ipv6 is not None:  # Google's IPv6 probers: a firewall of their own
                hc6 = want.hc_firewall_ipv6
                first.extend(self._create_or_update(hc6, seen.firewalls.get(hc6.name), ref))
            services, replaced_bs = self._backend_services(want, seen, ref)
            # -- per IP family: the IP and its reservation, the rules, the traffic firewall --------
            fronts = [
                plan_frontend(
                    self,
                    intent,
                    front,
                    seen,
                    replaced_bs,
                    seen.requested_ips.get(front.family),
                    # upstream's load balancers are IPv4: a takeover is the IPv4 frontend's
                    take if front.family == "IPv4" else None,
                    hc_fw,
                )
                for front in want.frontends
            ]
            reserve = [c for f in fronts for c in f.reserve]
            early_rule_deletes = [c for f in fronts for c in f.early_rule_deletes]
            fw_changes = [c for f in fronts for c in f.fw_changes]
            rules = [c for f in fronts for c in f.rules]
            rule_patches = [c for f in fronts for c in f.rule_patches]
            release = [c for f in fronts for c in f.release]
            ips = [f.ip for f in fronts]
            reservations = {f.family: f.reservation for f in fronts}
        else:
            # the Service's deletion takes upstream's load balancer with it, if it is still there
            take = takeover(self, ref, None, seen)
            if take is not None:
                reserve, early_rule_deletes, rule_patches = take.before_reserve, take.early, take.after_rules
        leftovers = self._leftovers(want, seen, ref)
        early_rule_deletes += [c for c in leftovers if c.kind == "forwarding-rule"]
        last = [c for c in leftovers if c.kind != "forwarding-rule"] + self._shared(want, seen)
        # The reservation comes first (it may promote the IP a rule about to be recreated holds);
        # the traffic firewall needs the IP; the rules come last, then the reservation is released.
        changes = tuple(
            first
            + reserve
            + early_rule_deletes
            + fw_changes
            + services
            + rules
            + rule_patches
            + release
            + last
        )
        return changes, ips, reservations

    @staticmethod
    def _adopt_ip(change: Change, take: Takeover) -> Change:
        """The reservation that promotes upstream's IP is the plan's ``adopt`` of that IP."""
        after = change.after or {}
        if change.kind != "address" or change.action is not Action.CREATE or after.get("address") != take.ip:
            return change
        return dataclasses.replace(
            change,
            action=Action.ADOPT,
            reason="promote the IP of cloud-provider-gcp's forwarding rule to a reserved address, so that "
            "the Service keeps it" + "".join(f"; {part}" for part in (change.reason or "").split("; ")[1:]),
        )

    def _backend_services(
        self, want: Desired, seen: Snapshot, ref: ServiceRef
    ) -> tuple[list[Change], set[str]]:
        """Create, update or replace the Service's backend services; (changes, names replaced)."""
        services: list[Change] = []
        replaced_bs: set[str] = set()
        for bs in want.backend_services.values():
            found = seen.backend_services.get(bs.name)
            if found is None:
                services.append(
                    Change(
                        Action.CREATE,
                        "backend-service",
                        bs.name,
                        after=bs.view,
                        data={"collection": "backendServices", "body": bs.body},
                    )
                )
                continue
            self._check_owner(bs, found, ref)
            before = view_of("backendServices", found)
            stamp = self.lacks_identity(found)
            if before == bs.view and not stamp:
                continue
            if (
                before["loadBalancingScheme"] != bs.view["loadBalancingScheme"]
                or before["network"] != bs.view["network"]
            ):
                replaced_bs.add(bs.name)
                services.append(
                    Change(
                        Action.REPLACE,
                        "backend-service",
                        bs.name,
                        before=before,
                        after=bs.view,
                        cloud_id=found.get("selfLink"),
                        reason="loadBalancingScheme cannot be changed in place",
                        data={"collection": "backendServices", "body": bs.body},
                    )
                )
            else:
                body = {**bs.body, "fingerprint": found.get("fingerprint")}
                services.append(
                    Change(
                        Action.UPDATE,
                        "backend-service",
                        bs.name,
                        before=before,
                        after=bs.view,
                        cloud_id=found.get("selfLink"),
                        reason="add the cluster identity" if before == bs.view else None,
                        data={
                            "collection": "backendServices",
                            "body": body,
                            # an empty list is absent in proto3 JSON, so a patch cannot empty the
                            # backends: no eligible node left takes an update (PUT)
                            "verb": "patch" if bs.groups else "update",
                        },
                    )
                )
        return services, replaced_bs

    def label_change(self, found: Json, kind: str, collection: str, view: Json) -> Change:
        """Add the cluster identity as a label (forwarding rules and addresses: their description
        cannot change)."""
        return Change(
            Action.UPDATE,
            kind,
            str(found["name"]),
            before=view,
            after=view,
            cloud_id=found.get("selfLink"),
            reason="add the cluster identity",
            data={
                "collection": collection,
                "verb": "setLabels",
                "body": {
                    "labels": {**(found.get("labels") or {}), N.ID_LABEL: self.settings.cluster_id},
                    "labelFingerprint": found.get("labelFingerprint"),
                },
            },
        )

    def _leftovers(self, want: Desired | None, seen: Snapshot, ref: ServiceRef) -> list[Change]:
        """What the Service owns that the desired state does not hold, rules first: the one loop
        behind a changed Service's drops and a deleted Service's whole teardown."""
        wanted = _wanted(want)
        addresses = {str(a["name"]): a for a in seen.addresses}
        observed = {
            "forwardingRules": seen.forwarding_rules,
            "backendServices": seen.backend_services,
            "healthChecks": seen.health_checks,
            "firewalls": seen.firewalls,
            "addresses": addresses,
        }
        # an IPv6 twin whose family the Service no longer asks for goes for that reason
        v6_dropped = want is not None and all(f.family != "IPv6" for f in want.frontends)
        out: list[Change] = []
        for collection, kind, why in _LEFTOVER_KINDS:
            for name, found in sorted(observed[collection].items()):
                if name in wanted.get(collection, ()) or not N.owned_by_service(
                    found.get("description"), self.cluster, ref.uid
                ):
                    continue
                reason = "IP family IPv6 no longer used" if v6_dropped and name.endswith("-ipv6") else why
                out.append(self.delete_change(found, kind, collection, reason=reason if want else None))
        return out

    def _shared(self, want: Desired | None, seen: Snapshot) -> list[Change]:
        """The shared health check and its firewall, when this plan may take away their last user.

        The observer read every backend service (``all_backend_services``) exactly when that can
        happen: a Service moving off the shared check, or a delete while the check exists.
        """
        if want is not None and want.health_check.shared:
            return []
        hc = seen.health_checks.get(N.shared_hc_name(self.cluster))
        # the IPv4 probers' firewall and the IPv6 probers'
        fws = [
            found
            for name in (
                N.shared_hc_firewall_name(self.cluster),
                N.ipv6(N.shared_hc_firewall_name(self.cluster)),
            )
            if (found := seen.firewalls.get(name)) is not None
        ]
        out: list[Change] = []
        if want is None and hc is None and fws:
            # a firewall left over from an interrupted delete: it goes with the (gone) check
            for fw in fws:
                if self._ours_shared(fw):
                    out.append(self.delete_change(fw, "firewall-rule", "firewalls", shared=True))
            return out
        if hc is None or seen.all_backend_services is None:
            return out
        exclude = set(seen.backend_services)
        others = [b for b in seen.all_backend_services if b["name"] not in exclude]
        shared_hc = N.shared_hc_name(self.cluster)
        if not self._ours_shared(hc) or any(
            N.last_segment(h) == shared_hc for b in others for h in b.get("healthChecks") or []
        ):
            return out
        why = "no Service uses the shared check any more"
        out.append(self.delete_change(hc, "health-check", "healthChecks", reason=why, shared=True))
        for fw in fws:
            if self._ours_shared(fw):
                out.append(self.delete_change(fw, "firewall-rule", "firewalls", reason=why, shared=True))
        return out

    def _ours_shared(self, res: Json) -> bool:
        """A cluster-shared resource of this cluster, with this cluster's identity (or none yet)."""
        return N.owned_as_shared(res.get("description"), self.cluster) and N.identity_matches(
            res, self.settings.cluster_id
        )

    def lacks_identity(self, found: Json) -> bool:
        """A resource from before cluster identities: it gets the identity on this reconcile."""
        return bool(self.settings.cluster_id) and N.identity(found) is None

    def _create_or_update(
        self, r: Spec, found: Json | None, ref: ServiceRef, extra: Json | None = None
    ) -> list[Change]:
        if found is None:
            return [
                Change(
                    Action.CREATE,
                    r.kind,
                    r.name,
                    after=r.view,
                    data={"collection": r.collection, "body": r.body, "shared": r.shared, **(extra or {})},
                )
            ]
        self._check_owner(r, found, ref)
        before = view_of(r.collection, found)
        stamp = self.lacks_identity(found)
        if before == r.view and not stamp:
            return []
        verb = "update" if r.collection == "healthChecks" else "patch"
        return [
            Change(
                Action.UPDATE,
                r.kind,
                r.name,
                before=before,
                after=r.view,
                cloud_id=found.get("selfLink"),
                reason="add the cluster identity" if stamp and before == r.view else None,
                data={"collection": r.collection, "body": r.body, "verb": verb, **(extra or {})},
            )
        ]

    def delete_change(
        self,
        found: Json,
        kind: str,
        collection: str,
        *,
        reason: str | None = None,
        shared: bool = False,
        zone: str | None = None,
    ) -> Change:
        return Change(
            Action.DELETE,
            kind,
            f"{zone}/{found['name']}" if zone else found["name"],
            before=view_of(collection, found) if collection != "instanceGroups" else {"zone": zone},
            cloud_id=found.get("selfLink"),
            reason=reason,
            data={"collection": collection, "name": found["name"], "zone": zone, "shared": shared},
        )
