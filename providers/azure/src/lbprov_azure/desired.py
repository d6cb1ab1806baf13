"""Desired Azure resources for one Service, and the "managed fields" views that plans compare.

Bodies are ARM REST JSON (what azure-mgmt-network sends and returns), built from the Intent and the
validated :class:`~lbprov_azure.options.AzureOptions`. A view keeps only the fields lbprov manages,
so a plan's ``before``/``after`` show exactly the drift and nothing Azure adds by itself
(provisioning state, back references, IDs in other spellings).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from lbprov import naming
from lbprov.model import Intent, InvalidService, Port, Target
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
#: The same for the IPv6 frontend of the Service (a rule is of one family: Azure refuses rules
#: mixing address families).
FRONTEND_ADDRESS_V6 = "@frontend-address-IPv6"
_PLACEHOLDERS = (FRONTEND_ADDRESS, FRONTEND_ADDRESS_V6)


def placeholder(family: str) -> str:
    return FRONTEND_ADDRESS_V6 if family == "IPv6" else FRONTEND_ADDRESS


@functools.lru_cache(maxsize=8192)
def family_of(address: str) -> str:
    """``IPv4`` or ``IPv6`` for an address or CIDR.

    Cached: every plan asks it for every node's addresses (pools) and every source range, and
    parsing with ``ipaddress`` was about 5% of the controller's CPU in a 300-Service create (issue 14).
    An address that is not one raises ``ValueError`` each time (errors are not cached).
    """
    return f"IPv{ipaddress.ip_network(address, strict=False).version}"


def node_address(target: Target, family: str) -> str | None:
    """The node's InternalIP of ``family`` (``internal_ips``; ``internal_ip`` for Targets without)."""
    for addr in target.internal_ips or ((target.internal_ip,) if target.internal_ip else ()):
        try:
            if family_of(addr) == family:
                return addr
        except ValueError:
            continue
    return None


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
    """NSG rule properties with the frontend placeholder replaced by ``address`` (either field; a
    rule names the placeholder of one family only)."""
    out = dict(props)
    if out.get("destinationAddressPrefix") in _PLACEHOLDERS:
        out["destinationAddressPrefix"] = address
    if set(_PLACEHOLDERS) & set(out.get("destinationAddressPrefixes") or []):
        out["destinationAddressPrefixes"] = [
            address if d in _PLACEHOLDERS else d for d in out["destinationAddressPrefixes"]
        ]
    return out


def waits_for_frontend(props: JSON) -> bool:
    """True when NSG rule properties still name a frontend placeholder."""
    return rule_family(props) is not None


def rule_family(props: JSON) -> str | None:
    """The family of the frontend placeholder NSG rule properties name (None: they name none)."""
    found = [props.get("destinationAddressPrefix"), *(props.get("destinationAddressPrefixes") or [])]
    if FRONTEND_ADDRESS_V6 in found:
        return "IPv6"
    return "IPv4" if FRONTEND_ADDRESS in found else None


# -- views -------------------------------------------------------------------------------------


def view_frontend(item: JSON) -> JSON:
    p = item.get("properties") or {}
    pip = ref_id(p.get("publicIPAddress"))
    if pip:
        seg = pip.split("/")
        return {"public_ip": f"{seg[4]}/{seg[-1]}".lower() if len(seg) > 8 else pip.lower()}
    method = p.get("privateIPAllocationMethod") or "Dynamic"
    out: JSON = {"subnet": (last(ref_id(p.get("subnet"))) or "").lower(), "allocation": method}
    if (p.get("privateIPAddressVersion") or "IPv4") == "IPv6":
        out["version"] = "IPv6"
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
        **({"version": "IPv6"} if p.get("publicIPAddressVersion") == "IPv6" else {}),
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
class Stack:
    """One IP family of a Service: its frontend, the family's backend pool and its public IP."""

    family: str
    frontend: JSON
    pool: JSON
    pip_name: str | None = None
    pip_rg: str | None = None
    pip_body: JSON | None = None


@dataclass(frozen=True)
class Desired:
    """What one Service wants, as ARM bodies keyed by name.

    ``stacks`` holds a frontend per IP family of the Service, primary first. ``pool`` is the IPv4
    pool ``<cluster>``: every Service writes it, since it records which nodes are in which slot
    (:mod:`lbprov_azure.placement`), and an IPv6 Service's IPv6 pool follows it node by node.
    """

    lb: str
    other_lb: str
    stacks: tuple[Stack, ...]
    probes: dict[str, JSON]
    rules: dict[str, JSON]
    pool: JSON
    nsg_rules: dict[str, JSON]
    lb_template: JSON
    #: Allow rules shared by every Service with the same protocol, sources and ports (upstream's
    #: merge by destination): name -> body without destination; the Service is one destination.
    shared_nsg_rules: dict[str, JSON] = field(default_factory=dict)
    #: The family of each shared rule (a rule holds destinations of one family).
    shared_rule_family: dict[str, str] = field(default_factory=dict)

    @property
    def frontend(self) -> JSON:
        """The primary family's frontend."""
        return self.stacks[0].frontend

    @property
    def pip_body(self) -> JSON | None:
        return self.stacks[0].pip_body

    @property
    def pools(self) -> tuple[JSON, ...]:
        """The pools the Service writes: ``<cluster>``, and ``<cluster>-IPv6`` for an IPv6 Service."""
        return (self.pool, *(st.pool for st in self.stacks if st.family == "IPv6"))


def _node_port(port: Port) -> int:
    """The NodePort a rule, probe or NSG rule of ``port`` sends traffic to.

    Azure sends traffic to NodePorts (the provider keeps ``needs_node_ports``), so the intent builder
    refuses a Service port without one; an Intent built otherwise is refused here with the field
    named, not written with a null backend port."""
    if port.node_port is None:
        raise InvalidService(
            f"spec.ports[{port.name or port.port}].nodePort",
            "no NodePort: Azure load balancers send traffic to NodePorts",
        )
    return port.node_port


def _probe(intent: Intent, opts: AzureOptions, port: Port) -> JSON:
    """The probe of one port: per-port annotations first, then the Service's, then the defaults."""
    po = opts.port(port.port)
    interval = po.probe_interval_seconds if po else opts.probe_interval_seconds
    count = po.probe_count if po else opts.probe_count
    protocol = (po.probe_protocol if po else None) or opts.probe_protocol
    req_path = (po.probe_path if po else None) or opts.probe_path
    own_port = (po.probe_port if po else None) or _node_port(port)
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


def build_pip(
    intent: Intent, opts: AzureOptions, settings: AzureSettings, family: str
) -> tuple[str, str, JSON]:
    """(resource group, name, body) of the public IP lbprov makes for the Service's ``family``.

    As upstream (getServicePIPName, getServicePIPPrefixID): in a dual-stack Service the
    ``azure-pip-name``, DNS label and prefix annotations are the IPv4 IP's (their ``-ipv6`` forms are
    refused); a single-stack Service's, of either family, are its one IP's.
    """
    dual = len(intent.ip_families) > 1
    own = not dual or family == "IPv4"
    rg = opts.pip_resource_group or settings.resource_group
    cluster = settings.cluster_name
    base = names.of_family(intent.lb_name, family, dual)
    name = (opts.pip_name if own else None) or names.pip_name(cluster, base)
    tags = names.service_tags(cluster, intent.ref, settings.cluster_id)
    tags.update(dict(opts.pip_tags))
    pprops: JSON = {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": family}
    if opts.dns_label and own:
        pprops["dnsSettings"] = {"domainNameLabel": opts.dns_label}
    if opts.pip_prefix_id and own:
        pprops["publicIPPrefix"] = {"id": opts.pip_prefix_id}
    if opts.pip_ip_tags:
        pprops["ipTags"] = [{"ipTagType": k, "tag": v} for k, v in opts.pip_ip_tags]
    body = {
        "location": settings.location,
        "sku": {"name": "Standard", "tier": "Regional"},
        "tags": tags,
        "properties": pprops,
    }
    return rg, name, body


def rule_count(intent: Intent, opts: AzureOptions) -> int:
    """``len(build_desired(intent, opts, ...).rules)`` without building the bodies.

    Why: placement asks every new Service how many rules it needs, and building its whole desired
    state for that (public IP tags, probes, NSG rules) was half of ``_place``'s CPU at 1,000 Services
    (issue 14). The names are made as :func:`build_desired` makes them (one HA rule per family, else
    one per served port and family), so the count is the same (``test_plan_shortcuts.py`` compares)."""
    dual = len(intent.ip_families) > 1
    if opts.ha_ports:
        return len({_ha_rule_name(intent, _family_suffix(intent, f, dual)) for f in intent.ip_families})
    return len(
        {
            _port_rule_name(intent, p, family, dual)
            for family in intent.ip_families
            for p in _served(intent, opts)
        }
    )


def _served(intent: Intent, opts: AzureOptions) -> list[Port]:
    """The ports that get a rule (``port_<n>_no_lb_rule``: no rule, no probe and no NSG port)."""
    return [p for p in intent.ports if (po := opts.port(p.port)) is None or po.lb_rule]


def _family_suffix(intent: Intent, family: str, dual: bool) -> str:
    """What ``family`` adds to the Service's names (``-IPv6`` for a dual-stack Service's IPv6 part)."""
    return names.of_family(intent.lb_name, family, dual)[len(intent.lb_name) :]


def _port_rule_name(intent: Intent, port: Port, family: str, dual: bool) -> str:
    return names.of_family(names.rule_name(intent.lb_name, port.protocol, port.port), family, dual)


def _ha_rule_name(intent: Intent, suffix: str) -> str:
    """The HA-ports rule is named as the first port's rule, plus the family's suffix."""
    first = intent.ports[0]
    return names.rule_name(intent.lb_name, first.protocol, first.port) + suffix


def build_desired(
    intent: Intent,
    opts: AzureOptions,
    settings: AzureSettings,
    public_ip_id: str | Mapping[str, str] | None,
    *,
    slot: int = 0,
    pool_ips: Collection[str] | None = None,
) -> Desired:
    """``public_ip_id`` is the public IP each frontend uses (external Services), by family (a plain
    string: the same for every family, for counting), resolved by the plan; ``slot`` the load
    balancers the Service is placed on and ``pool_ips`` the IPv4 node IPs of that slot
    (:mod:`lbprov_azure.placement`; None = every target)."""
    ids = Ids(settings.subscription_id)
    cluster = settings.cluster_name
    rg = settings.resource_group
    scheme = "internal" if opts.internal else "external"
    lb = names.lb_name(cluster, scheme, slot)
    other = names.lb_name(cluster, "external" if opts.internal else "internal", slot)
    targets = [t for t in intent.targets if t.internal_ip and (pool_ips is None or t.internal_ip in pool_ips)]
    vnet_id = ids.vnet(settings.vnet_rg, settings.vnet_name)
    dual = len(intent.ip_families) > 1

    def pool_of(family: str) -> JSON:
        addresses = [
            {"name": t.node_name, "properties": {"ipAddress": ip, "virtualNetwork": {"id": vnet_id}}}
            for t in targets
            if (ip := node_address(t, family) if family == "IPv6" else t.internal_ip)
        ]
        return {
            "name": names.pool_name(cluster, family),
            "properties": {"loadBalancerBackendAddresses": addresses},
        }

    pool = pool_of("IPv4")
    stacks: list[Stack] = []
    probes: dict[str, JSON] = {}
    rules: dict[str, JSON] = {}
    nsg: dict[str, JSON] = {}
    shared: dict[str, JSON] = {}
    shared_family: dict[str, str] = {}
    served = _served(intent, opts)
    mark = names.rule_identity(settings.cluster_id)
    description = f"lbprov {names.cluster_mark(cluster)} {intent.ref.uid} {mark} {intent.ref.key}"[:140]
    for family in intent.ip_families:
        base = names.of_family(intent.lb_name, family, dual)
        if opts.internal:
            subnet_id = ids.subnet(
                settings.vnet_rg, settings.vnet_name, opts.internal_subnet or settings.subnet_name
            )
            fprops: JSON = {"subnet": {"id": subnet_id}}
            if opts.ipv4 and family == "IPv4":
                fprops.update(privateIPAllocationMethod="Static", privateIPAddress=opts.ipv4)
            else:
                fprops["privateIPAllocationMethod"] = "Dynamic"
            if family == "IPv6":
                fprops["privateIPAddressVersion"] = "IPv6"
        else:
            pid = public_ip_id if isinstance(public_ip_id, str) else (public_ip_id or {}).get(family)
            assert pid is not None
            fprops = {"publicIPAddress": {"id": pid}}
        fam_pool = pool if family == "IPv4" else pool_of(family)
        pool_id = ids.lb_child(rg, lb, "backendAddressPools", fam_pool["name"])
        fe_id = ids.lb_child(rg, lb, "frontendIPConfigurations", base)
        probe_base = ids.lb_child(rg, lb, "probes", "")
        if opts.ha_ports:
            _ha_rule(
                intent,
                opts,
                rules,
                probes,
                fe_id,
                pool_id,
                probe_base,
                suffix=_family_suffix(intent, family, dual),
            )
        for port in [] if opts.ha_ports else served:
            name = _port_rule_name(intent, port, family, dual)
            po = opts.port(port.port)
            rules[name] = {
                "name": name,
                "properties": {
                    "frontendIPConfiguration": {"id": fe_id},
                    "backendAddressPool": {"id": pool_id},
                    "protocol": "Tcp" if port.protocol == "TCP" else "Udp",
                    "frontendPort": port.port,
                    "backendPort": port.port if opts.floating_ip else _node_port(port),
                    "enableFloatingIP": opts.floating_ip,
                    "idleTimeoutInMinutes": opts.idle_timeout_minutes,
                    "enableTcpReset": opts.tcp_reset and port.protocol == "TCP",
                    "loadDistribution": "SourceIP" if intent.session_affinity else "Default",
                    "disableOutboundSnat": False,
                },
            }
            if po is None or po.probe:
                probes[name] = {"name": name, "properties": _probe(intent, opts, port)}
                rules[name]["properties"]["probe"] = {"id": probe_base + name}
        pip_name = pip_rg = None
        pip_body: JSON | None = None
        if not opts.internal:
            pip_rg, pip_name, pip_body = build_pip(intent, opts, settings, family)
        stacks.append(
            Stack(
                family=family,
                frontend={"name": base, "properties": fprops},
                pool=fam_pool,
                pip_name=pip_name,
                pip_rg=pip_rg,
                pip_body=pip_body,
            )
        )
        if opts.nsg_rules and settings.security_group_name:
            own = _nsg_rules(intent, opts, served, targets, base, description, family, dual)
            if mergeable(opts):
                shared_desc = shared_rule_description(cluster, settings.cluster_id)
                for rule in [r for r in own.values() if r["properties"]["access"] == "Allow"]:
                    del own[rule["name"]]
                    props = {
                        k: v for k, v in rule["properties"].items() if not k.startswith("destinationAddress")
                    }
                    props["description"] = shared_desc
                    name = shared_rule_name(cluster, props, family)
                    shared[name] = {"name": name, "properties": props}
                    shared_family[name] = family
            nsg.update(own)
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
        stacks=tuple(stacks),
        probes=probes,
        rules=rules,
        pool=pool,
        nsg_rules=nsg,
        lb_template=template,
        shared_nsg_rules=shared,
        shared_rule_family=shared_family,
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


def shared_rule_name(cluster: str, props: JSON, family: str = "IPv4") -> str:
    """``lbprov-<cluster>-allow-<hash of protocol, sources, ports>``, as upstream's
    ``k8s-azure-lb_allow_<family>_<hash>``: equal rules of two Services get the same name. IPv6 rules
    hash the family too (a rule holds destinations of one family; IPv4 names are as before)."""
    sources = sorted(props.get("sourceAddressPrefixes") or [props.get("sourceAddressPrefix")])
    ports = sorted(props.get("destinationPortRanges") or [props.get("destinationPortRange")])
    parts = [props.get("protocol"), ",".join(map(str, sources)), ",".join(map(str, ports))]
    digest = naming.short_hash(*parts, *(["IPv6"] if family == "IPv6" else []), length=16)
    return names.fit(f"lbprov-{names.cluster_mark(cluster)}-allow-{digest}")


def shared_rule_description(cluster: str, cluster_id: str | None) -> str:
    """``lbprov <cluster mark> shared <identity mark>``: a rule of the cluster, of no one Service."""
    return f"lbprov {names.cluster_mark(cluster)} shared {names.rule_identity(cluster_id)}"[:140]


def destinations(props: JSON) -> list[str]:
    """A security rule's destination addresses, whichever field holds them."""
    one = props.get("destinationAddressPrefix")
    return [str(one)] if one else [str(d) for d in props.get("destinationAddressPrefixes") or []]


def destination_set(props: JSON) -> frozenset[str]:
    """``frozenset(destinations(props))``, kept with the very ``props`` dict it was made of.

    Why: a shared rule holds one destination per Service that shares it (up to 4,000), and every
    plan of a Service asks whether its address is among them, and every other shared rule whether
    it holds the Service's: a set built per question made each plan O(Services) (~0.15 ms per set
    at 1,000, issue 14). Rule bodies are read-only snapshots of a read round (a write brings a new
    dict), so the set is made once per snapshot; the dict is held so that its id is not reused.
    The answer is also kept with the destination fields it was made of (the single value, the list
    object and its length): a body changed in place after all by setting a field anew, or by adding
    or removing an address, is rebuilt, at O(1) per question. It is a guard, not a proof: an address
    replaced in place (same list, same length) is still answered from the memo, so the snapshot
    contract stands (nothing in lbprov changes a read body in place)."""
    one = props.get("destinationAddressPrefix")
    many = props.get("destinationAddressPrefixes")
    size = len(many) if many else 0
    hit = _dest_sets.get(id(props))
    if hit is not None and hit[0] is props and hit[1] == one and hit[2] is many and hit[3] == size:
        return hit[4]
    found = frozenset(destinations(props))
    if len(_dest_sets) >= _DEST_SETS_MAX:
        _dest_sets.clear()  # superseded snapshots: never grows past the bound
    _dest_sets[id(props)] = (props, one, many, size, found)
    return found


#: destination_set's answers by the identity of the properties asked about (with the fields they were
#: made of); bounded
_dest_sets: dict[int, tuple[JSON, Any, Any, int, frozenset[str]]] = {}
_DEST_SETS_MAX = 16  # a 1,000-address rule is ~60 KB: at most ~1 MB of superseded ones


def destination_count(props: JSON) -> int:
    """``len(destinations(props))`` without building the list: every plan of a Service that shares
    rules counts the NSG's destinations (up to one per Service in a shared rule)."""
    if props.get("destinationAddressPrefix"):
        return 1
    return len(props.get("destinationAddressPrefixes") or ())


def with_destinations(props: JSON, addresses: Collection[str]) -> JSON:
    """Rule properties with exactly ``addresses`` as destinations (sorted; one: the single field)."""
    out = {k: v for k, v in props.items() if not k.startswith("destinationAddressPrefix")}
    # dict.fromkeys keeps the given order (a set's would be hash order): addresses given sorted, as
    # a shared rule's are (one per Service that shares it), sort in one pass
    ordered = sorted(dict.fromkeys(addresses))
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
    *,
    suffix: str = "",
) -> None:
    """HA ports (upstream ``getExpectedHAModeLoadBalancingRuleProperties``): one rule of protocol All,
    frontend and backend port 0, floating IP and TCP reset on, named and probed as the first port
    (``suffix``: ``-IPv6`` for the IPv6 rule of a dual-stack Service)."""
    first = intent.ports[0]
    name = _ha_rule_name(intent, suffix)
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


def _source_groups(
    intent: Intent, opts: AzureOptions, family: str = "IPv4"
) -> tuple[list[tuple[str, list[str]]], bool]:
    """(rule name suffix, sources) of the allow rules, and whether source ranges were given.

    As upstream's access control (``loadbalancer/accesscontrol.go``): one rule per allowed service
    tag; one rule for the IP ranges (``azure-allowed-ip-ranges`` or spec.loadBalancerSourceRanges);
    ``Internet`` only when neither tags nor restricting ranges are given (lbprov keeps ``*`` for an
    internal Service, which reaches it from the VNet). Ranges are split by family (a rule holds one
    family): the ``family`` frontend's rule takes that family's ranges; restricting ranges with none
    of the family open nothing of it but the allowed service tags.
    """
    given = opts.allowed_ip_ranges or tuple(
        r for r in intent.source_ranges if intent.source_ranges != ("0.0.0.0/0",)
    )
    mine = [r for r in given if family_of(r) == family]
    allow_all = not given or any(r in ("0.0.0.0/0", "::/0") for r in mine)
    groups: list[tuple[str, list[str]]] = []
    if not allow_all and mine:
        groups.append(("", sorted(mine)))
    elif not opts.allowed_service_tags:
        groups.append(("", ["*"] if opts.internal else ["Internet"]))
    for tag in opts.allowed_service_tags:
        groups.append((f"-{tag}", [tag]))
    return groups, bool(given)


def _nsg_rules(
    intent: Intent,
    opts: AzureOptions,
    served: list[Port],
    targets: list[Any],
    base: str,
    description: str,
    family: str = "IPv4",
    dual: bool = False,
) -> dict[str, JSON]:
    """The Service's NSG rules of one family (``base``: its frontend's name): allow rules per protocol
    and source group, and the deny-all rule; destinations and sources are of ``family`` only."""
    # As upstream (azure_loadbalancer.go, reconcileSecurityGroup): floating IP on, packets keep the
    # frontend address (which the plan fills in) and the service port; off, the LB delivers to
    # <node IP>:<nodePort>, so the rule opens exactly the backend nodes. Additional public IPs are
    # destinations too.
    node_ips = sorted({ip for t in targets if (ip := node_address(t, family))})
    extra = [ip for ip in opts.additional_public_ips if family_of(ip) == family]
    if opts.floating_ip:
        destinations = [placeholder(family), *extra]
    elif node_ips:
        destinations = [*node_ips, *extra]
    else:
        return {}  # no backend node: nothing to open
    groups, ranges_given = _source_groups(intent, opts, family)
    v6 = names.IPV6_SUFFIX if dual and family == "IPv6" else ""
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
        dports = sorted({p.port if opts.floating_ip else _node_port(p) for p in ports})
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
            rule(names.fit(names.nsg_rule_name(intent.lb_name, proto) + suffix + v6), props)
    if opts.deny_all_except_source_ranges and ranges_given and out:
        # upstream AddRuleForDenyAll: protocol *, source *, every port, to the same destinations,
        # at a priority below the allow rules
        rule(
            names.fit(names.nsg_rule_prefix(intent.lb_name) + "deny-all" + v6),
            {"protocol": "*", "access": "Deny", "sourceAddressPrefix": "*", "destinationPortRange": "*"},
        )
    return out
