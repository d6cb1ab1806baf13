"""Desired vs observed -> the Plan's changes, ordered so that nothing points at something missing.

    instance groups -> health check -> its firewall -> address reservation -> (forwarding rules that
    must go first) -> traffic firewall -> backend services -> forwarding rules -> release of the
    reservation -> leftovers (backend services, health
    check, firewalls, address, then shared resources nobody uses any more)

Forwarding rules are immutable (IP, ports, protocol, scheme, backend): a change is a replace. A
backend service's scheme is immutable too; replacing it first deletes the forwarding rules that use
it and creates them again after. The planner reads through :class:`lbprov_gcp.observe.Reader`
(batched and cached within a read round) and never writes.

A delete plan finds what the Service owns by its UID in the resources' descriptions, never by
today's annotations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from lbprov.model import Action, Change, Ingress, Intent, OwnershipConflict, Plan, ServiceRef
from lbprov_gcp import names as N
from lbprov_gcp.desired import Desired, Spec, build, host_tags, place_nodes, requested_ip
from lbprov_gcp.diff.addresses import named_addresses
from lbprov_gcp.diff.frontends import plan_frontend
from lbprov_gcp.diff.groups import ForeignInstanceGroup, group_changes
from lbprov_gcp.diff.ipv6 import served_families
from lbprov_gcp.observe import Reader, view_of
from lbprov_gcp.options import GCPOptions, Instance, instances
from lbprov_gcp.settings import GCPSettings

Json = dict[str, Any]


class Planner:
    """Plans one Service (or its deletion) from the observed cloud state; read-only."""

    def __init__(self, provider: str, settings: GCPSettings, reader: Callable[[], Reader]) -> None:
        self.provider = provider
        self.settings = settings
        self.cluster = settings.cluster_name
        self._reader = reader
        self._tags_lock = threading.Lock()
        self._tags: tuple[frozenset[Instance], tuple[str, ...]] | None = None

    @property
    def reader(self) -> Reader:
        return self._reader()

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

    def plan(self, intent: Intent) -> Plan:
        options = self.options(intent)
        s = self.settings
        ref, lb = intent.ref, intent.lb_name
        group = N.ig_name(self.cluster, s.gce_cluster_id)
        names = N.per_service_names(lb)

        # -- reads ---------------------------------------------------------------------------------
        r_ = self.reader
        # loadBalancerIP belongs to its family; named reserved addresses give one IP per family
        requested: dict[str, str] = {f: ip for f in intent.ip_families if (ip := requested_ip(intent, f))}
        if options.address_names:
            requested = named_addresses(self, options.address_names, intent.ip_families)
        read_at = time.monotonic()
        groups = r_.groups(N.IG_PREFIX)  # every k8s-ig--* group in the region: ours, upstream's, others'
        read_at = min(read_at, r_.groups_read_at(N.IG_PREFIX) or read_at)  # a round's listing may be older
        members = {key: r_.members(*key) if groups[key].get("size", 1) else [] for key in sorted(groups)}
        hcs = r_.named("healthChecks", [lb, N.shared_hc_name(self.cluster)])
        bss = r_.named("backendServices", [N.rule_name(lb, "TCP"), N.rule_name(lb, "UDP")])
        frs = r_.named("forwardingRules", N.rule_names(lb))
        addrs = r_.addresses([lb, N.ipv6(lb)], sorted(requested.values()))
        fw_names = [names["firewall"], names["hc_firewall"], N.shared_hc_firewall_name(self.cluster)]
        fws = r_.named("firewalls", fw_names + [N.ipv6(n) for n in fw_names])
        intent = served_families(self, intent, options)

        # -- which group each node serves from -----------------------------------------------------
        usable = {
            key
            for key, found in groups.items()
            if key[1] == group or N.owned_as_shared(found.get("description"), self.cluster)
        }
        nodes = instances(intent.targets, s.project, s.region)
        placement = place_nodes(nodes, group, members, usable)
        if placement.conflicts:
            raise ForeignInstanceGroup(placement.conflicts, intent)
        want = build(intent, s, options, placement.groups, s.node_tags or self._node_tags(nodes))

        first: list[Change] = []  # instance groups, health check, firewalls
        early_rule_deletes: list[Change] = []
        rules: list[Change] = []
        last: list[Change] = []

        first.extend(group_changes(self, want, groups, members, usable, read_at))

        # -- health check and its firewall ---------------------------------------------------------
        specs: tuple[tuple[Spec, dict[str, Json]], ...] = ((want.health_check, hcs), (want.hc_firewall, fws))
        if want.hc_firewall_ipv6 is not None:
            specs += ((want.hc_firewall_ipv6, fws),)
        for spec, existing in specs:
            first.extend(self._create_or_update(spec, existing.get(spec.name), ref))

        # -- backend services ----------------------------------------------------------------------
        services: list[Change] = []
        replaced_bs: set[str] = set()
        for bs in want.backend_services.values():
            found = bss.get(bs.name)
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
            stamp = self._lacks_identity(found)
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

        # -- per IP family: the IP and its reservation, the forwarding rules, the traffic firewall ---
        fronts = [
            plan_frontend(self, intent, front, frs, addrs, fws, replaced_bs, requested.get(front.family))
            for front in want.frontends
        ]
        reserve = [c for f in fronts for c in f.reserve]
        early_rule_deletes += [c for f in fronts for c in f.early_rule_deletes]
        fw_changes = [c for f in fronts for c in f.fw_changes]
        rules += [c for f in fronts for c in f.rules]
        rule_patches = [c for f in fronts for c in f.rule_patches]
        release = [c for f in fronts for c in f.release]

        # -- leftovers owned by this Service ---------------------------------------------------------------
        wanted_rules = {r.name for f in want.frontends for r in f.forwarding_rules.values()}
        for name, found in sorted(frs.items()):
            if name not in wanted_rules and N.owned_by_service(
                found.get("description"), self.cluster, ref.uid
            ):
                early_rule_deletes.append(
                    self.delete_change(
                        found,
                        "forwarding-rule",
                        "forwardingRules",
                        reason="protocol or IP family no longer used",
                    )
                )
        last.extend(self._family_leftovers(intent, want, addrs, fws))
        for name, found in sorted(bss.items()):
            if name not in {r.name for r in want.backend_services.values()} and N.owned_by_service(
                found.get("description"), self.cluster, ref.uid
            ):
                last.append(
                    self.delete_change(
                        found, "backend-service", "backendServices", reason="protocol no longer used"
                    )
                )
        old_hc = hcs.get(names["hc"])
        if (
            want.health_check.name != names["hc"]
            and old_hc is not None
            and N.owned_by_service(old_hc.get("description"), self.cluster, ref.uid)
        ):
            last.append(
                self.delete_change(
                    old_hc, "health-check", "healthChecks", reason="externalTrafficPolicy is Cluster"
                )
            )
        old_fw = fws.get(names["hc_firewall"])
        if (
            want.hc_firewall.name != names["hc_firewall"]
            and old_fw is not None
            and N.owned_by_service(old_fw.get("description"), self.cluster, ref.uid)
        ):
            last.append(
                self.delete_change(
                    old_fw, "firewall-rule", "firewalls", reason="externalTrafficPolicy is Cluster"
                )
            )
        if not want.health_check.shared:
            # Moving away from the shared check: drop it (and its firewall) if nobody else uses it.
            shared_hc = hcs.get(N.shared_hc_name(self.cluster))
            uses_shared = any(
                view_of("backendServices", b)["healthCheck"] == N.shared_hc_name(self.cluster)
                for b in bss.values()
            )
            if shared_hc is not None and uses_shared:
                last.extend(
                    self._shared_deletes(
                        exclude={b["name"] for b in bss.values()},
                        hc=shared_hc,
                        fw=fws.get(N.shared_hc_firewall_name(self.cluster)),
                        fw6=fws.get(N.ipv6(N.shared_hc_firewall_name(self.cluster))),
                    )
                )

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
        # status.loadBalancer.ingress: one IP per family, in spec.ipFamilies order
        ingress = tuple(Ingress(ip=f.ip) for f in fronts if f.ip)
        reservations = {f.family: f.reservation for f in fronts}
        return Plan(
            self.provider,
            ref,
            changes,
            intent=intent,
            ingress=ingress,
            data={
                "address": reservations.get("IPv4"),
                "addresses": reservations,
                "families": list(intent.ip_families),
            },
        )

    def _family_leftovers(
        self, intent: Intent, want: Desired, addrs: list[Json], fws: dict[str, Json]
    ) -> list[Change]:
        """What a family the Service no longer asks for leaves (its traffic firewall, its address, the
        IPv6 probers' firewall), and the IPv6 probers' per-Service firewall of a Cluster Service."""
        ref, names = intent.ref, N.per_service_names(intent.lb_name)
        wanted = {f.family for f in want.frontends}
        gone: list[tuple[str, str, dict[str, Json], str]] = []
        for family in ("IPv4", "IPv6"):
            if family not in wanted:
                found_addrs = {a["name"]: a for a in addrs}
                gone.append(("firewall-rule", N.family_name(names["firewall"], family), fws, "firewalls"))
                gone.append(("address", N.family_name(names["address"], family), found_addrs, "addresses"))
        hc6 = N.ipv6(names["hc_firewall"])
        if want.hc_firewall_ipv6 is None or want.hc_firewall_ipv6.name != hc6:
            gone.append(("firewall-rule", hc6, fws, "firewalls"))
        out: list[Change] = []
        for kind, name, found_by_name, collection in gone:
            found = found_by_name.get(name)
            if found is not None and N.owned_by_service(found.get("description"), self.cluster, ref.uid):
                out.append(self.delete_change(found, kind, collection, reason="IP family no longer used"))
        return out

    def _node_tags(self, nodes: tuple[Instance, ...]) -> tuple[str, ...]:
        """The nodes' network tags found from their instances, as upstream (``GetNodeTags``): read
        again only when the set of nodes changes."""
        key = frozenset(nodes)
        with self._tags_lock:
            if self._tags is not None and (self._tags[0] == key or not key):
                return self._tags[1]
        if not key:
            raise RuntimeError(
                "no node to find the nodes' network tags from; set the GCP setting node_tags (LBPROV_GCP_NODE_TAGS)"
            )
        zones: dict[str, list[str]] = {}
        for node in nodes:
            zones.setdefault(node.zone, []).append(node.name)
        found = [i for zone, names in sorted(zones.items()) for i in self.reader.instances(zone, names)]
        missing = sorted({n.name for n in nodes} - {str(i.get("name")) for i in found})
        if missing:
            raise RuntimeError(
                f"instance {missing[0]} of a node was not found in project {self.settings.project}"
            )
        tags = host_tags(found)
        with self._tags_lock:
            self._tags = (key, tags)
        return tags

    def _lacks_identity(self, found: Json) -> bool:
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
        stamp = self._lacks_identity(found)
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

    def _shared_deletes(
        self, *, exclude: set[str], hc: Json | None, fw: Json | None, fw6: Json | None = None
    ) -> list[Change]:
        """Delete the shared health check and its firewall if no other backend service uses them.

        The instance groups are never deleted: ``k8s-ig--*`` groups are shared with upstream and
        ingress-gce, not owned.

        ``exclude`` are the backend services this plan deletes itself. One extra read: every regional
        backend service, since any of them (not only ours) may reference a shared resource.
        """
        others = [b for b in self.reader.all("backendServices") if b["name"] not in exclude]
        out: list[Change] = []
        shared_hc = N.shared_hc_name(self.cluster)
        if (
            hc is not None
            and N.owned_as_shared(hc.get("description"), self.cluster)
            and N.identity_matches(hc, self.settings.cluster_id)
            and not any(N.last_segment(h) == shared_hc for b in others for h in b.get("healthChecks") or [])
        ):
            out.append(
                self.delete_change(
                    hc,
                    "health-check",
                    "healthChecks",
                    reason="no Service uses the shared check any more",
                    shared=True,
                )
            )
            for found in (fw, fw6):  # the IPv4 probers' firewall and the IPv6 probers'
                if (
                    found is not None
                    and N.owned_as_shared(found.get("description"), self.cluster)
                    and N.identity_matches(found, self.settings.cluster_id)
                ):
                    out.append(
                        self.delete_change(
                            found,
                            "firewall-rule",
                            "firewalls",
                            reason="no Service uses the shared check any more",
                            shared=True,
                        )
                    )
        return out

    # -- delete plan --------------------------------------------------------------------------------

    def plan_delete(self, ref: ServiceRef) -> Plan:
        """Everything this cluster owns for the Service, found by the Service UID in descriptions."""
        r_ = self.reader

        def owned(items: list[Json]) -> list[Json]:
            return sorted(
                (i for i in items if N.owned_by_service(i.get("description"), self.cluster, ref.uid)),
                key=lambda i: i["name"],
            )

        frs = owned(r_.mentioning("forwardingRules", ref.uid))
        bss = owned(r_.mentioning("backendServices", ref.uid))
        hcs = owned(r_.mentioning("healthChecks", ref.uid))
        fws = owned(r_.mentioning("firewalls", ref.uid))
        addrs = owned(r_.mentioning("addresses", ref.uid))
        changes: list[Change] = []
        changes += [self.delete_change(f, "forwarding-rule", "forwardingRules") for f in frs]
        changes += [self.delete_change(b, "backend-service", "backendServices") for b in bss]
        changes += [self.delete_change(h, "health-check", "healthChecks") for h in hcs]
        changes += [self.delete_change(f, "firewall-rule", "firewalls") for f in fws]
        changes += [self.delete_change(a, "address", "addresses") for a in addrs]
        shared_hc = r_.named("healthChecks", [N.shared_hc_name(self.cluster)]).get(
            N.shared_hc_name(self.cluster)
        )
        fw_name = N.shared_hc_firewall_name(self.cluster)
        shared_fws = r_.named("firewalls", [fw_name, N.ipv6(fw_name)])  # the IPv4 and IPv6 probers'
        shared_fw, shared_fw6 = shared_fws.get(fw_name), shared_fws.get(N.ipv6(fw_name))
        if shared_hc is not None or shared_fw is not None:
            if shared_hc is None and shared_fw is not None:
                # a firewall left over from an interrupted delete: it goes with the (gone) check
                if N.owned_as_shared(shared_fw.get("description"), self.cluster) and N.identity_matches(
                    shared_fw, self.settings.cluster_id
                ):
                    changes.append(self.delete_change(shared_fw, "firewall-rule", "firewalls", shared=True))
                shared_fw = None
            changes += self._shared_deletes(
                exclude={b["name"] for b in bss}, hc=shared_hc, fw=shared_fw, fw6=shared_fw6
            )
        return Plan(self.provider, ref, tuple(changes), intent=None)
