"""GCPProvider: a backend-service-based passthrough network load balancer per Service.

``plan`` reads (one aggregated instance-group list, the members of each zone's group, and one
filtered list per collection), diffs against :mod:`lbprov_gcp.desired` and orders the changes so
that nothing ever points at something missing:

    instance groups -> health check -> firewalls -> (forwarding rules that must go first) ->
    address -> backend services -> forwarding rules -> leftovers (backend services, health
    check, firewalls, address, then shared resources nobody uses any more)

Forwarding rules are immutable (IP, ports, protocol, scheme, backend): a change is a replace. A
backend service's scheme is immutable too; replacing it first deletes the forwarding rules that use
it and creates them again after. ``apply`` executes exactly the plan's changes in that order.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from google.api_core import exceptions as gexc
from pydantic import BaseModel

from lbprov import naming
from lbprov.cloudcalls import CloudCalls, RateLimits, RetryPolicy
from lbprov.model import (
    Action,
    Change,
    Ingress,
    Intent,
    InvalidService,
    OwnedLoadBalancer,
    OwnershipConflict,
    Plan,
    SandboxNode,
    ServiceRef,
)
from lbprov.provider import SandboxCloud
from lbprov_gcp import desired as D
from lbprov_gcp.compute import Compute, is_in_use, is_retryable, is_throttle, retry_after
from lbprov_gcp.operations import is_write
from lbprov_gcp.options import GCPOptions, instances, parse_options, validate_source_ranges
from lbprov_gcp.reads import Reader, ReadRound
from lbprov_gcp.settings import GCPSettings

Json = dict[str, Any]
log = logging.getLogger("lbprov.gcp")

PROVIDER = "gcp"
_UNKNOWN_IP = "(known after apply)"


class GCPProvider:
    """lbprov provider for Google Cloud (google-cloud-compute)."""

    name: ClassVar[str] = PROVIDER
    settings_model: ClassVar[type[BaseModel]] = GCPSettings

    def __init__(
        self, settings: GCPSettings, *, read_only: bool = False, compute: Compute | None = None
    ) -> None:
        self.settings = settings
        self.cluster = settings.cluster_name
        self.calls = CloudCalls(
            PROVIDER,
            is_write=is_write,
            is_retryable=is_retryable,
            is_throttle=is_throttle,
            retry_after=retry_after,
            read_only=read_only,
            retry=RetryPolicy(
                max_attempts=settings.retry_attempts, initial_seconds=settings.retry_initial_seconds
            ),
            limits=RateLimits(
                reads_per_second=settings.reads_per_second or None,
                read_burst=max(1, int(settings.reads_per_second * 2)),
                writes_per_second=settings.writes_per_second or None,
                write_burst=max(1, int(settings.writes_per_second * 4)),
            ),
        )
        self._compute = compute
        self._reader: Reader | None = None
        self._init_lock = threading.Lock()
        # Shared resources (instance groups, the shared check and its firewall) this process knows
        # exist: concurrent reconciles that all planned to create one then create it once. Any
        # failed apply forgets them, so a resource deleted behind our back is created again.
        self._shared_lock = threading.RLock()
        self._shared_known: set[tuple[str, str | None, str]] = set()

    @property
    def compute(self) -> Compute:
        # Built on first use, so that constructing a provider (and validating Services) needs no
        # credentials and makes no call.
        with self._init_lock:
            if self._compute is None:
                self._compute = Compute(self.settings, self.calls)
            return self._compute

    @property
    def reader(self) -> Reader:
        compute = self.compute
        with self._init_lock:
            if self._reader is None:
                self._reader = Reader(compute)
            return self._reader

    @contextmanager
    def read_round(self) -> Iterator[ReadRound]:
        """List each collection once for all the plans made inside the block (a resync)::

            with provider.read_round():
                for intent in intents:
                    plan = provider.plan(intent)
                    if not plan.empty:
                        provider.apply(plan)

        What an apply writes is dropped from the round, so later plans read it afresh. Nesting
        reuses the outer round.
        """
        reader = self.reader
        if reader.round is not None:
            yield reader.round
            return
        reader.round = ReadRound()
        try:
            yield reader.round
        finally:
            reader.round = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, read_only: bool = False) -> GCPProvider:
        model = settings if isinstance(settings, GCPSettings) else GCPSettings(**dict(settings))
        return cls(model, read_only=read_only)

    # -- validation (pure) ------------------------------------------------------------------------

    def resolve(self, intent: Intent, annotations: Mapping[str, str]) -> Intent:
        options = parse_options(annotations)
        validate_source_ranges(intent.source_ranges)
        if options.scheme == "internal" and not self.settings.subnetwork:
            raise InvalidService(
                f"metadata.annotations[{'networking.gke.io/load-balancer-type'}]",
                "an internal load balancer needs the GCP setting 'subnetwork' (LBPROV_GCP_SUBNETWORK); "
                "accepted values without it: leave the annotation out (external)",
            )
        if intent.targets and not instances(intent.targets, self.settings.project, self.settings.region):
            raise InvalidService(
                "nodes",
                f"no node has a providerID gce://{self.settings.project}/<zone in {self.settings.region}>/<name>",
            )
        return dataclasses.replace(intent, scheme=options.scheme, options=options)

    def _options(self, intent: Intent) -> GCPOptions:
        if isinstance(intent.options, GCPOptions):
            return intent.options
        return GCPOptions(scheme=intent.scheme)

    # -- plan -------------------------------------------------------------------------------------

    def _conflict(self, kind: str, name: str, res: Json, who: str) -> OwnershipConflict:
        desc = (res.get("description") or "")[:120]
        return OwnershipConflict(
            f"{kind} {name!r} already exists in project {self.settings.project} but is not owned by {who} "
            f"(description: {desc!r}); lbprov never adopts or changes a foreign resource: rename or delete "
            "it, or change the Service"
        )

    def _check_owner(self, r: D.Resource, found: Json, ref: ServiceRef) -> None:
        if r.shared:
            if not D.owned_as_shared(found.get("description"), self.cluster):
                raise self._conflict(r.kind, r.name, found, f"cluster {self.cluster}")
        elif not D.owned_by_service(found.get("description"), self.cluster, ref.uid):
            raise self._conflict(r.kind, r.name, found, f"Service {ref.key} of cluster {self.cluster}")

    def plan(self, intent: Intent) -> Plan:
        options = self._options(intent)
        s = self.settings
        nodes = instances(intent.targets, s.project, s.region)
        want = D.build(intent, s, options, nodes)
        ref, lb = intent.ref, intent.lb_name
        group = D.ig_name(self.cluster)
        names = D.per_service_names(lb)

        # -- reads ---------------------------------------------------------------------------------
        r_ = self.reader
        groups = r_.groups(group)
        members = {zone: r_.members(zone, group) for zone in sorted(groups)}
        hcs = r_.named("healthChecks", [lb, D.shared_hc_name(self.cluster)])
        bss = r_.named("backendServices", [D.rule_name(lb, "TCP"), D.rule_name(lb, "UDP")])
        frs = r_.named("forwardingRules", [D.rule_name(lb, "TCP"), D.rule_name(lb, "UDP")])
        addrs = r_.addresses(lb, intent.requested_ip)
        fw_names = [names["firewall"], names["hc_firewall"], D.shared_hc_firewall_name(self.cluster)]
        fws = r_.named("firewalls", fw_names)

        first: list[Change] = []  # instance groups, health check, firewalls
        early_rule_deletes: list[Change] = []
        middle: list[Change] = []  # address, backend services
        rules: list[Change] = []
        last: list[Change] = []

        # -- instance groups (shared) ----------------------------------------------------------------
        for zone, wanted in want.instance_groups.items():
            found = groups.get(zone)
            after: Json = {"zone": zone, "instances": list(wanted)}
            if found is None:
                first.append(
                    Change(
                        Action.CREATE,
                        "instance-group",
                        f"{zone}/{group}",
                        after=after,
                        data={
                            "zone": zone,
                            "name": group,
                            "add": list(wanted),
                            "remove": [],
                            "body": {
                                "name": group,
                                "description": D.cluster_description(self.cluster),
                                "network": f"projects/{s.project}/global/networks/{s.network}",
                            },
                        },
                    )
                )
                continue
            if not D.owned_as_shared(found.get("description"), self.cluster):
                raise self._conflict("instance-group", f"{zone}/{group}", found, f"cluster {self.cluster}")
            current = members[zone]
            add = sorted(set(wanted) - set(current))
            remove = sorted(set(current) - set(wanted))
            if add or remove:
                first.append(
                    Change(
                        Action.UPDATE,
                        "instance-group",
                        f"{zone}/{group}",
                        before={"zone": zone, "instances": current},
                        after=after,
                        cloud_id=found.get("selfLink"),
                        data={"zone": zone, "name": group, "add": add, "remove": remove},
                    )
                )
        for zone, found in sorted(groups.items()):
            if zone in want.instance_groups or not members[zone]:
                continue
            if not D.owned_as_shared(found.get("description"), self.cluster):
                continue  # not ours, and not in the plan: leave it alone
            first.append(
                Change(
                    Action.UPDATE,
                    "instance-group",
                    f"{zone}/{group}",
                    before={"zone": zone, "instances": members[zone]},
                    after={"zone": zone, "instances": []},
                    reason="no eligible node left in the zone",
                    cloud_id=found.get("selfLink"),
                    data={"zone": zone, "name": group, "add": [], "remove": members[zone]},
                )
            )

        # -- health check and firewalls ------------------------------------------------------------
        for r, existing in ((want.health_check, hcs), (want.hc_firewall, fws), (want.firewall, fws)):
            first.extend(self._create_or_update(r, existing.get(r.name), ref))

        # -- address ---------------------------------------------------------------------------------
        assert want.address is not None
        ours = next((a for a in addrs if a["name"] == lb), None)
        if ours is not None and not D.owned_by_service(ours.get("description"), self.cluster, ref.uid):
            raise self._conflict("address", lb, ours, f"Service {ref.key} of cluster {self.cluster}")
        user_owned = None
        if intent.requested_ip:
            user_owned = next(
                (a for a in addrs if a.get("address") == intent.requested_ip and a is not ours), None
            )
        address_replaced = False
        ip: str | None
        if user_owned is not None:
            holder = D.ownership(user_owned.get("description"))
            if naming.SERVICE_UID_TAG in holder and holder.get(naming.SERVICE_UID_TAG) != ref.uid:
                raise InvalidService(
                    "spec.loadBalancerIP",
                    f"{intent.requested_ip} is already the address of Service "
                    f"{holder.get(naming.SERVICE_NAME_TAG, '?')}; choose another IP",
                )
            # A reserved address that is not ours: use it, never change or release it.
            want_type = "EXTERNAL" if want.scheme == "external" else "INTERNAL"
            if user_owned.get("addressType", "EXTERNAL") != want_type:
                raise InvalidService(
                    "spec.loadBalancerIP",
                    f"{intent.requested_ip} is reserved as {user_owned.get('addressType')} address "
                    f"{user_owned['name']!r}; this Service needs an {want_type} address",
                )
            ip = intent.requested_ip
            if ours is not None:
                last.append(
                    self._delete_change(
                        D.Resource("address", "addresses", lb, {}, {}),
                        ours,
                        "address",
                        "addresses",
                        reason="loadBalancerIP is a user-reserved address",
                    )
                )
                address_replaced = True
        else:
            r = want.address
            if ours is None:
                middle.append(
                    Change(
                        Action.CREATE,
                        "address",
                        lb,
                        after={**r.view, "address": r.view["address"] or _UNKNOWN_IP},
                        data={"collection": "addresses", "body": r.body},
                    )
                )
                ip = intent.requested_ip
                address_replaced = True
            else:
                before = D.view_of("addresses", ours)
                after = {**r.view, "address": intent.requested_ip or ours.get("address")}
                if before != after:
                    middle.append(
                        Change(
                            Action.REPLACE,
                            "address",
                            lb,
                            before=before,
                            after={**r.view, "address": r.view["address"] or _UNKNOWN_IP},
                            cloud_id=ours.get("selfLink"),
                            reason="an address cannot be changed in place",
                            data={"collection": "addresses", "body": r.body},
                        )
                    )
                    ip = intent.requested_ip
                    address_replaced = True
                else:
                    ip = ours.get("address")

        # -- backend services and forwarding rules -----------------------------------------------------
        replaced_bs: set[str] = set()
        for r in want.backend_services.values():
            found = bss.get(r.name)
            if found is None:
                middle.append(
                    Change(
                        Action.CREATE,
                        "backend-service",
                        r.name,
                        after=r.view,
                        data={"collection": "backendServices", "body": r.body},
                    )
                )
                continue
            self._check_owner(r, found, ref)
            before = D.view_of("backendServices", found)
            if before == r.view:
                continue
            if (
                before["loadBalancingScheme"] != r.view["loadBalancingScheme"]
                or before["network"] != r.view["network"]
            ):
                replaced_bs.add(r.name)
                middle.append(
                    Change(
                        Action.REPLACE,
                        "backend-service",
                        r.name,
                        before=before,
                        after=r.view,
                        cloud_id=found.get("selfLink"),
                        reason="loadBalancingScheme cannot be changed in place",
                        data={"collection": "backendServices", "body": r.body},
                    )
                )
            else:
                body = {**r.body, "fingerprint": found.get("fingerprint")}
                middle.append(
                    Change(
                        Action.UPDATE,
                        "backend-service",
                        r.name,
                        before=before,
                        after=r.view,
                        cloud_id=found.get("selfLink"),
                        data={"collection": "backendServices", "body": body, "verb": "patch"},
                    )
                )

        for proto, body in want.rules.items():
            name = body["name"]
            view = {**want.rule_views[proto], "IPAddress": ip or _UNKNOWN_IP}
            data = {
                "collection": "forwardingRules",
                "body": body,
                "address": None if user_owned else lb,
                "ip": ip,
            }
            found = frs.get(name)
            if found is None:
                rules.append(Change(Action.CREATE, "forwarding-rule", name, after=view, data=data))
                continue
            r = D.Resource("forwarding-rule", "forwardingRules", name, body, view)
            self._check_owner(r, found, ref)
            before = {**D.view_of("forwardingRules", found), "IPAddress": found.get("IPAddress")}
            if name in replaced_bs or (address_replaced and found.get("IPAddress") != ip):
                early_rule_deletes.append(
                    self._delete_change(
                        r,
                        found,
                        "forwarding-rule",
                        "forwardingRules",
                        reason="recreated below: its backend service or address is replaced",
                    )
                )
                rules.append(Change(Action.CREATE, "forwarding-rule", name, after=view, data=data))
            elif before != view:
                rules.append(
                    Change(
                        Action.REPLACE,
                        "forwarding-rule",
                        name,
                        before=before,
                        after=view,
                        cloud_id=found.get("selfLink"),
                        reason="forwarding rules are immutable",
                        data=data,
                    )
                )

        # -- leftovers owned by this Service ---------------------------------------------------------------
        wanted_rules = set(want.rules and {b["name"] for b in want.rules.values()})
        for name, found in sorted(frs.items()):
            if name not in wanted_rules and D.owned_by_service(
                found.get("description"), self.cluster, ref.uid
            ):
                early_rule_deletes.append(
                    self._delete_change(
                        None, found, "forwarding-rule", "forwardingRules", reason="protocol no longer used"
                    )
                )
        for name, found in sorted(bss.items()):
            if name not in {r.name for r in want.backend_services.values()} and D.owned_by_service(
                found.get("description"), self.cluster, ref.uid
            ):
                last.append(
                    self._delete_change(
                        None, found, "backend-service", "backendServices", reason="protocol no longer used"
                    )
                )
        old_hc = hcs.get(names["hc"])
        if (
            want.health_check.name != names["hc"]
            and old_hc is not None
            and D.owned_by_service(old_hc.get("description"), self.cluster, ref.uid)
        ):
            last.append(
                self._delete_change(
                    None, old_hc, "health-check", "healthChecks", reason="externalTrafficPolicy is Cluster"
                )
            )
        old_fw = fws.get(names["hc_firewall"])
        if (
            want.hc_firewall.name != names["hc_firewall"]
            and old_fw is not None
            and D.owned_by_service(old_fw.get("description"), self.cluster, ref.uid)
        ):
            last.append(
                self._delete_change(
                    None, old_fw, "firewall-rule", "firewalls", reason="externalTrafficPolicy is Cluster"
                )
            )
        if not want.health_check.shared:
            # Moving away from the shared check: drop it (and its firewall) if nobody else uses it.
            shared_hc = hcs.get(D.shared_hc_name(self.cluster))
            uses_shared = any(
                D.view_of("backendServices", b)["healthCheck"] == D.shared_hc_name(self.cluster)
                for b in bss.values()
            )
            if shared_hc is not None and uses_shared:
                last.extend(
                    self._shared_deletes(
                        exclude={b["name"] for b in bss.values()},
                        hc=shared_hc,
                        fw=fws.get(D.shared_hc_firewall_name(self.cluster)),
                        groups={},
                    )
                )

        changes = tuple(first + early_rule_deletes + middle + rules + last)
        ingress = (Ingress(ip=ip),) if ip else ()
        return Plan(
            PROVIDER,
            ref,
            changes,
            intent=intent,
            ingress=ingress,
            data={"address": lb if user_owned is None else None},
        )

    def _create_or_update(self, r: D.Resource, found: Json | None, ref: ServiceRef) -> list[Change]:
        if found is None:
            return [
                Change(
                    Action.CREATE,
                    r.kind,
                    r.name,
                    after=r.view,
                    data={"collection": r.collection, "body": r.body, "shared": r.shared},
                )
            ]
        self._check_owner(r, found, ref)
        before = D.view_of(r.collection, found)
        if before == r.view:
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
                data={"collection": r.collection, "body": r.body, "verb": verb},
            )
        ]

    def _delete_change(
        self,
        r: D.Resource | None,
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
            before=D.view_of(collection, found) if collection != "instanceGroups" else {"zone": zone},
            cloud_id=found.get("selfLink"),
            reason=reason,
            data={"collection": collection, "name": found["name"], "zone": zone, "shared": shared},
        )

    def _shared_deletes(
        self, *, exclude: set[str], hc: Json | None, fw: Json | None, groups: Mapping[str, Json]
    ) -> list[Change]:
        """Delete the shared health check / firewall / instance groups if no other backend service uses them.

        ``exclude`` are the backend services this plan deletes itself. One extra read: every regional
        backend service, since any of them (not only ours) may reference a shared resource.
        """
        others = [b for b in self.reader.all("backendServices") if b["name"] not in exclude]
        out: list[Change] = []
        shared_hc = D.shared_hc_name(self.cluster)
        if (
            hc is not None
            and D.owned_as_shared(hc.get("description"), self.cluster)
            and not any(D._name(h) == shared_hc for b in others for h in b.get("healthChecks") or [])
        ):
            out.append(
                self._delete_change(
                    None,
                    hc,
                    "health-check",
                    "healthChecks",
                    reason="no Service uses the shared check any more",
                    shared=True,
                )
            )
            if fw is not None and D.owned_as_shared(fw.get("description"), self.cluster):
                out.append(
                    self._delete_change(
                        None,
                        fw,
                        "firewall-rule",
                        "firewalls",
                        reason="no Service uses the shared check any more",
                        shared=True,
                    )
                )
        used_groups = {
            str(bk.get("group", "")).split("/compute/v1/")[-1].split("projects/", 1)[-1]
            for b in others
            for bk in b.get("backends") or []
        }
        for zone, ig in sorted(groups.items()):
            if not D.owned_as_shared(ig.get("description"), self.cluster):
                continue
            if any(u.endswith(f"zones/{zone}/instanceGroups/{ig['name']}") for u in used_groups):
                continue
            out.append(
                self._delete_change(
                    None,
                    ig,
                    "instance-group",
                    "instanceGroups",
                    reason="no Service uses the cluster's instance groups any more",
                    shared=True,
                    zone=zone,
                )
            )
        return out

    # -- delete plan --------------------------------------------------------------------------------

    def plan_delete(self, ref: ServiceRef) -> Plan:
        """Everything this cluster owns for the Service, found by the Service UID in descriptions."""
        r_ = self.reader

        def owned(items: list[Json]) -> list[Json]:
            return sorted(
                (i for i in items if D.owned_by_service(i.get("description"), self.cluster, ref.uid)),
                key=lambda i: i["name"],
            )

        frs = owned(r_.mentioning("forwardingRules", ref.uid))
        bss = owned(r_.mentioning("backendServices", ref.uid))
        hcs = owned(r_.mentioning("healthChecks", ref.uid))
        fws = owned(r_.mentioning("firewalls", ref.uid))
        addrs = owned(r_.mentioning("addresses", ref.uid))
        changes: list[Change] = []
        changes += [self._delete_change(None, f, "forwarding-rule", "forwardingRules") for f in frs]
        changes += [self._delete_change(None, b, "backend-service", "backendServices") for b in bss]
        changes += [self._delete_change(None, h, "health-check", "healthChecks") for h in hcs]
        changes += [self._delete_change(None, f, "firewall-rule", "firewalls") for f in fws]
        changes += [self._delete_change(None, a, "address", "addresses") for a in addrs]
        shared_hc = r_.named("healthChecks", [D.shared_hc_name(self.cluster)]).get(
            D.shared_hc_name(self.cluster)
        )
        shared_fw = r_.named("firewalls", [D.shared_hc_firewall_name(self.cluster)]).get(
            D.shared_hc_firewall_name(self.cluster)
        )
        groups = r_.groups(D.ig_name(self.cluster))
        if shared_hc is not None or shared_fw is not None or groups:
            if shared_hc is None and shared_fw is not None:
                # a firewall left over from an interrupted delete: it goes with the (gone) check
                changes.append(
                    self._delete_change(None, shared_fw, "firewall-rule", "firewalls", shared=True)
                ) if D.owned_as_shared(shared_fw.get("description"), self.cluster) else None
                shared_fw = None
            changes += self._shared_deletes(
                exclude={b["name"] for b in bss}, hc=shared_hc, fw=shared_fw, groups=groups
            )
        return Plan(PROVIDER, ref, tuple(changes), intent=None)

    # -- apply ------------------------------------------------------------------------------------

    def apply(self, plan: Plan) -> tuple[Ingress, ...]:
        ctx: dict[str, Any] = {}
        for change in plan.changes:
            try:
                self._apply_one(change, ctx)
            except BaseException:
                with self._shared_lock:
                    self._shared_known.clear()
                raise
            finally:
                data = change.data
                self.reader.wrote(
                    "instanceGroups" if change.kind == "instance-group" else str(data.get("collection")),
                    data.get("zone"),
                )
        if plan.is_delete:
            return ()
        ip = ctx.get("ip")
        if ip is None and plan.ingress and not plan.changes:
            return plan.ingress
        if ip is None:
            ip = self._current_ip(plan)
        return (Ingress(ip=ip),) if ip else ()

    def _current_ip(self, plan: Plan) -> str | None:
        for ingress in plan.ingress:
            if ingress.ip:
                return ingress.ip
        address = plan.data.get("address")
        if address:
            found = self.compute.get("addresses", address)
            if found:
                return str(found.get("address"))
        return None

    def _apply_one(self, change: Change, ctx: dict[str, Any]) -> None:
        c = self.compute
        data = change.data
        if change.kind == "instance-group":
            self._apply_group(change, ctx)
            return
        collection = data["collection"]
        if change.action is Action.DELETE:
            with self._shared_lock:
                self._shared_known.discard((collection, data.get("zone"), data["name"]))
            try:
                c.delete(collection, data["name"], zone=data.get("zone"))
            except gexc.NotFound:
                pass  # already gone: the goal of a delete
            except gexc.BadRequest as exc:
                if data.get("shared") and is_in_use(exc):
                    log.info("shared %s %s is in use again; kept", change.kind, change.name)
                else:
                    raise
            return
        if change.action is Action.REPLACE and collection != "forwardingRules":
            c.delete(collection, change.name)
        if change.action is Action.UPDATE:
            c.modify(collection, data.get("verb", "patch"), change.name, dict(data["body"]))
            return
        if collection == "forwardingRules":
            body = dict(data["body"])
            ip = ctx.get("ip") or data.get("ip")
            if ip is None and data.get("address"):
                found = c.get("addresses", data["address"])
                ip = found.get("address") if found else None
                ctx["ip"] = ip
            if ip is None:
                raise RuntimeError(
                    f"forwarding rule {change.name}: the Service's address is missing; plan again"
                )
            body["IPAddress"] = ip
            if change.action is Action.REPLACE:
                c.delete(collection, change.name)
            c.insert(collection, body)
            ctx["ip"] = ip
            return
        if data.get("shared"):
            self._create_shared(collection, None, change.name, dict(data["body"]))
        else:
            c.insert(collection, dict(data["body"]))
        if collection == "addresses":
            found = c.get("addresses", change.name)
            ctx["ip"] = found.get("address") if found else None

    def _create_shared(self, collection: str, zone: str | None, name: str, body: Json) -> bool:
        """Create a cluster-shared resource once; False if it already existed (and is ours)."""
        key = (collection, zone, name)
        with self._shared_lock:
            if key in self._shared_known:
                return False
            try:
                self.compute.insert(collection, body, zone=zone)
                created = True
            except gexc.Conflict:
                # Another controller created it between our plan and apply: fine if it is ours.
                found = self.compute.get(collection, name, zone=zone)
                if found is None or not D.owned_as_shared(found.get("description"), self.cluster):
                    raise
                created = False
            self._shared_known.add(key)
            return created

    def _apply_group(self, change: Change, ctx: dict[str, Any]) -> None:
        c = self.compute
        data = change.data
        zone, name = data["zone"], data["name"]
        if change.action is Action.DELETE:
            with self._shared_lock:
                self._shared_known.discard(("instanceGroups", zone, name))
            try:
                c.delete("instanceGroups", name, zone=zone)
            except gexc.NotFound:
                pass
            except gexc.BadRequest as exc:
                if not is_in_use(exc):
                    raise
                log.info("instance group %s/%s is in use again; kept", zone, name)
            return
        if change.action is Action.CREATE:
            # Creating and filling the shared group is one step, so that concurrent reconciles that
            # all planned to create it add each instance once.
            with self._shared_lock:
                self._fill_group(change, zone, name)
        else:
            self._fill_group(change, zone, name)

    def _fill_group(self, change: Change, zone: str, name: str) -> None:
        c = self.compute
        data = change.data
        add, remove = list(data["add"]), list(data["remove"])
        if change.action is Action.CREATE and not self._create_shared(
            "instanceGroups", zone, name, dict(data["body"])
        ):
            # someone else created it since we planned: add only what is still missing
            current = set(c.group_members(zone, name))
            add = sorted(set(add) - current)
        try:
            if add:
                c.change_members("addInstances", zone, name, add)
            if remove:
                c.change_members("removeInstances", zone, name, remove)
        except gexc.BadRequest as exc:
            # Another Service's apply changed the shared group since we planned: converge on fresh data.
            if not (
                {"memberAlreadyExists", "memberNotFound"}
                & {str(e.get("reason")) for e in (exc.errors or []) if isinstance(e, dict)}
            ):
                raise
            current = set(c.group_members(zone, name))
            wanted = set(change.after["instances"]) if change.after else set()
            if wanted - current:
                c.change_members("addInstances", zone, name, sorted(wanted - current))
            if current - wanted:
                c.change_members("removeInstances", zone, name, sorted(current - wanted))

    # -- gc -----------------------------------------------------------------------------------------

    def list_owned(self) -> list[OwnedLoadBalancer]:
        r_ = self.reader
        by_uid: dict[str, dict[str, Any]] = {}
        for kind, collection in (
            ("forwarding-rule", "forwardingRules"),
            ("backend-service", "backendServices"),
            ("health-check", "healthChecks"),
            ("firewall-rule", "firewalls"),
            ("address", "addresses"),
        ):
            for res in r_.mentioning(collection, naming.cluster_tag_key(self.cluster)):
                tags = D.ownership(res.get("description"))
                uid = tags.get(naming.SERVICE_UID_TAG)
                if not uid or not naming.is_owned_by_cluster(tags, self.cluster):
                    continue
                entry = by_uid.setdefault(uid, {"tags": tags, "resources": []})
                entry["resources"].append((kind, res["name"]))
                if naming.LB_KIND_TAG in tags:
                    entry["tags"] = tags
        out = []
        for uid, entry in sorted(by_uid.items()):
            tags = entry["tags"]
            ns, _, name = tags.get(naming.SERVICE_NAME_TAG, "/").partition("/")
            out.append(
                OwnedLoadBalancer(
                    PROVIDER,
                    ServiceRef(ns, name, uid),
                    naming.lb_name(uid),
                    tags.get(naming.LB_KIND_TAG, "gcp-passthrough"),
                    tuple(sorted(entry["resources"])),
                )
            )
        return out

    # -- sandbox ------------------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def sandbox(cls, nodes: Sequence[str]) -> Iterator[SandboxCloud]:
        """Start the local Compute emulator seeded with a network, a subnetwork and the nodes."""
        from lbprov_gcp.sandbox import start_sandbox

        with start_sandbox(nodes) as cloud:
            settings = {
                "project": cloud.project,
                "region": cloud.region,
                "network": cloud.network,
                "subnetwork": cloud.subnetwork,
                "node_tags": [cloud.node_tag],
                "api_endpoint": cloud.server.url,
                "cluster_name": cloud.cluster,
            }

            def add_node(name: str) -> SandboxNode:
                return cloud.add_node(name)

            mutating: Callable[[], list[str]] = cloud.server.mutating_requests
            yield SandboxCloud(
                provider=PROVIDER,
                settings=settings,
                nodes=list(cloud.nodes),
                endpoint=cloud.server.url,
                add_node=add_node,
                mutating_requests=mutating,
                extra={"server": cloud.server, "emulator": cloud.server.emulator, "seeded": cloud},
            )
