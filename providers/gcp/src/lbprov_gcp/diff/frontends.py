"""One IP family's frontend of a Service: its IP and reservation, its forwarding rules, and the
traffic firewall to that IP (upstream's order: reserve, firewall, rules, release).

A dual-stack Service has one frontend per family over the same backend services; GCE forwarding
rules and firewalls hold one family each. The planner calls :func:`plan_frontend` per family and
puts the parts in the plan's order; every change is marked with its family, so that apply keeps the
two families' IPs apart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lbprov.model import Action, Change, Intent, ServiceRef
from lbprov_gcp import names as N
from lbprov_gcp.desired import FirewallSpec, Frontend
from lbprov_gcp.diff.addresses import _UNKNOWN_IP, plan_address
from lbprov_gcp.observe import view_of
from lbprov_gcp.snapshot import Snapshot

if TYPE_CHECKING:
    from lbprov_gcp.diff.planner import Planner
    from lbprov_gcp.diff.predecessor import Takeover

Json = dict[str, Any]


@dataclass
class FrontendPlan:
    """One IP family's part of a plan, in the places the plan's order puts them."""

    ip: str | None
    reserve: list[Change]
    early_rule_deletes: list[Change]
    fw_changes: list[Change]
    rules: list[Change]
    rule_patches: list[Change]
    release: list[Change]
    family: str = "IPv4"
    reservation: str | None = None

    def for_family(self, family: str, reservation: str | None) -> FrontendPlan:
        """Mark every change with its family, so that apply keeps the two families' IPs apart."""

        def mark(changes: list[Change]) -> list[Change]:
            return [dataclasses.replace(c, data={**c.data, "family": family}) for c in changes]

        return FrontendPlan(
            self.ip,
            mark(self.reserve),
            mark(self.early_rule_deletes),
            mark(self.fw_changes),
            mark(self.rules),
            mark(self.rule_patches),
            mark(self.release),
            family,
            reservation,
        )


def plan_frontend(
    planner: Planner,
    intent: Intent,
    front: Frontend,
    seen: Snapshot,
    replaced_bs: set[str],
    requested: str | None,
    take: Takeover | None,
    hc_fw: FirewallSpec,
) -> FrontendPlan:
    """One IP family: its IP and reservation, its forwarding rules, and the traffic firewall to it.

    ``requested``: the family's requested IP (``loadBalancerIP`` of its version, or the named
    reserved address of the family). ``take``: cloud-provider-gcp's load balancer being taken over
    (IPv4 only); its IP is kept and its firewalls (and the health-check one, ``hc_fw``) are adopted.
    """
    ref = intent.ref
    intent = dataclasses.replace(intent, requested_ip=requested)
    wanted_rules = {r.name for r in front.forwarding_rules.values()}
    held = {
        str(f.get("IPAddress"))
        for name, f in seen.forwarding_rules.items()
        if name in wanted_rules and N.owned_by_service(f.get("description"), planner.cluster, ref.uid)
    }
    current_ip = next(iter(held)) if len(held) == 1 else None
    addresses, holding = seen.addresses, seen.rules_holding_ip
    adopted = take.firewalls if take else {}
    if take is not None:
        # upstream's rule (and reservation) hold the IP until this plan replaces them
        current_ip = current_ip or take.ip
        holding = tuple(r for r in holding if r["name"] != take.rule)
        gone = {c.name for c in take.before_reserve}
        addresses = tuple(a for a in addresses if a["name"] not in gone)
    address = plan_address(planner, intent, front, addresses, current_ip, holding)
    ip, reservation = address.ip, address.reservation
    rules, early, patches = forwarding_rule_changes(planner, front, seen, ref, replaced_bs, ip, reservation)
    reserve, release = address.changes(bool(rules))
    if take is not None:
        reserve = take.before_reserve + [planner._adopt_ip(c, take) for c in reserve]
        early = take.early + early

    # -- the traffic firewall: its destination is this family's IP ---------------------------------
    dest = f"{ip}/{front.destination_length}" if ip else _UNKNOWN_IP
    firewall = dataclasses.replace(front.firewall, destination_ranges=(dest,))
    fw_changes: list[Change] = []
    if firewall.name not in adopted:
        fw_changes = planner._create_or_update(
            firewall,
            seen.firewalls.get(firewall.name),
            ref,
            extra={"destination_from_ip": ip is None, "destination_length": front.destination_length},
        )
    if take is not None:
        # upstream's firewalls go last: they admit the traffic and the probes meanwhile
        patches += take.after_rules + [
            take.adopt(spec, destination_from_ip=ip is None)
            for spec in (hc_fw, firewall)
            if spec.name in adopted
        ]
    out = FrontendPlan(ip, reserve, early, fw_changes, rules, patches, release)
    return out.for_family(front.family, reservation)


def forwarding_rule_changes(
    planner: Planner,
    front: Frontend,
    seen: Snapshot,
    ref: ServiceRef,
    replaced_bs: set[str],
    ip: str | None,
    reservation: str | None,
) -> tuple[list[Change], list[Change], list[Change]]:
    """(Re)written when missing, changed, or holding another IP: (writes, deletes that must
    come first, in-place patches)."""
    rules: list[Change] = []
    early: list[Change] = []
    patches: list[Change] = []
    for rule in front.forwarding_rules.values():
        name, body = rule.name, rule.body
        view = {**rule.view, "IPAddress": ip or _UNKNOWN_IP}
        data = {
            "collection": "forwardingRules",
            "body": body,
            "address": reservation,
            "ip": ip,
            "ip_suffix": front.ip_suffix,
        }
        found = seen.forwarding_rules.get(name)
        if found is None:
            rules.append(Change(Action.CREATE, "forwarding-rule", name, after=view, data=data))
            continue
        planner._check_owner(rule, found, ref)
        before = {**view_of("forwardingRules", found), "IPAddress": found.get("IPAddress")}
        if rule.backend_service in replaced_bs or found.get("IPAddress") != ip:
            early.append(
                planner.delete_change(
                    found,
                    "forwarding-rule",
                    "forwardingRules",
                    reason="recreated below: its backend service or address is replaced",
                )
            )
            rules.append(Change(Action.CREATE, "forwarding-rule", name, after=view, data=data))
        elif {k for k in view if view[k] != before.get(k)} == {"allowGlobalAccess"}:
            # the one field forwardingRules.patch changes in place
            patches.append(
                Change(
                    Action.UPDATE,
                    "forwarding-rule",
                    name,
                    before=before,
                    after=view,
                    cloud_id=found.get("selfLink"),
                    data={
                        "collection": "forwardingRules",
                        "verb": "patch",
                        "body": {
                            "name": name,
                            "allowGlobalAccess": view["allowGlobalAccess"],
                            "fingerprint": found.get("fingerprint"),
                        },
                    },
                )
            )
        elif before == view and planner.lacks_identity(found):
            patches.append(planner.label_change(found, "forwarding-rule", "forwardingRules", before))
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
    return rules, early, patches
