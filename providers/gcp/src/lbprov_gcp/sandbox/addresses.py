"""Regional addresses: validation of ``addresses`` inserts and IP allocation."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from lbprov_gcp.sandbox import ipam, ipv6
from lbprov_gcp.sandbox.errors import ApiError, invalid
from lbprov_gcp.sandbox.fields import fingerprint

if TYPE_CHECKING:
    from lbprov_gcp.sandbox.emulator import ComputeEmulator
    from lbprov_gcp.sandbox.routes import Route

Json = dict[str, Any]


def external_in_use(emu: ComputeEmulator) -> set[str]:
    """The external IPs the project holds: reserved, or held by a forwarding rule (GCE's
    ``IN_USE_ADDRESSES`` counts both, an IP once however many hold it)."""
    return {
        a["address"]
        for a in emu.all_of("addresses")
        if a.get("addressType") == "EXTERNAL" and a.get("ipVersion", "IPV4") == "IPV4"
    } | {
        f["IPAddress"]
        for f in emu.all_of("forwardingRules")
        if f.get("loadBalancingScheme") == "EXTERNAL" and f.get("ipVersion", "IPV4") == "IPV4"
    }


def check_external_quota(emu: ComputeEmulator, route: Route, ip: str | None) -> None:
    """One more external IP (``ip`` not held yet, or a new one) must fit the regional quota."""
    in_use = external_in_use(emu)
    if ip is None or ip not in in_use:
        ipam.check_external_quota(len(in_use), emu.in_use_addresses_quota, route.scope.rpartition("/")[2])


def validate(emu: ComputeEmulator, route: Route, body: Json, _old: Json | None) -> Json:
    addr_type = body.setdefault("addressType", "EXTERNAL")
    if addr_type not in ("EXTERNAL", "INTERNAL"):
        raise invalid("resource.addressType", f"'{addr_type}' is not EXTERNAL or INTERNAL")
    if ipv6.ip_version(body) == "IPV6":
        body = ipv6.validate_address(emu, route, body)
        body["labelFingerprint"] = fingerprint()
        return body
    taken_by_addresses = {a["address"]: a["name"] for a in emu.all_of("addresses")}
    wanted = body.get("address")
    if wanted is not None:
        try:
            wanted = str(ipaddress.IPv4Address(wanted))
        except ValueError:
            raise invalid("resource.address", f"'{wanted}' is not an IPv4 address") from None
        if wanted in taken_by_addresses:
            raise ApiError(
                400,
                "invalid",
                f"IP address '{wanted}' is already reserved by address '{taken_by_addresses[wanted]}'",
            )
    if addr_type == "EXTERNAL":
        for key in ("subnetwork", "network"):
            if key in body:
                raise invalid(f"resource.{key}", "must not be set for an EXTERNAL address")
        purpose = body.get("purpose")
        if purpose is not None:
            raise invalid("resource.purpose", f"'{purpose}' is not valid for a regional EXTERNAL address")
        tier = body.setdefault("networkTier", "PREMIUM")
        if tier not in ("PREMIUM", "STANDARD"):
            raise invalid("resource.networkTier", f"'{tier}' is not PREMIUM or STANDARD")
        check_external_quota(emu, route, wanted)
        if wanted is not None:
            if not ipam.in_external_pool(wanted):
                raise invalid(
                    "resource.address",
                    f"'{wanted}' is not an external address available to this project (the emulator hands out {', '.join(str(n) for n in ipam.EXTERNAL_POOLS)})",
                )
            holder = next((f for f in emu.all_of("forwardingRules") if f["IPAddress"] == wanted), None)
            if holder is not None and holder["loadBalancingScheme"] != "EXTERNAL":
                raise invalid("resource.address", f"'{wanted}' is in use")
        else:
            used = set(taken_by_addresses) | {f["IPAddress"] for f in emu.all_of("forwardingRules")}
            wanted = ipam.allocate_external(used)
    else:
        if not body.get("subnetwork"):
            raise invalid("resource.subnetwork", "an INTERNAL address needs a subnetwork")
        subnet = emu._require_ref(
            body["subnetwork"],
            field="resource.subnetwork",
            project=route.project,
            scope=route.scope,
            collection="subnetworks",
        )
        body["subnetwork"] = subnet["selfLink"]
        if "network" in body:
            raise invalid("resource.network", "is only for VPC_PEERING/IPSEC addresses; give the subnetwork")
        purpose = body.setdefault("purpose", "GCE_ENDPOINT")
        if purpose not in ("GCE_ENDPOINT", "SHARED_LOADBALANCER_VIP"):
            raise invalid(
                "resource.purpose",
                f"'{purpose}' is not supported for a regional INTERNAL address by the emulator (GCE_ENDPOINT, SHARED_LOADBALANCER_VIP)",
            )
        if "networkTier" in body:
            raise invalid("resource.networkTier", "must not be set for an INTERNAL address")
        instance_ips = {i["networkInterfaces"][0]["networkIP"] for i in emu.all_of("instances")}
        if wanted is not None:
            if not ipam.usable_in_subnet(wanted, subnet["ipCidrRange"]):
                raise invalid(
                    "resource.address",
                    f"'{wanted}' is not a usable address of subnetwork {subnet['name']} ({subnet['ipCidrRange']})",
                )
            if wanted in instance_ips:
                raise invalid("resource.address", f"'{wanted}' is in use by an instance")
        else:
            used = (
                set(taken_by_addresses)
                | instance_ips
                | {f["IPAddress"] for f in emu.all_of("forwardingRules")}
            )
            wanted = ipam.allocate_internal(subnet["ipCidrRange"], used)
    if wanted is None:
        raise ApiError(403, "quotaExceeded", "No IP addresses are left in the range")
    body["address"] = wanted
    # Every labelled resource has a labelFingerprint, with or without labels (setLabels needs it).
    body["labelFingerprint"] = fingerprint()
    return body
