"""The parts of a Service that come once per IP family: its frontends, and the IPv6 backend pool.

A Service has a frontend per family of ``spec.ipFamilies`` (``<base>``, and ``<base>-IPv6`` for the
IPv6 one of a dual-stack Service, as upstream). Node membership of the load balancers is decided on
the IPv4 pool ``<cluster>`` (:mod:`lbprov_azure.placement`); the IPv6 pool ``<cluster>-IPv6`` of a
load balancer holds the IPv6 addresses of the same nodes, so that both families of a node are always
on the same load balancer.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from lbprov.model import Action, Change, Intent
from lbprov_azure import names, parts
from lbprov_azure.desired import VIEWS, Ids, node_address
from lbprov_azure.observe import find, items
from lbprov_azure.settings import AzureSettings

JSON = dict[str, Any]


def frontend_names(base: str) -> tuple[str, str]:
    """The names a Service's frontends can have: ``<base>`` and ``<base>-IPv6``."""
    return base, base + names.IPV6_SUFFIX


def owned_frontends(lb: JSON | None, base: str) -> list[JSON]:
    """The Service's frontends on ``lb`` (of either family), by name.

    Through the parts index (:mod:`lbprov_azure.parts`): every plan asks this of each load balancer
    of the cluster, and a scan of every frontend grew with the cluster's Services."""
    wanted = {n.lower() for n in frontend_names(base)}
    return [
        fe
        for fe in parts.own(lb, "frontendIPConfigurations", base)
        if str(fe.get("name", "")).lower() in wanted
    ]


def v6_pool_change(
    settings: AzureSettings,
    ids: Ids,
    lb: JSON,
    lbn: str,
    ipv4s: Collection[str],
    intent: Intent,
    token: str,
    base: str,
) -> Change | None:
    """The IPv6 pool of another load balancer, when the nodes of its slot (``ipv4s``, their IPv4
    addresses) changed: it follows the IPv4 pool. Only a load balancer that has an IPv6 pool (an IPv6
    Service is on it) gets one written."""
    name = names.pool_name(settings.cluster_name, "IPv6")
    existing = find(items(lb, "backendAddressPools"), name)
    if existing is None:
        return None
    vnet_id = ids.vnet(settings.vnet_rg, settings.vnet_name)
    want = {
        "name": name,
        "properties": {
            "loadBalancerBackendAddresses": [
                {"name": t.node_name, "properties": {"ipAddress": ip, "virtualNetwork": {"id": vnet_id}}}
                for t in sorted(intent.targets, key=lambda t: t.node_name)
                if t.internal_ip in ipv4s and (ip := node_address(t, "IPv6"))
            ]
        },
    }
    before, after = VIEWS["backend-pool"](existing), VIEWS["backend-pool"](want)
    if before == after:
        return None
    return Change(
        Action.UPDATE,
        "backend-pool",
        f"{lbn}/{name}",
        before=before,
        after=after,
        reason="nodes spread over the cluster's load balancers (the IPv6 pool follows the IPv4 one)",
        data={"lb": lbn, "service": token, "base": base, "item": want},
    )
