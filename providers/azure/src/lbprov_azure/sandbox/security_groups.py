"""Microsoft.Network/networkSecurityGroups and their securityRules: fields, priorities, defaults."""

from __future__ import annotations

import functools
import ipaddress
import re

from lbprov_azure.sandbox.base import JSON, MAX_NSG_ADDRESSES, MAX_NSG_RULES, NETWORK, ArmError
from lbprov_azure.sandbox.shared import ArmStateParts

#: Service tags usable in NSG rules (learn.microsoft.com "Virtual network service tags"), optionally
#: with a ``.<Region>`` suffix; the legacy spellings are still accepted by ARM.
SERVICE_TAGS = {
    t.lower()
    for t in [
        "Internet",
        "VirtualNetwork",
        "AzureLoadBalancer",
        "AzureCloud",
        "AzureTrafficManager",
        "Storage",
        "Sql",
        "AzureCosmosDB",
        "AzureKeyVault",
        "EventHub",
        "ServiceBus",
        "AzureContainerRegistry",
        "AzureMonitor",
        "AzureActiveDirectory",
        "AzureFrontDoor.Frontend",
        "AzureFrontDoor.Backend",
        "GatewayManager",
        "ApiManagement",
        "AppService",
        "AzureBackup",
        "INTERNET",
        "VIRTUAL_NETWORK",
        "AZURE_LOADBALANCER",
    ]
}
_PORT = re.compile(r"^([0-9]{1,5})(?:-([0-9]{1,5}))?$")


@functools.lru_cache(maxsize=65536)
def _family(value: str) -> int | None:
    """The IP version of an address or CIDR (``ipaddress.ip_network``, not strict), or None.

    Cached: a shared rule holds one destination address per Service (hundreds at scale), and every
    write of that rule parsed each of them twice (here and in :func:`_check_one_family`), on the
    chain of the NSG rule writer's batches (issue 14)."""
    try:
        return ipaddress.ip_network(value, strict=False).version
    except ValueError:
        return None


def _check_address_prefix(rule: str, field_: str, value: str) -> None:
    """``*``, a service tag, or an IPv4/IPv6 address or CIDR (NSG SecurityRule address prefixes)."""
    if value == "*" or value.lower() in SERVICE_TAGS or value.split(".")[0].lower() in SERVICE_TAGS:
        return
    if _family(value) is None:
        raise ArmError(
            400,
            "SecurityRuleInvalidAddressPrefix",
            f"Security rule {rule} has invalid Address prefix. Value provided: {value} ({field_}).",
        )


def _check_one_family(rid: str, props: JSON) -> None:
    """The explicit IP addresses and prefixes of one security rule (sources and destinations
    together) must be of one address family; ``*`` and service tags fit either. ARM's refusal:
    ``ResourceCannotContainAddressPrefixesFromDifferentAddressFamilies``, "All IP addresses or
    prefixes in the resource should belong to the same address family" (quoted in Azure/AKS#3136 for
    an IPv6 Service's rule, and hashicorp/terraform-provider-azurerm#12534)."""
    versions: set[int] = set()
    for side in ("source", "destination"):
        one = props.get(f"{side}AddressPrefix")
        for value in [one] if one else props.get(f"{side}AddressPrefixes") or []:
            family = _family(str(value))
            if family is not None:  # None: "*" or a service tag
                versions.add(family)
    if len(versions) > 1:
        raise ArmError(
            400,
            "ResourceCannotContainAddressPrefixesFromDifferentAddressFamilies",
            f"Resource {rid} contains IP addresses or prefixes that belong to different address families. "
            "All IP addresses or prefixes in the resource should belong to the same address family.",
        )


def _check_port_range(rule: str, field_: str, value: str) -> None:
    """``*``, a port or a range ``a-b`` within 0-65535 (NSG SecurityRule port ranges)."""
    m = _PORT.match(value)
    ok = value == "*" or (m is not None and int(m.group(1)) <= int(m.group(2) or m.group(1)) <= 65535)
    if not ok:
        raise ArmError(
            400,
            "SecurityRuleInvalidPortRange",
            f"Security rule {rule} has invalid Port range. Value provided: {value}. Value should be an integer "
            f"OR integer range with '-' delimiter. Valid range 0-65535 ({field_}).",
        )


class SecurityGroups(ArmStateParts):
    """Mixed into :class:`~lbprov_azure.sandbox.state.ArmState` (shares its state and lock)."""

    def _build_nsg(self, res: JSON, props: JSON, existing: JSON | None, etag: str) -> JSON:
        rules = [
            self._build_security_rule(
                f"{res['id']}/securityRules/{r.get('name', '')}",
                r.get("name", ""),
                r.get("properties") or {},
                etag,
            )
            for r in props.get("securityRules") or []
        ]
        self.check_nsg_rule_count(len(rules), res["id"])
        self.check_nsg_addresses(rules, res["id"])
        for r in rules:
            self._check_name("securityRules", r["name"])
        self._check_priorities(rules, res["id"])
        return {"securityRules": rules, "defaultSecurityRules": _default_security_rules(res["id"], etag)}

    @staticmethod
    def check_nsg_addresses(rules: list[JSON], nsg_id: str) -> None:
        """At most 4,000 source and 4,000 destination addresses/ranges in the rules of one NSG
        (learn.microsoft.com "Azure subscription and service limits", Networking limits; the limit
        applies to sources and destinations separately, MicrosoftDocs/azure-docs#116691).

        ARM's answer, code and message as quoted in kubernetes-sigs/cloud-provider-azure#2725:
        400 ``SecurityRuleAddressesOrPortsPerSecurityGroupLimitReached`` "Network security group <id>
        has 4094 DestinationAddressPrefixes. A security group cannot have more than 4000
        DestinationAddressPrefixes as per the limit MaxSecurityRuleAddressesOrPortsPerSecurityGroup."
        (The limit's name says ports count too; no source gives that count, so only addresses are
        enforced here.)"""
        for side, label in (
            ("source", "SourceAddressPrefixes"),
            ("destination", "DestinationAddressPrefixes"),
        ):
            total = 0
            for r in rules:
                p = r.get("properties") or {}
                total += 1 if p.get(f"{side}AddressPrefix") else len(p.get(f"{side}AddressPrefixes") or [])
            if total > MAX_NSG_ADDRESSES:
                raise ArmError(
                    400,
                    "SecurityRuleAddressesOrPortsPerSecurityGroupLimitReached",
                    f"Network security group {nsg_id} has {total} {label}. A security group cannot have more "
                    f"than {MAX_NSG_ADDRESSES} {label} as per the limit MaxSecurityRuleAddressesOrPortsPerSecurityGroup.",
                )

    @staticmethod
    def check_nsg_rule_count(count: int, nsg_id: str) -> None:
        if count > MAX_NSG_RULES:
            # ARM: SecurityRuleCountLimitReached, "A security group cannot have more than 1000 security
            # rules." (Azure/azure-rest-api-specs#3003)
            raise ArmError(
                400,
                "SecurityRuleCountLimitReached",
                f"A security group cannot have more than {MAX_NSG_RULES} security rules ({nsg_id}: {count}).",
            )

    @staticmethod
    def _build_security_rule(rid: str, name: str, props: JSON, etag: str) -> JSON:
        def one_of(field_: str, allowed: tuple[str, ...]) -> str:
            value = props.get(field_)
            if value not in allowed:
                raise ArmError(
                    400,
                    "SecurityRuleInvalidParameter" if value is not None else "SecurityRuleParameterRequired",
                    f"Security rule {name}: {field_} {value!r} is invalid; allowed: {', '.join(allowed)}.",
                )
            return str(value)

        out: JSON = {
            "protocol": one_of("protocol", ("Tcp", "Udp", "Icmp", "Esp", "Ah", "*")),
            "access": one_of("access", ("Allow", "Deny")),
            "direction": one_of("direction", ("Inbound", "Outbound")),
        }
        priority = props.get("priority")
        if not isinstance(priority, int) or not 100 <= priority <= 4096:
            raise ArmError(
                400,
                "SecurityRuleInvalidPriority",
                f"Security rule {name} has invalid Priority {priority}. Value provided: {priority} Allowed range 100-4096.",
            )
        out["priority"] = priority
        for single, plural in (
            ("sourceAddressPrefix", "sourceAddressPrefixes"),
            ("destinationAddressPrefix", "destinationAddressPrefixes"),
            ("sourcePortRange", "sourcePortRanges"),
            ("destinationPortRange", "destinationPortRanges"),
        ):
            one, many = props.get(single), props.get(plural) or []
            if one and many:
                raise ArmError(
                    400,
                    "SecurityRuleParameterContainsBothSingleAndMultipleValues",
                    f"Security rule {name} has both {single} and {plural}.",
                )
            if not one and not many:
                raise ArmError(
                    400, "SecurityRuleParameterRequired", f"Security rule {name}: {single} is required."
                )
            for value in [one] if one else many:
                (_check_port_range if "Port" in single else _check_address_prefix)(name, single, str(value))
            if one:
                out[single] = one
            else:
                out[plural] = list(many)
        _check_one_family(rid, props)
        if props.get("description"):
            if len(props["description"]) > 140:
                raise ArmError(
                    400, "SecurityRuleInvalidParameter", f"Security rule {name}: description longer than 140."
                )
            out["description"] = props["description"]
        out["provisioningState"] = "Succeeded"
        return {
            "name": name,
            "id": rid,
            "etag": etag,
            "type": f"{NETWORK}/networkSecurityGroups/securityRules",
            "properties": out,
        }

    @staticmethod
    def _check_priorities(rules: list[JSON], nsg_id: str) -> None:
        seen: dict[tuple[str, int], str] = {}
        for r in rules:
            key = (r["properties"]["direction"], r["properties"]["priority"])
            if key in seen:
                raise ArmError(
                    400,
                    "SecurityRuleConflict",
                    f"Security rule {r['name']} conflicts with rule {seen[key]}. Rules cannot have the same "
                    f"Priority and Direction. (priority {key[1]}, {key[0]}) in {nsg_id}",
                )
            seen[key] = r["name"]


def _default_security_rules(nsg_id: str, etag: str) -> list[JSON]:
    def rule(name: str, priority: int, direction: str, access: str, src: str, dst: str) -> JSON:
        return {
            "name": name,
            "id": f"{nsg_id}/defaultSecurityRules/{name}",
            "etag": etag,
            "properties": {
                "protocol": "*",
                "sourcePortRange": "*",
                "destinationPortRange": "*",
                "sourceAddressPrefix": src,
                "destinationAddressPrefix": dst,
                "access": access,
                "priority": priority,
                "direction": direction,
                "provisioningState": "Succeeded",
            },
        }

    return [
        rule("AllowVnetInBound", 65000, "Inbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
        rule("AllowAzureLoadBalancerInBound", 65001, "Inbound", "Allow", "AzureLoadBalancer", "*"),
        rule("DenyAllInBound", 65500, "Inbound", "Deny", "*", "*"),
    ]
