"""Regional forwarding rules (passthrough): validation of ``forwardingRules`` inserts."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from lbprov_gcp.sandbox import addresses as addresses_module
from lbprov_gcp.sandbox import ipam, ipv6
from lbprov_gcp.sandbox.errors import ApiError, invalid
from lbprov_gcp.sandbox.fields import NAME, PASSTHROUGH_SCHEMES, check_port_items, fingerprint, overlap

if TYPE_CHECKING:
    from lbprov_gcp.sandbox.emulator import ComputeEmulator
    from lbprov_gcp.sandbox.routes import Route

Json = dict[str, Any]


def validate(emu: ComputeEmulator, route: Route, body: Json, _old: Json | None) -> Json:
    scheme = body.setdefault("loadBalancingScheme", "EXTERNAL")
    if scheme not in PASSTHROUGH_SCHEMES:
        raise invalid(
            "resource.loadBalancingScheme",
            f"'{scheme}' is not supported for regional forwarding rules by the emulator (EXTERNAL, INTERNAL)",
        )
    protocol = body.setdefault("IPProtocol", "TCP")
    if protocol not in ("TCP", "UDP", "L3_DEFAULT"):
        raise invalid(
            "resource.IPProtocol",
            f"'{protocol}' is not supported with a backend service (TCP, UDP, L3_DEFAULT)",
        )
    if "target" in body:
        return _target_pool_rule(emu, route, body, scheme, protocol)
    if not body.get("backendService"):
        raise invalid("resource.backendService", f"a {scheme} forwarding rule needs a backend service")
    bs = emu._require_ref(
        body["backendService"],
        field="resource.backendService",
        project=route.project,
        scope=route.scope,
        collection="backendServices",
    )
    if bs["loadBalancingScheme"] != scheme:
        raise invalid(
            "resource.loadBalancingScheme",
            f"'{scheme}' does not match the backend service's scheme {bs['loadBalancingScheme']}",
        )
    if bs["protocol"] != {"TCP": "TCP", "UDP": "UDP", "L3_DEFAULT": "UNSPECIFIED"}[protocol]:
        raise invalid(
            "resource.IPProtocol",
            f"'{protocol}' does not match the backend service's protocol {bs['protocol']}",
        )
    body["backendService"] = bs["selfLink"]
    body["_backendService"] = emu.rel_of(bs)
    return _address_and_ports(emu, route, body, scheme, protocol)


def _target_pool_rule(emu: ComputeEmulator, route: Route, body: Json, scheme: str, protocol: str) -> Json:
    """A legacy target-pool rule (cloud-provider-gcp's external load balancers): EXTERNAL, one protocol,
    a port range."""
    # ForwardingRule.target: "For regional forwarding rules, this target must be in the same region as
    # the forwarding rule" (checked by the reference lookup in this region's scope).
    if "/targetInstances/" in str(body["target"]):
        raise invalid("resource.target", "target instances are not emulated; use a target pool")
    # compute.v1.json, ForwardingRule.backendService: "It is a required field for the following load
    # balancers: ... Backend service-based regional external passthrough Network Load Balancers ...
    # It cannot be set by other load balancer types" (a target-pool-based one is another type).
    if body.get("backendService"):
        raise invalid("resource.backendService", "a forwarding rule has either a target or a backendService")
    if scheme != "EXTERNAL":
        raise invalid("resource.loadBalancingScheme", "a target pool serves EXTERNAL forwarding rules only")
    if protocol not in ("TCP", "UDP"):
        raise invalid("resource.IPProtocol", f"'{protocol}' is not TCP or UDP for a target pool")
    if body.get("ports") or body.get("allPorts"):
        # the emulator keeps to what upstream sends: a portRange
        raise invalid("resource.ports", "target-pool rules are emulated with a portRange only")
    pool = emu._require_ref(
        body["target"],
        field="resource.target",
        project=route.project,
        scope=route.scope,
        collection="targetPools",
    )
    body["target"] = pool["selfLink"]
    body["_target"] = emu.rel_of(pool)
    return _address_and_ports(emu, route, body, scheme, protocol)


def _address_and_ports(emu: ComputeEmulator, route: Route, body: Json, scheme: str, protocol: str) -> Json:
    given = [k for k in ("ports", "portRange", "allPorts") if body.get(k) not in (None, [], "", False)]
    if len(given) > 1:
        raise invalid(f"resource.{given[1]}", f"{' and '.join(given)} are mutually exclusive")
    if "ports" in given:
        if len(body["ports"]) > 5:
            raise invalid(
                "resource.ports", f"at most 5 ports may be listed, got {len(body['ports'])}; use allPorts"
            )
        port_ranges = check_port_items(body["ports"], "resource.ports")
    elif "portRange" in given:
        if scheme == "INTERNAL":
            raise invalid("resource.portRange", "INTERNAL forwarding rules take ports or allPorts")
        port_ranges = check_port_items([body["portRange"]], "resource.portRange")
    elif "allPorts" in given:
        port_ranges = [(1, 65535)]
    elif scheme == "INTERNAL" or protocol == "L3_DEFAULT":
        raise invalid("resource.ports", f"a {scheme} {protocol} forwarding rule needs ports or allPorts")
    else:
        port_ranges = [(1, 65535)]
        body["portRange"] = "1-65535"
    if protocol == "L3_DEFAULT" and "allPorts" not in given:
        raise invalid("resource.allPorts", "L3_DEFAULT forwarding rules need allPorts")
    region_scope = route.scope
    if ipv6.ip_version(body) == "IPV6":
        if scheme == "EXTERNAL" and "allowGlobalAccess" in body:
            raise invalid("resource.allowGlobalAccess", "must not be set for an EXTERNAL forwarding rule")
        addresses6 = list(emu._bucket(route.project, region_scope, "addresses").values())
        ip6, reserved6, _ = ipv6.forwarding_rule_ip(emu, route, body, scheme, addresses6)
        if reserved6 is not None and reserved6["addressType"] != scheme:
            raise invalid(
                "resource.IPAddress",
                f"address {reserved6['name']} is {reserved6['addressType']}, the forwarding rule is {scheme}",
            )
        if scheme == "EXTERNAL":
            body.setdefault("networkTier", "PREMIUM")
        return _claim(emu, route, body, scheme, protocol, ip6, reserved6, port_ranges)
    subnet: Json | None = None
    if scheme == "EXTERNAL":
        for key in ("subnetwork", "network", "allowGlobalAccess"):
            if key in body:
                raise invalid(f"resource.{key}", "must not be set for an EXTERNAL forwarding rule")
        tier = body.setdefault("networkTier", "PREMIUM")
        if tier not in ("PREMIUM", "STANDARD"):
            raise invalid("resource.networkTier", f"'{tier}' is not PREMIUM or STANDARD")
    else:
        if body.get("subnetwork"):
            subnet = emu._require_ref(
                body["subnetwork"],
                field="resource.subnetwork",
                project=route.project,
                scope=region_scope,
                collection="subnetworks",
            )
        if body.get("network"):
            net = emu._require_ref(
                body["network"],
                field="resource.network",
                project=route.project,
                scope="global",
                collection="networks",
            )
            if subnet is not None and subnet["network"] != net["selfLink"]:
                raise invalid("resource.subnetwork", "is not in the given network")
            if subnet is None and not net.get("autoCreateSubnetworks"):
                # compute.v1.json, ForwardingRule.subnetwork: "If the network specified is in auto
                # subnet mode, this field is optional. However, a subnetwork must be specified if the
                # network is in custom subnet mode or when creating external forwarding rule with IPv6."
                raise invalid(
                    "resource.subnetwork",
                    f"a subnetwork must be specified: network {net['name']} is in custom subnet mode",
                )
            if subnet is None:
                subnet = next(
                    (
                        s
                        for s in emu._bucket(route.project, region_scope, "subnetworks").values()
                        if s["network"] == net["selfLink"]
                    ),
                    None,
                )
        if subnet is None:
            raise invalid(
                "resource.subnetwork",
                "an INTERNAL forwarding rule needs a subnetwork (or a network with a subnetwork in the region)",
            )
        body["subnetwork"] = subnet["selfLink"]
        body["network"] = subnet["network"]
        if "networkTier" in body and body["networkTier"] != "PREMIUM":
            raise invalid("resource.networkTier", "INTERNAL forwarding rules are PREMIUM only")
    addresses = list(emu._bucket(route.project, region_scope, "addresses").values())
    ip_value = body.get("IPAddress")
    reserved: Json | None = None
    if ip_value:
        # compute.v1.json, ForwardingRule.IPAddress: "Use one of the following formats to specify an
        # IP address while creating a forwarding rule: IP address number, as in `100.1.2.3` ...
        # Partial URL or by name, as in: ... regions/region/addresses/address-name ... address-name"
        if "/" in str(ip_value) or NAME.fullmatch(str(ip_value)):
            reserved = emu._require_ref(
                ip_value,
                field="resource.IPAddress",
                project=route.project,
                scope=region_scope,
                collection="addresses",
            )
            ip = reserved["address"]
        else:
            try:
                ip = str(ipaddress.IPv4Address(ip_value))
            except ValueError:
                raise invalid(
                    "resource.IPAddress", f"'{ip_value}' is not an IPv4 address or an address reference"
                ) from None
            reserved = next((a for a in addresses if a["address"] == ip), None)
        if reserved is not None:
            want_type = "EXTERNAL" if scheme == "EXTERNAL" else "INTERNAL"
            if reserved["addressType"] != want_type:
                raise invalid(
                    "resource.IPAddress",
                    f"address {reserved['name']} is {reserved['addressType']}, the forwarding rule is {scheme}",
                )
            if scheme == "EXTERNAL" and reserved.get("networkTier", "PREMIUM") != body.get("networkTier"):
                raise invalid(
                    "resource.networkTier", "does not match the network tier of the reserved address"
                )
            if (
                scheme == "INTERNAL"
                and subnet is not None
                and reserved.get("subnetwork") != subnet["selfLink"]
            ):
                raise invalid("resource.IPAddress", "the reserved address is in another subnetwork")
        elif scheme == "EXTERNAL":
            raise invalid(
                "resource.IPAddress",
                f"'{ip}': an external IP address must be reserved before a forwarding rule can use it",
            )
        else:
            assert subnet is not None
            if not ipam.usable_in_subnet(ip, subnet["ipCidrRange"]):
                raise invalid(
                    "resource.IPAddress",
                    f"'{ip}' is not a usable address of subnetwork {subnet['name']} ({subnet['ipCidrRange']})",
                )
            if ip in {i["networkInterfaces"][0]["networkIP"] for i in emu.all_of("instances")}:
                raise invalid("resource.IPAddress", f"'{ip}' is in use by an instance")
    else:
        used = {a["address"] for a in emu.all_of("addresses")} | {
            f["IPAddress"] for f in emu.all_of("forwardingRules")
        }
        if scheme == "EXTERNAL":
            addresses_module.check_external_quota(emu, route, None)
            allocated = ipam.allocate_external(used)
        else:
            assert subnet is not None
            used |= {i["networkInterfaces"][0]["networkIP"] for i in emu.all_of("instances")}
            allocated = ipam.allocate_internal(subnet["ipCidrRange"], used)
        if allocated is None:
            raise ApiError(403, "quotaExceeded", "No IP addresses are left in the range")
        ip = allocated
    return _claim(emu, route, body, scheme, protocol, ip, reserved, port_ranges)


def _claim(
    emu: ComputeEmulator,
    route: Route,
    body: Json,
    scheme: str,
    protocol: str,
    ip: str,
    reserved: Json | None,
    port_ranges: list[tuple[int, int]],
) -> Json:
    """The rule takes ``ip``: shared with another rule only through a reserved address, never on
    overlapping ports of the same protocol."""
    for other in emu._bucket(route.project, route.scope, "forwardingRules").values():
        if other.get("IPAddress") != ip:
            continue
        if reserved is None:
            raise invalid(
                "resource.IPAddress",
                f"'{ip}' is in use by forwarding rule {other['name']}; sharing an IP needs a reserved address",
            )
        if scheme == "INTERNAL" and reserved.get("purpose") != "SHARED_LOADBALANCER_VIP":
            raise invalid(
                "resource.IPAddress",
                f"'{ip}' is in use by forwarding rule {other['name']}; internal forwarding rules share an IP only through an address with purpose SHARED_LOADBALANCER_VIP",
            )
        if other.get("IPProtocol") == protocol and overlap(other["_ports"], port_ranges):
            raise invalid(
                "resource.ports", f"{protocol} ports overlap with forwarding rule {other['name']} on {ip}"
            )
    body["IPAddress"] = ip
    body["_ports"] = port_ranges
    body["fingerprint"] = fingerprint()
    # Every labelled resource has a labelFingerprint, with or without labels (setLabels needs it).
    body["labelFingerprint"] = fingerprint()
    return body
