"""Microsoft.Network/loadBalancers: frontends, pools, probes, rules, their references and limits."""

from __future__ import annotations

import ipaddress
from typing import Any

from lbprov_azure.sandbox.base import (
    JSON,
    MAX_FRONTENDS_PER_LB,
    MAX_RULES_PER_LB,
    MAX_RULES_PER_NIC,
    ArmError,
    check_sku,
    ref,
)
from lbprov_azure.sandbox.shared import ArmStateParts


class LoadBalancers(ArmStateParts):
    """Mixed into :class:`~lbprov_azure.sandbox.state.ArmState` (shares its state and lock)."""

    def _build_lb(self, res: JSON, props: JSON, existing: JSON | None, etag: str) -> JSON:
        sku = check_sku("loadBalancers", res, existing, ("Basic", "Standard", "Gateway"))
        lb_id = res["id"]

        def children(field_: str, ctype: str) -> list[JSON]:
            items = props.get(field_) or []
            names: set[str] = set()
            out = []
            for it in items:
                nm = it.get("name") or ""
                self._check_name(ctype, nm)
                if nm.lower() in names:
                    raise ArmError(
                        400, "DuplicateResourceName", f"Load balancer {lb_id} has two {ctype} named {nm}."
                    )
                names.add(nm.lower())
                out.append(
                    {
                        "name": nm,
                        "id": f"{lb_id}/{ctype}/{nm}",
                        "etag": etag,
                        "properties": dict(it.get("properties") or {}),
                    }
                )
            return out

        frontends = children("frontendIPConfigurations", "frontendIPConfigurations")
        pools = children("backendAddressPools", "backendAddressPools")
        probes = children("probes", "probes")
        rules = children("loadBalancingRules", "loadBalancingRules")
        nat = len(props.get("inboundNatRules") or [])
        # The code for too many rules on one load balancer is the emulator's own: no public source
        # (Azure's load balancer error-code page, azure-rest-api-specs, cloud-provider-azure,
        # terraform-provider-azurerm issues searched) quotes ARM's answer at 1,500 rules. ARM's code for
        # the older VMSS inbound NAT limit, LoadBalancerInboundRuleCountLimitExceededByVMScaleSet
        # (Azure/azure-quickstart-templates#2515), is another limit. The frontend and per-NIC codes
        # below are ARM's.
        if len(rules) + nat > MAX_RULES_PER_LB:
            raise ArmError(
                400,
                "LoadBalancerRulesLimitReached",
                f"Load balancer {lb_id} has {len(rules) + nat} load balancing and inbound NAT rules; the limit "
                f"is {MAX_RULES_PER_LB}.",
            )
        if len(frontends) > MAX_FRONTENDS_PER_LB:
            # ARM: "A load balancer cannot have more than <n> FrontendIPConfigurations."
            # (Azure/acs-engine#447, colemickens/azure-kubernetes-status#6)
            raise ArmError(
                400,
                "LoadBalancerFrontendIPConfigurationCountLimitReached",
                f"A load balancer cannot have more than {MAX_FRONTENDS_PER_LB} FrontendIPConfigurations.",
            )
        ids = {fe["id"].lower() for fe in frontends}
        old_fes = {
            fe["name"].lower(): fe
            for fe in (existing or {}).get("properties", {}).get("frontendIPConfigurations", [])
        }
        # frontends ------------------------------------------------------------------------------
        pip_users: dict[str, str] = {}  # public IP -> the frontend of another load balancer using it
        for other in self.resources["loadBalancers"].values():
            if other["id"].lower() == lb_id.lower():
                continue
            for fe in other["properties"].get("frontendIPConfigurations", []):
                used = ref(fe["properties"].get("publicIPAddress"))
                if used:
                    pip_users[used.lower()] = fe["id"]
        pips_here: set[str] = set()  # public IPs of this load balancer's frontends so far
        for fe in frontends:
            fp = fe["properties"]
            pip_id = ref(fp.get("publicIPAddress"))
            subnet_id = ref(fp.get("subnet"))
            # ARM's codes and messages: FrontendIPConfigHasNoSubnetOrPublicIP (ernestio/ernest#480),
            # FrontendIPConfigHasBothSubnetAndPublicIP (hashicorp/terraform-provider-azurerm#1622)
            if not pip_id and not subnet_id:
                raise ArmError(
                    400,
                    "FrontendIPConfigHasNoSubnetOrPublicIP",
                    f"Frontend IP Configuration {fe['id']} must reference either a Subnet or a Public IP Address.",
                )
            if pip_id and subnet_id:
                raise ArmError(
                    400,
                    "FrontendIPConfigHasBothSubnetAndPublicIP",
                    f"Frontend IP Configuration {fe['id']} must not reference both a Subnet and a Public IP "
                    "Address.",
                )
            if pip_id:
                pip = self._lookup(pip_id, "publicIPAddresses")
                if pip is None:
                    raise self._bad_ref(pip_id, fe["id"])
                if (pip.get("sku") or {}).get("name") != sku:
                    # ARM's code and message: Code="PublicIPAndLBSkuDoNotMatch" Message="Standard sku load
                    # balancer <id> cannot reference Basic sku publicIP <id>." (Azure/terraform-azurerm-
                    # loadbalancer#32, microsoft/service-fabric-scripts-and-templates#51). Azure's
                    # error-code page also lists DifferentSkuLoadBalancersAndPublicIPAddressNotAllowed
                    # (MicrosoftDocs/SupportArticles-docs load-balancer-common-deployment-errors.md).
                    raise ArmError(
                        400,
                        "PublicIPAndLBSkuDoNotMatch",
                        f"Standard sku load balancer {lb_id} cannot reference {(pip.get('sku') or {}).get('name')} sku publicIP {pip_id}."
                        if sku == "Standard"
                        else f"{sku} sku load balancer {lb_id} cannot reference publicIP {pip_id} of another sku.",
                    )
                pip_state = (pip.get("properties") or {}).get("provisioningState") or "Succeeded"
                if pip_state != "Succeeded":
                    # ARM refuses a load balancer that references a public IP whose last operation has
                    # not succeeded (still Updating, or Failed): ARM's code and message, quoted in
                    # gardener/gardener-extension-provider-azure#2 and kubernetes/kubernetes#95748
                    # (upstream re-PUTs such a public IP before the LB update).
                    raise ArmError(
                        400,
                        "ReferencedResourceNotProvisioned",
                        f"Cannot proceed with operation because resource {pip['id']} used by resource {lb_id} "
                        f"is not in Succeeded state. Resource is in {pip_state} state and the last operation "
                        "that updated/is updating the resource is PutPublicIpAddressOperation.",
                    )
                if pip_id.lower() in pips_here:
                    # ARM's code and message (kubernetes-sigs/cloud-provider-azure#4243,
                    # MicrosoftDocs/azure-docs#50047)
                    raise ArmError(
                        400,
                        "PublicIPReferencedByMultipleIPConfigs",
                        f"Public ip address {pip['id']} is referenced by multiple ipconfigs in resource {lb_id}.",
                    )
                if pip_id.lower() in pip_users:
                    # A public IP already on another load balancer's frontend: the code is the
                    # emulator's own (no public source quotes ARM's answer for two load balancers).
                    raise ArmError(
                        400,
                        "PublicIPAddressInUse",
                        f"Public IP {pip_id} is already used by {pip_users[pip_id.lower()]}.",
                    )
                pips_here.add(pip_id.lower())
                out: JSON = {"publicIPAddress": {"id": pip["id"]}}
            else:
                assert subnet_id is not None
                subnet = self._lookup_subnet(subnet_id)
                if subnet is None:
                    raise self._bad_ref(subnet_id, fe["id"])
                method = fp.get("privateIPAllocationMethod") or "Dynamic"
                version = fp.get("privateIPAddressVersion") or "IPv4"
                if version not in ("IPv4", "IPv6"):  # IPVersion of azure-mgmt-network
                    raise ArmError(
                        400, "InvalidRequestFormat", f"privateIPAddressVersion {version!r} is invalid."
                    )
                old = old_fes.get(fe["name"].lower())
                old_props = (old or {}).get("properties", {})
                same_subnet = (ref(old_props.get("subnet")) or "").lower() == subnet["id"].lower() and (
                    old_props.get("privateIPAddressVersion") or "IPv4"
                ) == version
                if method == "Static":
                    addr = fp.get("privateIPAddress")
                    if _version_of(addr) not in (None, version):
                        raise ArmError(
                            400,
                            "InvalidRequestFormat",
                            f"Frontend {fe['id']}: privateIPAddress {addr} is not of privateIPAddressVersion {version}.",
                        )
                    keep = same_subnet and old_props.get("privateIPAddress") == addr
                    if not keep:
                        self._claim_private(subnet, addr, fe["id"])
                elif method == "Dynamic":
                    if same_subnet and old_props.get("privateIPAddress"):
                        addr = old_props["privateIPAddress"]
                    else:
                        addr = self._allocate_private(subnet["id"], subnet, 6 if version == "IPv6" else 4)
                else:
                    raise ArmError(
                        400, "InvalidRequestFormat", f"privateIPAllocationMethod {method!r} is invalid."
                    )
                if old and not (same_subnet and old_props.get("privateIPAddress") == addr):
                    self._release_private(old)
                out = {
                    "subnet": {"id": subnet["id"]},
                    "privateIPAllocationMethod": method,
                    "privateIPAddress": addr,
                    "privateIPAddressVersion": version,
                }
            out["provisioningState"] = "Succeeded"
            fe["properties"] = out
        kinds = {"public" if "publicIPAddress" in fe["properties"] else "private" for fe in frontends}
        if len(kinds) > 1:
            raise ArmError(
                400,
                "LoadBalancerCannotHavePublicAndPrivateFrontends",
                f"Load balancer {lb_id} cannot have both public and private frontend IP configurations.",
            )
        # frontends that went away release their private address
        new_names = {fe["name"].lower() for fe in frontends}
        for nm, old in old_fes.items():
            if nm not in new_names:
                self._release_private(old)
        # pools ----------------------------------------------------------------------------------
        for pool in pools:
            addrs: list[JSON] = []
            # An IP-based pool names its VNet per address or once on the pool (upstream's nodeIP pools
            # do the latter): BackendAddressPoolPropertiesFormat.virtualNetwork, azure-mgmt-network.
            pool_vnet = ref(pool["properties"].get("virtualNetwork"))
            for a in pool["properties"].get("loadBalancerBackendAddresses") or []:
                ap = a.get("properties") or {}
                ip = ap.get("ipAddress")
                vnet_id = ref(ap.get("virtualNetwork")) or pool_vnet
                try:
                    addr = ipaddress.ip_address(str(ip))
                except ValueError:
                    raise ArmError(
                        400, "InvalidRequestFormat", f"Backend address {ip!r} is not an IP address."
                    ) from None
                vnet = self._lookup(vnet_id, "virtualNetworks") if vnet_id else None
                if vnet is None:
                    raise self._bad_ref(vnet_id or "(missing virtualNetwork)", pool["id"])
                nets = [
                    ipaddress.ip_network(p) for p in vnet["properties"]["addressSpace"]["addressPrefixes"]
                ]
                if not any(addr in n for n in nets):
                    raise ArmError(
                        400,
                        "LoadBalancerBackendAddressIpNotInVnet",
                        f"Backend address {ip} of {pool['id']} is not in the address space of {vnet['id']}.",
                    )
                addrs.append(
                    {
                        "name": a.get("name") or ip,
                        "properties": {"ipAddress": ip, "virtualNetwork": {"id": vnet["id"]}},
                    }
                )
            # One IP version per backend pool: ARM refuses a pool of NIC IP configurations of both
            # versions with AllNicIpConfigurationsOfLbBackendPoolOnVMScaleSetMustHaveSamePrivateIpAddressVersion
            # (kubernetes/kubernetes#93085); the emulator applies the same rule, with its own code, to
            # IP-based pools.
            if len({ipaddress.ip_address(str(a["properties"]["ipAddress"])).version for a in addrs}) > 1:
                raise ArmError(
                    400,
                    "LoadBalancerBackendAddressPoolMustHaveSameIpVersion",
                    f"Backend pool {pool['id']} holds addresses of both IP versions; a pool holds one.",
                )
            pool["properties"] = {"loadBalancerBackendAddresses": addrs, "provisioningState": "Succeeded"}
            if pool_vnet:
                pool["properties"]["virtualNetwork"] = {"id": pool_vnet}
        # probes ---------------------------------------------------------------------------------
        for pr in probes:
            pp = pr["properties"]
            proto = pp.get("protocol")
            if proto not in ("Tcp", "Http", "Https"):
                raise ArmError(
                    400,
                    "InvalidRequestFormat",
                    f"Probe {pr['id']}: protocol {proto!r} must be Tcp, Http or Https.",
                )
            port = pp.get("port")
            if not isinstance(port, int) or not 1 <= port <= 65535:
                raise ArmError(
                    400, "InvalidRequestFormat", f"Probe {pr['id']}: port {port!r} must be 1-65535."
                )
            if proto == "Tcp" and pp.get("requestPath"):
                raise ArmError(
                    400,
                    "ProbeRequestPathNotAllowedForTcp",
                    f"Probe {pr['id']} of protocol Tcp cannot have a requestPath.",
                )
            if proto != "Tcp" and not pp.get("requestPath"):
                raise ArmError(
                    400,
                    "ProbeRequestPathRequired",
                    f"Probe {pr['id']} of protocol {proto} needs a requestPath.",
                )
            interval = pp.get("intervalInSeconds", 15)
            if not isinstance(interval, int) or interval < 5:
                raise ArmError(
                    400, "InvalidProbeInterval", f"Probe {pr['id']}: intervalInSeconds must be at least 5."
                )
            count = pp.get("numberOfProbes", 2)
            if not isinstance(count, int) or count < 1:
                raise ArmError(
                    400, "InvalidRequestFormat", f"Probe {pr['id']}: numberOfProbes must be at least 1."
                )
            pr["properties"] = {
                k: v
                for k, v in {
                    "protocol": proto,
                    "port": port,
                    "intervalInSeconds": interval,
                    "numberOfProbes": count,
                    "probeThreshold": pp.get("probeThreshold"),
                    "requestPath": pp.get("requestPath"),
                    "provisioningState": "Succeeded",
                }.items()
                if v is not None
            }
        # rules ----------------------------------------------------------------------------------
        pool_ids = {p["id"].lower() for p in pools}
        probe_ids = {p["id"].lower() for p in probes}
        seen_front: dict[tuple[str, str, int], str] = {}
        seen_back: dict[tuple[str, str, int], str] = {}
        # Looked up per rule: built once per write, not scanned per rule (a shared load balancer of
        # the scale bench holds hundreds of frontends, pools' addresses and rules: issue 14).
        frontend_by_id = {fe["id"].lower(): fe for fe in frontends}
        pool_versions = {
            p["id"].lower(): {
                _version_of((a.get("properties") or {}).get("ipAddress"))
                for a in (p.get("properties") or {}).get("loadBalancerBackendAddresses") or []
            }
            for p in pools
        }
        for r in rules:
            rp = r["properties"]
            fe_id = ref(rp.get("frontendIPConfiguration"))
            if not fe_id or fe_id.lower() not in ids:
                raise self._bad_ref(fe_id or "(missing frontendIPConfiguration)", r["id"])
            rule_pools = [x for x in [ref(rp.get("backendAddressPool"))] if x]
            rule_pools += [x for x in (ref(p) for p in rp.get("backendAddressPools") or []) if x]
            rule_pools = list(dict.fromkeys(rule_pools))  # both fields may name the same pool
            for pid in rule_pools:
                if pid.lower() not in pool_ids:
                    raise self._bad_ref(pid, r["id"])
            probe_id = ref(rp.get("probe"))
            if probe_id and probe_id.lower() not in probe_ids:
                raise self._bad_ref(probe_id, r["id"])
            proto = rp.get("protocol")
            if proto not in ("Tcp", "Udp", "All"):
                raise ArmError(
                    400,
                    "InvalidRequestFormat",
                    f"Rule {r['id']}: protocol {proto!r} must be Tcp, Udp or All.",
                )
            fport, bport = rp.get("frontendPort"), rp.get("backendPort")
            if proto == "All":
                # HA ports (learn.microsoft.com/azure/load-balancer/load-balancer-ha-ports-overview):
                # protocol All with frontend and backend port 0, "available only for an internal
                # Standard load balancer" (a frontend in a subnet, never a public IP). The code is the
                # emulator's own: no public source quotes ARM's answer to an All rule on a public
                # frontend (the one quoted All-rule error, RulesUseSameBackendPortProtocolAndPool in
                # MicrosoftDocs/azure-docs#94673, is about two rules sharing a pool).
                fe = frontend_by_id[fe_id.lower()]
                public = bool((fe.get("properties") or {}).get("publicIPAddress"))
                if sku != "Standard" or public or fport != 0 or bport != 0:
                    raise ArmError(
                        400,
                        "InvalidHaPortsLoadBalancingRule",
                        f"Rule {r['id']}: a rule of protocol All (HA ports) needs frontendPort 0, backendPort 0 "
                        "and an internal frontend of a Standard load balancer.",
                    )
            for label, value in (("frontendPort", fport), ("backendPort", bport)):
                if not isinstance(value, int) or not (0 if proto == "All" else 1) <= value <= 65535:
                    raise ArmError(
                        400, "InvalidRequestFormat", f"Rule {r['id']}: {label} {value!r} is out of range."
                    )
            idle = rp.get("idleTimeoutInMinutes", 4)
            if not isinstance(idle, int) or not 4 <= idle <= 100:
                raise ArmError(
                    400,
                    "InvalidIdleTimeoutInMinutes",
                    f"Rule {r['id']}: idleTimeoutInMinutes {idle!r} must be 4-100.",
                )
            dist = rp.get("loadDistribution", "Default")
            if dist not in ("Default", "SourceIP", "SourceIPProtocol"):
                raise ArmError(
                    400, "InvalidRequestFormat", f"Rule {r['id']}: loadDistribution {dist!r} is invalid."
                )
            floating = bool(rp.get("enableFloatingIP", False))
            fkey = (fe_id.lower(), proto, fport)
            if fkey in seen_front:
                raise ArmError(
                    400,
                    "LoadBalancingRulesWithSameFrontendIpConfigAndPort",
                    f"Rules {seen_front[fkey]} and {r['id']} use the same frontend IP configuration, protocol and port.",
                )
            seen_front[fkey] = r["id"]
            if not floating:
                for pid in rule_pools:
                    bkey = (pid.lower(), proto, bport)
                    if bkey in seen_back:
                        raise ArmError(
                            400,
                            "RulesUseSameBackendPortProtocolAndPool",
                            f"Load balancing rules {seen_back[bkey]} and {r['id']} with floating IP disabled use "
                            f"the same protocol {proto}, backend port {bport} and pool {pid}.",
                        )
                    seen_back[bkey] = r["id"]
            self._check_rule_families(r["id"], fe_id, frontend_by_id, rule_pools, pool_versions)
            rule_out: JSON = {
                "frontendIPConfiguration": {"id": fe_id},
                "protocol": proto,
                "frontendPort": fport,
                "backendPort": bport,
                "enableFloatingIP": floating,
                "idleTimeoutInMinutes": idle,
                "enableTcpReset": bool(rp.get("enableTcpReset", False)),
                "loadDistribution": dist,
                "disableOutboundSnat": bool(rp.get("disableOutboundSnat", False)),
                "provisioningState": "Succeeded",
            }
            if rule_pools:
                rule_out["backendAddressPool"] = {"id": rule_pools[0]}
                rule_out["backendAddressPools"] = [{"id": p} for p in rule_pools]
            if probe_id:
                rule_out["probe"] = {"id": probe_id}
            r["properties"] = rule_out
        # read-only back references, as Azure shows them (in rule order)
        rules_of_fe: dict[str, list[JSON]] = {}
        rules_of_probe: dict[str, list[JSON]] = {}
        for r in rules:
            rules_of_fe.setdefault(r["properties"]["frontendIPConfiguration"]["id"].lower(), []).append(
                {"id": r["id"]}
            )
            probe_ref = ref(r["properties"].get("probe"))
            if probe_ref:
                rules_of_probe.setdefault(probe_ref.lower(), []).append({"id": r["id"]})
        for fe in frontends:
            fe["properties"]["loadBalancingRules"] = rules_of_fe.get(fe["id"].lower(), [])
        for pr in probes:
            pr["properties"]["loadBalancingRules"] = rules_of_probe.get(pr["id"].lower(), [])
        # one count of this body's backend IPs for both checks, kept for the next writes' checks
        # (issue 14: each was a walk of every rule's pool addresses on the shared LB writer's chain)
        mine = _rule_ips(pools, rules)
        self._check_rules_per_backend_ip(lb_id, mine)
        self._check_one_load_balancer_per_kind(lb_id, frontends, mine)
        self._remember_rule_ips(res, mine)
        passthrough = {
            k: v for k, v in props.items() if k in ("inboundNatRules", "outboundRules", "inboundNatPools")
        }
        return {
            "frontendIPConfigurations": frontends,
            "backendAddressPools": pools,
            "probes": probes,
            "loadBalancingRules": rules,
            **passthrough,
        }

    def _check_rule_families(
        self,
        rule_id: str,
        fe_id: str,
        frontend_by_id: dict[str, JSON],
        rule_pools: list[str],
        pool_versions: dict[str, set[str | None]],
    ) -> None:
        """A rule joins a frontend and pools of one IP version: Azure Load Balancer translates NAT44
        and NAT66 only, and a load-balancing rule with an IPv6 frontend and an IPv4 backend is refused
        (Azure/azure-cli#27013, from the network team: rules are validated, inbound NAT rules were not).
        The code is the emulator's own: no public source gives ARM's."""
        want = _frontend_version(frontend_by_id[fe_id.lower()], self._lookup)
        for pid in rule_pools:
            found = pool_versions[pid.lower()]
            if found - {want}:
                raise ArmError(
                    400,
                    "LoadBalancingRuleFrontendAndBackendIpVersionMismatch",
                    f"Rule {rule_id}: frontend {fe_id} is {want}, backend pool {pid} holds "
                    f"{'/'.join(sorted(str(v) for v in found))} addresses; a rule needs one IP version.",
                )

    def _check_one_load_balancer_per_kind(
        self, lb_id: str, frontends: list[JSON], rule_ips: dict[str, int]
    ) -> None:
        """A NIC IP configuration is in the backend pools of at most one public and one internal LB.

        The rule is ARM's for a NIC IP configuration ("A virtual machine can reference backend address
        pools of one public and one internal load balancer": Azure REST Compute,
        VirtualMachineNetworkInterfaceIPConfigurationProperties.loadBalancerBackendAddressPools; the
        network SDK's model does not state it). The emulator's pools are IP-based, a
        backend address standing for the node's NIC IP configuration, and it counts the pools that
        load-balancing rules use: AKS's multiple standard load balancers keep every node in the
        first load balancer's outbound-only pool and in another's inbound pool (learn.microsoft.com
        "Use multiple public load balancers in AKS"). The public error code is the emulator's own:
        no public source gives ARM's code for a NIC IP configuration in two public load balancers.
        ARM's documented code for the same rule on a scale set is
        ``VMScaleSetCannotUseMultipleLoadBalancersOfSameType`` (learn.microsoft.com "Troubleshoot
        Azure Load Balancer error codes", MicrosoftDocs/SupportArticles-docs
        support/azure/load-balancer/load-balancer-common-deployment-errors.md); the emulator's pools
        are IP-based and stand for single NICs, not scale sets, so it does not borrow that code.
        """
        if not frontends:
            return
        # Internal: ARM's AnotherInternalLoadBalancerExists ("You can have only one Load Balancer of type
        # internal reference the same set of VMs/network interfaces", learn.microsoft.com "Troubleshoot
        # common Azure deployment errors with Azure Load Balancer"); public: the emulator's own code.
        public = any("publicIPAddress" in fe["properties"] for fe in frontends)
        mine = set(rule_ips)
        if not mine:
            return
        for other in self.resources["loadBalancers"].values():
            if other["id"].lower() == lb_id.lower():
                continue
            props = other.get("properties") or {}
            ofes = props.get("frontendIPConfigurations") or []
            if not ofes or any("publicIPAddress" in f["properties"] for f in ofes) != public:
                continue
            clash = sorted(mine & set(self._stored_rule_ips(other)))
            if clash:
                kind = "public" if public else "internal"
                raise ArmError(
                    400,
                    "NicIpConfigurationInBackendPoolsOfMultiplePublicLoadBalancers"
                    if public
                    else "AnotherInternalLoadBalancerExists",
                    f"Backend address(es) {', '.join(clash)} of load balancer {lb_id} are already in the backend "
                    f"pool of {kind} load balancer {other['id']}: a network interface IP configuration can be in "
                    f"the backend pools of at most one public and one internal load balancer.",
                )

    def _check_rules_per_backend_ip(self, lb_id: str, rule_ips: dict[str, int]) -> None:
        """A NIC IP configuration (here: a backend address) is in at most 300 rules across all LBs.

        ``rule_ips``: :func:`_rule_ips` of the load balancer being written."""
        counts = dict(rule_ips)
        for other in self.resources["loadBalancers"].values():
            if other["id"].lower() != lb_id.lower():
                for ip, n in self._stored_rule_ips(other).items():
                    counts[ip] = counts.get(ip, 0) + n
        over = sorted(ip for ip, n in counts.items() if n > MAX_RULES_PER_NIC)
        if over:
            # ARM's code (learn.microsoft.com "Troubleshoot common Azure deployment errors with Azure Load
            # Balancer": LoadBalancerRuleCountLimitReachedForNic) and message shape ("IpConfiguration <id>
            # cannot have more than <n> NAT or load balancing rules combined.", MicrosoftDocs/azure-docs#47423)
            raise ArmError(
                400,
                "LoadBalancerRuleCountLimitReachedForNic",
                f"IpConfiguration of backend address(es) {', '.join(over)} cannot have more than "
                f"{MAX_RULES_PER_NIC} NAT or load balancing rules combined (load balancer {lb_id}: "
                f"{max(counts[ip] for ip in over)}).",
            )

    def _stored_rule_ips(self, lb: JSON) -> dict[str, int]:
        """:func:`_rule_ips` of a load balancer the emulator holds, kept per stored body.

        Both checks above count every other load balancer's rules on each LB write: O(all the
        cluster's rules) per write, which grew with the number of load balancers on the scale bench
        (about half of an LB write's CPU at 7 load balancers of 143 Services). A stored body is never
        changed in place where pools or rules are concerned (a PUT stores a new one, with a new
        ETag; back references and provisioningState touch neither), so its counts hold while the
        same body, with the same ETag, is stored. Called under the state's lock."""
        hit = self._rule_ips_cache().get(str(lb["id"]).lower())
        if hit is not None and hit[0] is lb and hit[1] == lb.get("etag"):
            return hit[2]
        props = lb.get("properties") or {}
        counts = _rule_ips(props.get("backendAddressPools") or [], props.get("loadBalancingRules") or [])
        self._remember_rule_ips(lb, counts)
        return counts

    def _remember_rule_ips(self, lb: JSON, counts: dict[str, int]) -> None:
        """Keep ``counts`` for ``lb`` (the body being built: its pools and rules are final, and
        ``lb`` is the very dict that is stored if the write succeeds; if it fails, the entry never
        matches a stored body). Called under the state's lock."""
        self._rule_ips_cache()[str(lb["id"]).lower()] = (lb, lb.get("etag"), counts)

    def _rule_ips_cache(self) -> dict[str, tuple[JSON, Any, dict[str, int]]]:
        cache: dict[str, tuple[JSON, Any, dict[str, int]]] = self.__dict__.setdefault("_rule_ips_by_lb", {})
        return cache


def _frontend_version(fe: JSON, lookup_pip: Any) -> str:
    """A built frontend's IP version: its public IP's, or its private address's."""
    props = fe.get("properties") or {}
    pip_id = ref(props.get("publicIPAddress"))
    if pip_id:
        pip = lookup_pip(pip_id, "publicIPAddresses") or {}
        return str((pip.get("properties") or {}).get("publicIPAddressVersion") or "IPv4")
    return str(props.get("privateIPAddressVersion") or "IPv4")


def _version_of(addr: Any) -> str | None:
    try:
        return f"IPv{ipaddress.ip_address(str(addr)).version}"
    except ValueError:
        return None


def _rule_ips(pools: list[JSON], rules: list[JSON]) -> dict[str, int]:
    """Backend IPs of the pools that ``rules`` use, with how many rules reach each."""
    ips_of = {
        p["id"].lower(): {
            str((a.get("properties") or {}).get("ipAddress"))
            for a in (p.get("properties") or {}).get("loadBalancerBackendAddresses") or []
        }
        for p in pools
        if p.get("id")
    }
    out: dict[str, int] = {}
    for r in rules:
        rp = r.get("properties") or {}
        ids = {x["id"].lower() for x in rp.get("backendAddressPools") or [] if x.get("id")}
        if ref(rp.get("backendAddressPool")):
            ids.add(str(ref(rp.get("backendAddressPool"))).lower())
        for ip in set().union(*(ips_of.get(i, set()) for i in ids)) if ids else set():
            out[ip] = out.get(ip, 0) + 1
    return out
