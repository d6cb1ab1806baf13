"""The cluster's load balancers as a fleet of slots, and the Service's place in it.

Mixed into :class:`~lbprov_azure.diff.Planner`: reads every slot's load balancers with one listing,
places the Service (:mod:`lbprov_azure.placement`), and plans the pool changes that keep each node in
exactly one slot's pools.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lbprov import naming
from lbprov.model import Action, Change, Intent, InvalidService, OwnershipConflict
from lbprov_azure import names, placement
from lbprov_azure.desired import VIEWS, Ids, build_desired
from lbprov_azure.observe import Observer, find, items
from lbprov_azure.options import LB_CONFIGURATIONS, AzureOptions
from lbprov_azure.settings import AzureSettings

JSON = dict[str, Any]


@dataclass
class Fleet:
    """The cluster's load balancers as observed: (slot, scheme) -> body."""

    lbs: dict[tuple[int, str], JSON] = field(default_factory=dict)

    def pools(self) -> dict[int, set[str]]:
        """Node IPs in each slot's pools (either LB of the slot)."""
        out: dict[int, set[str]] = {}
        for (k, _), body in self.lbs.items():
            for pool in items(body, "backendAddressPools"):
                out.setdefault(k, set()).update(VIEWS["backend-pool"](pool)["addresses"])
        return out


def _others(lb: JSON | None, fld: str, base: str) -> int:
    """How many of ``lb``'s ``fld`` are not the Service's own (by name)."""
    return sum(1 for i in items(lb, fld) if not names.owns_part(base, str(i.get("name", ""))))


class FleetChanges:
    """The fleet part of the planner (see the module doc)."""

    settings: AzureSettings
    seen: Observer
    ids: Ids

    def _fleet(self) -> Fleet:
        """The cluster's load balancers by (slot, scheme), from one listing of the resource group."""
        cluster = self.settings.cluster_name
        listing = self.seen.lbs_by_name()
        fleet = Fleet()
        for k in range(self.settings.max_load_balancers):
            for sc in ("external", "internal"):
                body = listing.get(names.lb_name(cluster, sc, k).lower())
                if body is None:
                    continue
                other_id = names.identity_of(body.get("tags"))
                if self.settings.cluster_id and other_id and other_id != self.settings.cluster_id:
                    raise OwnershipConflict(
                        f"load balancer {body.get('name')!r} is tagged for cluster {cluster!r} but carries another "
                        f"cluster's identity ({naming.CLUSTER_ID_TAG}={other_id}, this cluster is "
                        f"{self.settings.cluster_id}): two clusters share the name; lbprov never touches it"
                    )
                if not names.is_cluster_owned(body.get("tags"), cluster):
                    raise OwnershipConflict(
                        f"load balancer {body.get('name')!r} exists in resource group "
                        f"{self.settings.resource_group!r} but is not owned by cluster {cluster!r}; lbprov "
                        "never adopts it (rename the cluster or remove that load balancer)"
                    )
                fleet.lbs[(k, sc)] = body
        return fleet

    def _place(
        self,
        intent: Intent,
        opts: AzureOptions,
        fleet: Fleet,
        scheme: str,
        base: str,
        token: str,
        nodes: int,
    ) -> int:
        """The slot of the Service: where it is, else chosen by :func:`placement.choose_slot`."""
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
            holds = token in names.services_of(body.get("tags")) or find(
                items(body, "frontendIPConfigurations"), base
            )
            if sc == scheme and (allowed is None or k in allowed) and holds:
                return k
        need = len(build_desired(intent, opts, self.settings, "-").rules)
        uses = []
        for k in sorted({k for k, _ in fleet.lbs}):
            own = fleet.lbs.get((k, scheme))
            uses.append(
                placement.SlotUse(
                    index=k,
                    rules=sum(
                        _others(b, "loadBalancingRules", base) for (j, _), b in fleet.lbs.items() if j == k
                    ),
                    lb_rules=_others(own, "loadBalancingRules", base),
                    frontends=_others(own, "frontendIPConfigurations", base),
                )
            )
        return placement.choose_slot(
            uses,
            need,
            max_slots=self.settings.max_load_balancers,
            nodes=nodes,
            allowed=allowed,
            describe=f"Service {intent.ref.key}",
        )

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
