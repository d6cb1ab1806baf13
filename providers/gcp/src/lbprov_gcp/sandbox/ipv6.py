"""IPv6 in the emulator: IPv6 addresses and forwarding rules come from a dual-stack subnetwork.

compute.v1.json, ForwardingRule.subnetwork: "This field identifies the subnetwork that the load
balanced IP should belong to for this forwarding rule, used with internal load balancers and
external passthrough Network Load Balancers with IPv6. ... a subnetwork must be specified if the
network is in custom subnet mode or when creating external forwarding rule with IPv6."

Subnetwork.stackType: "If set to IPV4_ONLY, new VMs in the subnet are assigned IPv4 addresses
only. If set to IPV4_IPV6, new VMs in the subnet can be assigned both IPv4 and IPv6 addresses."
Subnetwork.ipv6AccessType: "EXTERNAL: VMs on this subnet will be assigned IPv6 addresses that are
accessible via the Internet, as well as the VPC network. INTERNAL: ... only accessible over the VPC
network." So an external IPv6 forwarding rule or address needs a dual-stack subnetwork with
EXTERNAL access, an internal one a subnetwork with INTERNAL access; GCE refuses the others with 400.

The IPv4 pieces (quota, pools) stay in :mod:`ipam`; IPv6 addresses do not count against
``IN_USE_ADDRESSES``.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from lbprov_gcp.sandbox import ipam
from lbprov_gcp.sandbox.errors import ApiError, invalid

if TYPE_CHECKING:
    from lbprov_gcp.sandbox.emulator import ComputeEmulator
    from lbprov_gcp.sandbox.routes import Route

Json = dict[str, Any]

VERSIONS = ("IPV4", "IPV6")


def ip_version(body: Json) -> str:
    version = body.setdefault("ipVersion", "IPV4")
    if version not in VERSIONS:
        raise invalid("resource.ipVersion", f"'{version}' is not IPV4 or IPV6")
    return str(version)


def is_v6(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).version == 6
    except ValueError:
        return False


def dual_stack_subnet(
    emu: ComputeEmulator, route: Route, body: Json, scheme: str, field: str = "resource.subnetwork"
) -> Json:
    """The subnetwork an IPv6 address or forwarding rule of ``scheme`` comes from, checked."""
    if not body.get("subnetwork"):
        raise invalid(field, f"an {scheme} IPv6 address or forwarding rule needs a subnetwork (dual-stack)")
    subnet = emu._require_ref(
        body["subnetwork"], field=field, project=route.project, scope=route.scope, collection="subnetworks"
    )
    stack = subnet.get("stackType", "IPV4_ONLY")
    access = subnet.get("ipv6AccessType")
    if stack == "IPV4_ONLY" or access != scheme:
        raise ApiError(
            400,
            "invalid",
            f"Invalid value for field '{field}': '{subnet['selfLink']}'. The subnetwork has stackType {stack}"
            + (f" and ipv6AccessType {access}" if access else "")
            + f"; an {scheme} IPv6 forwarding rule or address needs a dual-stack (IPV4_IPV6) subnetwork "
            f"with ipv6AccessType {scheme}.",
        )
    return subnet


def prefix_of(subnet: Json, scheme: str) -> str:
    return str(subnet["externalIpv6Prefix" if scheme == "EXTERNAL" else "internalIpv6Prefix"])


def used_v6(emu: ComputeEmulator) -> set[str]:
    return {a["address"] for a in emu.all_of("addresses") if is_v6(str(a.get("address")))} | {
        str(f["IPAddress"]) for f in emu.all_of("forwardingRules") if is_v6(str(f.get("IPAddress")))
    }


def allocate(emu: ComputeEmulator, subnet: Json, scheme: str) -> str:
    ip = ipam.allocate_ipv6(prefix_of(subnet, scheme), used_v6(emu), external=scheme == "EXTERNAL")
    if ip is None:
        raise ApiError(403, "quotaExceeded", "No IP addresses are left in the range")
    return ip


def validate_address(emu: ComputeEmulator, route: Route, body: Json) -> Json:
    """An IPv6 address reservation (``ipVersion: IPV6``) in a dual-stack subnetwork."""
    scheme = body.setdefault("addressType", "EXTERNAL")
    subnet = dual_stack_subnet(emu, route, body, scheme)
    body["subnetwork"] = subnet["selfLink"]
    if scheme == "EXTERNAL":
        # Address.ipv6EndpointType: "The endpoint type of this address, which should be VM or
        # NETLB. This is used for deciding which type of endpoint this address can be used after
        # the external IPv6 address reservation."
        endpoint = body.get("ipv6EndpointType")
        if endpoint not in ("NETLB", "VM"):
            raise invalid("resource.ipv6EndpointType", "an external IPv6 address needs NETLB or VM")
        tier = body.setdefault("networkTier", "PREMIUM")
        if tier != "PREMIUM":
            raise invalid("resource.networkTier", "external IPv6 addresses are PREMIUM only")
        body["prefixLength"] = ipam.EXTERNAL_IPV6_PREFIX_LENGTH
    else:
        if "networkTier" in body:
            raise invalid("resource.networkTier", "must not be set for an INTERNAL address")
        purpose = body.setdefault("purpose", "GCE_ENDPOINT")
        if purpose not in ("GCE_ENDPOINT", "SHARED_LOADBALANCER_VIP"):
            raise invalid("resource.purpose", f"'{purpose}' is not GCE_ENDPOINT or SHARED_LOADBALANCER_VIP")
    wanted = body.get("address")
    if wanted is not None:
        if not is_v6(str(wanted)) or not ipam.in_subnet_v6(str(wanted), prefix_of(subnet, scheme)):
            raise invalid(
                "resource.address",
                f"'{wanted}' is not an IPv6 address of subnetwork {subnet['name']} ({prefix_of(subnet, scheme)})",
            )
        wanted = str(ipaddress.ip_address(wanted))
        holder = next((a["name"] for a in emu.all_of("addresses") if a.get("address") == wanted), None)
        if holder is not None:
            raise ApiError(400, "invalid", f"IP address '{wanted}' is already reserved by address '{holder}'")
    else:
        wanted = allocate(emu, subnet, scheme)
    body["address"] = wanted
    return body


def forwarding_rule_ip(
    emu: ComputeEmulator, route: Route, body: Json, scheme: str, addresses: list[Json]
) -> tuple[str, Json | None, Json]:
    """(IPv6 address, the reserved address it comes from or None, the subnetwork) of an IPv6 rule."""
    subnet = dual_stack_subnet(emu, route, body, scheme)
    body["subnetwork"] = subnet["selfLink"]
    body["network"] = subnet["network"]
    if scheme == "EXTERNAL" and body.get("networkTier", "PREMIUM") != "PREMIUM":
        # ingress-gce, forwarding_rules_ipv6.go: "IPv6 address is not supported for External
        # Regional Network Load Balancing with Standard network tier."
        raise invalid("resource.networkTier", "IPv6 external forwarding rules are PREMIUM only")
    value = str(body.get("IPAddress") or "")
    reserved: Json | None = None
    if not value:
        return allocate(emu, subnet, scheme), None, subnet
    if not is_v6(value.partition("/")[0]):  # a reference to a reserved address, not a number
        reserved = emu._require_ref(
            value,
            field="resource.IPAddress",
            project=route.project,
            scope=route.scope,
            collection="addresses",
        )
        if reserved.get("ipVersion") != "IPV6":
            raise invalid("resource.IPAddress", f"address {reserved['name']} is not an IPv6 address")
        return str(reserved["address"]), reserved, subnet
    ip, _, length = value.partition("/")
    if scheme == "EXTERNAL" and length != str(ipam.EXTERNAL_IPV6_PREFIX_LENGTH):
        # ingress-gce, forwarding_rules_ipv6.go: "for creating external IPv6 forwarding rule,
        # address has to be specified with /96 prefix, or API will return error."
        raise invalid("resource.IPAddress", f"'{value}': an external IPv6 address is given as a /96 range")
    ip = str(ipaddress.ip_address(ip))
    if not ipam.in_subnet_v6(ip, prefix_of(subnet, scheme)):
        raise invalid("resource.IPAddress", f"'{ip}' is not in subnetwork {subnet['name']}'s IPv6 range")
    reserved = next((a for a in addresses if a.get("address") == ip), None)
    return ip, reserved, subnet
