"""Microsoft.Network/virtualNetworks and subnets: address spaces and private IP allocation."""

from __future__ import annotations

import ipaddress
from typing import Any

from lbprov_azure.sandbox.base import JSON, ArmError, ref


class VirtualNetworks:
    """Mixed into :class:`~lbprov_azure.sandbox.state.ArmState` (shares its state and lock)."""

    resources: dict[str, dict[tuple[str, str], JSON]]
    _private_used: dict[str, set[str]]

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
            prefix = (s.get("properties") or {}).get("addressPrefix", "")
            try:
                snet = ipaddress.ip_network(prefix)
            except ValueError:
                raise ArmError(
                    400, "InvalidAddressPrefixFormat", f"Subnet prefix {prefix!r} is not valid."
                ) from None
            if not any(snet.subnet_of(n) for n in nets):  # type: ignore[arg-type]
                raise ArmError(
                    400, "NetcfgSubnetRangeOutsideVnet", f"Subnet {sname} is not in the VNet address space."
                )
            subnets.append(
                {
                    "name": sname,
                    "id": f"{res['id']}/subnets/{sname}",
                    "etag": etag,
                    "properties": {"addressPrefix": prefix, "provisioningState": "Succeeded"},
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

    def _allocate_private(self, subnet_id: str, subnet: JSON | None) -> str:
        subnet = subnet or self._lookup_subnet(subnet_id)
        if subnet is None:
            raise ArmError(404, "NotFound", f"subnet {subnet_id} not found")
        net = ipaddress.ip_network(subnet["properties"]["addressPrefix"])
        used = self._private_used.setdefault(subnet["id"].lower(), set())
        # Azure reserves the network address, the next three and the broadcast address.
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
        net = ipaddress.ip_network(subnet["properties"]["addressPrefix"])
        hosts = list(net.hosts())
        if ip not in net or ip in hosts[:3] or ip == net.broadcast_address:
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
