"""Microsoft.Network/networkSecurityGroups and their securityRules: fields, priorities, defaults."""

from __future__ import annotations

from lbprov_azure.sandbox.base import JSON, NETWORK, ArmError


class SecurityGroups:
    """Mixed into :class:`~lbprov_azure.sandbox.state.ArmState` (shares its state and lock)."""

    resources: dict[str, dict[tuple[str, str], JSON]]
    _private_used: dict[str, set[str]]

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
        for r in rules:
            self._check_name("securityRules", r["name"])
        self._check_priorities(rules, res["id"])
        return {"securityRules": rules, "defaultSecurityRules": _default_security_rules(res["id"], etag)}

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
            if one:
                out[single] = one
            else:
                out[plural] = list(many)
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
