"""Microsoft.Network/publicIPAddresses and publicIPPrefixes: SKU, allocation, DNS labels, IP tags,
addresses (from a prefix when the public IP names one)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from lbprov_azure.sandbox.base import JSON, ArmError, check_sku, ref
from lbprov_azure.sandbox.shared import ArmStateParts

#: Where the emulator takes public IP prefixes from (a documentation range, never routed).
PREFIX_POOL = ipaddress.ip_network("192.0.2.0/24")
#: Where the emulator takes IPv6 public IPs from (the IPv6 documentation range).
IPV6_POOL = ipaddress.IPv6Network("2001:db8:1b::/64")

_DNS_LABEL = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")


class PublicIPs(ArmStateParts):
    """Mixed into :class:`~lbprov_azure.sandbox.state.ArmState` (shares its state and lock)."""

    @property
    def _public_ipv6(self) -> Iterator[ipaddress.IPv6Address]:
        """The IPv6 addresses the emulator hands out, in order (made on first use)."""
        if not hasattr(self, "_ipv6_hosts"):
            self._ipv6_hosts = IPV6_POOL.hosts()
        return self._ipv6_hosts

    def _build_prefix(self, res: JSON, props: JSON, existing: JSON | None, etag: str) -> JSON:
        """A public IP prefix (learn.microsoft.com "Public IP address prefix": Standard SKU only,
        IPv4 sizes /28 to /31; its range is fixed at creation)."""
        check_sku("publicIPPrefixes", res, existing, ("Standard", "StandardV2"))
        length = props.get("prefixLength")
        if not isinstance(length, int) or isinstance(length, bool):
            # not an integer: a body ARM cannot deserialise (the parse-error shape of check_sku; the
            # wording of the detail is the emulator's own)
            raise ArmError(
                400,
                "InvalidRequestFormat",
                "Cannot parse the request.",
                details=[{"code": "InvalidJson", "message": f"prefixLength {length!r} is not an integer."}],
            )
        if not 28 <= length <= 31:
            # ARM's code and message (quoted in hashicorp/terraform-provider-azurerm#19060):
            # 400 SpecifiedPrefixLengthNotSupported "Specified PrefixLength 24 for PublicIpPrefix <id> is
            # outside limits. Minimum PrefixLength 28 Maximum PrefixLength 31." (28 is the default
            # subscription limit; a larger range needs a support request)
            raise ArmError(
                400,
                "SpecifiedPrefixLengthNotSupported",
                f"Specified PrefixLength {length} for PublicIpPrefix {res['id']} is outside limits. Minimum "
                "PrefixLength 28 Maximum PrefixLength 31.",
            )
        if existing:
            return {**existing["properties"], "prefixLength": existing["properties"]["prefixLength"]}
        taken = [
            ipaddress.ip_network(p["properties"]["ipPrefix"])
            for p in self.resources["publicIPPrefixes"].values()
        ]
        for block in PREFIX_POOL.subnets(new_prefix=length):
            if not any(block.overlaps(t) for t in taken):
                return {"prefixLength": length, "publicIPAddressVersion": "IPv4", "ipPrefix": str(block)}
        raise ArmError(
            400, "PublicIpPrefixLimitReached", "The emulator's public IP prefix pool is exhausted."
        )

    def _address_from_prefix(self, res: JSON, prefix_id: str) -> str:
        parsed = self._parse_id(prefix_id)
        prefix = None
        if parsed is not None and parsed[1].lower() == "publicipprefixes":
            prefix = self.resources["publicIPPrefixes"].get((parsed[0].lower(), parsed[2].lower()))
        if prefix is None:
            raise self._bad_ref(prefix_id, res["id"])
        used = {
            (p["properties"] or {}).get("ipAddress")
            for p in self.resources["publicIPAddresses"].values()
            if (ref(p["properties"].get("publicIPPrefix")) or "").lower() == prefix["id"].lower()
        }
        for host in ipaddress.ip_network(prefix["properties"]["ipPrefix"]):
            if str(host) not in used:
                return str(host)
        # The code is the emulator's own: no public source (Azure docs, azure-rest-api-specs,
        # cloud-provider-azure, terraform-provider-azurerm issues searched) quotes ARM's answer for a
        # public IP asked of a full prefix.
        raise ArmError(
            400,
            "PublicIpPrefixOutOfIpAddressesForPublicIp",
            f"Public IP prefix {prefix['id']} has no free address left for public IP {res['id']}.",
        )

    def _build_pip(self, res: JSON, props: JSON, existing: JSON | None, etag: str) -> JSON:
        sku = check_sku("publicIPAddresses", res, existing, ("Basic", "Standard", "StandardV2"))
        method = props.get("publicIPAllocationMethod") or ("Static" if sku == "Standard" else "Dynamic")
        if sku == "Standard" and method != "Static":
            # ARM's code and message (MicrosoftDocs/azure-docs#42889, pulumi/pulumi-azure-native#1597)
            raise ArmError(
                400,
                "StandardSkuPublicIPAddressesMustBeStatic",
                f"Standard sku publicIp {res['id']} must have AllocationMethod set to Static.",
            )
        if existing and (existing.get("sku") or {}).get("name") != sku:
            raise ArmError(
                400, "PublicIPAddressSkuCannotBeChanged", "The SKU of a public IP cannot be changed."
            )
        version = props.get("publicIPAddressVersion") or "IPv4"
        if version not in ("IPv4", "IPv6"):
            # IPVersion enum of azure-mgmt-network: IPv4, IPv6
            raise ArmError(
                400,
                "InvalidRequestFormat",
                f"Public IP {res['id']}: publicIPAddressVersion {version!r}; IPv4 or IPv6.",
            )
        old = (existing or {}).get("properties", {})
        if existing is not None and (old.get("publicIPAddressVersion") or "IPv4") != version:
            # The rule is documented (the version is chosen at creation: terraform-provider-azurerm's
            # ip_version forces a new resource); the code is the emulator's own, no public source
            # quotes ARM's answer.
            raise ArmError(
                400,
                "PublicIPAddressVersionCannotBeChanged",
                f"Public IP {res['id']}: publicIPAddressVersion cannot be changed after creation.",
            )
        if version == "IPv6" and props.get("publicIPPrefix"):
            raise ArmError(
                400, "InvalidRequestFormat", f"Public IP {res['id']}: the emulator's prefixes are IPv4 only."
            )
        prefix_id = ref(props.get("publicIPPrefix"))
        if (
            existing is not None
            and (prefix_id or "").lower() != (ref(old.get("publicIPPrefix")) or "").lower()
        ):
            # the address comes from the prefix at creation; ARM does not move a public IP between prefixes
            # (AviatrixSystems/terraform-provider-aviatrix#1918: an update that drops a public IP's prefix
            # "is not allowed from Azure"). The code is the emulator's own: no public source quotes ARM's.
            raise ArmError(
                400,
                "PublicIPPrefixCannotBeChanged",
                f"Public IP {res['id']}: publicIPPrefix cannot be changed after creation.",
            )
        if old.get("ipAddress"):
            address = old["ipAddress"]
        elif prefix_id:
            address = self._address_from_prefix(res, prefix_id)
        elif version == "IPv6":
            # learn.microsoft.com "IPv6 for Azure Virtual Network": a Standard IPv6 public IP is static
            address = str(next(self._public_ipv6))
        else:
            address = str(next(self._public_ips))
        tags = props.get("ipTags") or []
        for tag in tags:
            # IpTag (azure-mgmt-network): ipTagType and tag, both strings
            if (
                not isinstance(tag, dict)
                or not isinstance(tag.get("ipTagType"), str)
                or not isinstance(tag.get("tag"), str)
            ):
                raise ArmError(
                    400,
                    "InvalidRequestFormat",
                    f"Public IP {res['id']}: ipTags items need ipTagType and tag.",
                )
        out: JSON = {
            "publicIPAllocationMethod": method,
            "publicIPAddressVersion": version,
            "ipAddress": address,
            "idleTimeoutInMinutes": int(props.get("idleTimeoutInMinutes") or 4),
        }
        dns = props.get("dnsSettings") or {}
        label = dns.get("domainNameLabel")
        if label:
            if not _DNS_LABEL.match(label):
                raise ArmError(
                    400,
                    "InvalidDomainNameLabel",
                    f"The domain name label {label} is invalid. It must conform to ^[a-z][a-z0-9-]{{1,61}}[a-z0-9]$.",
                )
            for other in self.resources["publicIPAddresses"].values():
                if (
                    other["id"] != res["id"]
                    and (other["properties"].get("dnsSettings") or {}).get("domainNameLabel") == label
                ):
                    raise ArmError(
                        400,
                        "DnsRecordInUse",
                        f"DNS record {label}.{self.location}.cloudapp.azure.com is already used by another public IP.",
                    )
            out["dnsSettings"] = {
                "domainNameLabel": label,
                "fqdn": f"{label}.{self.location}.cloudapp.azure.com",
            }
        if old.get("ipConfiguration"):
            out["ipConfiguration"] = old["ipConfiguration"]
        if prefix_id:
            out["publicIPPrefix"] = {"id": prefix_id}
        if tags:
            out["ipTags"] = [{"ipTagType": t["ipTagType"], "tag": t["tag"]} for t in tags]
        return out
