"""Microsoft.Network/virtualNetworks and subnets: address spaces and private IP allocation."""

from __future__ import annotations

import ipaddress
from typing import Any

from lbprov_azure.sandbox.base import JSON, ArmError, ref
from lbprov_azure.sandbox.shared import ArmStateParts


class VirtualNetworks(ArmStateParts):
    """Mixed into :class:`~lbprov_azure.sandbox.state.ArmState` (shares its state and lock)."""

    def _build_vnet(self, res: JSON, props: JSON, existing: JSON | None, etag: str) -> JSON:
        prefixes = (props.get("addressSpace") or {}).get("addressPrefixes") or []
        nets = []
        for p in prefixes:
            try:
                nets.append(ipaddress.ip_network(p))
            except ValueError:
                raise ArmError(
                    400, "InvalidAddressPrefixFormat", f"Address prefix {p} is not valid."
                ) from None
        subnets = []
        for s in props.get("subnets") or []:
            sname = s.get("name", "")
            self._check_name("subnets", sname)
            sprops = s.get("properties") or {}
            # A dual-stack subnet lists an IPv4 and an IPv6 prefix in addressPrefixes (Subnet of
            # azure-mgmt-network); learn.microsoft.com "Overview of IPv6 for Azure Virtual Network",
            # limitations: "IPv6 subnets must be exactly /64 in size". One prefix of each family is
            # the emulator's own simplification (its code too: no public source gives ARM's).
            given = list(sprops.get("addressPrefixes") or [sprops.get("addressPrefix", "")])
            snets = []
            for prefix in given:
                try:
                    snets.append(ipaddress.ip_network(prefix))
                except ValueError:
                    raise ArmError(
                        400, "InvalidAddressPrefixFormat", f"Subnet prefix {prefix!r} is not valid."
                    ) from None
            if len({n.version for n in snets}) != len(snets) or any(
                n.version == 6 and n.prefixlen != 64 for n in snets
            ):
                raise ArmError(
                    400,
                    "InvalidAddressPrefixFormat",
                    f"Subnet {sname}: at most one IPv4 and one IPv6 prefix (a /64); got {given}.",
                )
            for snet in snets:
                if not any(snet.version == n.version and snet.subnet_of(n) for n in nets):  # type: ignore[arg-type]  # same version: checked just before
                    raise ArmError(
                        400,
                        "NetcfgSubnetRangeOutsideVnet",
                        f"Subnet {sname} is not in the VNet address space.",
                    )
            shown: JSON = {"addressPrefixes": given} if len(given) > 1 else {"addressPrefix": given[0]}
            subnets.append(
                {
                    "name": sname,
                    "id": f"{res['id']}/subnets/{sname}",
                    "etag": etag,
                    "properties": {**shown, "provisioningState": "Succeeded"},
                }
            )
        return {"addressSpace": {"addressPrefixes": prefixes}, "subnets": subnets}

    def _lookup_subnet(self, rid: str) -> JSON | None:
        parsed = self._parse_id(rid)
        if (
            parsed is None
            or parsed[1] != "virtualNetworks"
            or len(parsed[3]) != 2
            or parsed[3][0].lower() != "subnets"
        ):
            return None
        vnet = self.resources["virtualNetworks"].get((parsed[0].lower(), parsed[2].lower()))
        if vnet is None:
            return None
        return next(
            (s for s in vnet["properties"]["subnets"] if s["name"].lower() == parsed[3][1].lower()), None
        )

    def _allocate_private(self, subnet_id: str, subnet: JSON | None, version: int = 4) -> str:
        subnet = subnet or self._lookup_subnet(subnet_id)
        if subnet is None:
            raise ArmError(404, "NotFound", f"subnet {subnet_id} not found")
        net = subnet_network(subnet, version)
        if net is None:
            raise _no_prefix(subnet, version)
        used = self._private_used.setdefault(subnet["id"].lower(), set())
        # Azure reserves the network address, the next three and (IPv4) the broadcast address.
        for i, addr in enumerate(net.hosts()):
            if i < 3 or addr == net.broadcast_address:
                continue
            if str(addr) not in used:
                used.add(str(addr))
                return str(addr)
        raise ArmError(400, "SubnetIsFull", f"Subnet {subnet['id']} has no free address.")

    def _claim_private(self, subnet: JSON, addr: Any, owner: str) -> None:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            raise ArmError(
                400, "InvalidRequestFormat", f"privateIPAddress {addr!r} of {owner} is not an IP address."
            ) from None
        net = subnet_network(subnet, ip.version)
        offset = int(ip) - int(net.network_address) if net is not None and ip in net else -1
        if net is None or offset < 4 or (ip.version == 4 and ip == net.broadcast_address):
            raise ArmError(
                400,
                "PrivateIPAddressNotInSubnet",
                f"IP address {addr} of {owner} does not belong to the usable range of subnet {subnet['id']}.",
            )
        used = self._private_used.setdefault(subnet["id"].lower(), set())
        if str(ip) in used:
            raise ArmError(
                400,
                "PrivateIPAddressInUse",
                f"IP configuration {owner} is using the private IP address {addr} which is already allocated.",
            )
        used.add(str(ip))

    def _release_private(self, fe: JSON) -> None:
        props = fe.get("properties") or {}
        subnet = ref(props.get("subnet"))
        addr = props.get("privateIPAddress")
        if subnet and addr:
            self._private_used.get(subnet.lower(), set()).discard(addr)


def subnet_prefixes(subnet: JSON) -> list[str]:
    """A subnet's prefixes: ``addressPrefixes`` (dual-stack) or the one ``addressPrefix``."""
    props = subnet.get("properties") or {}
    return [str(p) for p in props.get("addressPrefixes") or [props.get("addressPrefix")] if p]


def subnet_network(subnet: JSON, version: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The subnet's prefix of IP ``version`` (4 or 6), or None when it has none of that family."""
    nets = [ipaddress.ip_network(p) for p in subnet_prefixes(subnet)]
    return next((n for n in nets if n.version == version), None)


def _no_prefix(subnet: JSON, version: int) -> ArmError:
    # An IPv6 private frontend or IP configuration needs a dual-stack subnet (learn.microsoft.com "Deploy
    # an IPv6 dual stack application in Azure virtual network": the subnet gets an IPv6 prefix first).
    # The code is the emulator's own: no public source gives ARM's for this refusal.
    return ArmError(
        400,
        "SubnetHasNoAddressPrefixOfIpVersion",
        f"Subnet {subnet['id']} has no IPv{version} address prefix; a private IPv{version} address "
        "needs a subnet with one.",
    )
