"""The Service's IP and its reservation (upstream's order: reserve, firewall, rule, release).

As upstream, the IP is reserved while forwarding rules are (re)written and released once they hold
it, unless the user asked for a reserved address (a user's reserved ``loadBalancerIP``, or
``networking.gke.io/load-balancer-ip-addresses``), the setting ``static_addresses`` is on, or the
Service has TCP and UDP rules, which share one IP only through a reserved address.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lbprov import naming
from lbprov.model import Action, Change, Intent, InvalidService
from lbprov_gcp import names as N
from lbprov_gcp.desired import Frontend
from lbprov_gcp.observe import view_of

if TYPE_CHECKING:
    from lbprov_gcp.diff.planner import Planner

Json = dict[str, Any]

#: Shown in a plan for the IP of an address that apply has yet to reserve.
UNKNOWN_IP = "(known after apply)"
_UNKNOWN_IP = UNKNOWN_IP


@dataclass
class AddressPlan:
    """The IP a Service's forwarding rules hold, and what happens to its own reservation."""

    ip: str | None  # None: known after apply
    reservation: str | None  # our address the rules take their IP from; None for a user's address
    keep: bool  # keep the reservation after the rules hold the IP
    reserve: Change | None = None  # create (or replace) the reservation
    optional: bool = False  # reserve only if a forwarding rule is (re)written
    found: Json | None = None  # our existing reservation, unchanged
    after: Mapping[str, Any] | None = None
    release_now: list[Change] = field(default_factory=list)
    label: Change | None = None  # a kept reservation from before identities gets the identity label

    def changes(self, rules_written: bool) -> tuple[list[Change], list[Change]]:
        """(changes before the rules, changes after them).

        A reservation made only for this apply is *transient*: apply releases it once the rules hold
        the IP, so a new Service's plan lists only creates. A reservation that already exists (an
        interrupted apply, or ``static_addresses`` switched off) is released by a delete change.
        """
        reserve: list[Change] = [self.label] if self.label is not None else []
        if self.reserve is not None and (rules_written or not self.optional):
            change = self.reserve
            if not self.keep:
                change = dataclasses.replace(
                    change,
                    reason=(f"{change.reason}; " if change.reason else "")
                    + "released once the forwarding rules hold the IP (setting static_addresses keeps it)",
                    data={**change.data, "transient": True},
                )
            reserve.append(change)
        release = list(self.release_now)
        if not self.keep and self.found is not None:
            release.append(
                Change(
                    Action.DELETE,
                    "address",
                    str(self.reservation),
                    before=view_of("addresses", self.found),
                    cloud_id=self.found.get("selfLink"),
                    reason="release the reservation: the forwarding rules hold the IP "
                    "(setting static_addresses keeps it)",
                    data={
                        "collection": "addresses",
                        "name": self.reservation,
                        "zone": None,
                        "shared": False,
                    },
                )
            )
        return reserve, release


def refuse_held_ip(planner: Planner, intent: Intent, holding: Sequence[Json]) -> None:
    """A requested IP that another load balancer's forwarding rule holds is refused, naming it.

    ``holding``: the forwarding rules that hold the requested IP (observed)."""
    ip, ours = intent.requested_ip, set(N.rule_names(intent.lb_name))
    for rule in (r for r in holding if r.get("IPAddress") == ip):  # the rules holding this family's IP
        if rule["name"] in ours and N.owned_by_service(
            rule.get("description"), planner.cluster, intent.ref.uid
        ):
            continue
        holder = N.ownership(rule.get("description")).get(naming.SERVICE_NAME_TAG)
        who = f"Service {holder}" if holder else f"forwarding rule {rule['name']!r}"
        raise InvalidService(
            "spec.loadBalancerIP", f"{ip} is already the address of {who}; choose another IP"
        )


def plan_address(
    planner: Planner,
    intent: Intent,
    want: Frontend,
    addrs: Sequence[Json],
    current_ip: str | None,
    holding: Sequence[Json],
) -> AddressPlan:
    """Which IP the rules hold, and whether the Service's own reservation is made, kept or released.

    As upstream: the IP is reserved while forwarding rules are (re)written and released once they
    hold it, unless the user asked for a reserved address (a user's reserved ``loadBalancerIP``),
    the setting ``static_addresses`` is on, or the Service has TCP and UDP rules, which share one
    IP only through a reserved address.
    """
    ref, lb, s = intent.ref, want.address.name, planner.settings  # lb: this family's address name
    ours = next((a for a in addrs if a["name"] == lb), None)
    if ours is not None and not N.owned_by_service(ours.get("description"), planner.cluster, ref.uid):
        raise planner.conflict("address", lb, ours, f"Service {ref.key} of cluster {planner.cluster}")
    user_owned = None
    if intent.requested_ip:
        refuse_held_ip(planner, intent, holding)
        user_owned = next(
            (a for a in addrs if a.get("address") == intent.requested_ip and a is not ours), None
        )
    if user_owned is not None:
        holder = N.ownership(user_owned.get("description"))
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
        drop = []
        if ours is not None:
            drop.append(
                planner.delete_change(
                    ours, "address", "addresses", reason="loadBalancerIP is a user-reserved address"
                )
            )
        return AddressPlan(intent.requested_ip, None, keep=True, release_now=drop)

    keep = s.static_addresses or len(want.forwarding_rules) > 1
    a = want.address
    unknown = {**a.view, "address": a.view["address"] or _UNKNOWN_IP}
    if ours is not None:
        before = view_of("addresses", ours)
        after = {**a.view, "address": intent.requested_ip or ours.get("address")}
        if before == after:
            # a reservation kept for good (static_addresses, TCP+UDP) from before identities: label it
            stamp = keep and planner.lacks_identity(ours)
            label = planner.label_change(ours, "address", "addresses", before) if stamp else None
            return AddressPlan(ours.get("address"), lb, keep=keep, found=ours, label=label)
        replace = Change(
            Action.REPLACE,
            "address",
            lb,
            before=before,
            after=unknown,
            cloud_id=ours.get("selfLink"),
            reason="an address cannot be changed in place",
            data={"collection": "addresses", "body": a.body},
        )
        return AddressPlan(intent.requested_ip, lb, keep=keep, reserve=replace, after=unknown)
    target = intent.requested_ip or current_ip
    body = {**a.body, "address": target} if target else a.body
    create = Change(
        Action.CREATE,
        "address",
        lb,
        after={**unknown, "address": target or _UNKNOWN_IP},
        reason="promote the forwarding rule's IP to reserved, so that it is kept"
        if target and target == current_ip
        else None,
        data={"collection": "addresses", "body": body},
    )
    return AddressPlan(target, lb, keep=keep, reserve=create, after=create.after, optional=not keep)
