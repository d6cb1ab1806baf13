"""Taking a Service over from cloud-provider-gcp's target-pool load balancer, in place (pure).

The Service keeps its IP: the plan first promotes the IP of upstream's forwarding rule to lbprov's
reserved address (``adopt``), deletes upstream's rule (GCE refuses two rules with overlapping ports
on one IP), and lbprov's backend-service-based rule takes the IP. Then upstream's target pool and
its health checks go (the cluster's shared nodes check ``k8s-<clusterID>-node`` and its firewall
only when no other target pool uses the check), and last upstream's firewalls ``k8s-fw-<lb>`` /
``k8s-<lb>-http-hc``, whose names lbprov uses too, are patched into lbprov's in place (``adopt``):
they keep admitting the traffic and the probes while the rules change, and until they are adopted
the next plan still sees the takeover and finishes it.

Only what upstream made for this Service of this cluster is touched: names and descriptions must be
exactly upstream's (:mod:`lbprov_gcp.predecessor`); a look-alike is an ownership conflict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lbprov import naming
from lbprov.model import Action, Change, OwnershipConflict, ServiceRef
from lbprov_gcp import names as N
from lbprov_gcp import predecessor as U
from lbprov_gcp.desired import Desired, FirewallSpec
from lbprov_gcp.observe import view_of
from lbprov_gcp.snapshot import Snapshot

if TYPE_CHECKING:
    from lbprov_gcp.diff.planner import Planner

Json = dict[str, Any]

_REPLACED = "replaced by lbprov's backend-service-based load balancer on the same IP"
_DELETED = "cloud-provider-gcp's load balancer of the deleted Service"
_DELETED = "cloud-provider-gcp's load balancer of the deleted Service"


def _legacy_view(collection: str, res: Json) -> Json:
    """The managed fields of upstream's target pool or legacy health check, for the plan's ``before``."""
    if collection == "targetPools":
        return {
            "instances": sorted(str(N.last_segment(i)) for i in res.get("instances") or []),
            "sessionAffinity": res.get("sessionAffinity", "NONE"),
            "healthChecks": [N.last_segment(h) for h in res.get("healthChecks") or []],
        }
    return {"port": res.get("port", 80), "requestPath": res.get("requestPath", "/")}


def _delete(found: Json, kind: str, collection: str, reason: str) -> Change:
    return Change(
        Action.DELETE,
        kind,
        str(found["name"]),
        before=_legacy_view(collection, found)
        if collection in ("targetPools", "httpHealthChecks")
        else view_of(collection, found),
        cloud_id=found.get("selfLink"),
        reason=reason,
        data={"collection": collection, "name": found["name"], "zone": None, "shared": False},
    )


@dataclass
class Takeover:
    """What the plan does with upstream's load balancer, placed by the planner."""

    ip: str | None  # the IP upstream's forwarding rule holds (None once that rule is gone)
    rule: str | None  # upstream's forwarding rule, which holds the IP until it is deleted
    firewalls: Mapping[str, Json] = field(default_factory=dict)  # upstream's, adopted by lbprov's spec
    before_reserve: list[Change] = field(default_factory=list)  # upstream's own reservation, if left
    early: list[Change] = field(default_factory=list)  # upstream's forwarding rule
    after_rules: list[Change] = field(default_factory=list)  # target pool, health checks, firewalls

    def adopt(self, spec: FirewallSpec, *, destination_from_ip: bool = False) -> Change:
        """Patch upstream's firewall into lbprov's (same name): its rules, description and all.

        ``destination_from_ip``: the IP is known only once apply reserves it."""
        found = self.firewalls[spec.name]
        return Change(
            Action.ADOPT,
            spec.kind,
            spec.name,
            before=view_of("firewalls", found),
            after=spec.view,
            cloud_id=found.get("selfLink"),
            reason="cloud-provider-gcp's firewall, patched into lbprov's in place",
            data={
                "collection": "firewalls",
                "body": spec.body,
                "verb": "patch",
                "destination_from_ip": destination_from_ip and bool(spec.destination_ranges),
            },
        )


class _NotOurs(Exception):
    """A look-alike of upstream's load balancer: a conflict for a plan, left alone by a delete."""

    def __init__(self, conflict: OwnershipConflict) -> None:
        self.conflict = conflict


def takeover(planner: Planner, ref: ServiceRef, want: Desired | None, seen: Snapshot) -> Takeover | None:
    """Upstream's load balancer for the Service, checked and planned away; None when there is none.

    ``want=None`` (the Service's deletion): upstream's load balancer is deleted with it, and a
    look-alike is left alone instead of being a conflict (it is not the Service's to delete)."""
    if seen.predecessor is None:
        return None
    try:
        return _takeover(planner, ref, want, seen)
    except _NotOurs as exc:
        if want is None:
            return None
        raise exc.conflict from None


def _takeover(planner: Planner, ref: ServiceRef, want: Desired | None, seen: Snapshot) -> Takeover:
    pred = seen.predecessor
    assert pred is not None
    lb, key = naming.lb_name(ref.uid), ref.key
    gce_id = planner.settings.gce_cluster_id
    nodes_hc = U.nodes_health_check_name(gce_id) if gce_id else None
    who = f"cloud-provider-gcp's load balancer of Service {key}"

    def conflict(kind: str, name: str, res: Json, owner: str) -> _NotOurs:
        return _NotOurs(planner.conflict(kind, name, res, owner))

    rule = pred.forwarding_rule
    if rule is not None and rule.get("backendService"):
        # upstream's internal (backend-service-based) load balancer: not taken over in place
        raise conflict(
            "forwarding-rule",
            lb,
            rule,
            f"a target-pool load balancer of Service {key} (an internal one is not migrated)",
        )
    if rule is not None and not (U.is_services(rule, key) and N.last_segment(rule.get("target")) == lb):
        raise conflict("forwarding-rule", lb, rule, who)
    pool = next((p for p in pred.target_pools if p["name"] == lb), None)
    if pool is not None:
        if not U.is_services(pool, key):
            raise conflict("target-pool", lb, pool, who)
        foreign = [h for h in map(N.last_segment, pool.get("healthChecks") or []) if h not in (lb, nodes_hc)]
        if foreign:
            raise conflict(
                "target-pool", lb, pool, f"{who} in this cluster (its health check {foreign[0]!r} is not)"
            )
    for name, hc in pred.http_health_checks.items():
        if not U.is_health_check(hc):
            raise conflict("http-health-check", name, hc, who)

    why = _REPLACED if want is not None else _DELETED
    out = Takeover(ip=str(rule["IPAddress"]) if rule else None, rule=lb if rule else None)
    wanted_fws = (
        {want.hc_firewall.name, *(f.firewall.name for f in want.frontends if f.family == "IPv4")}
        if want is not None
        else set()
    )
    per_service_fws = [U.traffic_firewall_name(lb), U.health_check_firewall_name(lb)]
    firewalls: dict[str, Json] = {}
    for name in per_service_fws:
        fw = seen.firewalls.get(name)
        if fw is None or N.owned_by_service(fw.get("description"), planner.cluster, ref.uid):
            continue
        if not U.is_services_firewall(fw, key):
            raise conflict("firewall-rule", name, fw, f"Service {key} of cluster {planner.cluster}")
        if name in wanted_fws:
            firewalls[name] = fw
        else:  # a Local Service's check firewall, the Service being Cluster now (or deleted)
            out.after_rules.append(_delete(fw, "firewall-rule", "firewalls", why))
    out.firewalls = firewalls

    address = next((a for a in seen.addresses if a["name"] == lb), None)
    if address is not None and U.is_services(address, key):
        # upstream's reservation, left by an interrupted ensure: released, and the IP reserved
        # again as lbprov's just below (the rule keeps it meanwhile, as an ephemeral IP)
        again = "cloud-provider-gcp's reservation; reserved again below" if want is not None else why
        out.before_reserve.append(_delete(address, "address", "addresses", again))
        out.ip = out.ip or str(address.get("address"))
    if rule is not None:
        out.early.append(_delete(rule, "forwarding-rule", "forwardingRules", why))
    if pool is not None:
        out.after_rules.append(_delete(pool, "target-pool", "targetPools", why))
    own = pred.http_health_checks.get(lb)
    if own is not None:
        out.after_rules.append(_delete(own, "http-health-check", "httpHealthChecks", why))
    shared = pred.http_health_checks.get(nodes_hc) if nodes_hc else None
    if shared is not None and nodes_hc is not None:
        users = [
            p["name"]
            for p in pred.target_pools
            if p["name"] != lb and nodes_hc in map(N.last_segment, p.get("healthChecks") or [])
        ]
        if not users:
            why = "cloud-provider-gcp's nodes health check: no other target pool uses it"
            out.after_rules.append(_delete(shared, "http-health-check", "httpHealthChecks", why))
            fw = seen.firewalls.get(U.health_check_firewall_name(nodes_hc))
            if fw is not None and U.is_nodes_firewall(fw, str(gce_id)):
                out.after_rules.append(_delete(fw, "firewall-rule", "firewalls", why))
    return out
