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

from lbprov.model import Action, Change, Intent
from lbprov_gcp import names as N
from lbprov_gcp.desired import Frontend
from lbprov_gcp.diff.addresses import _UNKNOWN_IP, plan_address
from lbprov_gcp.observe import view_of

if TYPE_CHECKING:
    from lbprov_gcp.diff.planner import Planner

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
    frs: dict[str, Json],
    addrs: list[Json],
    fws: dict[str, Json],
    replaced_bs: set[str],
    requested: str | None,
) -> FrontendPlan:
    """One IP family: its IP and reservation, its forwarding rules, and the traffic firewall to it."""
    ref, s = intent.ref, planner.settings
    intent = dataclasses.replace(intent, requested_ip=requested)
    rules: list[Change] = []
    early_rule_deletes: list[Change] = []
    # -- the IP and its reservation ------------------------------------------------------------
    wanted_rules = {r.name for r in front.forwarding_rules.values()}
    held = {
        str(f.get("IPAddress"))
        for name, f in frs.items()
        if name in wanted_rules and N.owned_by_service(f.get("description"), planner.cluster, ref.uid)
    }
    current_ip = next(iter(held)) if len(held) == 1 else None
    address = plan_address(planner, intent, front, addrs, current_ip)
    ip = address.ip

    # -- forwarding rules: (re)written when missing, changed, or holding another IP ------------
    rule_patches: list[Change] = []
    for rule in front.forwarding_rules.values():
        name, body = rule.name, rule.body
        view = {**rule.view, "IPAddress": ip or _UNKNOWN_IP}
        data = {
            "collection": "forwardingRules",
            "body": body,
            "address": address.reservation,
            "ip": ip,
            "ip_suffix": front.ip_suffix,
        }
        found = frs.get(name)
        if found is None:
            rules.append(Change(Action.CREATE, "forwarding-rule", name, after=view, data=data))
            continue
        planner._check_owner(rule, found, ref)
        before = {**view_of("forwardingRules", found), "IPAddress": found.get("IPAddress")}
        if rule.backend_service in replaced_bs or found.get("IPAddress") != ip:
            early_rule_deletes.append(
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
            rule_patches.append(
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
        elif before == view and planner._lacks_identity(found):
            rule_patches.append(
                Change(
                    Action.UPDATE,
                    "forwarding-rule",
                    name,
                    before=before,
                    after=view,
                    cloud_id=found.get("selfLink"),
                    reason="add the cluster identity",
                    data={
                        "collection": "forwardingRules",
                        "verb": "setLabels",
                        "body": {
                            "labels": {**(found.get("labels") or {}), N.ID_LABEL: s.cluster_id},
                            "labelFingerprint": found.get("labelFingerprint"),
                        },
                    },
                )
            )
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
    reserve, release = address.changes(bool(rules))

    # -- the traffic firewall: its destination is the load balancer's IP -----------------------
    dest = f"{ip}/{front.destination_length}" if ip else _UNKNOWN_IP
    firewall = dataclasses.replace(front.firewall, destination_ranges=(dest,))
    fw_changes = planner._create_or_update(
        firewall,
        fws.get(firewall.name),
        ref,
        extra={"destination_from_ip": ip is None, "destination_length": front.destination_length},
    )

    out = FrontendPlan(ip, reserve, early_rule_deletes, fw_changes, rules, rule_patches, release)
    return out.for_family(front.family, address.reservation)
