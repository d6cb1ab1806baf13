"""``lbprov_azure.sandbox``: a local ARM emulator for Microsoft.Network, seeded like a cluster.

:func:`azure_sandbox` starts the HTTPS emulator (see :mod:`.state` for what it emulates), creates a
resource group with a VNet (node subnet and a second subnet for internal frontends) and the cluster
NSG, gives every node an address on the node subnet, and yields a :class:`~lbprov.provider.SandboxCloud`
whose ``settings`` point an :class:`~lbprov_azure.AzureProvider` at it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from lbprov.model import SandboxNode
from lbprov.provider import SandboxCloud
from lbprov_azure.sandbox.base import ArmError, Fault, LoggedRequest

# ArmError, ArmState, Fault, LoggedRequest
from lbprov_azure.sandbox.server import ArmEmulator
from lbprov_azure.sandbox.state import ArmState

__all__ = [
    "SANDBOX",
    "ArmEmulator",
    "ArmError",
    "ArmState",
    "Fault",
    "LoggedRequest",
    "azure_sandbox",
]

SANDBOX = {
    "subscription_id": "5a1d7c3e-0000-4000-8000-00000000abcd",
    "resource_group": "lbprov-sandbox",
    "location": "westeurope",
    "vnet_name": "lbprov-vnet",
    "vnet_prefix": "10.240.0.0/16",
    "subnet_name": "nodes",
    "subnet_prefix": "10.240.0.0/22",
    # the VNet and the nodes' subnet are dual-stack (an IPv6 ULA /48 and a /64 of it, as Azure's
    # dual-stack guides use); the services subnet is IPv4 only
    "vnet_prefix6": "fd00:db8:f0::/48",
    "subnet_prefix6": "fd00:db8:f0::/64",
    "services_subnet_name": "services",
    "services_subnet_prefix": "10.240.8.0/24",
    "security_group_name": "lbprov-nsg",
    # a second resource group, for public IPs placed by the load-balancer-resource-group annotation
    "ip_resource_group": "lbprov-sandbox-ips",
}


def seed(state: ArmState) -> None:
    s = SANDBOX
    state.add_resource_group(s["resource_group"])
    state.add_resource_group(s["ip_resource_group"])
    state.put(
        "virtualNetworks",
        s["resource_group"],
        s["vnet_name"],
        {
            "location": s["location"],
            "properties": {
                "addressSpace": {"addressPrefixes": [s["vnet_prefix"], s["vnet_prefix6"]]},
                "subnets": [
                    {
                        "name": s["subnet_name"],
                        "properties": {"addressPrefixes": [s["subnet_prefix"], s["subnet_prefix6"]]},
                    },
                    {
                        "name": s["services_subnet_name"],
                        "properties": {"addressPrefix": s["services_subnet_prefix"]},
                    },
                ],
            },
        },
    )
    state.put(
        "networkSecurityGroups",
        s["resource_group"],
        s["security_group_name"],
        {"location": s["location"], "properties": {"securityRules": []}},
    )


@contextmanager
def azure_sandbox(nodes: Sequence[str], *, async_operations: bool = True) -> Iterator[SandboxCloud]:
    s = SANDBOX
    emulator = ArmEmulator.start(s["subscription_id"], s["location"], async_operations=async_operations)
    try:
        state = emulator.state
        seed(state)
        subnet_id = (
            state.resource_id(s["resource_group"], "virtualNetworks", s["vnet_name"])
            + f"/subnets/{s['subnet_name']}"
        )
        zones = ("1", "2", "3")
        made: list[SandboxNode] = []

        def add_node(name: str) -> SandboxNode:
            ip = state.allocate_private_ip(subnet_id)
            zone = f"{s['location']}-{zones[len(made) % 3]}"
            node = SandboxNode(
                name=name,
                provider_id=(
                    f"azure:///subscriptions/{s['subscription_id']}/resourceGroups/{s['resource_group']}"
                    f"/providers/Microsoft.Compute/virtualMachines/{name}"
                ),
                internal_ip=ip,
                zone=zone,
                internal_ipv6=state.allocate_private_ip(subnet_id, 6),
            )
            made.append(node)
            return node

        for name in nodes:
            add_node(name)
        settings = {
            "subscription_id": s["subscription_id"],
            "resource_group": s["resource_group"],
            "location": s["location"],
            "vnet_name": s["vnet_name"],
            "subnet_name": s["subnet_name"],
            "security_group_name": s["security_group_name"],
            "base_url": emulator.base_url,
            "ca_bundle": emulator.ca_bundle,
            "auth": "static-token",
            "static_token": "sandbox-token",
            "reads_per_second": None,
            "writes_per_second": None,
        }
        yield SandboxCloud(
            provider="azure",
            settings=settings,
            nodes=list(made),
            endpoint=emulator.base_url,
            add_node=add_node,
            mutating_requests=state.mutating_requests,
            extra={"emulator": emulator, "state": state},
        )
    finally:
        emulator.stop()
