"""What cloud-provider-azure would have made for a Service: the predecessor that lbprov adopts.

:func:`reconcile_upstream` writes, through the emulator's validated write path (as a client), the
resources kubernetes-sigs/cloud-provider-azure's service controller makes for one Service of a
cluster (names and tags from :mod:`lbprov_azure.upstream`; bodies from ``pkg/provider/``
``azure_loadbalancer.go`` ``reconcileLoadBalancer`` / ``getExpectedLBRules``,
``azure_loadbalancer_backendpool.go`` (``nodeIP`` pools: one address per node, named after the
node, the VNet on the pool), ``azure_publicip.go`` ``ensurePublicIPExists``):

* the shared load balancer ``<cluster>`` (``<cluster>-internal``), Standard SKU, no tags of its own,
  with the backend pool ``<cluster>`` (node IPs; pool type ``nodeIP``);
* for an external Service a Standard static public IP ``<cluster>-<base>`` tagged
  ``k8s-azure-service: <ns>/<name>`` and ``k8s-azure-cluster-name: <cluster>``, and the frontend
  ``<base>`` on it; for an internal one the frontend ``<base>`` on the node subnet (dynamic address);
* per port a rule ``<base>-<PROTO>-<port>``: floating IP on (backend port = service port), idle
  timeout 4, TCP reset on; its probe, of the same name, is Tcp on the NodePort every 5 s, threshold 2,
  for a TCP port and none for a UDP one; with ``externalTrafficPolicy: Local`` every rule uses ONE
  probe ``<base>-TCP-<healthCheckNodePort>``, HTTP ``/healthz`` (REFERENCE.md section 4, "Probes");
* NSG allow rules for the frontend address: ``legacy`` (before v1.28) one rule per port and source
  ``<base>-<PROTO>-<port>-<source>``; ``shared`` (since v1.28) one ``k8s-azure-lb_allow_IPv4_<hash>``
  rule per protocol, sources and ports, whose destinations gather every Service's frontend address
  (the hash here is an MD5 of those three, standing in for upstream's own input);
* ``aks_outbound``: AKS's outbound set-up on the public load balancer (frontend on an outbound public
  IP, pool ``aksOutboundBackendPool`` of every node, outbound rule ``aksOutboundRule``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from lbprov import naming
from lbprov_azure import names
from lbprov_azure.sandbox.base import JSON
from lbprov_azure.sandbox.state import ArmState


@dataclass(frozen=True)
class UpstreamPort:
    protocol: str  # "TCP" / "UDP"
    port: int
    node_port: int


def _sub(lb: JSON, fld: str, item: JSON) -> None:
    parts = lb["properties"].setdefault(fld, [])
    parts[:] = [p for p in parts if p["name"].lower() != item["name"].lower()] + [item]


def reconcile_upstream(
    state: ArmState,
    *,
    rg: str,
    vnet: str,
    subnet: str,
    nsg: str | None,
    cluster: str,
    namespace: str,
    name: str,
    uid: str,
    ports: Sequence[UpstreamPort],
    nodes: Sequence[tuple[str, str]],
    internal: bool = False,
    nsg_style: Literal["legacy", "shared"] = "legacy",
    source: str = "Internet",
    aks_outbound: bool = False,
    pip_tags: dict[str, str] | None = None,
    health_check_node_port: int | None = None,
) -> str:
    """Make upstream's resources for one Service (``nodes``: (name, IP)); returns its frontend address."""
    base = naming.lb_name(uid)
    lb_name = cluster + ("-internal" if internal else "")
    lb_id = state.resource_id(rg, "loadBalancers", lb_name)
    vnet_id = state.resource_id(rg, "virtualNetworks", vnet)
    location = state.location
    pip_id = None
    if not internal:
        pip = state.put(
            "publicIPAddresses",
            rg,
            f"{cluster}-{base}",
            {
                "location": location,
                "sku": {"name": "Standard", "tier": "Regional"},
                "tags": pip_tags
                if pip_tags is not None
                else {"k8s-azure-service": f"{namespace}/{name}", "k8s-azure-cluster-name": cluster},
                "properties": {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"},
            },
        )
        pip_id = pip["id"]
    current = state.get("loadBalancers", rg, lb_name)
    lb: JSON = (
        {k: current[k] for k in ("location", "sku", "tags") if k in current}
        | {"properties": {k: current["properties"].get(k, []) for k in _FIELDS}}
        if current
        else {"location": location, "sku": {"name": "Standard", "tier": "Regional"}, "properties": {}}
    )
    pool = {
        "name": cluster,
        "properties": {
            "virtualNetwork": {"id": vnet_id},
            "loadBalancerBackendAddresses": [{"name": n, "properties": {"ipAddress": ip}} for n, ip in nodes],
        },
    }
    _sub(lb, "backendAddressPools", pool)
    if internal:
        fe_props: JSON = {
            "subnet": {"id": f"{vnet_id}/subnets/{subnet}"},
            "privateIPAllocationMethod": "Dynamic",
        }
    else:
        fe_props = {"publicIPAddress": {"id": pip_id}}
    _sub(lb, "frontendIPConfigurations", {"name": base, "properties": fe_props})
    if aks_outbound and not internal:
        _aks_outbound(state, lb, rg, cluster, lb_id, nodes, vnet_id)
    local_probe = f"{base}-TCP-{health_check_node_port}" if health_check_node_port else None
    if local_probe:
        _sub(
            lb,
            "probes",
            {
                "name": local_probe,
                "properties": {
                    "protocol": "Http",
                    "port": health_check_node_port,
                    "requestPath": "/healthz",
                    "intervalInSeconds": 5,
                    "probeThreshold": 2,
                },
            },
        )
    for p in ports:
        rule = f"{base}-{p.protocol}-{p.port}"
        probe = local_probe or (rule if p.protocol == "TCP" else None)
        if probe == rule:
            _sub(
                lb,
                "probes",
                {
                    "name": rule,
                    "properties": {
                        "protocol": "Tcp",
                        "port": p.node_port,
                        "intervalInSeconds": 5,
                        "probeThreshold": 2,
                    },
                },
            )
        rule_props: JSON = {
            "frontendIPConfiguration": {"id": f"{lb_id}/frontendIPConfigurations/{base}"},
            "backendAddressPool": {"id": f"{lb_id}/backendAddressPools/{cluster}"},
            "backendAddressPools": [{"id": f"{lb_id}/backendAddressPools/{cluster}"}],
            "protocol": "Tcp" if p.protocol == "TCP" else "Udp",
            "frontendPort": p.port,
            "backendPort": p.port,
            "enableFloatingIP": True,
            "idleTimeoutInMinutes": 4,
            "enableTcpReset": p.protocol == "TCP",
            "loadDistribution": "Default",
            "disableOutboundSnat": aks_outbound,
        }
        if probe:
            rule_props["probe"] = {"id": f"{lb_id}/probes/{probe}"}
        _sub(lb, "loadBalancingRules", {"name": rule, "properties": rule_props})
    written = state.put(
        "loadBalancers", rg, lb_name, lb, headers={"If-Match": current["etag"]} if current else None
    )
    fe = next(f for f in written["properties"]["frontendIPConfigurations"] if f["name"] == base)
    if internal:
        address = str(fe["properties"]["privateIPAddress"])
    else:
        got = state.get("publicIPAddresses", rg, f"{cluster}-{base}")
        assert got is not None
        address = str(got["properties"]["ipAddress"])
    if nsg:
        _nsg_rules(state, rg, nsg, base, ports, address, source, nsg_style)
    return address


_FIELDS = (
    "frontendIPConfigurations",
    "backendAddressPools",
    "probes",
    "loadBalancingRules",
    "outboundRules",
)


def _aks_outbound(
    state: ArmState,
    lb: JSON,
    rg: str,
    cluster: str,
    lb_id: str,
    nodes: Sequence[tuple[str, str]],
    vnet_id: str,
) -> None:
    """AKS's outbound set-up (managed outbound IP, ``aksOutboundBackendPool``, ``aksOutboundRule``)."""
    out_pip = state.get("publicIPAddresses", rg, f"{cluster}-outbound")
    if out_pip is None:
        out_pip = state.put(
            "publicIPAddresses",
            rg,
            f"{cluster}-outbound",
            {
                "location": state.location,
                "sku": {"name": "Standard", "tier": "Regional"},
                "tags": {"aks-managed-type": "aks-slb-managed-outbound-ip"},
                "properties": {"publicIPAllocationMethod": "Static"},
            },
        )
    _sub(
        lb,
        "frontendIPConfigurations",
        {"name": "outbound", "properties": {"publicIPAddress": {"id": out_pip["id"]}}},
    )
    _sub(
        lb,
        "backendAddressPools",
        {
            "name": "aksOutboundBackendPool",
            "properties": {
                "virtualNetwork": {"id": vnet_id},
                "loadBalancerBackendAddresses": [
                    {"name": n, "properties": {"ipAddress": ip}} for n, ip in nodes
                ],
            },
        },
    )
    _sub(
        lb,
        "outboundRules",
        {
            "name": "aksOutboundRule",
            "properties": {
                "frontendIPConfigurations": [{"id": f"{lb_id}/frontendIPConfigurations/outbound"}],
                "backendAddressPool": {"id": f"{lb_id}/backendAddressPools/aksOutboundBackendPool"},
                "protocol": "All",
                "allocatedOutboundPorts": 0,
                "idleTimeoutInMinutes": 30,
                "enableTcpReset": True,
            },
        },
    )


def _nsg_rules(
    state: ArmState,
    rg: str,
    nsg: str,
    base: str,
    ports: Sequence[UpstreamPort],
    address: str,
    source: str,
    style: str,
) -> None:
    group = state.get("networkSecurityGroups", rg, nsg)
    assert group is not None
    existing = {r["name"]: r for r in group["properties"].get("securityRules", [])}
    if style == "legacy":
        for p in ports:
            rule = f"{base}-{p.protocol}-{p.port}-{source.replace('/', '_')}"
            state.put_security_rule(
                rg,
                nsg,
                rule,
                {
                    "protocol": "Tcp" if p.protocol == "TCP" else "Udp",
                    "sourcePortRange": "*",
                    "destinationPortRange": str(p.port),
                    "sourceAddressPrefix": source,
                    "destinationAddressPrefix": address,
                    "access": "Allow",
                    "priority": state.free_priority(rg, nsg),
                    "direction": "Inbound",
                },
            )
        return
    for proto in sorted({p.protocol for p in ports}):
        dports = sorted(str(p.port) for p in ports if p.protocol == proto)
        digest = hashlib.md5(f"{proto}|{source}|{','.join(dports)}".encode()).hexdigest()
        rule = f"k8s-azure-lb_allow_IPv4_{digest}"
        old = existing.get(rule)
        dests = sorted(
            {*((old or {}).get("properties", {}).get("destinationAddressPrefixes") or []), address}
        )
        state.put_security_rule(
            rg,
            nsg,
            rule,
            {
                "protocol": "Tcp" if proto == "TCP" else "Udp",
                "sourcePortRange": "*",
                "destinationPortRanges": dports,
                "sourceAddressPrefixes": [source],
                "destinationAddressPrefixes": dests,
                "access": "Allow",
                "priority": old["properties"]["priority"] if old else state.free_priority(rg, nsg),
                "direction": "Inbound",
            },
        )


def frontend_names(lb: JSON | None, base: str) -> set[str]:
    """The names of ``lb``'s parts that belong to the Service ``base`` (for tests' leftover checks)."""
    return {
        str(i["name"])
        for fld in _FIELDS
        for i in ((lb or {}).get("properties") or {}).get(fld, [])
        if names.owns_part(base, str(i["name"]))
    }


__all__ = ["UpstreamPort", "frontend_names", "reconcile_upstream"]
