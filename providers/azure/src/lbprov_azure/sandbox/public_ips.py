"""Microsoft.Network/publicIPAddresses: SKU, allocation, DNS labels, address assignment."""

from __future__ import annotations

import re

from lbprov_azure.sandbox.base import JSON, ArmError, check_sku

_DNS_LABEL = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")


class PublicIPs:
    """Mixed into :class:`~lbprov_azure.sandbox.state.ArmState` (shares its state and lock)."""

    resources: dict[str, dict[tuple[str, str], JSON]]
    _private_used: dict[str, set[str]]

    def _build_pip(self, res: JSON, props: JSON, existing: JSON | None, etag: str) -> JSON:
        sku = check_sku("publicIPAddresses", res, existing, ("Basic", "Standard", "StandardV2"))
        method = props.get("publicIPAllocationMethod") or ("Static" if sku == "Standard" else "Dynamic")
        if sku == "Standard" and method != "Static":
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
        if version != "IPv4":
            raise ArmError(400, "InvalidRequestFormat", "the emulator allocates IPv4 addresses only")
        old = (existing or {}).get("properties", {})
        address = old.get("ipAddress") or str(next(self._public_ips))
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
        return out
