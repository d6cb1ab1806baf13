"""Desired Azure resources for one Service, and the "managed fields" views that plans compare.

Bodies are ARM REST JSON (what azure-mgmt-network sends and returns), built from the Intent and the
validated :class:`~lbprov_azure.options.AzureOptions`. A view keeps only the fields lbprov manages,
so a plan's ``before``/``after`` show exactly the drift and nothing Azure adds by itself
(provisioning state, back references, IDs in other spellings).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from lbprov import naming
from lbprov.model import Intent, Port
from lbprov_azure import names
from lbprov_azure.options import AzureOptions
from lbprov_azure.settings import AzureSettings

JSON = dict[str, Any]
#: kube-proxy's health endpoint: used for UDP ports of Cluster-policy Services (a TCP probe
#: cannot test a UDP NodePort), as upstream's shared probe mode does.
KUBE_PROXY_HEALTH_PORT = 10256
#: Placeholder for "this Service's frontend address" in an NSG rule (floating IP on); the plan
#: replaces it when the address is known, apply when it is only known after the LB write.
FRONTEND_ADDRESS = "@frontend-address"

#: Shared-LB sub-resource kinds (plan Change.kind) -> field of the LB's properties.
LB_FIELDS = {
    "frontend-ip-configuration": "frontendIPConfigurations",
    "probe": "probes",
    "load-balancing-rule": "loadBalancingRules",
    "backend-pool": "backendAddressPools",
}


def last(rid: str | None) -> str | None:
    return rid.rstrip("/").rsplit("/", 1)[-1] if rid else None


def ref_id(obj: Any) -> str | None:
    return str(obj["id"]) if isinstance(obj, dict) and obj.get("id") else None


@dataclass(frozen=True)
class Ids:
    """ARM resource IDs, deterministic from names (so a rule can name a frontend before it exists)."""

    subscription: str

    def rg_prefix(self, rg: str) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{rg}/providers/Microsoft.Network"

    def lb(self, rg: str, name: str) -> str:
        return f"{self.rg_prefix(rg)}/loadBalancers/{name}"

    def lb_child(self, rg: str, lb: str, field: str, name: str) -> str:
        return f"{self.lb(rg, lb)}/{field}/{name}"

    def pip(self, rg: str, name: str) -> str:
        return f"{self.rg_prefix(rg)}/publicIPAddresses/{name}"

    def vnet(self, rg: str, name: str) -> str:
        return f"{self.rg_prefix(rg)}/virtualNetworks/{name}"

    def subnet(self, rg: str, vnet: str, name: str) -> str:
        return f"{self.vnet(rg, vnet)}/subnets/{name}"


def fill_frontend(props: JSON, address: str) -> JSON:
    """NSG rule properties with the frontend placeholder replaced by ``address`` (either field)."""
    out = dict(props)
    if out.get("destinationAddressPrefix") == FRONTEND_ADDRESS:
        out["destinationAddressPrefix"] = address
    if FRONTEND_ADDRESS in (out.get("destinationAddressPrefixes") or []):
        out["destinationAddressPrefixes"] = [
            address if d == FRONTEND_ADDRESS else d for d in out["destinationAddressPrefixes"]
        ]
    return out


def waits_for_frontend(props: JSON) -> bool:
    """True when NSG rule properties still name the frontend placeholder."""
    return props.get("destinationAddressPrefix") == FRONTEND_ADDRESS or FRONTEND_ADDRESS in (
        props.get("destinationAddressPrefixes") or []
    )


# -- views -------------------------------------------------------------------------------------


def view_frontend(item: JSON) -> JSON:
    p = item.get("properties") or {}
    pip = ref_id(p.get("publicIPAddress"))
    if pip:
        seg = pip.split("/")
        return {"public_ip": f"{seg[4]}/{seg[-1]}".lower() if len(seg) > 8 else pip.lower()}
    method = p.get("privateIPAllocationMethod") or "Dynamic"
    out: JSON = {"subnet": (last(ref_id(p.get("subnet"))) or "").lower(), "allocation": method}
    if method == "Static":
        out["address"] = p.get("privateIPAddress")
    return out


def view_probe(item: JSON) -> JSON:
    p = item.get("properties") or {}
    return {
        "protocol": p.get("protocol"),
        "port": p.get("port"),
        "interval": p.get("intervalInSeconds"),
        "threshold": p.get("probeThreshold"),
        "path": p.get("requestPath"),
    }


def view_rule(item: JSON) -> JSON:
    p = item.get("properties") or {}
    return {
        "protocol": p.get("protocol"),
        "frontend_port": p.get("frontendPort"),
        "backend_port": p.get("backendPort"),
        "floating_ip": bool(p.get("enableFloatingIP")),
        "idle_timeout": p.get("idleTimeoutInMinutes"),
        "tcp_reset": bool(p.get("enableTcpReset")),
        "distribution": p.get("loadDistribution") or "Default",
        "frontend": last(ref_id(p.get("frontendIPConfiguration"))),
        "probe": last(ref_id(p.get("probe"))),
        "pool": last(ref_id(p.get("backendAddressPool"))),
    }


def view_pool(item: JSON) -> JSON:
    p = item.get("properties") or {}
    return {
        "addresses": sorted(
            str((a.get("properties") or {}).get("ipAddress"))
            for a in p.get("loadBalancerBackendAddresses") or []
        )
    }


def _failed(props: JSON) -> JSON:
    """``{"provisioning": "Failed"}`` for a resource whose last operation failed (so it differs from
    any desired view, and the plan writes it again), else nothing."""
    return {"provisioning": "Failed"} if props.get("provisioningState") == "Failed" else {}


def view_pip(pip: JSON) -> JSON:
    p = pip.get("properties") or {}
    return {
        "sku": (pip.get("sku") or {}).get("name"),
        "allocation": p.get("publicIPAllocationMethod"),
        "dns_label": (p.get("dnsSettings") or {}).get("domainNameLabel"),
        "tags": dict(sorted((pip.get("tags") or {}).items())),
        "prefix": (ref_id(p.get("publicIPPrefix")) or "").lower() or None,
        "ip_tags": sorted(f"{t.get('ipTagType')}={t.get('tag')}" for t in p.get("ipTags") or []),
        **_failed(p),
    }


def view_nsg_rule(rule: JSON) -> JSON:
    p = rule.get("properties") or {}
    sources = p.get("sourceAddressPrefixes") or [p.get("sourceAddressPrefix")]
    ports = p.get("destinationPortRanges") or [p.get("destinationPortRange")]
    return {
        "protocol": p.get("protocol"),
        "access": p.get("access"),
        "direction": p.get("direction"),
        "sources": sorted(str(s) for s in sources if s),
        "destination": p.get("destinationAddressPrefix")
        or ",".join(sorted(p.get("destinationAddressPrefixes") or [])),
        "ports": sorted((str(x) for x in ports if x), key=lambda s: (len(s), s)),
        "description": p.get("description"),
        **_failed(p),
    }


VIEWS = {
    "frontend-ip-configuration": view_frontend,
    "probe": view_probe,
    "load-balancing-rule": view_rule,
    "backend-pool": view_pool,
}


# -- desired state ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Desired:
    """What one Service wants, as ARM bodies keyed by name."""

    lb: str
    other_lb: str
    frontend: JSON
    probes: dict[str, JSON]
    rules: dict[str, JSON]
    pool: JSON
    pip_name: str | None
    pip_rg: str | None
    pip_body: JSON | None
    nsg_rules: dict[str, JSON]
    lb_template: JSON
    #: Allow rules shared by every Service with the same protocol, sources and ports (upstream's
    #: merge by destination): name -> body without destination; the Service is one destination.
    shared_nsg_rules: dict[str, JSON] = field(default_factory=dict)


def _probe(intent: Intent, opts: AzureOptions, port: Port) -> JSON:
    """The probe of one port: per-port annotations first, then the Service's, then the defaults."""
    po = opts.port(port.port)
    interval = po.probe_interval_seconds if po else opts.probe_interval_seconds
    count = po.probe_count if po else opts.probe_count
    protocol = (po.probe_protocol if po else None) or opts.probe_protocol
    req_path = (po.probe_path if po else None) or opts.probe_path
    own_port = (po.probe_port if po else None) or port.node_port
    if intent.health_check is not None and intent.health_check.port:
        proto, pport, path = "Http", intent.health_check.port, intent.health_check.path or "/healthz"
    elif protocol in ("Http", "Https") or (protocol is None and req_path):
        proto, pport, path = protocol or "Http", own_port, req_path or "/"
    elif protocol == "Tcp" or port.protocol == "TCP" or (po is not None and po.probe_port):
        proto, pport, path = "Tcp", own_port, None
    else:
        proto, pport, path = "Http", KUBE_PROXY_HEALTH_PORT, "/healthz"
    props: JSON = {
        "protocol": proto,
        "port": pport,
        "intervalInSeconds": interval,
        # upstream writes num-of-probe here (not numberOfProbes), so an adopted probe stays as it is
        "probeThreshold": count,
    }
    if path:
        props["requestPath"] = path
    return props


def build_desired(
    intent: Intent,
    opts: AzureOptions,
    settings: AzureSettings,
    public_ip_id: str | None,
    *,
    slot: int = 0,
    pool_ips: Collection[str] | None = None,
) -> Desired:
    """``public_ip_id`` is the public IP the frontend uses (external Services), resolved by the plan;
    ``slot`` the load balancers the Service is placed on and ``pool_ips`` the node IPs of that slot
    (:mod:`lbprov_azure.placement`; None = every target)."""
    ids = Ids(settings.subscription_id)
    cluster = settings.cluster_name
    rg = settings.resource_group
    scheme = "internal" if opts.internal else "external"
    lb = names.lb_name(cluster, scheme, slot)
    other = names.lb_name(cluster, "external" if opts.internal else "internal", slot)
    targets = [t for t in intent.targets if t.internal_ip and (pool_ips is None or t.internal_ip in pool_ips)]
    base = intent.lb_name
    if opts.internal:
        subnet_id = ids.subnet(
            settings.vnet_rg, settings.vnet_name, opts.internal_subnet or settings.subnet_name
        )
        fprops: JSON = {"subnet": {"id": subnet_id}}
        if opts.ipv4:
            fprops.update(privateIPAllocationMethod="Static", privateIPAddress=opts.ipv4)
        else:
            fprops["privateIPAllocationMethod"] = "Dynamic"
    else:
        assert public_ip_id is not None
        fprops = {"publicIPAddress": {"id": public_ip_id}}
    frontend = {"name": base, "properties": fprops}
    pool_id = ids.lb_child(rg, lb, "backendAddressPools", names.pool_name(cluster))
    fe_id = ids.lb_child(rg, lb, "frontendIPConfigurations", base)
    probes: dict[str, JSON] = {}
    rules: dict[str, JSON] = {}
    # port_<n>_no_lb_rule: the port gets no rule, no probe and no NSG port
    served = [p for p in intent.ports if (po := opts.port(p.port)) is None or po.lb_rule]
    if opts.ha_ports:
        _ha_rule(intent, opts, rules, probes, fe_id, pool_id, ids.lb_child(rg, lb, "probes", ""))
    for port in [] if opts.ha_ports else served:
        name = names.rule_name(base, port.protocol, port.port)
        po = opts.port(port.port)
        rules[name] = {
            "name": name,
            "properties": {
                "frontendIPConfiguration": {"id": fe_id},
                "backendAddressPool": {"id": pool_id},
                "protocol": "Tcp" if port.protocol == "TCP" else "Udp",
                "frontendPort": port.port,
                "backendPort": port.port if opts.floating_ip else port.node_port,
                "enableFloatingIP": opts.floating_ip,
                "idleTimeoutInMinutes": opts.idle_timeout_minutes,
                "enableTcpReset": opts.tcp_reset and port.protocol == "TCP",
                "loadDistribution": "SourceIP" if intent.session_affinity else "Default",
                "disableOutboundSnat": False,
            },
        }
        if po is None or po.probe:
            probes[name] = {"name": name, "properties": _probe(intent, opts, port)}
            rules[name]["properties"]["probe"] = {"id": ids.lb_child(rg, lb, "probes", name)}
    vnet_id = ids.vnet(settings.vnet_rg, settings.vnet_name)
    addresses = [
        {"name": t.node_name, "properties": {"ipAddress": t.internal_ip, "virtualNetwork": {"id": vnet_id}}}
        for t in targets
    ]
    pool = {"name": names.pool_name(cluster), "properties": {"loadBalancerBackendAddresses": addresses}}
    pip_name = pip_rg = None
    pip_body: JSON | None = None
    if not opts.internal:
        pip_rg = opts.pip_resource_group or rg
        pip_name = opts.pip_name or names.pip_name(cluster, base)
        tags = names.service_tags(cluster, intent.ref, settings.cluster_id)
        tags.update(dict(opts.pip_tags))
        pprops: JSON = {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"}
        if opts.dns_label:
            pprops["dnsSettings"] = {"domainNameLabel": opts.dns_label}
        if opts.pip_prefix_id:
            pprops["publicIPPrefix"] = {"id": opts.pip_prefix_id}
        if opts.pip_ip_tags:
            pprops["ipTags"] = [{"ipTagType": k, "tag": v} for k, v in opts.pip_ip_tags]
        pip_body = {
            "location": settings.location,
            "sku": {"name": "Standard", "tier": "Regional"},
            "tags": tags,
            "properties": pprops,
        }
    nsg: dict[str, JSON] = {}
    mark = names.rule_identity(settings.cluster_id)
    description = f"lbprov {names.cluster_mark(cluster)} {intent.ref.uid} {mark} {intent.ref.key}"[:140]
    shared: dict[str, JSON] = {}
    if opts.nsg_rules and settings.security_group_name:
        nsg = _nsg_rules(intent, opts, served, targets, base, description)
        if mergeable(opts):
            shared_desc = shared_rule_description(cluster, settings.cluster_id)
            for rule in [r for r in nsg.values() if r["properties"]["access"] == "Allow"]:
                del nsg[rule["name"]]
                props = {
                    k: v for k, v in rule["properties"].items() if not k.startswith("destinationAddress")
                }
                props["description"] = shared_desc
                name = shared_rule_name(cluster, props)
                shared[name] = {"name": name, "properties": props}
    template = {
        "location": settings.location,
        "sku": {"name": "Standard", "tier": "Regional"},
        "tags": names.lb_tags(cluster, settings.cluster_id),
        "properties": {
            "frontendIPConfigurations": [],
            "backendAddressPools": [pool],
            "probes": [],
            "loadBalancingRules": [],
        },
    }
    return Desired(
        lb=lb,
        other_lb=other,
        frontend=frontend,
        probes=probes,
        rules=rules,
        pool=pool,
        pip_name=pip_name,
        pip_rg=pip_rg,
        pip_body=pip_body,
        nsg_rules=nsg,
        lb_template=template,
        shared_nsg_rules=shared,
    )


# -- NSG rules merged by destination -----------------------------------------------------------

#: Destination (and source) addresses Azure allows in the security rules of one NSG
#: (learn.microsoft.com "Azure subscription and service limits", Networking: 4,000 per NSG).
MAX_NSG_ADDRESSES = 4000


def mergeable(opts: AzureOptions) -> bool:
    """Whether the Service's allow rules join the shared rules (upstream merges rules that differ
    only in destination). Floating IP off: the destination is the node IPs and the NodePorts are the
    Service's own, so nothing would merge; additional public IPs may be shared by several Services,
    so a Service with them keeps rules of its own (its removal never takes another's destination)."""
    return opts.floating_ip and not opts.additional_public_ips


def shared_rule_name(cluster: str, props: JSON) -> str:
    """``lbprov-<cluster>-allow-<hash of protocol, sources, ports>``, as upstream's
    ``k8s-azure-lb_allow_<family>_<hash>``: equal rules of two Services get the same name."""
    sources = sorted(props.get("sourceAddressPrefixes") or [props.get("sourceAddressPrefix")])
    ports = sorted(props.get("destinationPortRanges") or [props.get("destinationPortRange")])
    digest = naming.short_hash(
        props.get("protocol"), ",".join(map(str, sources)), ",".join(map(str, ports)), length=16
    )
    return names.fit(f"lbprov-{names.cluster_mark(cluster)}-allow-{digest}")


def shared_rule_description(cluster: str, cluster_id: str | None) -> str:
    """``lbprov <cluster mark> shared <identity mark>``: a rule of the cluster, of no one Service."""
    return f"lbprov {names.cluster_mark(cluster)} shared {names.rule_identity(cluster_id)}"[:140]


def destinations(props: JSON) -> list[str]:
    """A security rule's destination addresses, whichever field holds them."""
    one = props.get("destinationAddressPrefix")
    return [str(one)] if one else [str(d) for d in props.get("destinationAddressPrefixes") or []]


def with_destinations(props: JSON, addresses: Collection[str]) -> JSON:
    """Rule properties with exactly ``addresses`` as destinations (sorted; one: the single field)."""
    out = {k: v for k, v in props.items() if not k.startswith("destinationAddressPrefix")}
    ordered = sorted(set(addresses))
    if len(ordered) == 1:
        out["destinationAddressPrefix"] = ordered[0]
    else:
        out["destinationAddressPrefixes"] = ordered
    return out


def _ha_rule(
    intent: Intent,
    opts: AzureOptions,
    rules: dict[str, JSON],
    probes: dict[str, JSON],
    fe_id: str,
    pool_id: str,
    probe_base: str,
) -> None:
    """HA ports (upstream ``getExpectedHAModeLoadBalancingRuleProperties``): one rule of protocol All,
    frontend and backend port 0, floating IP and TCP reset on, named and probed as the first port."""
    first = intent.ports[0]
    name = names.rule_name(intent.lb_name, first.protocol, first.port)
    rules[name] = {
        "name": name,
        "properties": {
            "frontendIPConfiguration": {"id": fe_id},
            "backendAddressPool": {"id": pool_id},
            "protocol": "All",
            "frontendPort": 0,
            "backendPort": 0,
            "enableFloatingIP": True,
            "idleTimeoutInMinutes": opts.idle_timeout_minutes,
            "enableTcpReset": True,
            "loadDistribution": "SourceIP" if intent.session_affinity else "Default",
            "disableOutboundSnat": False,
        },
    }
    po = opts.port(first.port)
    if po is None or po.probe:
        probes[name] = {"name": name, "properties": _probe(intent, opts, first)}
        rules[name]["properties"]["probe"] = {"id": probe_base + name}


def _source_groups(intent: Intent, opts: AzureOptions) -> tuple[list[tuple[str, list[str]]], bool]:
    """(rule name suffix, sources) of the allow rules, and whether source ranges were given.

    As upstream's access control (``loadbalancer/accesscontrol.go``): one rule per allowed service
    tag; one rule for the IP ranges (``azure-allowed-ip-ranges`` or spec.loadBalancerSourceRanges);
    ``Internet`` only when neither tags nor restricting ranges are given (lbprov keeps ``*`` for an
    internal Service, which reaches it from the VNet).
    """
    given = opts.allowed_ip_ranges or tuple(
        r for r in intent.source_ranges if intent.source_ranges != ("0.0.0.0/0",)
    )
    allow_all = not given or any(r in ("0.0.0.0/0", "::/0") for r in given)
    groups: list[tuple[str, list[str]]] = []
    if not allow_all:
        groups.append(("", sorted(given)))
    elif not opts.allowed_service_tags:
        groups.append(("", ["*"] if opts.internal else ["Internet"]))
    for tag in opts.allowed_service_tags:
        groups.append((f"-{tag}", [tag]))
    return groups, bool(given)


def _nsg_rules(
    intent: Intent, opts: AzureOptions, served: list[Port], targets: list[Any], base: str, description: str
) -> dict[str, JSON]:
    """The Service's NSG rules: allow rules per protocol and source group, and the deny-all rule."""
    # As upstream (azure_loadbalancer.go, reconcileSecurityGroup): floating IP on, packets keep the
    # frontend address (which the plan fills in) and the service port; off, the LB delivers to
    # <node IP>:<nodePort>, so the rule opens exactly the backend nodes. Additional public IPs are
    # destinations too.
    node_ips = sorted({str(t.internal_ip) for t in targets})
    if opts.floating_ip:
        destinations = [FRONTEND_ADDRESS, *opts.additional_public_ips]
    elif node_ips:
        destinations = [*node_ips, *opts.additional_public_ips]
    else:
        return {}  # no backend node: nothing to open
    groups, ranges_given = _source_groups(intent, opts)
    out: dict[str, JSON] = {}

    def rule(name: str, props: JSON) -> None:
        props = {**props, "sourcePortRange": "*", "direction": "Inbound", "description": description}
        if len(destinations) == 1:
            props["destinationAddressPrefix"] = destinations[0]
        else:
            props["destinationAddressPrefixes"] = list(destinations)
        out[name] = {"name": name, "properties": props}

    for proto in intent.protocols:
        ports = [p for p in served if p.protocol == proto]
        if not ports:
            continue
        dports = sorted({p.port if opts.floating_ip else p.node_port for p in ports})
        for suffix, sources in groups:
            props: JSON = {"protocol": "Tcp" if proto == "TCP" else "Udp", "access": "Allow"}
            if len(sources) == 1:
                props["sourceAddressPrefix"] = sources[0]
            else:
                props["sourceAddressPrefixes"] = sources
            if len(dports) == 1:
                props["destinationPortRange"] = str(dports[0])
            else:
                props["destinationPortRanges"] = [str(p) for p in dports]
            rule(names.fit(names.nsg_rule_name(base, proto) + suffix), props)
    if opts.deny_all_except_source_ranges and ranges_given and out:
        # upstream AddRuleForDenyAll: protocol *, source *, every port, to the same destinations,
        # at a priority below the allow rules
        rule(
            names.fit(names.nsg_rule_prefix(base) + "deny-all"),
            {"protocol": "*", "access": "Deny", "sourceAddressPrefix": "*", "destinationPortRange": "*"},
        )
    return out
